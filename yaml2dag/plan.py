"""Plan a validated flow as a DAG: a small frozen description, built without Airflow.

The plan says everything the DAG is made of — each task with its operator (`module:Class`) and
keyword arguments, the TaskGroup it sits in, the tasks it runs after, its trigger rule and its
setup/teardown role — and nothing is changed once planned. `yaml2dag.compiler` turns a plan into
Airflow objects; `yaml2dag compile` prints it.

Structure of a planned flow:

    [_trigger_check]  first, when a Flow trigger needs a run-start check (skips the whole run)
    main tasks (in order, `none_failed`: a skipped task does not stop the next)
      ├─▶ [errors]  first task `one_failed`, then one at a time (`none_skipped`)
      ├─▶ [finally] teardowns after main and errors (`all_done`), one at a time
      ├─▶ _flow_state  teardown that fails the run exactly when a main task failed
      └─▶ _flow_event  teardown emitting the end-state asset event (Flow triggers); after
                       `_flow_state` when the flow has `outputs` (their rendering may fail it)

A ForEach inside another ForEach's body (Airflow cannot nest dynamic task mapping) is a child
DAG `<dag id>__<foreach id>` planned the same way (`DagPlan.children`): in its parent's body one
mapped task of the ForEach's id starts a run of the child DAG per iteration and waits for it.

Flowables are TaskGroups named after them: `<id>.start` (a setup: condition, values, `runIf`),
the children, the flowable's own errors and finally, then `<id>.end` (its Kestra state), the
start's teardown, so that the scope of the start ends with the flowable. Flowables nest anywhere,
in `errors` and `finally` too; inside a `finally` block every task is a teardown (none changes
the run's state, as in Kestra).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from yaml2dag.errors import FlowError, FlowValidationError
from yaml2dag.inputs import ParamSpec, param_specs
from yaml2dag.polling import stop_after
from yaml2dag.states import EVENT_TASK_ID, INTERNAL_DOC, STATE_TASK_ID, end_task_id, start_task_id
from yaml2dag.tasktypes.flowable import (
    AllowFailure,
    Dag,
    EachParallel,
    Exit,
    FlowableBase,
    ForEach,
    If,
    LoopUntil,
    Parallel,
    Switch,
)
from yaml2dag.triggers import TRIGGER_CHECK_TASK_ID, ScheduleSpec, needs_check, schedule_spec, trigger_check_specs

if TYPE_CHECKING:
    from yaml2dag.model import Flow
    from yaml2dag.tasktypes.base import Retry, TaskBase

Role = Literal["task", "setup", "teardown"]

_FLOWABLE_OPERATORS = "yaml2dag.operators.flowable"
_LOOP_OPERATORS = "yaml2dag.operators.loops"
_GATE_OPERATOR = f"{_FLOWABLE_OPERATORS}:FlowableGateOperator"
_STATE_OPERATORS = "yaml2dag.operators.state"
_TAG_LIMIT = 100


@dataclass(frozen=True)
class PlannedTask:
    """One Airflow task: its operator, arguments, place in the graph and role."""

    task_id: str
    #: `module:Class` of the operator, imported only when the plan is emitted.
    operator: str
    #: Keyword arguments of the operator (besides task_id, trigger rule and the flow's `FlowInfo`).
    arguments: Mapping[str, Any]
    trigger_rule: str
    upstream: tuple[str, ...] = ()
    group: str | None = None
    role: Role = "task"
    #: For a teardown: the setup tasks it tears down (a flowable's start).
    setups: tuple[str, ...] = ()
    #: The Kestra task it runs (None for the tasks yaml2dag adds: flowable ends, state, event).
    kestra_id: str | None = None
    #: Whether the operator takes the flow's `FlowInfo` (every operator running a Kestra task does).
    takes_flow: bool = True
    #: The retry that applies (the task's own, else the nearest flowable's, else the flow's).
    retry: Retry | None = None
    #: A failure of this teardown fails the run (`_flow_state`).
    fails_run: bool = False


@dataclass(frozen=True)
class PlannedGroup:
    """A TaskGroup: errors, finally, a flowable, or the body of a ForEach (mapped over its values)."""

    group_id: str
    tooltip: str
    #: Ids of the tasks and groups in it, in creation order.
    members: tuple[str, ...]
    #: For a ForEach body: the task whose output (the values) the group is mapped over.
    expand_over: str | None = None


@dataclass(frozen=True)
class DagLayout:
    """Where the Kestra tasks of one DAG of a flow live, for reading their outputs and states."""

    #: Kestra ids of the tasks run by this DAG (flowables included).
    task_ids: frozenset[str] = frozenset()
    #: Ids of the flowables among them (state in `<id>.end`, outputs in `<id>.start`).
    flowable_ids: frozenset[str] = frozenset()
    #: Task id → id of the ForEach (mapped in this DAG) whose body it is in.
    loop_of: Mapping[str, str] = field(default_factory=dict)
    #: Task id → the task of this DAG running the child DAG that holds it (a nested ForEach).
    carried_by: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DagPlan:
    """Everything a compiled flow's DAG is made of, as plain data."""

    dag_id: str
    #: Ids of the top-level tasks and groups, in creation order.
    members: tuple[str, ...]
    tasks: Mapping[str, PlannedTask]
    groups: Mapping[str, PlannedGroup]
    #: The DAG list's one-line description, and the DAG docs (markdown).
    description: str | None = None
    doc_md: str = ""
    tags: tuple[str, ...] = ()
    #: Runs at once (`concurrency.limit`); None: Airflow's configured default.
    max_active_runs: int | None = None
    schedule: ScheduleSpec | None = None
    #: The inputs as the trigger form's Params.
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    #: Where the flow's tasks live in this DAG (None: every task is here, as the flow says).
    layout: DagLayout | None = None
    #: The child DAGs of the ForEach nested in a ForEach body, each with its own children.
    children: tuple[DagPlan, ...] = ()

    def group_of(self, member: str) -> str | None:
        """The id of the group holding a task or group (None: the DAG's root)."""
        return next((group.group_id for group in self.groups.values() if member in group.members), None)


