"""The task types yaml2dag knows: Kestra type name (and legacy aliases) → model class."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from yaml2dag.tasktypes import core, flowable, subflow
from yaml2dag.tasktypes.base import TaskBase

#: Families whose models are built only when a flow names one of their types (keeps parse-time
#: imports small): the prefix of every type name of the family → its module.
_LAZY_FAMILIES: dict[str, str] = {
    "io.kestra.plugin.docker.": "yaml2dag.tasktypes.docker",
    "io.kestra.plugin.redis.": "yaml2dag.tasktypes.redis",
    "io.kestra.plugin.core.storage.": "yaml2dag.tasktypes.storage",
    "io.kestra.core.tasks.storages.": "yaml2dag.tasktypes.storage",
    "io.kestra.plugin.core.kv.": "yaml2dag.tasktypes.kv",
}


class _TaskTypes(Mapping[str, type[TaskBase]]):
    """Every accepted type name, current and legacy, mapped to its model class."""

    def __init__(self) -> None:
        self._classes: dict[str, type[TaskBase]] = {}
        for family in (core.TASK_TYPES, flowable.TASK_TYPES, subflow.TASK_TYPES):
            self._add(family)
        self._pending = dict(_LAZY_FAMILIES)

    def _add(self, family: tuple[type[TaskBase], ...]) -> None:
        self._classes.update((name, task_class) for task_class in family for name in task_class.TYPES)

    def _load(self, prefix: str) -> None:
        self._add(importlib.import_module(self._pending.pop(prefix)).TASK_TYPES)

    def __getitem__(self, name: str) -> type[TaskBase]:
        if name not in self._classes:
            for prefix in [prefix for prefix in self._pending if name.startswith(prefix)]:
                self._load(prefix)
        return self._classes[name]

    def _load_all(self) -> dict[str, type[TaskBase]]:
        for prefix in list(self._pending):
            self._load(prefix)
        return self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._load_all())

    def __len__(self) -> int:
        return len(self._load_all())


#: Every accepted type name, current and legacy, mapped to its model class.
TASK_TYPES: Mapping[str, type[TaskBase]] = _TaskTypes()

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
) | frozenset({"io.kestra.plugin.redis.cli.RedisCLI"}) | frozenset({
    "io.kestra.plugin.core.storage.LocalFiles", "io.kestra.core.tasks.storages.LocalFiles",
    "io.kestra.plugin.core.storage.PurgeStorage", "io.kestra.plugin.core.kv.PurgeKV",
    "io.kestra.plugin.core.namespace.UploadFiles", "io.kestra.plugin.core.namespace.DownloadFiles",
})  # fmt: skip

__all__ = ["KNOWN_UNSUPPORTED", "TASK_TYPES", "TaskBase"]
