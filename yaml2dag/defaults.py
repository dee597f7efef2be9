"""`pluginDefaults` (alias `taskDefaults`): default task and trigger properties, applied before validation.

Applied to the raw flow data the way Kestra's `PluginDefaultService` applies them:

- An entry applies to every task or trigger whose `type` equals its `type` or starts with it
  (`io.kestra.plugin.core.log` applies to every Log task), at any depth (flowables' nested tasks).
  An entry written with a legacy type name also applies to the current name.
- Non-forced entries fill what the task does not set: the task's own values win. Entries marked
  `forced: true` are applied afterwards and win over the task's values.
- Maps are merged key by key, deeply; lists are concatenated (the lower list, then the items of the
  higher one it does not already hold); a null never replaces a value.
- When several entries match, the first in the file wins.

Errors about a value a default put into a task are reported at the default's value, and say which
task received it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yaml2dag.diagnostics import Collector
    from yaml2dag.loader import DocPath

#: The flow properties whose values may hold tasks or triggers (Kestra walks the whole flow; the
#: other properties, such as `inputs` and `variables`, never hold plugins).
PLUGIN_BLOCKS = ("tasks", "errors", "finally", "afterExecution", "listeners", "triggers")
DEFAULT_BLOCKS = ("pluginDefaults", "taskDefaults")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class _Default:
    type: str
    forced: bool
    values: dict[str, Any]
    source: Path  # where its `values` are written: ("pluginDefaults", 0, "values")


def apply_plugin_defaults(data: Any, collector: Collector) -> Any:
    """The flow data with its plugin defaults applied to every task and trigger (`data` is not changed).

    Errors the collector later receives about a value that came from a default are redirected to
    that default's value, naming the task or trigger it was applied to.
    """
    if not isinstance(data, dict):
        return data
    defaults = _read_defaults(data, collector)
    if not defaults:
        return data
    origins: dict[Path, Path] = {}
    result = dict(data)
    for forced in (False, True):
        ordered = [item for item in defaults if item.forced == forced]
        if forced:
            ordered.reverse()  # applied last to first, so the first forced entry wins
        for block in PLUGIN_BLOCKS:
            if block in result:
                result[block] = _walk(result[block], (block,), ordered, origins)
    if origins:
        _redirect_errors(collector, origins)
    return result


def _read_defaults(data: dict[str, Any], collector: Collector) -> list[_Default]:
    """The well-formed entries, in file order (malformed ones are reported by the Flow model)."""
    from yaml2dag.tasktypes import TASK_TYPES

    found: list[_Default] = []
    aliases: list[_Default] = []
    for block in DEFAULT_BLOCKS:
        entries = data.get(block)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not (isinstance(entry, dict) and isinstance(entry.get("type"), str) and entry["type"]):
                continue
            values = entry.get("values")
            if not isinstance(values, dict) or any(value is None for value in values.values()):
                continue
            item = _Default(entry["type"], entry.get("forced") is True, values, (block, index, "values"))
            found.append(item)
            task_class = TASK_TYPES.get(item.type)
            if task_class is not None:
                _check_properties(item, task_class, collector)
                if task_class.TYPES[0] != item.type:
                    aliases.append(_Default(task_class.TYPES[0], item.forced, item.values, item.source))
    return found + aliases


def _check_properties(item: _Default, task_class: Any, collector: Collector) -> None:
    """A default for one exact task type may only set that type's properties (as Kestra checks)."""
    known = {field.alias or name for name, field in task_class.model_fields.items()}
    for key in item.values:
        if key not in known:
            collector.add(
                (*item.source, key),
                f"unknown property `{key}` for task type `{item.type}` in plugin defaults",
                f"known properties: {', '.join(sorted(known - {'id', 'type'}))}",
            )


def _walk(node: Any, path: Path, defaults: list[_Default], origins: dict[Path, Path]) -> Any:
    """Apply `defaults` to every mapping with a string `type` under `node`, children first (as Kestra)."""
    if isinstance(node, list):
        return [_walk(item, (*path, index), defaults, origins) for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    result = {key: _walk(value, (*path, key), defaults, origins) for key, value in node.items()}
    plugin_type = result.get("type")
    if not isinstance(plugin_type, str):
        return result
    for item in defaults:
        if plugin_type.startswith(item.type):
            if item.forced:
                result = _merge(result, item.values, path, None, item.source, origins)
            else:
                result = _merge(item.values, result, path, item.source, None, origins)
    return result


def _merge(
    low: dict[str, Any],
    high: dict[str, Any],
    path: Path,
    low_source: Path | None,
    high_source: Path | None,
    origins: dict[Path, Path],
) -> dict[str, Any]:
    """Kestra's deep merge: `high` wins, maps merge, lists concatenate, null never wins.

    The side with a source is a default; each key taken from it is recorded in `origins`.
    """
    result = copy.deepcopy(low)
    if low_source is not None:
        for key in low:
            if high.get(key) is None:
                origins[(*path, key)] = (*low_source, key)
    for key, value in high.items():
        if value is None:
            continue
        current = result.get(key)
        here = (*path, key)
        if isinstance(current, dict) and isinstance(value, dict):
            result[key] = _merge(
                current,
                value,
                here,
                low_source and (*low_source, key),
                high_source and (*high_source, key),
                origins,
            )
        elif isinstance(current, list) and isinstance(value, list):
            result[key] = current + [copy.deepcopy(item) for item in value if item not in current]
        else:
            result[key] = copy.deepcopy(value)
            if high_source is not None:
                origins[here] = (*high_source, key)
                _forget_below(origins, here)
    return result


def _forget_below(origins: dict[Path, Path], path: Path) -> None:
    for known in [known for known in origins if len(known) > len(path) and known[: len(path)] == path]:
        del origins[known]


def _redirect_errors(collector: Collector, origins: dict[Path, Path]) -> None:
    """Make the collector report errors about defaulted values at the default that set them."""
    from yaml2dag.loader import format_path

    add: Callable[..., None] = collector.add

    def add_located(path: DocPath, message: str, hint: str = "", prefer_key: bool = True) -> None:
        for length in range(len(path), 0, -1):
            source = origins.get(tuple(path[:length]))
            if source is not None:
                where = format_path(tuple(path))
                add((*source, *path[length:]), f"{message} (set on `{where}` by pluginDefaults)", hint)
                return
        add(path, message, hint, prefer_key)

    collector.add = add_located  # type: ignore[method-assign]
