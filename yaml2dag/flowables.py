"""Structural rules of flowable tasks, checked when a flow is validated (Dag graphs, ForEach bodies)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from yaml2dag.tasktypes.base import TaskBase
from yaml2dag.tasktypes.flowable import Dag, Exit, FlowableBase, ForEach, LoopUntil, walk_task

if TYPE_CHECKING:
    from yaml2dag.diagnostics import Collector
    from yaml2dag.loader import DocPath

#: Task types yaml2dag cannot run inside a ForEach yet: Exit (it would have to skip every iteration
#: of the loop), LoopUntil (its child DAG runs are not keyed by the iteration's value). A ForEach
#: inside runs as a child DAG (see `yaml2dag.plan`).
_NOT_IN_LOOP = (Exit, LoopUntil)


def check_flowable(task: FlowableBase, raw: dict[str, Any], path: DocPath, collector: Collector) -> None:
    """Add an error for a Dag with unknown or circular `dependsOn`, or a ForEach body yaml2dag cannot map."""
    if isinstance(task, Dag):
        _check_dag(task, path, collector)
    if isinstance(task, LoopUntil):
        for child_path, child, _ in walk_task(tuple(path), task, raw):
            if isinstance(child, Exit):
                collector.add(
                    (*child_path, "type"),
                    "`Exit` inside a LoopUntil is not supported by yaml2dag yet",
                    "move it out of the LoopUntil",
                    prefer_key=False,
                )
    if isinstance(task, ForEach):
        inner_loops: list[tuple[str | int, ...]] = []
        for child_path, child, _ in walk_task(tuple(path), task, raw):
            if child is task or any(child_path[: len(loop)] == loop for loop in inner_loops):
                continue  # the tasks of a ForEach inside are checked with that ForEach: once
            _check_loop_body(child, child_path, collector)
            if isinstance(child, ForEach):
                inner_loops.append(tuple(child_path))


def _check_dag(dag: Dag, path: DocPath, collector: Collector) -> None:
    ids = [node.task.id for node in dag.tasks]
    known = set(ids)
    for index, node in enumerate(dag.tasks):
        for position, dependency in enumerate(node.dependsOn):
            if dependency not in known:
                close = difflib.get_close_matches(dependency, ids, n=1, cutoff=0.6)
                hint = f"did you mean `{close[0]}`?" if close else f"tasks of this Dag: {', '.join(ids)}"
                collector.add(
                    (*path, "tasks", index, "dependsOn", position),
                    f"`dependsOn` names `{dependency}`, which is not a task of Dag `{dag.id}`",
                    hint,
                    prefer_key=False,
                )
    cycle = _cycle({node.task.id: [d for d in node.dependsOn if d in known] for node in dag.tasks})
    if cycle:
        index = ids.index(cycle[0])
        collector.add(
            (*path, "tasks", index, "dependsOn"),
            f"circular dependency in Dag `{dag.id}`: {' → '.join([*cycle, cycle[0]])}",
            "remove one of these `dependsOn` entries",
        )


def _cycle(graph: dict[str, list[str]]) -> list[str]:
    """One cycle of `graph` (node → the nodes it depends on) as a list of nodes, or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dependency in graph.get(node, []):
            if state.get(dependency) == 1:
                return stack[stack.index(dependency) :]
            if dependency not in state:
                found = visit(dependency)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _check_loop_body(task: TaskBase, path: DocPath, collector: Collector) -> None:
    """Tasks inside a ForEach become mapped Airflow tasks: a ForEach or Exit there is refused."""
    if isinstance(task, _NOT_IN_LOOP):
        collector.add(
            (*path, "type"),
            f"`{task.type.rsplit('.', 1)[-1]}` inside a ForEach is not supported by yaml2dag yet",
            "move it out of the ForEach; If, Switch, ForEach, Sequential, Parallel, Dag and AllowFailure work "
            "inside it",
            prefer_key=False,
        )