def plan_flow(flow: Flow, source: str | None = None) -> DagPlan:
    """Plan the DAG of a validated flow (pure: no Airflow import, the same result every call).

    `source`, the flow file's path, is named in the DAG docs.
    """
    planner = _Planner(flow)
    return planner.plan(
        description=_summary(flow.description),
        doc_md=_doc(flow, source),
        tags=_tags(flow),
        max_active_runs=flow.concurrency.limit if flow.concurrency else None,
        schedule=schedule_spec(flow),
        params=param_specs(flow.inputs),
    )


def child_dag_id(parent_dag_id: str, loop_id: str) -> str:
    """The DAG id of the child DAG running the iterations of a nested ForEach."""
    return f"{parent_dag_id}__{loop_id}"


def all_plans(plan: DagPlan) -> list[DagPlan]:
    """The plan and its child plans at any depth, parents first."""
    return [plan, *(found for child in plan.children for found in all_plans(child))]


@dataclass
class _Node:
    """A planned task or flowable: where the graph enters it, and the task holding its state."""

    entry: str
    exit: str
    #: Every task id inside (a flowable's start, end and everything between).
    inside: frozenset[str] = frozenset()


@dataclass
class _Scope:
    """Where tasks being planned go: their group, the retry they inherit, the ForEach they loop in."""

    group: str | None = None
    retry: Retry | None = None
    loop: str | None = None
    loop_limit: int = 0
    #: The mapped group of that ForEach (its direct children are planned in it).
    loop_group: str | None = None
    #: The WorkingDirectory whose folder the tasks share (its id), if any.
    working_directory: str | None = None
    #: Inside a `finally` block: every task is a teardown, so none changes the run's state.
    teardown: bool = False


@dataclass
class _Draft:
    """A task being planned: filled in while its neighbours are planned, frozen at the end."""

    task_id: str
    operator: str
    arguments: dict[str, Any]
    trigger_rule: str = "all_success"
    upstream: list[str] = field(default_factory=list)
    group: str | None = None
    role: Role = "task"
    setups: tuple[str, ...] = ()
    kestra_id: str | None = None
    takes_flow: bool = True
    retry: Retry | None = None
    fails_run: bool = False

    def freeze(self) -> PlannedTask:
        return PlannedTask(
            task_id=self.task_id,
            operator=self.operator,
            arguments=dict(self.arguments),
            # Airflow gives every teardown this rule (whatever the chain it sits in asked for).
            trigger_rule="all_done_setup_success" if self.role == "teardown" else self.trigger_rule,
            upstream=tuple(dict.fromkeys(self.upstream)),
            group=self.group,
            role=self.role,
            setups=self.setups,
            kestra_id=self.kestra_id,
            takes_flow=self.takes_flow,
            retry=self.retry,
            fails_run=self.fails_run,
        )


