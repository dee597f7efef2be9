"""Kestra's dbt CLI task (plugin-dbt): `io.kestra.plugin.dbt.cli.DbtCLI` on the script task runners.

A `DbtCLI` task is a script task (same runners, files and outputs as `shell.Commands`) whose
`dbt …` commands get `--project-dir`, `--log-format` and `--log-path logs` as in Kestra; `profiles`
becomes `profiles.yml` in the working directory; dbt's JSON log lines are logged by level (a `warn`
line ends the task WARNING); `target/run_results.json` and `target/manifest.json` become output files.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from yaml2dag.tasktypes.base import Flag, KestraModel, Text, choice, rendered
from yaml2dag.tasktypes.scripts import _ScriptTask

_DBT = "yaml2dag.operators.dbt"


class KvStoreManifest(KestraModel):
    """`storeManifest` / `loadManifest`: where `manifest.json` is kept in the KV store."""

    key: Text = Field(description="KV key holding the manifest.")
    namespace: Text = Field(description="KV namespace holding the manifest.")


class DbtCLI(_ScriptTask):
    """`io.kestra.plugin.dbt.cli.DbtCLI`: run dbt `commands` (default image `ghcr.io/kestra-io/dbt`)."""

    TYPES: ClassVar = ("io.kestra.plugin.dbt.cli.DbtCLI",)
    OPERATOR: ClassVar = f"{_DBT}:DbtCLIOperator"
    DEFAULT_IMAGE: ClassVar[str] = "ghcr.io/kestra-io/dbt"
    #: The image of `engine: FUSION` when `containerImage` is not set.
    FUSION_IMAGE: ClassVar[str] = "ghcr.io/kestra-io/dbt-fusion"

    commands: list[Text] = rendered(
        min_length=1,
        description="Shell commands; those starting with `dbt` get `--project-dir`, `--log-format` and `--log-path`.",
    )
    profiles: Text | None = rendered(None, description="Content of `profiles.yml`, written into the working directory.")
    projectDir: Text | None = rendered(
        None, description="The dbt project's folder, relative to the working directory (`--project-dir`)."
    )
    parseRunResults: Flag = rendered(
        True, description="Read `target/run_results.json` (logged per node) and keep it as an output file."
    )
    logFormat: choice("JSON", "TEXT", "DEBUG", "NONE") = rendered(  # type: ignore[valid-type]
        "JSON", description="`--log-format` added to dbt commands (NONE: not added); JSON lines are logged by level."
    )
    engine: choice("CORE", "FUSION") = rendered(  # type: ignore[valid-type]
        "CORE", description="Default image: CORE → ghcr.io/kestra-io/dbt, FUSION → ghcr.io/kestra-io/dbt-fusion."
    )
    storeManifest: KvStoreManifest | None = rendered(
        None, description="Store `target/manifest.json` in the KV store (`key`, `namespace`) after the run."
    )
    loadManifest: KvStoreManifest | None = rendered(
        None, description="Write the KV store's manifest to `target/manifest.json` before the run (for `--defer`)."
    )
    alertWebhook: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = _ScriptTask.UNSUPPORTED | {"alertWebhook"}


TASK_TYPES: tuple[type[DbtCLI], ...] = (DbtCLI,)
