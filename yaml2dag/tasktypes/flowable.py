"""Kestra's flowable tasks (spec §4.9): tasks that run other tasks, and `Exit`.

A flowable holds task lists (its children, and its own `errors` and `finally`). `task_slots`
lists where each raw child task sits in the YAML, so that validation can parse children with
their own types and locate their errors; `child_lists` gives the parsed children back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field, field_validator

from yaml2dag.properties import bounded_duration
from yaml2dag.states import end_task_id, start_task_id
from yaml2dag.tasktypes.base import KestraModel, TaskBase, Text, choice, rendered

_FLOW = "yaml2dag.operators.flowable"
_CORE_FLOW = "io.kestra.plugin.core.flow"
_LEGACY_FLOW = "io.kestra.core.tasks.flows"

#: A path inside a task's YAML mapping, such as `("then", 2)` or `("cases", "a", 0)`.
SlotPath = tuple[str | int, ...]

__all__ = ["end_task_id", "start_task_id"]  # the flowables' Airflow ids, defined in yaml2dag.states


class FlowableBase(TaskBase):
    """A task that runs other tasks: its children first, then its own `errors` and `finally`."""

    #: Properties holding a list of tasks (besides `errors` and `finally`).
    TASK_LISTS: ClassVar[tuple[str, ...]] = ("tasks",)

    errors: list[TaskBase] = Field(
        default_factory=list, description="Tasks run one after the other when a child failed (they never rescue it)."
    )
    finally_: list[TaskBase] = Field(
        default_factory=list, alias="finally", description="Tasks run one after the other once the children are done."
    )

    # A flowable's `timeout` would bound its whole group: Airflow has no group timeout.
    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"timeout"}
    STRUCTURAL: ClassVar[frozenset[str]] = frozenset({"tasks", "errors", "finally_"})

    @classmethod
    def task_slots(cls, raw: dict[str, Any]) -> Iterator[tuple[SlotPath, Any]]:
        """Where raw child tasks sit in this flowable's YAML mapping: (path inside it, raw task)."""
        for name in (*cls.TASK_LISTS, "errors", "finally"):
            items = raw.get(name)
            if isinstance(items, list):
                for index, item in enumerate(items):
                    yield (name, index), item

    def child_lists(self) -> list[tuple[str, list[TaskBase]]]:
        """The children as (property name, tasks), in YAML order; `errors` and `finally` excluded."""
        return [(name, list(getattr(self, _attribute(name)))) for name in self.TASK_LISTS]

    def nested_tasks(self) -> Iterator[TaskBase]:
        """Every task under this one, at any depth, in YAML order (children, errors, finally)."""
        for _, tasks in [*self.child_lists(), ("errors", self.errors), ("finally", self.finally_)]:
            for task in tasks:
                yield task
                if isinstance(task, FlowableBase):
                    yield from task.nested_tasks()


def _attribute(name: str) -> str:
    return {"else": "else_", "finally": "finally_"}.get(name, name)


def walk_task(path: SlotPath, task: TaskBase, raw: dict[str, Any]) -> Iterator[tuple[SlotPath, TaskBase, Any]]:
    """The task and every task under it, with YAML path and raw mapping, in file order."""
    yield path, task, raw
    if isinstance(task, FlowableBase):
        for slot, child_raw in type(task).task_slots(raw):
            yield from walk_task((*path, *slot), _child_at(task, slot), child_raw)


def _child_at(task: FlowableBase, slot: SlotPath) -> Any:
    """The parsed child at `slot` (a path into the raw mapping) of a parsed flowable."""
    from yaml2dag.expressions.values import java_string

    node: Any = task
    for part in slot:
        if isinstance(node, dict):
            node = node[java_string(part)]
        elif isinstance(part, int):
            node = node[part]
        else:
            node = getattr(node, _attribute(part))
    return node


class Sequential(FlowableBase):
    """Run `tasks` one after the other; stop at the first failure."""

    TYPES: ClassVar = (f"{_CORE_FLOW}.Sequential", f"{_LEGACY_FLOW}.Sequential")
    OPERATOR: ClassVar = f"{_FLOW}:FlowableStartOperator"

    tasks: list[TaskBase] = Field(min_length=1, description="The children, run one after the other.")


class AllowFailure(Sequential):
    """Run `tasks` like Sequential; a failure makes this task WARNING instead of FAILED."""

    TYPES: ClassVar = (f"{_CORE_FLOW}.AllowFailure", f"{_LEGACY_FLOW}.AllowFailure")


