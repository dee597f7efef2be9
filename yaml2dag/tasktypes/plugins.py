"""Task types from installed packages: the `yaml2dag.task_types` entry-point group.

A package registers task types declared exactly like the built-in ones (a `TaskBase` subclass with
`TYPES` and `OPERATOR`, and a `KestraOperator` subclass with `run()`) by naming, in its
`pyproject.toml`, a module that has a `TASK_TYPES` tuple (or the tuple itself)::

    [project.entry-points."yaml2dag.task_types"]
    example = "yaml2dag_example_plugin.tasktypes"

The registry (`yaml2dag.tasktypes.TASK_TYPES`) reads the group only when a flow names a type that
is not built in, or when every type is listed (schema, docs, "did you mean"), so flows that use
only built-in types never pay for scanning the installed packages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from yaml2dag.tasktypes.base import TaskBase

#: The entry-point group a package uses to register task types.
GROUP = "yaml2dag.task_types"

_log = logging.getLogger(__name__)


class PluginError(Exception):
    """An installed task-type plugin is broken: its entry point cannot be loaded or declares bad types."""


@dataclass(frozen=True)
class PluginTypes:
    """The task types one entry point registers, and where they come from."""

    origin: str
    """`<distribution> <version> (<entry point name> = <value>)`, shown by `yaml2dag schema` and in errors."""
    task_types: tuple[type[TaskBase], ...]


def _origin(point: EntryPoint) -> str:
    dist = point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
    return f"{package} ({point.name} = {point.value})"


def _task_types(point: EntryPoint) -> tuple[type[TaskBase], ...]:
    loaded = point.load()
    declared = loaded.TASK_TYPES if isinstance(loaded, ModuleType) else loaded
    if not isinstance(declared, tuple | list) or not all(
        isinstance(item, type) and issubclass(item, TaskBase) for item in declared
    ):
        raise PluginError("must name a module with a TASK_TYPES tuple of TaskBase subclasses, or such a tuple")
    for task_class in declared:
        if not task_class.TYPES or not getattr(task_class, "OPERATOR", ""):
            raise PluginError(f"{task_class.__name__} must declare TYPES and OPERATOR")
    return tuple(declared)


def installed_plugins() -> list[PluginTypes]:
    """Every entry point of the group, loaded; a broken one is logged and skipped (never breaks other flows)."""
    plugins: list[PluginTypes] = []
    for point in entry_points(group=GROUP):
        origin = _origin(point)
        try:
            plugins.append(PluginTypes(origin, _task_types(point)))
        except Exception as exc:  # noqa: BLE001 - a third-party module may raise anything on import
            _log.warning("yaml2dag task-type plugin %s is skipped: %s: %s", origin, type(exc).__name__, exc)
    return plugins
