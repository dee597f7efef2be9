"""Operator for Kestra's `Subflow`: start a run of another flow's DAG and wait for it on the triggerer.

The run is created through the task's execution API (the call `TriggerDagRunOperator` makes);
the wait is Airflow's `DagStateTrigger`, so no worker slot is held meanwhile. The child's Kestra
state is the `state` its `_flow_state` task returned (SUCCESS, WARNING or FAILED).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.pause import end_warning, in_dag_test
from yaml2dag.states import STATE_TASK_ID, KestraState
from yaml2dag.tasktypes.subflow import Subflow

#: Seconds between two checks of the child run's state (on the triggerer).
POLL_INTERVAL = 2.0
_TRANSMITTED = (KestraState.FAILED, KestraState.KILLED, KestraState.WARNING, KestraState.PAUSED)


class SubflowOperator(KestraOperator, task_type=Subflow):
    """`io.kestra.plugin.core.flow.Subflow`: run the flow `<namespace>.<flowId>` and wait for its end.

    :param namespace: namespace of the flow to run.
    :param flowId: id of the flow to run; its DAG id is `<namespace>.<flowId>`.
    :param inputs: the run's inputs (its `conf`); the child DAG's Params check them.
    :param wait: wait for the run to end (default); otherwise succeed once it is created.
    :param transmitFailed: when waiting, end FAILED / WARNING when the child run does.

    Outputs: `executionId` (the child's run id) and, when waiting, `state` (its Kestra state) and
    `outputs` (the child flow's `outputs`, when it declares some and did not fail, as in Kestra:
    `outputs.<task>.outputs.<id>`) — also recorded when the task then fails, so `errors` tasks can
    read them.
    """

    ui_color = "#e3f2fd"

    @property
    def target_dag_id(self) -> str:
        """The DAG id of the flow to run (after rendering)."""
        return f"{self.namespace}.{self.flowId}"

    def run(self, context: Any) -> dict[str, Any] | None:  # noqa: D102
        target = self.target_dag_id
        if target == context["dag_run"].dag_id:
            raise TaskFailure(f"a Subflow cannot run its own flow `{target}`")
        if in_dag_test(context):
            raise TaskFailure(
                f"Subflow `{target}` needs Airflow's scheduler to run the other flow: `yaml2dag run` runs one "
                "flow in this process (dag.test()). Run both flows on Airflow (scripts/airflow-standalone.sh)"
            )
        run_id = self._trigger(context, target)
        outputs = {"executionId": run_id}
        if not self.wait:
            self.log.info("Started run %s of %s (wait: false)", run_id, target)
            return outputs
        from airflow.providers.standard.triggers.external_task import DagStateTrigger
        from airflow.utils.state import DagRunState

        context["ti"].xcom_push(key="return_value", value=outputs)
        self.log.info("Started run %s of %s; waiting for it to end", run_id, target)
        self.defer(
            trigger=DagStateTrigger(
                dag_id=target,
                states=[DagRunState.SUCCESS, DagRunState.FAILED],
                run_ids=[run_id],
                poll_interval=POLL_INTERVAL,
            ),
            method_name="resume_subflow",
        )
        return None

    def _trigger(self, context: Any, target: str) -> str:
        """Create the child run through the execution API; a clear failure when that is not possible."""
        from airflow.sdk.exceptions import AirflowRuntimeError
        from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        try:
            if context["ti"].get_dag(target).is_paused:
                raise TaskFailure(f"Subflow target `{target}` is paused in Airflow: unpause the DAG to run it")
        except AirflowRuntimeError as exc:
            raise TaskFailure(_not_found(target, exc)) from None
        run_id = f"subflow__{dt.datetime.now(dt.UTC).isoformat()}_{uuid.uuid4().hex[:8]}"
        try:
            answer = SUPERVISOR_COMMS.send(TriggerDagRun(dag_id=target, run_id=run_id, conf=dict(self.inputs or {})))
        except AirflowRuntimeError as exc:
            raise TaskFailure(f"Subflow `{target}`: the run could not be created: {exc}") from None
        if isinstance(answer, ErrorResponse):
            raise TaskFailure(f"Subflow `{target}`: the run could not be created: {answer.error} {answer.detail}")
        context["ti"].xcom_push(key="trigger_run_id", value=run_id)
        return run_id

    def resume_subflow(self, context: Any, event: Any = None) -> Any:
        """Called when the child run has ended: map its state onto this task (transmitFailed)."""
        return self.run_guarded(context, lambda: self._after_child(context, event))

    def _after_child(self, context: Any, event: Any) -> dict[str, Any]:
        run_id, airflow_state = _child_run(event)
        target = self.target_dag_id
        flow_state = context["ti"].xcom_pull(task_ids=STATE_TASK_ID, dag_id=target, run_id=run_id)
        if isinstance(flow_state, Mapping) and flow_state.get("state"):
            state = KestraState.read(str(flow_state["state"]))
        else:  # the run ended without its state task (e.g. marked failed): Kestra would say KILLED
            state = KestraState.SUCCESS if airflow_state == "success" else KestraState.FAILED
        outputs: dict[str, Any] = {"executionId": run_id, "state": state.value}
        if isinstance(flow_state, Mapping) and isinstance(flow_state.get("outputs"), Mapping):
            outputs["outputs"] = dict(flow_state["outputs"])
        context["ti"].xcom_push(key="return_value", value=outputs)
        self.log.info("Run %s of %s ended %s (Airflow: %s)", run_id, target, state, airflow_state)
        if not self.transmitFailed or state not in _TRANSMITTED:
            return outputs
        if state is KestraState.WARNING:
            end_warning(self, context, f"Subflow run {run_id} ended WARNING")
            return outputs
        raise TaskFailure(f"Subflow `{target}` run {run_id} ended {state}")


def _child_run(event: Any) -> tuple[str, str]:
    """The child's run id and Airflow state from a `DagStateTrigger` event `(classpath, data)`."""
    data = event[1] if isinstance(event, Sequence) and not isinstance(event, str) and len(event) == 2 else event
    if not isinstance(data, Mapping) or not data.get("run_ids"):
        raise TaskFailure(f"unexpected event while waiting for the Subflow run: {event!r}")
    run_id = str(data["run_ids"][0])
    return run_id, str(data.get(run_id, ""))


def _not_found(target: str, error: Exception) -> str:
    return (
        f"Subflow target `{target}` not found: no DAG `<namespace>.<flowId>` with this id is loaded "
        f"(is its flow file in the dags folder, without errors?) ({error})"
    )