class Parallel(FlowableBase):
    """Run `tasks` at the same time, at most `concurrent` of them (0: all)."""

    TYPES: ClassVar = (f"{_CORE_FLOW}.Parallel", f"{_LEGACY_FLOW}.Parallel")
    OPERATOR: ClassVar = f"{_FLOW}:FlowableStartOperator"

    tasks: list[TaskBase] = Field(min_length=1, description="The children, started together.")
    concurrent: int = Field(default=0, ge=0, description="Most children running at once; 0 means no limit.")

    STRUCTURAL: ClassVar[frozenset[str]] = FlowableBase.STRUCTURAL | {"concurrent"}


class If(FlowableBase):
    """Run `then` when `condition` renders true, else `else`."""

    TYPES: ClassVar = (f"{_CORE_FLOW}.If", f"{_LEGACY_FLOW}.If")
    OPERATOR: ClassVar = f"{_FLOW}:IfOperator"
    TASK_LISTS: ClassVar = ("then", "else")
    STRUCTURAL: ClassVar[frozenset[str]] = FlowableBase.STRUCTURAL | {"then", "else_"}

    condition: Text = rendered(
        description="Expression; true unless it renders `false`, `0`, `-0` or empty. Output `evaluationResult`."
    )
    then: list[TaskBase] = Field(min_length=1, description="Tasks run when the condition is true.")
    else_: list[TaskBase] = Field(default_factory=list, alias="else", description="Tasks run when it is false.")


