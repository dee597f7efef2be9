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
import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from yaml2dag.inputs import build_params, input_fields
from yaml2dag.model import Flow
from yaml2dag.operators.context import FlowInfo
from yaml2dag.retries import retry_arguments
from yaml2dag.tasktypes import TaskBase
from yaml2dag.tasktypes.base import Retry
from yaml2dag.tasktypes.flowable import (
    AllowFailure,
    Dag,
    FlowableBase,
    ForEach,
    If,
    Parallel,
    Switch,
    end_task_id,
    start_task_id,
)
from yaml2dag.triggers import build_schedule, has_cron_schedule

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
        flowable_ids=frozenset(task.id for task in flow.all_tasks() if isinstance(task, FlowableBase)),
        loop_of=flow.loop_members(),
        variables=flow.variables,
        labels=flow.labels,
        **input_fields(flow),
        revision=flow.revision or 1,
    )
    limits = configured_dag_defaults()
    if flow.concurrency:
        limits = {**limits, "max_active_runs": flow.concurrency.limit}
    dag = DAG(
        dag_id=flow.dag_id,
        description=_summary(flow.description),
        doc_md=_doc(flow, source),
        schedule=build_schedule(flow),
        # No start date under a cron: the first run is the next fire time, never a past one (Kestra).
        start_date=None if has_cron_schedule(flow) else START_DATE,
        catchup=False,
        tags=_tags(flow),
        params=build_params(flow.inputs),
        auto_register=False,
        **limits,
    )
    with dag:
        graph = _GraphBuilder(info, dag, flow.retry)
        main = graph.chain(_enabled(flow.tasks))
        main_exits = [node.exit for node in main]
        errors = []
        if main and _enabled(flow.errors):
            with TaskGroup(graph.free_id("errors"), prefix_group_id=False, tooltip="Kestra `errors`"):
                errors = [graph.operator(task) for task in _enabled(flow.errors)]
            _sequence(errors, first_rule="one_failed", upstream=main_exits[-1:])
            errors[0].errors_of = [task.task_id for task in main_exits]
        finals = []
        if _enabled(flow.finally_):
            with TaskGroup(graph.free_id("finally"), prefix_group_id=False, tooltip="Kestra `finally`"):
                finals = [graph.operator(task).as_teardown() for task in _enabled(flow.finally_)]
            _sequence(finals, first_rule=None, upstream=[*main_exits[-1:], *errors[-1:]])
        if main:
            _state_task(main_exits)
    return dag


def _enabled(tasks: Iterable[TaskBase]) -> list[TaskBase]:
    # Kestra removes disabled tasks entirely: no task run, not even a skipped one.
    return [task for task in tasks if not task.disabled]


@dataclass
class _Node:
    """A compiled task or flowable: the tasks where the graph enters it, and the task holding its state."""

    entries: list[Any]
    exit: Any


