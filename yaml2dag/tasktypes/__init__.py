"""The task types yaml2dag knows: Kestra type name (and legacy aliases) → model class."""

from __future__ import annotations

from yaml2dag.tasktypes import core, docker, flowable, redis, subflow
from yaml2dag.tasktypes.base import TaskBase

_FAMILIES: tuple[tuple[type[TaskBase], ...], ...] = (
    core.TASK_TYPES,
    flowable.TASK_TYPES,
    docker.TASK_TYPES,
    redis.TASK_TYPES,
    subflow.TASK_TYPES,
)

#: Every accepted type name, current and legacy, mapped to its model class.
TASK_TYPES: dict[str, type[TaskBase]] = {
    name: task_class for family in _FAMILIES for task_class in family for name in task_class.TYPES
}

#: Kestra task types that exist but that yaml2dag does not compile yet.
KNOWN_UNSUPPORTED: frozenset[str] = frozenset(
    f"io.kestra.plugin.core.flow.{name}"
    for name in (
        "EachSequential", "EachParallel", "WorkingDirectory", "LoopUntil",
        "ForEachItem", "Template", "WaitFor",
    )
) | frozenset(
    f"io.kestra.core.tasks.flows.{name}"
    for name in (
        "EachSequential", "EachParallel", "WorkingDirectory", "ForEachItem", "Template",
    )
) | frozenset(
    f"io.kestra.plugin.docker.{package}{name}"
    for package in ("", "cli.")
    for name in ("Build", "Compose", "Pull", "Push", "Rm", "Tag", "Prune", "ImageLs")
) | frozenset({"io.kestra.plugin.redis.cli.RedisCLI"})  # fmt: skip

__all__ = ["KNOWN_UNSUPPORTED", "TASK_TYPES", "TaskBase"]
