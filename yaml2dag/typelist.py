"""The task types yaml2dag supports, as `yaml2dag types` lists them: name, aliases, Kestra docs page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SupportedType:
    """One supported task type: its current Kestra name, legacy aliases, summary and docs page."""

    name: str
    aliases: tuple[str, ...]
    summary: str
    docs_url: str
    #: `built-in`, or the package that registered it (`yaml2dag.task_types` entry points).
    origin: str = "built-in"

    def to_dict(self) -> dict[str, object]:
        """The `yaml2dag types --json` entry."""
        return {
            "type": self.name,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "docs": self.docs_url,
            "origin": self.origin,
        }


def docs_url(type_name: str) -> str:
    """The kestra.io plugin page of `type_name` (e.g. `.../plugins/core/log/io.kestra.plugin.core.log.log`).

    kestra.io names a page `/plugins/<plugin>/<sub-package>/<type in lower case>`, `<plugin>` being
    `core` for core tasks and `plugin-<name>` for the others.
    """
    parts = type_name.split(".")
    if len(parts) < 5 or parts[:3] != ["io", "kestra", "plugin"]:
        return "https://kestra.io/plugins"
    plugin = "core" if parts[3] == "core" else f"plugin-{parts[3]}"
    return "/".join(["https://kestra.io/plugins", plugin, *parts[4:-1], type_name.lower()])


def supported_types() -> list[SupportedType]:
    """Every task type yaml2dag compiles (lazily loaded families included), sorted by name."""
    from yaml2dag.tasktypes import TASK_TYPES, plugin_origin

    classes = {id(task_class): task_class for task_class in TASK_TYPES.values()}
    found = []
    for task_class in classes.values():
        name, *aliases = task_class.TYPES
        summary = next(iter((task_class.__doc__ or "").strip().splitlines()), "")
        origin = plugin_origin(name) or "built-in"
        found.append(SupportedType(name, tuple(aliases), summary, docs_url(name), origin))
    return sorted(found, key=lambda item: item.name)