class Switch(FlowableBase):
    """Run the tasks of the case equal to `value`, else `defaults`; no match and no defaults fails."""

    TYPES: ClassVar = (f"{_CORE_FLOW}.Switch", f"{_LEGACY_FLOW}.Switch")
    OPERATOR: ClassVar = f"{_FLOW}:SwitchOperator"
    TASK_LISTS: ClassVar = ("defaults",)
    STRUCTURAL: ClassVar[frozenset[str]] = FlowableBase.STRUCTURAL | {"cases", "defaults"}

    value: Text = rendered(description="Expression whose text selects the case. Outputs `value` and `defaults`.")
    cases: dict[str, list[TaskBase]] = Field(
        default_factory=dict, description="Case text → tasks (YAML numbers and booleans are read as text)."
    )
    defaults: list[TaskBase] = Field(default_factory=list, description="Tasks run when no case matches.")

    @field_validator("cases", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from yaml2dag.expressions.values import java_string

            return {java_string(key): tasks for key, tasks in value.items()}
        return value

    @field_validator("defaults", mode="before")
    @classmethod
    def _null_defaults(cls, value: Any) -> Any:
        return [] if value is None else value  # Kestra accepts `defaults: null` (no defaults)

    @classmethod
    def task_slots(cls, raw: dict[str, Any]) -> Iterator[tuple[SlotPath, Any]]:  # noqa: D102
        cases = raw.get("cases")
        if isinstance(cases, dict):
            for key, items in cases.items():
                if isinstance(items, list):
                    for index, item in enumerate(items):
                        yield ("cases", key, index), item
        yield from super().task_slots(raw)

    def child_lists(self) -> list[tuple[str, list[TaskBase]]]:  # noqa: D102
        return [*((f"cases.{key}", list(tasks)) for key, tasks in self.cases.items()), ("defaults", self.defaults)]


class ForEach(FlowableBase):
    """Run `tasks` once per value of `values`, `concurrencyLimit` values at a time (0: all)."""

    TYPES: ClassVar[tuple[str, ...]] = (f"{_CORE_FLOW}.ForEach",)
    OPERATOR: ClassVar = f"{_FLOW}:ForEachValuesOperator"

    STRUCTURAL: ClassVar[frozenset[str]] = FlowableBase.STRUCTURAL | {"concurrencyLimit"}

    values: list[Any] | str = rendered(
        description="The values: a list, or a JSON array text / expression rendering to one. "
        "Duplicates are dropped; each value is read as text (`taskrun.value`)."
    )
    concurrencyLimit: int = Field(default=1, ge=0, description="Most values processed at once; 0 means no limit.")
    tasks: list[TaskBase] = Field(min_length=1, description="Tasks run for each value.")


class EachSequential(ForEach):
    """Deprecated in Kestra (use ForEach): run `tasks` once per value of `value`, one value at a time."""

    TYPES: ClassVar = (f"{_CORE_FLOW}.EachSequential", f"{_LEGACY_FLOW}.EachSequential")

    values: list[Any] | str = rendered(
        alias="value",
        description="The values: a list, or a JSON array text / expression rendering to one (`taskrun.value`).",
    )
    concurrencyLimit: int = Field(default=1, ge=1, le=1, exclude=True, description="Always one value at a time.")


class EachParallel(ForEach):
    """Deprecated in Kestra (use ForEach): run `tasks` for every value, all of them at once.

    The tasks of one value run in parallel too (wrap them in a Sequential to chain them), and at
    most `concurrent` values at a time (0: all).
    """

    TYPES: ClassVar = (f"{_CORE_FLOW}.EachParallel", f"{_LEGACY_FLOW}.EachParallel")

    values: list[Any] | str = rendered(
        alias="value",
        description="The values: a list, or a JSON array text / expression rendering to one (`taskrun.value`).",
    )
    concurrencyLimit: int = Field(
        default=0, ge=0, alias="concurrent", description="Most values processed at once; 0 means no limit."
    )


class CheckFrequency(KestraModel):
    """How often a LoopUntil runs its tasks again, and when it gives up."""

    interval: str = Field(default="PT1M", description="Wait between two iterations (ISO-8601 duration).")
    maxIterations: int | None = Field(default=None, ge=1, description="Most iterations; none: no limit.")
    maxDuration: str | None = Field(default=None, description="Longest time the loop may run; none: no limit.")

    @field_validator("interval", "maxDuration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        """A fixed ISO-8601 duration (Kestra does not render `checkFrequency`)."""
        if value is not None:
            bounded_duration(value)
        return value


class LoopUntil(FlowableBase):
    """Run `tasks` again and again (one child DAG run per iteration) until `condition` renders truthy.

    The condition is rendered after each iteration, with that iteration's outputs; the loop also
    stops when `checkFrequency.maxIterations` / `maxDuration` is reached (FAILED with
    `failOnMaxReached`, else SUCCESS). `WaitFor` is its deprecated name.
    """

    TYPES: ClassVar = (f"{_CORE_FLOW}.LoopUntil", f"{_CORE_FLOW}.WaitFor")
    OPERATOR: ClassVar = "yaml2dag.operators.loops:LoopUntilOperator"

    tasks: list[TaskBase] = Field(min_length=1, description="Tasks run in each iteration, one after the other.")
    condition: Text = Field(description="Rendered after each iteration: the loop stops when it is truthy.")
    checkFrequency: CheckFrequency = Field(
        default_factory=CheckFrequency, description="`interval`, `maxIterations`, `maxDuration`."
    )
    failOnMaxReached: bool = Field(default=False, description="End FAILED when a maximum is reached.")

    UNSUPPORTED: ClassVar[frozenset[str]] = FlowableBase.UNSUPPORTED | {"errors", "finally_"}


class DagTask(KestraModel):
    """One node of a Dag flowable: a task and the ids of the nodes it waits for."""

    task: TaskBase = Field(description="The task.")
    dependsOn: list[str] = Field(default_factory=list, description="Ids of the tasks of this Dag to wait for.")


class Dag(FlowableBase):
    """Run `tasks` as a graph: each one starts once all its `dependsOn` tasks succeeded."""

    TYPES: ClassVar = (f"{_CORE_FLOW}.Dag", f"{_LEGACY_FLOW}.Dag")
    OPERATOR: ClassVar = f"{_FLOW}:FlowableStartOperator"
    TASK_LISTS: ClassVar = ()

    tasks: list[DagTask] = Field(min_length=1, description="The nodes: `{task, dependsOn}`.")
    concurrent: int = Field(default=0, ge=0, description="Most tasks running at once; 0 means no limit.")

    UNSUPPORTED: ClassVar[frozenset[str]] = FlowableBase.UNSUPPORTED | {"concurrent"}

    @classmethod
    def task_slots(cls, raw: dict[str, Any]) -> Iterator[tuple[SlotPath, Any]]:  # noqa: D102
        nodes = raw.get("tasks")
        if isinstance(nodes, list):
            for index, node in enumerate(nodes):
                if isinstance(node, dict) and "task" in node:
                    yield ("tasks", index, "task"), node["task"]
        yield from super().task_slots(raw)

    def child_lists(self) -> list[tuple[str, list[TaskBase]]]:  # noqa: D102
        return [("tasks", [node.task for node in self.tasks])]


class Exit(TaskBase):
    """End the execution at once in `state`: nothing else starts, not even `errors` or `finally`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.execution.Exit",)
    OPERATOR: ClassVar = f"{_FLOW}:ExitOperator"

    state: choice("SUCCESS", "WARNING", "FAILED", "CANCELED", "KILLED") = rendered(  # type: ignore[valid-type]
        "SUCCESS", description="State the execution ends in: SUCCESS, WARNING, FAILED, CANCELED or KILLED."
    )


TASK_TYPES: tuple[type[TaskBase], ...] = (
    Sequential,
    AllowFailure,
    Parallel,
    If,
    Switch,
    ForEach,
    EachSequential,
    EachParallel,
    LoopUntil,
    Dag,
    Exit,
)