class _GraphBuilder:
    """Builds operators and task groups for task lists, nesting flowables as TaskGroups named after them."""

    def __init__(self, info: FlowInfo, dag: Any, retry: Retry | None = None) -> None:
        self.info = info
        self.dag = dag
        self.taken = set(info.task_ids)
        self.loop: str | None = None
        self.loop_limit = 0
        #: The retry of the nearest flowable that has one, else the flow's: tasks without their own use it.
        self.retry = retry

    def free_id(self, base: str) -> str:
        """A group id that no task or group uses (they share one namespace in Airflow)."""
        return _free_id(base, self.taken)

    def operator(self, task: TaskBase) -> Any:
        """The operator of a plain task (inside a ForEach, mapped with the loop's values)."""
        extra: dict[str, Any] = {}
        if self.loop is not None:
            extra["loop_task_id"] = start_task_id(self.loop)
            limit = self.loop_limit
            if limit:
                extra["max_active_tis_per_dagrun"] = limit
        return _operator(task, self.info, inherited_retry=self.retry, **extra)

    def node(self, task: TaskBase) -> _Node:
        """Compile one task of a list: an operator, or a TaskGroup for a flowable."""
        if isinstance(task, FlowableBase):
            return self.flowable(task)
        operator = self.operator(task)
        return _Node([operator], operator)

    def chain(self, tasks: list[TaskBase], upstream: Any = None) -> list[_Node]:
        """Nodes run one after the other; a skipped one does not stop the next, a failed one does."""
        nodes = [self.node(task) for task in tasks]
        previous = upstream
        for node in nodes:
            if previous is not None:
                _link(previous, node)
            previous = node.exit
        return nodes

    def flowable(self, task: FlowableBase) -> _Node:
        """A TaskGroup: `<id>.start` (setup), the children, local errors and finally, then `<id>.end`."""
        inherited, self.retry = self.retry, task.retry or self.retry
        try:
            return self._flowable(task)
        finally:
            self.retry = inherited

    def _flowable(self, task: FlowableBase) -> _Node:
        from airflow.sdk import TaskGroup

        with TaskGroup(task.id, prefix_group_id=False, tooltip=f"Kestra {task.type.rsplit('.', 1)[-1]} `{task.id}`"):
            before = set(self.dag.task_dict)
            start = self._start(task)
            children, leaves = self._children(task, start)
            exits = [node.exit for node in children]
            errors = self._local_block(task, "errors", upstream=leaves, errors_of=exits) if leaves else []
            finals = self._local_block(task, "finally", upstream=[*leaves, *errors[-1:]], start=start)
            # Not a teardown: Airflow would then count the children before it as the run's leaves.
            end = _flowable_end(task, exits, self.info)
            for upstream in [*leaves, *errors[-1:], *finals[-1:]] or [start]:
                upstream >> end
            if not leaves and not finals:
                end.trigger_rule = "all_success"  # right after the start (a setup): Airflow's rule
            start.inner_task_ids = sorted(set(self.dag.task_dict) - before - {start.task_id})
        return _Node([start], end)

    def _start(self, task: FlowableBase) -> Any:
        if isinstance(task, If | Switch | ForEach) or task.runIf is not None:
            operator = self.operator(task)
        else:
            from airflow.providers.standard.operators.empty import EmptyOperator

            operator = EmptyOperator(task_id=start_task_id(task.id), doc_md=f"Start of `{task.id}`")
        return operator.as_setup()

    def _children(self, task: FlowableBase, start: Any) -> tuple[list[_Node], list[Any]]:
        """Compile the children; return them and the tasks the flowable's end waits for."""
        if isinstance(task, Parallel):
            nodes = [self.node(child) for child in _enabled(task.tasks)]
            lanes = task.concurrent or len(nodes)
            for index, node in enumerate(nodes):
                _link(start if index < lanes else nodes[index - lanes].exit, node)
            return nodes, [node.exit for node in nodes[-lanes:]] if nodes else []
        if isinstance(task, Dag):
            return self._dag(task, start)
        if isinstance(task, ForEach):
            return self._loop(task, start)
        nodes: list[_Node] = []
        leaves: list[Any] = []
        branches = {}
        for name, tasks in task.child_lists():
            chain = self.chain(_enabled(tasks), upstream=start)
            branches[name] = sorted({t for node in chain for t in _ids_of(node)})
            nodes += chain
            leaves += [chain[-1].exit] if chain else []
        if isinstance(task, If | Switch):
            start.branches = branches
        return nodes, leaves

    def _dag(self, task: Dag, start: Any) -> tuple[list[_Node], list[Any]]:
        enabled = [item for item in task.tasks if not item.task.disabled]
        nodes = {item.task.id: self.node(item.task) for item in enabled}
        depended_on = set()
        for item in enabled:
            dependencies = [nodes[name] for name in item.dependsOn if name in nodes]
            depended_on.update(item.dependsOn)
            for dependency in dependencies or [None]:
                _link(start if dependency is None else dependency.exit, nodes[item.task.id])
        leaves = [node.exit for name, node in nodes.items() if name not in depended_on]
        return list(nodes.values()), leaves

    def _loop(self, task: ForEach, start: Any) -> tuple[list[_Node], list[Any]]:
        from airflow.sdk import task_group

        built: list[list[_Node]] = []

        @task_group(group_id=self.free_id(f"{task.id}_each"), prefix_group_id=False, tooltip="One run per value")
        def body(value: Any) -> None:
            built.append(self.chain(_enabled(task.tasks)))

        self.loop, self.loop_limit = task.id, task.concurrencyLimit
        try:
            group = body.expand(value=start.output)
        finally:
            self.loop = None
        nodes = built[0]
        start >> group
        return nodes, [nodes[-1].exit] if nodes else []

    def _local_block(self, task: FlowableBase, block: str, upstream: list[Any], **gate: Any) -> list[Any]:
        """A flowable's own errors or finally: one at a time, after its children."""
        from airflow.sdk import TaskGroup

        tasks = _enabled(task.errors if block == "errors" else task.finally_)
        if not tasks:
            return []
        with TaskGroup(self.free_id(f"{task.id}_{block}"), prefix_group_id=False, tooltip=f"`{block}` of `{task.id}`"):
            operators = [self.operator(child) for child in tasks]
        if block == "errors":
            _sequence(operators, first_rule="one_failed", upstream=upstream)
            operators[0].errors_of = [t.task_id for t in gate["errors_of"]]
        else:
            # Teardowns of the flowable's start: they run once it started, whatever happened since.
            operators = [operator.as_teardown(setups=gate["start"]) for operator in operators]
            _sequence(operators, first_rule=None, upstream=upstream)
        return operators


