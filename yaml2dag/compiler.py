"""Compile a validated `Flow` into an Airflow DAG with Kestra's execution semantics.

Structure of a compiled flow:

    main tasks (in order, `none_failed`: a skipped task does not stop the next)
      ├─▶ [errors]  first task `one_failed`, then one at a time (`none_skipped`)
      ├─▶ [finally] teardowns after main and errors (`all_done`), one at a time
      └─▶ _flow_state  teardown that fails the run exactly when a main task failed

Errors and finally are TaskGroups. Finally tasks are teardowns, so Airflow runs them even when
a user marks the run failed, and their failures do not decide the run's state, as in Kestra.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterable
from typing import Any

from yaml2dag.inputs import build_params
from yaml2dag.model import Flow
from yaml2dag.operators.context import FlowInfo
from yaml2dag.retries import retry_arguments
from yaml2dag.tasktypes import TaskBase
from yaml2dag.tasktypes.base import parse_duration
from yaml2dag.triggers import build_timetable

#: A fixed start date: runs are triggered or scheduled from now on, never back-filled.
START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
_TAG_LIMIT = 100


def compile_flow(flow: Flow, source: str | None = None) -> Any:
    """Build the Airflow DAG for `flow`; `source` (the file path) is shown in the DAG docs."""
    from airflow.sdk import DAG, TaskGroup

    info = FlowInfo(
        id=flow.id,
        namespace=flow.namespace,
        task_ids=frozenset(task.id for task in flow.all_tasks()),
        variables=flow.variables,
        labels=flow.labels,
        input_ids=tuple(item.id for item in flow.inputs),
        revision=flow.revision or 1,
    )
    dag = DAG(
        dag_id=flow.dag_id,
        description=_summary(flow.description),
        doc_md=_doc(flow, source),
        schedule=build_timetable(flow),
        start_date=START_DATE,
        catchup=False,
        tags=_tags(flow),
        params=build_params(flow.inputs),
        max_active_runs=flow.concurrency.limit if flow.concurrency else None,
        auto_register=False,
    )
    taken = set(info.task_ids)
    with dag:
        main = [_operator(task, info) for task in _enabled(flow.tasks)]
        for previous, task in zip(main, main[1:], strict=False):
            task.trigger_rule = "none_failed"
            previous >> task
        errors = []
        if main and _enabled(flow.errors):
            with TaskGroup(_free_id("errors", taken), prefix_group_id=False, tooltip="Kestra `errors`"):
                errors = [_operator(task, info) for task in _enabled(flow.errors)]
            _sequence(errors, first_rule="one_failed", upstream=main[-1:])
        finals = []
        if _enabled(flow.finally_):
            with TaskGroup(_free_id("finally", taken), prefix_group_id=False, tooltip="Kestra `finally`"):
                finals = [_operator(task, info).as_teardown() for task in _enabled(flow.finally_)]
            _sequence(finals, first_rule=None, upstream=[*main[-1:], *errors[-1:]])
        if main:
            _state_task(main)
    return dag


def _enabled(tasks: Iterable[TaskBase]) -> list[TaskBase]:
    # Kestra removes disabled tasks entirely: no task run, not even a skipped one.
    return [task for task in tasks if not task.disabled]


def _sequence(tasks: list[Any], first_rule: str | None, upstream: list[Any]) -> None:
    """Chain a block so its tasks run one at a time and a failure does not stop the next."""
    if not tasks:
        return
    if first_rule:
        tasks[0].trigger_rule = first_rule
    for task in upstream:
        task >> tasks[0]
    for previous, task in zip(tasks, tasks[1:], strict=False):
        if first_rule:
            task.trigger_rule = "none_skipped"
        previous >> task


def _state_task(main: list[Any]) -> None:
    from yaml2dag.operators.state import STATE_TASK_ID, FlowStateOperator

    state = FlowStateOperator(
        task_id=STATE_TASK_ID,
        main_task_ids=[task.task_id for task in main],
        doc_md="Fails when a main task failed, so the run ends in the flow's Kestra state.",
    ).as_teardown(on_failure_fail_dagrun=True)
    main[-1] >> state


def _operator(task: TaskBase, info: FlowInfo) -> Any:
    module_name, class_name = task.OPERATOR.split(":")
    operator_class = getattr(importlib.import_module(module_name), class_name)
    arguments: dict[str, Any] = {
        "task_id": task.id,
        "flow": info,
        "kestra_type": task.type,
        "run_if": task.runIf,
        "allow_failure": task.allowFailure,
        "allow_warning": task.allowWarning,
        "doc_md": task.description,
        **task.operator_arguments(),
    }
    if task.timeout:
        arguments["execution_timeout"] = parse_duration(task.timeout)
    if task.retry:
        arguments.update(retry_arguments(task.retry))
    return operator_class(**arguments)


def _free_id(base: str, taken: set[str]) -> str:
    """A group id that no task uses (group and task ids share one namespace in Airflow)."""
    candidate = base
    while candidate in taken:
        candidate += "_"
    taken.add(candidate)
    return candidate


def _summary(description: str | None) -> str | None:
    if not description:
        return None
    first_line = description.strip().splitlines()[0]
    return first_line[:200]


def _doc(flow: Flow, source: str | None) -> str:
    parts = [f"**Kestra flow** `{flow.namespace}` / `{flow.id}`"]
    if source:
        parts.append(f"Source: `{source}`")
    if flow.description:
        parts.append(flow.description)
    return "\n\n".join(parts)


def _tags(flow: Flow) -> list[str]:
    tags = [flow.namespace, *(f"{key}:{value}" for key, value in flow.labels.items())]
    return [tag[:_TAG_LIMIT] for tag in tags]
