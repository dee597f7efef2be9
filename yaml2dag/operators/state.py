"""The tasks that give a compiled flow Kestra's final state and announce it to Flow triggers.

Airflow decides a run's state from its leaf tasks; Kestra from the main `tasks` only (errors
and finally never change it). `_flow_state`, a teardown, runs once the main tasks are done — also
when a user marks the run failed, since Airflow never skips teardowns — reads their states, and
fails (failing the run, through `on_failure_fail_dagrun`) exactly when Kestra would end FAILED.

`_flow_event`, a teardown beside it (after it when the flow has `outputs`), emits the asset
events Flow triggers of other flows are scheduled on: `kestra://<namespace>/<flowId>/<STATE>`, `kestra://<namespace>/*/<STATE>`,
`kestra://<prefix>/**/<STATE>` for each namespace the flow is in, and `kestra://**/<STATE>`.
It is a separate task because a failed task emits no asset events, and `_flow_state` must fail
to fail the run; being a plain teardown, it never changes the run's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.flowable import children_state
from yaml2dag.states import (
    EVENT_TASK_ID,
    EXIT_XCOM_KEY,
    FAILING_EXIT_STATES,
    INTERNAL_UI_COLOR,
    INTERNAL_UI_FGCOLOR,
    STATE_TASK_ID,
    KestraState,
)
from yaml2dag.triggers import emitted_uris, flow_alias_name

__all__ = ["EVENT_TASK_ID", "STATE_TASK_ID", "FlowEventOperator", "FlowStateOperator"]


class FlowStateOperator(BaseOperator):
    """Fails when a main task failed, so the Airflow run ends in the flow's Kestra state.

    Its XCom `state` is the flow's Kestra state: FAILED, WARNING (a main task ended WARNING, which
    Airflow shows as success) or SUCCESS.

    When the flow declares `outputs`, a run that did not fail renders them here and adds them to
    the XCom as `outputs` (`yaml2dag run --json` shows them at the top level); a required output
    that cannot be rendered or converted to its type fails the run, as in Kestra.

    :param main_task_ids: Airflow task ids of the flow's main `tasks`.
    :param flow_outputs: the flow's `outputs` (id, type, value, required), rendered at the end.
    :param flow: what the flow's tasks know (needed to render `flow_outputs`).
    """

    ui_color = INTERNAL_UI_COLOR
    ui_fgcolor = INTERNAL_UI_FGCOLOR

    def __init__(
        self,
        *,
        main_task_ids: Sequence[str],
        flow_outputs: Sequence[dict[str, Any]] | None = None,
        flow: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.main_task_ids = list(main_task_ids)
        self.flow_outputs = list(flow_outputs or [])
        self.flow = flow

    def execute(self, context: Any) -> dict[str, Any]:  # noqa: D102
        task_instance = context["ti"]
        exited = _exit_state(self.dag, task_instance)
        if exited is not None:
            return self._exit(task_instance, exited)
        state, reason = children_state(context, self.main_task_ids)
        if state is KestraState.FAILED:
            task_instance.xcom_push(key="return_value", value={"state": state.value})
            raise TaskFailure(f"Flow FAILED: {reason} (errors and finally tasks never change the flow state)")
        if state is KestraState.WARNING:
            self.log.warning("Flow WARNING: %s; the Airflow run succeeds", reason)
        else:
            self.log.info("Flow SUCCESS: every main task succeeded or was skipped")
        if self.flow_outputs:
            return {"state": state.value, "outputs": self._outputs(context)}
        return {"state": state.value}

    def _outputs(self, context: Any) -> dict[str, Any]:
        """The flow's `outputs`, rendered and typed; a required one that fails fails the run."""
        from yaml2dag.errors import RenderError
        from yaml2dag.expressions import render_value
        from yaml2dag.operators.context import build_context

        variables = build_context(self.flow, self.task_id, "flow.outputs", context)
        values: dict[str, Any] = {}
        for output in self.flow_outputs:
            try:
                values[output["id"]] = typed_output(output, render_value(output.get("value"), variables))
            except (RenderError, ValueError) as exc:
                if output.get("required", True):
                    context["ti"].xcom_push(key="return_value", value={"state": KestraState.FAILED.value})
                    raise TaskFailure(f"Flow FAILED: output `{output['id']}` cannot be rendered: {exc}") from None
                self.log.warning("Optional output `%s` left out: %s", output["id"], exc)
        self.log.info("Flow outputs: %s", ", ".join(values) or "none")
        return values

    def _exit(self, task_instance: Any, state: str) -> dict[str, str]:
        """The run ended through an Exit task: its state is the flow's (CANCELED and KILLED fail the run)."""
        if state in FAILING_EXIT_STATES:
            task_instance.xcom_push(key="return_value", value={"state": state})
            raise TaskFailure(f"Flow {state}: an Exit task ended the execution")
        self.log.info("Flow %s: an Exit task ended the execution", state)
        return {"state": state}