def _link(upstream: Any, node: _Node) -> None:
    """Run `node` after `upstream`: unless it failed (a skipped task does not stop the next)."""
    for entry in node.entries:
        # Airflow wants ALL_SUCCESS after a setup; a flowable's start never ends skipped, so it is the same.
        entry.trigger_rule = "all_success" if upstream.is_setup else "none_failed"
        upstream >> entry


def _ids_of(node: _Node) -> set[str]:
    """Every Airflow task id inside a node (for a flowable: its start, end and everything between)."""
    start, end = node.entries[0], node.exit
    if start is end:
        return {start.task_id}
    return {start.task_id, end.task_id, *getattr(start, "inner_task_ids", [])}


def _flowable_end(task: FlowableBase, child_exits: list[Any], info: FlowInfo) -> Any:
    from yaml2dag.operators.flowable import FlowableEndOperator

    return FlowableEndOperator(
        task_id=end_task_id(task.id),
        flowable_id=task.id,
        child_task_ids=[child.task_id for child in child_exits],
        allow_failure=task.allowFailure or isinstance(task, AllowFailure),
        allow_warning=task.allowWarning,
        trigger_rule="all_done",
        doc_md=f"End of `{task.id}`: its Kestra state, from its children's states",
    )


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


def _state_task(main: list[Any], info: FlowInfo | None = None) -> None:
    """`_flow_state` (fails the run when Kestra would end FAILED), then `_flow_event` (the end-state asset)."""
    from yaml2dag.operators.state import EVENT_TASK_ID, STATE_TASK_ID, FlowEventOperator, FlowStateOperator

    if info is None:
        info = next(task.flow for task in main[-1].dag.tasks if isinstance(getattr(task, "flow", None), FlowInfo))
    state = FlowStateOperator(
        task_id=STATE_TASK_ID,
        main_task_ids=[task.task_id for task in main],
        doc_md="Fails when a main task failed, so the run ends in the flow's Kestra state.",
    ).as_teardown(on_failure_fail_dagrun=True)
    main[-1] >> state
    event = FlowEventOperator(
        task_id=EVENT_TASK_ID,
        namespace=info.namespace,
        flow_id=info.id,
        revision=info.revision,
        doc_md="Emits the asset event of the flow's final state, for the flows it triggers (Flow triggers).",
    ).as_teardown()
    state >> event


def _operator(task: TaskBase, info: FlowInfo, inherited_retry: Retry | None = None, **extra: Any) -> Any:
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
        **extra,
    }
    if isinstance(task, FlowableBase):
        # A flowable's timeout and retry concern its children, not the task that starts it.
        return operator_class(**arguments)
    arguments.update(task.timeout_arguments())
    arguments.update(retry_arguments(task, inherited_retry))
    return operator_class(**arguments)


@functools.cache
def configured_dag_defaults() -> dict[str, Any]:
    """The DAG arguments Airflow would read from its configuration, read once per process.

    A DAG looks them up on every construction (four lookups, about 10 µs each, of a flow's
    700 µs); a DAG processor or worker keeps its configuration while it runs.
    """
    from airflow.sdk.configuration import conf

    return {
        "max_active_tasks": conf.getint("core", "max_active_tasks_per_dag"),
        "max_active_runs": conf.getint("core", "max_active_runs_per_dag"),
        "max_consecutive_failed_dag_runs": conf.getint("core", "max_consecutive_failed_dag_runs_per_dag"),
        "disable_bundle_versioning": conf.getboolean("dag_processor", "disable_bundle_versioning"),
    }


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