class _Planner:
    """Walks the flow's task lists once, drafting tasks and groups in creation order."""

    def __init__(self, flow: Flow, dag_id: str | None = None) -> None:
        self.flow = flow
        self.dag_id = dag_id or flow.dag_id
        self.taken = {task.id for task in flow.all_tasks()}
        self.drafts: dict[str, _Draft] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.root: list[str] = []
        self.scope = _Scope(retry=flow.retry)
        #: Flowables whose start must be a Kestra task (the first task of an errors block).
        self.kestra_starts: set[str] = set()
        #: The flowables being planned, outermost first (an Exit names their ends).
        self.enclosing: list[str] = []
        #: Kestra id → the ForEach it loops in, for every task planned in this DAG.
        self.placed: dict[str, str | None] = {}
        #: Task id → the task running the child DAG holding it; and the child plans.
        self.carried: dict[str, str] = {}
        self.carriers: set[str] = set()
        self.child_plans: list[DagPlan] = []

    def plan(self, **dag: Any) -> DagPlan:
        main = self.chain(_enabled(self.flow.tasks))
        main_exits = [node.exit for node in main]
        if main and needs_check(self.flow):
            self.trigger_check(main[0].entry)
        errors: list[_Node] = []
        if main and _enabled(self.flow.errors):
            errors = self.block(self.free_id("errors"), "Kestra `errors`", _enabled(self.flow.errors))
            self.sequence(errors, first_rule="one_failed", upstream=main_exits[-1:], scope_exits=main_exits)
        finals: list[_Node] = []
        if _enabled(self.flow.finally_):
            finals = self.block(
                self.free_id("finally"), "Kestra `finally`", _enabled(self.flow.finally_), teardown=True
            )
            self.teardowns(finals, upstream=[*main_exits[-1:], *(node.exit for node in errors[-1:])])
        if main:
            self.state_tasks(main_exits)
            if _enabled(self.flow.afterExecution):
                after = self.block(
                    self.free_id("afterExecution"),
                    "Kestra `afterExecution`",
                    _enabled(self.flow.afterExecution),
                    teardown=True,
                )
                # Once the execution ended: its state known, errors and finally done.
                ends = [STATE_TASK_ID, *(node.exit for node in errors[-1:]), *(node.exit for node in finals[-1:])]
                self.teardowns(after, upstream=ends)
        return self.frozen(**dag)

    def frozen(self, **dag: Any) -> DagPlan:
        """The plan of the tasks drafted so far."""
        flowables = {task.id for task in self.flow.all_tasks() if isinstance(task, FlowableBase)}
        layout = DagLayout(
            task_ids=frozenset(self.placed),
            # A nested ForEach is one task here (its child DAG holds its start and end).
            flowable_ids=frozenset(flowables & set(self.placed) - self.carriers),
            loop_of={task_id: loop for task_id, loop in self.placed.items() if loop is not None},
            carried_by=dict(self.carried),
        )
        return DagPlan(
            dag_id=self.dag_id,
            members=tuple(self.root),
            tasks={task_id: draft.freeze() for task_id, draft in self.drafts.items()},
            groups={
                group_id: PlannedGroup(group_id, group["tooltip"], tuple(group["members"]), group["expand_over"])
                for group_id, group in self.groups.items()
            },
            layout=layout if self.carriers or self.dag_id != self.flow.dag_id else None,
            children=tuple(self.child_plans),
            **dag,
        )

    def plan_child(self, loop: ForEach, retry: Retry | None, **dag: Any) -> DagPlan:
        """A child DAG: the ForEach `loop` (its values, its mapped body, its end), then `_flow_state`."""
        self.scope = _Scope(retry=retry)
        node = self.flowable(loop)
        self.state_tasks([node.exit], event=False)
        return self.frozen(**dag)

    def plan_iteration(self, loop: LoopUntil, retry: Retry | None, **dag: Any) -> DagPlan:
        """A LoopUntil's child DAG: its tasks one after the other (one iteration), then `_flow_state`."""
        self.scope = _Scope(retry=retry)
        nodes = self.chain(_enabled(loop.tasks))
        self.state_tasks([node.exit for node in nodes], event=False)
        return self.frozen(**dag)

    def after_execution_task_ids(self) -> set[str]:
        """Airflow ids of every task planned for `afterExecution` (they run even after an Exit)."""
        ids: set[str] = set()
        for task in _enabled(self.flow.afterExecution):
            inner = [task, *task.nested_tasks()] if isinstance(task, FlowableBase) else [task]
            for item in inner:
                flowable = isinstance(item, FlowableBase)
                ids.update({start_task_id(item.id), end_task_id(item.id)} if flowable else {item.id})
        return ids

    # --- ids, groups and drafts ------------------------------------------------------------------

    def free_id(self, base: str) -> str:
        """A group id that no task or group uses (they share one namespace in Airflow)."""
        candidate = base
        while candidate in self.taken:
            candidate += "_"
        self.taken.add(candidate)
        return candidate

    def add(self, draft: _Draft) -> _Draft:
        draft.group = self.scope.group
        if self.scope.teardown:
            draft.role = "teardown"
        if self.scope.loop is not None:
            draft.arguments["map_index_template"] = map_label_template(start_task_id(self.scope.loop))
        self.drafts[draft.task_id] = draft
        self._members().append(draft.task_id)
        return draft

    def _members(self) -> list[str]:
        return self.root if self.scope.group is None else self.groups[self.scope.group]["members"]

    def open_group(self, group_id: str, tooltip: str, expand_over: str | None = None) -> _Scope:
        """Start a group inside the current one; returns the scope to restore when it is done."""
        self._members().append(group_id)
        self.groups[group_id] = {"tooltip": tooltip, "members": [], "expand_over": expand_over}
        outer = self.scope
        self.scope = _Scope(
            group_id,
            outer.retry,
            outer.loop,
            outer.loop_limit,
            outer.loop_group,
            working_directory=outer.working_directory,
            teardown=outer.teardown,
        )
        return outer

    # --- tasks -----------------------------------------------------------------------------------

    def kestra_task(self, task: TaskBase, task_id: str | None = None, loop_child: bool | None = None) -> _Draft:
        """The draft of the operator running one Kestra task (a flowable: its start task).

        `loop_child`: whether it is a direct child of the ForEach it loops in (default: whether
        it is planned right in the ForEach's mapped group).
        """
        arguments: dict[str, Any] = {
            "kestra_type": task.type,
            "run_if": task.runIf,
            "allow_failure": task.allowFailure,
            "allow_warning": task.allowWarning,
            "doc_md": task.description,
            **task.operator_arguments(),
        }
        if self.scope.loop is not None:
            arguments["loop_task_id"] = start_task_id(self.scope.loop)
            if loop_child if loop_child is not None else self.scope.group == self.scope.loop_group:
                arguments["loop_child"] = True
            if self.scope.loop_limit:
                arguments["max_active_tis_per_dagrun"] = self.scope.loop_limit
        if self.scope.working_directory and getattr(task, "USES_WORKING_DIRECTORY", False):
            arguments["working_directory"] = self.scope.working_directory
        if isinstance(task, Exit) and self.enclosing:
            arguments["parent_end_ids"] = [end_task_id(flowable) for flowable in self.enclosing]
        if isinstance(task, Exit) and self.flow.afterExecution:
            arguments["after_task_ids"] = sorted(self.after_execution_task_ids())
        retry = None
        if not isinstance(task, FlowableBase):
            # A flowable's timeout and retry concern its children, not the task that starts it.
            arguments.update(task.timeout_arguments())
            # As in Kestra's worker: an allowFailure task takes no inherited retry (its failure ends
            # WARNING at once), and warningOnRetry counts only on the task's own retry.
            retry = task.retry or (None if task.allowFailure else self.scope.retry)
            if task.retry is not None and task.retry.warningOnRetry:
                arguments["warning_on_retry"] = True
        self.placed[task.id] = self.scope.loop
        return self.add(
            _Draft(task_id or task.id, task.OPERATOR, _without_defaults(arguments), kestra_id=task.id, retry=retry)
        )

    def node(self, task: TaskBase) -> _Node:
        """Plan one task of a list: an operator, or a group for a flowable."""
        if isinstance(task, ForEach) and self.scope.loop is not None:
            return self.nested_loop(task)
        if isinstance(task, LoopUntil):
            return self.until_loop(task)
        if isinstance(task, FlowableBase):
            return self.flowable(task)
        draft = self.kestra_task(task)
        return _Node(draft.task_id, draft.task_id, frozenset({draft.task_id}))

    def chain(self, tasks: list[TaskBase], upstream: str | None = None) -> list[_Node]:
        """Nodes run one after the other; a skipped one does not stop the next, a failed one does."""
        nodes = []
        previous = upstream
        for task in tasks:
            node = self.node(task)
            if previous is not None:
                self.link(previous, node)
            previous = node.exit
            nodes.append(node)
        return nodes

    def link(self, upstream: str, node: _Node) -> None:
        """Run `node` after `upstream` unless it failed (a skipped task does not stop the next)."""
        entry = self.drafts[node.entry]
        # Airflow wants ALL_SUCCESS after a setup; a flowable's start never ends skipped, so it is the same.
        entry.trigger_rule = "all_success" if self.drafts[upstream].role == "setup" else "none_failed"
        entry.upstream.append(upstream)

    def sequence(self, nodes: list[_Node], first_rule: str, upstream: list[str], scope_exits: list[str]) -> None:
        """Chain an errors block: the first on `first_rule`, then one at a time, a failure not stopping the next.

        The first task (a flowable: its start, a Kestra task) runs only when a task of its scope
        really failed (`scope_exits`); inside a `finally` block, where every task is a teardown
        that runs whatever happened, each of them checks it.
        """
        entries = [self.drafts[node.entry] for node in nodes]
        entries[0].trigger_rule = first_rule
        entries[0].upstream += upstream
        for previous, node in zip(nodes, nodes[1:], strict=False):
            entry = self.drafts[node.entry]
            entry.trigger_rule = "none_skipped"
            entry.upstream.append(previous.exit)
        for entry in entries[:1] if not self.scope.teardown else entries:
            if entry.takes_flow:
                entry.arguments["errors_of"] = scope_exits

    def teardowns(self, nodes: list[_Node], upstream: list[str], setups: tuple[str, ...] = ()) -> None:
        """Chain a finally block (its tasks are teardowns): all done, one at a time."""
        previous = upstream
        for node in nodes:
            entry = self.drafts[node.entry]
            entry.trigger_rule, entry.setups = "all_done_setup_success", setups
            entry.upstream += previous
            previous = [node.exit]

    def block(self, group_id: str, tooltip: str, tasks: list[TaskBase], teardown: bool = False) -> list[_Node]:
        """An errors or finally block: a group of the tasks and flowables, planned as anywhere else.

        The first task of an errors block checks that its scope failed, so a flowable there
        starts with a Kestra task; in a finally block every task is a teardown.
        """
        outer = self.open_group(group_id, tooltip)
        self.scope.teardown = self.scope.teardown or teardown
        if not teardown:
            checking = tasks if self.scope.teardown else tasks[:1]
            self.kestra_starts.update(task.id for task in checking if isinstance(task, FlowableBase))
        try:
            return [self.node(task) for task in tasks]
        finally:
            self.scope = outer

    def trigger_check(self, first: str) -> None:
        """`_trigger_check` before the first main task: skips the run when no triggering event fires a trigger."""
        self.add(
            _Draft(
                TRIGGER_CHECK_TASK_ID,
                "yaml2dag.operators.trigger_check:FlowTriggerCheckOperator",
                {
                    "namespace": self.flow.namespace,
                    "flow_id": self.flow.id,
                    "triggers": trigger_check_specs(self.flow),
                    "doc_md": internal_doc(
                        "Checks the Flow trigger conditions on the triggering events; skips the run when none holds."
                    ),
                },
                takes_flow=False,
            )
        )
        self.drafts[first].upstream.insert(0, TRIGGER_CHECK_TASK_ID)

    def state_tasks(self, main_exits: list[str], event: bool = True) -> None:
        """`_flow_state` (fails the run when Kestra would end FAILED) and `_flow_event` (the end-state asset).

        They run side by side; with flow `outputs` (rendered by `_flow_state`, and able to fail the
        flow) `_flow_event` runs after `_flow_state` and reads the state it recorded. A child DAG
        (`event` false) has no `_flow_event`: its run is part of the flow's execution, which emits.
        """
        arguments: dict[str, Any] = {
            "main_task_ids": main_exits,
            "doc_md": internal_doc(
                "Gives the run the flow's Kestra state: it fails when a main task failed, so the run ends "
                "FAILED as on Kestra (Airflow alone would read the run's state from `errors` and `finally`). "
                "When it fails, the failed task of the flow is the one to read: this one only repeats its failure."
            ),
        }
        if self.flow.outputs and event:  # rendered by the state task: it needs the flow's variables
            arguments["flow_outputs"] = [output.model_dump(exclude_none=True) for output in self.flow.outputs]
        self.add(
            _Draft(
                STATE_TASK_ID,
                f"{_STATE_OPERATORS}:FlowStateOperator",
                arguments,
                trigger_rule="all_done_setup_success",
                upstream=main_exits[-1:],
                role="teardown",
                takes_flow=bool(self.flow.outputs) and event,
                fails_run=True,
            )
        )
        if not event:  # a child DAG: its run is part of the flow's execution, which emits the event
            return
        event_arguments: dict[str, Any] = {
            "namespace": self.flow.namespace,
            "flow_id": self.flow.id,
            "revision": self.flow.revision or 1,
            "labels": dict(self.flow.labels),
            "doc_md": internal_doc(
                "Emits the asset event of the flow's final state, for the flows it triggers (Flow triggers)."
            ),
        }
        if not self.flow.outputs:  # nothing can fail the flow after the main tasks: read their states too
            event_arguments["main_task_ids"] = main_exits
        if stops := stop_after(self.flow):
            event_arguments["stop_after"] = stops
        self.add(
            _Draft(
                EVENT_TASK_ID,
                f"{_STATE_OPERATORS}:FlowEventOperator",
                event_arguments,
                trigger_rule="all_done_setup_success",
                upstream=[STATE_TASK_ID] if self.flow.outputs else main_exits[-1:],
                role="teardown",
                takes_flow=False,
            )
        )

    # --- flowables -------------------------------------------------------------------------------

    def flowable(self, task: FlowableBase) -> _Node:
        """A group: `<id>.start` (setup), the children, local errors and finally, then `<id>.end`."""
        self.placed[task.id] = self.scope.loop
        in_loop_group = self.scope.loop is not None and self.scope.group == self.scope.loop_group
        outer = self.open_group(task.id, f"Kestra {task.type.rsplit('.', 1)[-1]} `{task.id}`")
        self.scope.retry = task.retry or outer.retry
        if getattr(task, "SHARES_WORKING_DIRECTORY", False):
            self.scope.working_directory = task.id
        before = set(self.drafts)
        self.enclosing.append(task.id)
        try:
            start = self.start(task, in_loop_group)
            children, leaves = self.children(task, start)
            exits = [node.exit for node in children]
            errors = self.local_errors(task, leaves, exits) if leaves else []
            finals = self.local_finally(task, [*leaves, *errors[-1:]], start)
            end = self.end(task, exits, [*leaves, *errors[-1:], *finals[-1:]] or [start.task_id])
            if start.role == "setup":
                end.setups = (start.task_id,)
        finally:
            self.scope = outer
            self.enclosing.pop()
        inside = frozenset(set(self.drafts) - before)
        if start.takes_flow:  # a Kestra start task skips the whole flowable when `runIf` is false
            start.arguments["inner_task_ids"] = sorted(inside - {start.task_id})
        return _Node(start.task_id, end.task_id, inside)

    def nested_loop(self, task: ForEach) -> _Node:
        """A ForEach in a ForEach body: one task per iteration running the child DAG of its iterations."""
        child_id = child_dag_id(self.dag_id, task.id)
        arguments: dict[str, Any] = {
            "child_dag_id": child_id,
            "loop_task_id": start_task_id(self.scope.loop or ""),
            "doc_md": f"Runs the ForEach `{task.id}` of this iteration as a run of the DAG `{child_id}` "
            "and waits for its end",
        }
        if self.scope.loop_limit:
            arguments["max_active_tis_per_dagrun"] = self.scope.loop_limit
        if self.scope.loop_limit == 1:
            arguments["one_at_a_time"] = True
        self.placed[task.id] = self.scope.loop
        self.carriers.add(task.id)
        self.carried.update(dict.fromkeys((inner.id for inner in task.nested_tasks()), task.id))
        draft = self.add(
            _Draft(task.id, f"{_LOOP_OPERATORS}:ForEachRunOperator", arguments, kestra_id=task.id, takes_flow=True)
        )
        child = _Planner(self.flow, child_id)
        self.child_plans.append(
            child.plan_child(
                task,
                self.scope.retry,
                description=f"Iterations of the ForEach `{task.id}` of {self.flow.dag_id}",
                doc_md=f"**Kestra ForEach** `{task.id}` of the flow `{self.flow.namespace}` / `{self.flow.id}`: "
                f"one run per iteration of its parent ForEach, started by `{self.dag_id}`.",
                tags=_tags(self.flow),
                params=param_specs(self.flow.inputs),
            )
        )
        return _Node(draft.task_id, draft.task_id, frozenset({draft.task_id}))

    def until_loop(self, task: LoopUntil) -> _Node:
        """A LoopUntil: one task running its child DAG once per iteration until its condition holds."""
        if self.scope.loop is not None:
            raise FlowValidationError(
                [FlowError(f"`{task.id}`: a LoopUntil inside a ForEach is not supported by yaml2dag yet")]
            )
        child_id = child_dag_id(self.dag_id, task.id)
        arguments: dict[str, Any] = {
            "kestra_type": task.type,
            "run_if": task.runIf,
            "allow_failure": task.allowFailure,
            "allow_warning": task.allowWarning,
            **task.operator_arguments(),
            "child_dag_id": child_id,
            "doc_md": f"Runs the tasks of the LoopUntil `{task.id}` as runs of the DAG `{child_id}`, "
            "one per iteration, until its condition holds",
        }
        self.placed[task.id] = None
        self.carriers.add(task.id)
        self.carried.update(dict.fromkeys((inner.id for inner in task.nested_tasks()), task.id))
        draft = self.add(
            _Draft(task.id, task.OPERATOR, _without_defaults(arguments), kestra_id=task.id, takes_flow=True)
        )
        child = _Planner(self.flow, child_id)
        self.child_plans.append(
            child.plan_iteration(
                task,
                self.scope.retry,
                description=f"Iterations of the LoopUntil `{task.id}` of {self.flow.dag_id}",
                doc_md=f"**Kestra LoopUntil** `{task.id}` of the flow `{self.flow.namespace}` / `{self.flow.id}`: "
                f"one run per iteration, started by `{self.dag_id}`.",
                tags=_tags(self.flow),
                params=param_specs(self.flow.inputs),
            )
        )
        return _Node(draft.task_id, draft.task_id, frozenset({draft.task_id}))

    def start(self, task: FlowableBase, loop_child: bool = False) -> _Draft:
        if (
            isinstance(task, If | Switch | ForEach)
            or task.runIf is not None
            or task.id in self.kestra_starts
            or getattr(task, "START_RUNS", False)
        ):
            draft = self.kestra_task(task, start_task_id(task.id), loop_child)
        else:
            draft = self.add(
                _Draft(
                    start_task_id(task.id),
                    _GATE_OPERATOR,
                    {"doc_md": internal_doc(f"Start of `{task.id}`: opens its group, evaluates nothing.")},
                    kestra_id=task.id,
                    takes_flow=False,
                )
            )
        if draft.role != "teardown":
            draft.role = "setup"
        return draft

    def end(self, task: FlowableBase, child_exits: list[str], upstream: list[str]) -> _Draft:
        # The teardown of its start: the start's scope (a skipped or failed setup skips or fails
        # every task in its scope) ends here, so a flowable in a branch not taken skips nothing
        # after it. It fails the run when it fails (outside `finally`), so that its children are
        # not the run's leaves (Airflow ignores teardowns for the run's state): an AllowFailure's
        # failed child does not fail the run.
        exits = sorted(child.id for child in task.nested_tasks() if isinstance(child, Exit))
        return self.add(
            _Draft(
                end_task_id(task.id),
                f"{_FLOWABLE_OPERATORS}:FlowableEndOperator",
                {
                    "flowable_id": task.id,
                    "child_task_ids": child_exits,
                    "allow_failure": task.allowFailure or isinstance(task, AllowFailure),
                    "allow_warning": task.allowWarning,
                    **({"exit_task_ids": exits} if exits else {}),
                    "doc_md": internal_doc(
                        f"End of `{task.id}`: gives `{task.id}` its Kestra state from its children's states "
                        "(FAILED, WARNING or SUCCESS; XCom `kestra_state`). When it fails, a child failed: "
                        "read that child."
                    ),
                },
                trigger_rule="all_done_setup_success",
                upstream=upstream,
                role="teardown",
                takes_flow=False,
                fails_run=not self.scope.teardown,
            )
        )

    def children(self, task: FlowableBase, start: _Draft) -> tuple[list[_Node], list[str]]:
        """Plan the children; return them and the tasks the flowable's end waits for."""
        if isinstance(task, Parallel):
            return self.parallel(task, start.task_id)
        if isinstance(task, Dag):
            return self.dag(task, start.task_id)
        if isinstance(task, ForEach):
            return self.loop(task, start.task_id)
        nodes: list[_Node] = []
        leaves: list[str] = []
        branches: dict[str, list[str]] = {}
        for name, tasks in task.child_lists():
            chain = self.chain(_enabled(tasks), upstream=start.task_id)
            branches[name] = sorted({task_id for node in chain for task_id in node.inside})
            nodes += chain
            leaves += [chain[-1].exit] if chain else []
        if isinstance(task, If | Switch):
            start.arguments["branches"] = branches
        return nodes, leaves

    def parallel(self, task: Parallel, start: str) -> tuple[list[_Node], list[str]]:
        nodes = [self.node(child) for child in _enabled(task.tasks)]
        lanes = task.concurrent or len(nodes)
        for index, node in enumerate(nodes):
            self.link(start if index < lanes else nodes[index - lanes].exit, node)
        return nodes, [node.exit for node in nodes[-lanes:]] if nodes else []

    def dag(self, task: Dag, start: str) -> tuple[list[_Node], list[str]]:
        enabled = [item for item in task.tasks if not item.task.disabled]
        nodes = {item.task.id: self.node(item.task) for item in enabled}
        depended_on: set[str] = set()
        for item in enabled:
            upstream = [nodes[name].exit for name in item.dependsOn if name in nodes] or [start]
            depended_on.update(item.dependsOn)
            for exit_task in upstream:
                self.link(exit_task, nodes[item.task.id])
        leaves = [node.exit for name, node in nodes.items() if name not in depended_on]
        return list(nodes.values()), leaves

    def loop(self, task: ForEach, start: str) -> tuple[list[_Node], list[str]]:
        """The body is a group mapped over the start task's values (Airflow dynamic task mapping)."""
        if not _enabled(task.tasks):
            return [], []  # every task disabled: nothing to map, the ForEach ends SUCCESS
        outer = self.open_group(self.free_id(f"{task.id}_each"), "One run per value", expand_over=start)
        self.scope.loop, self.scope.loop_limit = task.id, task.concurrencyLimit
        self.scope.loop_group = self.scope.group
        try:
            if isinstance(task, EachParallel):  # the tasks of one value run in parallel too
                nodes = [self.node(child) for child in _enabled(task.tasks)]
            else:
                nodes = self.chain(_enabled(task.tasks))
        finally:
            self.scope = outer
        firsts = nodes if isinstance(task, EachParallel) else nodes[:1]
        for node in firsts:
            self.drafts[node.entry].upstream.append(start)
        return nodes, [node.exit for node in (firsts if isinstance(task, EachParallel) else nodes[-1:])]

    def local_errors(self, task: FlowableBase, upstream: list[str], scope_exits: list[str]) -> list[str]:
        """A flowable's own errors: after its children, one at a time, when one of them failed."""
        tasks = _enabled(task.errors)
        if not tasks:
            return []
        errors = self.block(self.free_id(f"{task.id}_errors"), f"`errors` of `{task.id}`", tasks)
        self.sequence(errors, first_rule="one_failed", upstream=upstream, scope_exits=scope_exits)
        return [node.exit for node in errors]

    def local_finally(self, task: FlowableBase, upstream: list[str], start: _Draft) -> list[str]:
        """A flowable's own finally: teardowns (of its start, when a setup), run once it started, whatever happened."""
        tasks = _enabled(task.finally_)
        if not tasks:
            return []
        finals = self.block(self.free_id(f"{task.id}_finally"), f"`finally` of `{task.id}`", tasks, teardown=True)
        self.teardowns(finals, upstream=upstream, setups=(start.task_id,) if start.role == "setup" else ())
        return [node.exit for node in finals]


