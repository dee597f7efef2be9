"""What Kestra's `*Execution` notification tasks say about a run: flow, state, failed task, link, duration.

Kestra's `ExecutionService.executionMap` feeds its templates: `execution` (namespace, flowId, id,
state), `link` (the execution's page), `duration`, `startDate`, `firstFailed` (a failed task run,
or false) and `lastTask`. Here the run is this DAG run (`executionId` = `{{ execution.id }}`, the
default) or the run that started this one through a Flow trigger (`{{ trigger.executionId }}`),
read from Airflow; the link points at the run's page in the Airflow UI.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.states import KestraState, is_internal, task_state


@dataclass(frozen=True)
class ExecutionSummary:
    """One run, as the notification templates describe it."""

    namespace: str
    flow_id: str
    execution_id: str
    state: str
    link: str
    start_date: dt.datetime | None = None
    duration: str | None = None
    #: Kestra ids of the tasks that failed, in id order.
    failed_tasks: tuple[str, ...] = ()
    #: Extra text and fields (`customMessage`, `customFields`).
    custom_message: str | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def first_failed(self) -> str | None:
        """The failed task the templates name (`firstFailed.taskId`), or None."""
        return self.failed_tasks[0] if self.failed_tasks else None

    def outcome(self) -> str:
        """`Succeeded` or `Failed on task `x``, then ` after <duration>` (Kestra's status line)."""
        text = f"Failed on task `{self.first_failed}`" if self.first_failed else "Succeeded"
        return f"{text} after {self.duration}" if self.duration else text

    def title(self) -> str:
        """`[namespace] flowId ➛ STATE`."""
        return f"[{self.namespace}] {self.flow_id} ➛ {self.state}"


def run_link(dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI (`[api] base_url`, else http://localhost:8080)."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{urllib.parse.quote(dag_id, safe='')}/runs/{urllib.parse.quote(run_id, safe='')}"


def human_duration(seconds: float) -> str:
    """A duration as `1h 2m 3.456s` / `3.456s`."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    parts = [f"{hours}h"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{rest:.3f}s")
    return " ".join(parts)


def describe_execution(
    execution_id: str,
    airflow_context: Mapping[str, Any],
    kestra_context: Mapping[str, Any],
    custom_message: str | None = None,
    custom_fields: Mapping[str, Any] | None = None,
) -> ExecutionSummary:
    """Describe this run, or the run that triggered it; any other id is refused with a clear error."""
    dag_run = airflow_context["dag_run"]
    task_instance = airflow_context["ti"]
    execution_id = str(execution_id).strip()
    trigger = kestra_context.get("trigger") or {}
    flow = kestra_context["flow"]
    if execution_id == dag_run.run_id:
        namespace, flow_id, dag_id = flow["namespace"], flow["id"], dag_run.dag_id
        # As in Kestra: this run has not ended while one of its tasks runs.
        state = KestraState.RUNNING.value
        start = dag_run.start_date
    elif isinstance(trigger, Mapping) and execution_id == trigger.get("executionId"):
        namespace, flow_id = str(trigger.get("namespace")), str(trigger.get("flowId"))
        dag_id = f"{namespace}.{flow_id}"
        state = str(trigger.get("state") or _dag_run_state(task_instance, dag_id, execution_id))
        start = None
    else:
        raise TaskFailure(
            f"executionId `{execution_id}` is neither this run nor the run that triggered this flow "
            "(`{{ trigger.executionId }}`): yaml2dag can describe only those"
        )
    failed = _failed_tasks(task_instance, dag_id, execution_id)
    duration = None
    if start is not None:
        duration = human_duration((dt.datetime.now(dt.UTC) - start).total_seconds())
    return ExecutionSummary(
        namespace=namespace,
        flow_id=flow_id,
        execution_id=execution_id,
        state=state,
        link=run_link(dag_id, execution_id),
        start_date=start,
        duration=duration,
        failed_tasks=failed,
        custom_message=custom_message,
        custom_fields=dict(custom_fields or {}),
    )


def _failed_tasks(task_instance: Any, dag_id: str, run_id: str) -> tuple[str, ...]:
    """Kestra ids of the run's failed tasks (a flowable by its end task; internal tasks left out)."""
    try:
        found = task_instance.get_task_states(dag_id=dag_id, run_ids=[run_id])
    except Exception as exc:  # noqa: BLE001 - the API's errors vary; the summary must say why it is missing
        raise TaskFailure(f"cannot read the task states of run `{run_id}` of DAG `{dag_id}`: {exc}") from None
    states = found.get(run_id, {}) if isinstance(found, Mapping) else {}
    failed = set()
    for airflow_id, airflow_state in states.items():
        # yaml2dag's own tasks and the flowables' start tasks are not Kestra task runs; a flowable's
        # state is its end task's.
        if is_internal(airflow_id) or airflow_id.endswith(".start"):
            continue
        kestra_id = airflow_id.removesuffix(".end")
        if task_state(str(airflow_state)) is KestraState.FAILED:
            failed.add(kestra_id)
    return tuple(sorted(failed))


def _dag_run_state(task_instance: Any, dag_id: str, run_id: str) -> str:
    """The Kestra state of another DAG run, from Airflow's (success → SUCCESS, failed → FAILED)."""
    try:
        state = str(task_instance.get_dagrun_state(dag_id=dag_id, run_id=run_id))
    except Exception:  # noqa: BLE001 - an unknown state is shown as such
        return "UNKNOWN"
    return {"success": "SUCCESS", "failed": "FAILED", "running": "RUNNING", "queued": "CREATED"}.get(
        state.rsplit(".", 1)[-1].lower(), state.upper()
    )
