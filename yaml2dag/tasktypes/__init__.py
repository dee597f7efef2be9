"""The task types yaml2dag knows: Kestra type name (and legacy aliases) → model class."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from yaml2dag.tasktypes import core, flowable, plugins, subflow
from yaml2dag.tasktypes.base import TaskBase

#: Families whose models are built only when a flow names one of their types (keeps parse-time
#: imports small): the prefix of every type name of the family → its module.
_LAZY_FAMILIES: dict[str, str] = {
    "io.kestra.plugin.docker.": "yaml2dag.tasktypes.docker",
    "io.kestra.plugin.redis.": "yaml2dag.tasktypes.redis",
    "io.kestra.plugin.scripts.": "yaml2dag.tasktypes.scripts",
    "io.kestra.plugin.git.Clone": "yaml2dag.tasktypes.scripts",
    "io.kestra.plugin.terraform.cli.TerraformCLI": "yaml2dag.tasktypes.scripts",
    "io.kestra.plugin.ansible.cli.AnsibleCLI": "yaml2dag.tasktypes.scripts",
    "io.kestra.plugin.aws.cli.AwsCLI": "yaml2dag.tasktypes.scripts",
    "io.kestra.plugin.gcp.cli.GCloudCLI": "yaml2dag.tasktypes.scripts",
    "io.kestra.plugin.dbt.cli.DbtCLI": "yaml2dag.tasktypes.dbt",
    "io.kestra.plugin.core.flow.WorkingDirectory": "yaml2dag.tasktypes.scripts",
    "io.kestra.core.tasks.flows.WorkingDirectory": "yaml2dag.tasktypes.scripts",
    "io.kestra.plugin.serdes.": "yaml2dag.tasktypes.serdes",
    "io.kestra.plugin.core.http.": "yaml2dag.tasktypes.http",
    "io.kestra.plugin.fs.http.": "yaml2dag.tasktypes.http",
    "io.kestra.plugin.notifications.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.slack.notifications.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.email.": "yaml2dag.tasktypes.notifications",
    # The notification tasks' packages since Kestra split its notifications plugin.
    "io.kestra.plugin.discord.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.microsoft365.teams.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.zulip.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.sentry.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.zenduty.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.line.": "yaml2dag.tasktypes.notifications",
    "io.kestra.plugin.core.storage.": "yaml2dag.tasktypes.storage",
    "io.kestra.core.tasks.storages.": "yaml2dag.tasktypes.storage",
    "io.kestra.plugin.core.kv.": "yaml2dag.tasktypes.kv",
    "io.kestra.plugin.core.namespace.": "yaml2dag.tasktypes.namespace",
    "io.kestra.plugin.jdbc.": "yaml2dag.tasktypes.jdbc",
    "io.kestra.plugin.aws.s3.": "yaml2dag.tasktypes.aws_s3",
    "io.kestra.plugin.core.execution.Labels": "yaml2dag.tasktypes.execution",
    "io.kestra.core.tasks.executions.Labels": "yaml2dag.tasktypes.execution",
    "io.kestra.plugin.core.log.Fetch": "yaml2dag.tasktypes.execution",
    "io.kestra.core.tasks.log.Fetch": "yaml2dag.tasktypes.execution",
    "io.kestra.plugin.openai.": "yaml2dag.tasktypes.ai",
    "io.kestra.plugin.deepseek.": "yaml2dag.tasktypes.ai",
    "io.kestra.plugin.perplexity.": "yaml2dag.tasktypes.ai",
    "io.kestra.plugin.compress.": "yaml2dag.tasktypes.compress",
}


class _TaskTypes(Mapping[str, type[TaskBase]]):
    """Every accepted type name, current and legacy, mapped to its model class."""

    def __init__(self) -> None:
        self._classes: dict[str, type[TaskBase]] = {}
        for family in (core.TASK_TYPES, flowable.TASK_TYPES, subflow.TASK_TYPES):
            self._add(family)
        self._pending = dict(_LAZY_FAMILIES)
        self._plugins_read = False
        #: Type name → the package that registered it, for types from `yaml2dag.task_types` plugins.
        self.origins: dict[str, str] = {}

    def _add(self, family: tuple[type[TaskBase], ...]) -> None:
        self._classes.update((name, task_class) for task_class in family for name in task_class.TYPES)

    def _load(self, prefix: str) -> None:
        self._add(importlib.import_module(self._pending.pop(prefix)).TASK_TYPES)

    def _read_plugins(self) -> None:
        """Add the types of installed `yaml2dag.task_types` plugins (once; built-in names win)."""
        if self._plugins_read:
            return
        self._plugins_read = True
        self._load_all_families()
        for plugin in plugins.installed_plugins():
            for task_class in plugin.task_types:
                for name in task_class.TYPES:
                    if name not in self._classes:
                        self._classes[name] = task_class
                        self.origins[name] = plugin.origin

    def __getitem__(self, name: str) -> type[TaskBase]:
        if name not in self._classes:
            for prefix in [prefix for prefix in self._pending if name.startswith(prefix)]:
                self._load(prefix)
        if name not in self._classes:
            self._read_plugins()
        return self._classes[name]

    def _load_all_families(self) -> None:
        for prefix in list(self._pending):
            self._load(prefix)

    def _load_all(self) -> dict[str, type[TaskBase]]:
        self._read_plugins()
        return self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._load_all())

    def __len__(self) -> int:
        return len(self._load_all())


#: Every accepted type name, current and legacy, mapped to its model class.
_REGISTRY = _TaskTypes()
TASK_TYPES: Mapping[str, type[TaskBase]] = _REGISTRY


def plugin_origin(name: str) -> str | None:
    """The package that registered task type `name` through `yaml2dag.task_types`, or None if built in."""
    return _REGISTRY.origins.get(name)


#: Kestra task types that exist but that yaml2dag does not compile yet.
KNOWN_UNSUPPORTED: frozenset[str] = frozenset(
    f"io.kestra.plugin.core.flow.{name}"
    for name in (
        "ForEachItem", "Template",
    )
) | frozenset(
    f"io.kestra.core.tasks.flows.{name}"
    for name in (
        "ForEachItem", "Template",
    )
) | frozenset(
    f"io.kestra.plugin.docker.{package}{name}"
    for package in ("", "cli.")
    for name in ("Build", "Compose", "Pull", "Push", "Rm", "Tag", "Prune", "ImageLs")
) | frozenset({"io.kestra.plugin.redis.cli.RedisCLI"}) | frozenset(
    f"io.kestra.plugin.scripts.{name}"
    for name in (
        "powershell.Commands", "powershell.Script", "r.Commands", "r.Script", "julia.Commands", "julia.Script",
        "ruby.Commands", "ruby.Script", "go.Commands", "go.Script", "jbang.Commands", "jbang.Script",
        "groovy.Eval", "jython.Eval", "nashorn.Eval", "deno.Commands", "deno.Script", "bun.Commands", "bun.Script",
    )
) | frozenset(
    f"io.kestra.core.tasks.scripts.{name}" for name in ("Bash", "Python", "Node")
) | frozenset({
    "io.kestra.plugin.azure.cli.AzCLI",
}) | frozenset(
    # plugin-dbt's deprecated one-command tasks: `DbtCLI` with `commands: [dbt build]` replaces them.
    f"io.kestra.plugin.dbt.cli.{name}"
    for name in ("Build", "Run", "Test", "Compile", "Deps", "Freshness", "List", "Seed", "Snapshot", "Setup")
) | frozenset({
    "io.kestra.plugin.core.storage.PurgeStorage", "io.kestra.plugin.core.kv.PurgeKV",
    "io.kestra.plugin.core.namespace.PurgeFiles",
}) | frozenset(
    f"io.kestra.plugin.serdes.{name}"
    for name in (
        "xml.XmlToIon", "xml.IonToXml", "yaml.YamlToIon", "yaml.IonToYaml", "yaml.JsonToYaml", "yaml.YamlToJson",
        "json.JsonToJsonl", "json.JsonToToon", "json.ToonToJson", "markdown.MarkdownToHtml", "markdown.HtmlToMarkdown",
        "markdown.MarkdownToText", "protobuf.ProtobufToIon", "avro.InferAvroSchemaFromIon",
    )
) | frozenset({"io.kestra.plugin.core.http.SseRequest"}) | frozenset(
    f"io.kestra.plugin.openai.{name}" for name in ("CreateImage", "UploadFile")
) | frozenset({"io.kestra.plugin.compress.FileEncrypt", "io.kestra.plugin.compress.FileDecrypt"}) | frozenset({
    # Tasks acting on other executions: a worker cannot reach another run's task instances.
    "io.kestra.plugin.core.execution.Resume", "io.kestra.plugin.core.execution.Count",
    "io.kestra.core.tasks.executions.Counts", "io.kestra.plugin.core.execution.PurgeExecutions",
    "io.kestra.plugin.core.log.PurgeLogs",
})  # fmt: skip

__all__ = ["KNOWN_UNSUPPORTED", "TASK_TYPES", "TaskBase", "plugin_origin"]