def internal_doc(text: str) -> str:
    """The docs (`doc_md`) of a task yaml2dag adds: marked internal, then what it does."""
    return f"{INTERNAL_DOC}\n\n{text}"


#: Longest label of a mapped task instance: Airflow keeps 250 characters of a rendered map index.
MAP_LABEL_LIMIT = 200


def map_label_template(loop_start: str) -> str:
    """The `map_index_template` of a task inside a ForEach: its instances are labelled by their value.

    Rendered by Airflow on the worker (before and after the task runs) from the ForEach start's
    values, so the grid reads `eu-west` where it would read `0`; long values are cut with `...`.
    """
    values = f"task_instance.xcom_pull(task_ids={loop_start!r}, map_indexes=-1)"
    return f"{{{{ ({values} or [])[task_instance.map_index] | string | truncate({MAP_LABEL_LIMIT}, true, '...', 0) }}}}"


def _enabled(tasks: Iterable[TaskBase]) -> list[TaskBase]:
    # Kestra removes disabled tasks entirely: no task run, not even a skipped one.
    return [task for task in tasks if not task.disabled]


#: KestraOperator's own arguments at their defaults: left out of the plan (and of every operator build).
_COMMON_DEFAULTS: dict[str, Any] = {"run_if": None, "allow_failure": False, "allow_warning": False, "doc_md": None}


def _without_defaults(arguments: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in arguments.items() if _COMMON_DEFAULTS.get(name, ...) != value}


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


def _tags(flow: Flow) -> tuple[str, ...]:
    tags = [flow.namespace, *(f"{key}:{value}" for key, value in flow.labels.items())]
    return tuple(tag[:_TAG_LIMIT] for tag in tags)
