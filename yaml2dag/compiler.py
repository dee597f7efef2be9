"""Emit a planned flow as an Airflow DAG: the one module that turns the plan into Airflow objects.

`yaml2dag.plan` decides the DAG's structure (tasks, arguments, groups, edges, trigger rules,
setup/teardown roles) without Airflow; this module builds the `DAG`, its TaskGroups and
operators from it, in the plan's order, each operator with all its arguments at construction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
from typing import TYPE_CHECKING, Any

from yaml2dag.inputs import build_params_of, input_fields
from yaml2dag.model import Flow
from yaml2dag.operators.context import FlowInfo
from yaml2dag.plan import DagLayout, DagPlan, PlannedGroup, PlannedTask, plan_flow
from yaml2dag.retries import retry_arguments_of
from yaml2dag.tasktypes.execution import Labels
from yaml2dag.tasktypes.flowable import FlowableBase
from yaml2dag.triggers import build_schedule

if TYPE_CHECKING:
    from airflow.sdk import DAG, BaseOperator

#: A fixed start date: runs are triggered or scheduled from now on, never back-filled.
START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def compile_flow(flow: Flow, source: str | None = None) -> DAG:
    """Build the Airflow DAG for `flow`; `source` (the file path) is shown in the DAG docs.

    The child DAGs of its nested ForEach are built too: `child_dags(dag)` gives them.
    """
    plan = plan_flow(flow, source)
    dag, children = _compile_plan(plan, flow_info(flow))
    _CHILDREN[dag.dag_id] = children
    return dag


def child_dags(dag: DAG) -> list[DAG]:
    """The child DAGs compiled with `dag` (one per ForEach nested in a ForEach body, at any depth)."""
    return list(_CHILDREN.get(dag.dag_id, ()))


#: Root DAG id → its child DAGs, as last compiled in this process (a DAG file defines them all).
_CHILDREN: dict[str, list[DAG]] = {}


def _compile_plan(plan: DagPlan, info: FlowInfo) -> tuple[DAG, list[DAG]]:
    """The DAG of a plan and the DAGs of its children (at any depth), each with the FlowInfo of its layout."""
    from yaml2dag.operators.loops import register_child_dag

    info = _laid_out(info, plan.layout)
    child_infos = {
        child.dag_id: _laid_out(dataclasses.replace(info, ancestors=(*info.ancestors, _layout_of(info))), child.layout)
        for child in plan.children
    }
    with build_dag(plan) as dag:
        _Emitter(plan, info, child_infos).emit()
    children: list[DAG] = []
    for child in plan.children:
        child_dag, below = _compile_plan(child, child_infos[child.dag_id])
        register_child_dag(child_dag)
        children += [child_dag, *below]
    return dag, children


def _laid_out(info: FlowInfo, layout: DagLayout | None) -> FlowInfo:
    if layout is None:
        return info
    return dataclasses.replace(
        info,
        task_ids=layout.task_ids,
        flowable_ids=layout.flowable_ids,
        loop_of=layout.loop_of,
        carried_by=layout.carried_by,
    )


def _layout_of(info: FlowInfo) -> DagLayout:
    return DagLayout(info.task_ids, info.flowable_ids, info.loop_of, info.carried_by)


def build_dag(plan: DagPlan) -> DAG:
    """The DAG object of a plan, without its tasks."""
    from airflow.sdk import DAG

    limits = configured_dag_defaults()
    if plan.max_active_runs is not None:
        limits = {**limits, "max_active_runs": plan.max_active_runs}
    return DAG(
        dag_id=plan.dag_id,
        description=plan.description,
        doc_md=plan.doc_md,
        schedule=build_schedule(plan.schedule),
        # No start date under a cron: the first run is the next fire time, never a past one (Kestra).
        start_date=None if plan.schedule and plan.schedule.crons else START_DATE,
        catchup=False,
        tags=list(plan.tags),
        params=build_params_of(plan.params),
        auto_register=False,
        **limits,
    )


def flow_info(flow: Flow) -> FlowInfo:
    """What every task of the compiled flow knows about its flow at run time."""
    return FlowInfo(
        id=flow.id,
        namespace=flow.namespace,
        task_ids=frozenset(task.id for task in flow.all_tasks()),
        flowable_ids=frozenset(task.id for task in flow.all_tasks() if isinstance(task, FlowableBase)),
        loop_of=flow.loop_members(),
        after_execution_ids=frozenset(
            nested.id
            for task in flow.afterExecution
            for nested in [task, *(task.nested_tasks() if isinstance(task, FlowableBase) else ())]
        ),
        labels_task_ids=tuple(task.id for task in flow.all_tasks() if isinstance(task, Labels)),
        variables=flow.variables,
        labels=flow.labels,
        **input_fields(flow),
        revision=flow.revision or 1,
    )


class _Emitter:
    """Builds the plan's groups and operators inside the current DAG, then their edges."""

    def __init__(self, plan: DagPlan, info: FlowInfo, child_infos: dict[str, FlowInfo] | None = None) -> None:
        self.plan = plan
        self.info = info
        #: Child DAG id → the FlowInfo of its tasks (for the tasks running a nested ForEach).
        self.child_infos = child_infos or {}
        self.operators: dict[str, BaseOperator] = {}
        self.mapped: dict[str, Any] = {}
        self.linked: set[str] = set()

    def emit(self) -> None:
        self.members(self.plan.members)
        for task in self.plan.tasks.values():
            if task.task_id not in self.linked:
                self.edges(task)
        for group_id, group in self.mapped.items():
            self.operators[self.plan.groups[group_id].expand_over or ""] >> group

    def members(self, member_ids: tuple[str, ...]) -> None:
        for member in member_ids:
            if member in self.plan.groups:
                self.group(self.plan.groups[member])
            else:
                self.operators[member] = self.operator(self.plan.tasks[member])

    def group(self, group: PlannedGroup) -> None:
        from airflow.sdk import TaskGroup, task_group

        if group.expand_over is None:
            with TaskGroup(group.group_id, prefix_group_id=False, tooltip=group.tooltip):
                self.members(group.members)
            return

        @task_group(group_id=group.group_id, prefix_group_id=False, tooltip=group.tooltip)
        def body(value: Any) -> None:
            self.members(group.members)
            # Edges inside the body first: expanding links the task holding the values to the body's roots.
            for task_id in self.tasks_in(group):
                self.edges(self.plan.tasks[task_id])

        self.mapped[group.group_id] = body.expand(value=self.operators[group.expand_over].output)

    def tasks_in(self, group: PlannedGroup) -> list[str]:
        """The ids of the tasks in a group, nested groups included."""
        found: list[str] = []
        for member in group.members:
            found += self.tasks_in(self.plan.groups[member]) if member in self.plan.groups else [member]
        return found

    def operator(self, task: PlannedTask) -> BaseOperator:
        module_name, class_name = task.operator.split(":")
        operator_class = getattr(importlib.import_module(module_name), class_name)
        arguments = dict(task.arguments)
        if task.takes_flow:
            arguments["flow"] = self.info
        if "child_dag_id" in arguments:
            arguments["child_flow"] = self.child_infos[arguments["child_dag_id"]]
        if task.retry is not None:
            arguments.update(retry_arguments_of(task.retry))
        if task.role != "teardown" and task.trigger_rule != "all_success":
            arguments["trigger_rule"] = task.trigger_rule
        operator: BaseOperator = operator_class(task_id=task.task_id, **arguments)
        if task.role == "setup":
            operator.as_setup()
        elif task.role == "teardown":
            setups = [self.operators[setup] for setup in task.setups] or None
            operator.as_teardown(setups=setups, on_failure_fail_dagrun=True if task.fails_run else None)
        return operator

    def edges(self, task: PlannedTask) -> None:
        self.linked.add(task.task_id)
        operator = self.operators[task.task_id]
        for upstream in task.upstream:
            if upstream == self._expanded_over(task):
                continue  # the mapped group as a whole runs after the task holding its values
            self.operators[upstream] >> operator

    def _expanded_over(self, task: PlannedTask) -> str | None:
        group = self.plan.groups.get(task.group or "")
        return group.expand_over if group is not None else None


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