def typed_output(output: dict[str, Any], value: Any) -> Any:
    """A rendered flow output converted to its declared `type` (ValueError when it does not fit)."""
    import json

    kind = str(output.get("type", "STRING")).upper()
    if value is None:
        return None
    if kind in ("INT", "LONG"):
        return int(str(value).strip())
    if kind == "FLOAT":
        return float(str(value).strip())
    if kind in ("BOOLEAN", "BOOL"):
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise ValueError(f"`{value}` is not a BOOLEAN")
        return text == "true"
    if kind in ("JSON", "ARRAY", "MULTISELECT") and isinstance(value, str):
        return json.loads(value)
    if kind == "FILE" and not str(value).startswith("kestra:///"):
        raise ValueError(f"`{value}` is not a kestra:/// storage URI")
    return value


def _exit_state(dag: Any, task_instance: Any) -> str | None:
    """The state an Exit task of this run ended the execution in, or None."""
    from yaml2dag.operators.flowable import ExitOperator

    exits = [task.task_id for task in dag.tasks if isinstance(task, ExitOperator)]
    for task_id in exits:
        recorded = task_instance.xcom_pull(task_ids=task_id, key=EXIT_XCOM_KEY)
        for state in recorded if isinstance(recorded, list) else [recorded]:
            if state:
                return str(state)
    return None


class FlowEventOperator(BaseOperator):
    """Emits the asset events of the flow's final Kestra state, which start the flows triggered by it.

    Reads the flow's state from the main tasks, as `_flow_state` does, beside which it runs (when
    the flow declares `outputs`, whose rendering may fail the flow, it runs after `_flow_state` and
    reads the state that task recorded, FAILED when none), and adds one event, through
    the flow's asset alias, to each asset a Flow trigger may listen to (`triggers.emitted_uris`: the
    flow's, its namespace's, each enclosing namespace's, every flow's). Each event's extra holds what
    Kestra's Flow trigger exposes as `trigger.*` (executionId, namespace, flowId, flowRevision, state)
    and the execution's `labels` (the flow's and those its `Labels` tasks set), which ExecutionLabels
    conditions test.

    :param namespace: The flow's namespace.
    :param flow_id: The flow's id.
    :param revision: The flow's revision (`trigger.flowRevision` downstream).
    :param labels: The flow's labels (the labels of its executions).
    :param main_task_ids: Airflow ids of the flow's main `tasks` (None: read `_flow_state`'s XCom).
    :param stop_after: Polling trigger id → its `stopAfter` states: when a run that trigger started
        ends in one of them, the trigger's stop marker is written and it polls no more.
    """

    ui_color = INTERNAL_UI_COLOR
    ui_fgcolor = INTERNAL_UI_FGCOLOR

    def __init__(
        self,
        *,
        namespace: str,
        flow_id: str,
        revision: int,
        labels: dict[str, str] | None = None,
        main_task_ids: Sequence[str] | None = None,
        stop_after: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow.sdk import AssetAlias

        super().__init__(outlets=[AssetAlias(flow_alias_name(namespace, flow_id))], **kwargs)
        self.namespace = namespace
        self.flow_id = flow_id
        self.revision = revision
        self.labels = dict(labels or {})
        self.main_task_ids = None if main_task_ids is None else list(main_task_ids)
        self.stop_after = dict(stop_after or {})

    def execute(self, context: Any) -> None:  # noqa: D102
        from airflow.sdk import Asset, AssetAlias

        state = self._final_state(context)
        extra = {
            "executionId": context["dag_run"].run_id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.revision,
            "state": state,
            "labels": self._execution_labels(context),
        }
        uris = emitted_uris(self.namespace, self.flow_id, state)
        events = context["outlet_events"][AssetAlias(flow_alias_name(self.namespace, self.flow_id))]
        for uri in uris:
            events.add(Asset(uri=uri), extra=extra)
        self.log.info("Flow ended %s: asset events on %s", state, ", ".join(uris))
        if self.stop_after:
            self._stop_trigger(context, state)

    def _final_state(self, context: Any) -> str:
        """The flow's Kestra end state: read from the main tasks, or from `_flow_state` when it runs first."""
        if self.main_task_ids is not None:
            exited = _exit_state(self.dag, context["ti"])
            return exited or children_state(context, self.main_task_ids)[0].value
        recorded = context["ti"].xcom_pull(task_ids=STATE_TASK_ID)
        return KestraState.read(recorded.get("state", "FAILED") if isinstance(recorded, dict) else "FAILED").value

    def _stop_trigger(self, context: Any, state: str) -> None:
        """`stopAfter`: the polling trigger that started this run stops when the run ended in one of its states."""
        from yaml2dag import storage
        from yaml2dag.polling import polling_trigger_id, stop_marker_uri

        trigger_id = polling_trigger_id(context.get("triggering_asset_events"))
        if trigger_id is None or state not in self.stop_after.get(trigger_id, []):
            return
        marker = stop_marker_uri(self.namespace, self.flow_id, trigger_id)
        with storage.open_uri_write(marker) as stream:
            stream.write(f"{state} {context['dag_run'].run_id}\n".encode())
        self.log.info("Trigger `%s` stops (stopAfter %s): delete %s to start it again", trigger_id, state, marker)

    def _execution_labels(self, context: Any) -> dict[str, str]:
        """The flow's labels with those the run's `Labels` tasks set (Kestra's execution labels)."""
        from yaml2dag.operators.context import execution_labels
        from yaml2dag.operators.execution import LabelsOperator

        labels_tasks = tuple(task.task_id for task in context["dag"].tasks if isinstance(task, LabelsOperator))
        return execution_labels(self.labels, labels_tasks, context["ti"]) if labels_tasks else self.labels
