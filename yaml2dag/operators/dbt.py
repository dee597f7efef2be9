"""Operator of Kestra's `io.kestra.plugin.dbt.cli.DbtCLI`: dbt commands on the script task runners.

What it adds to a `shell.Commands` task, as Kestra's plugin-dbt does:

* `dbt …` commands get `--project-dir <projectDir>`, `--log-format <logFormat>` (unless `NONE`) and
  `--log-path logs`, each only when the command does not already have it;
* `profiles` is written to `profiles.yml` in the working directory (dbt reads it from there);
* dbt's JSON log lines are logged as `[Date: …] [Thread: …] [Type: …] message` at their level; a
  `warn` line ends the task WARNING; `data.stats` counts are logged as metrics;
* after the run — failed or not — `target/manifest.json` and `target/run_results.json` (under
  `projectDir`) become output files `manifest.json` / `run_results.json`, each node's result is
  logged (`model.p.m => success in 0.12s`), and `storeManifest` / `loadManifest` keep the manifest
  in the KV store (for `--defer --state`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.scripts import OutputReader, _CommandsOperator, cut
from yaml2dag.tasktypes.base import as_flag
from yaml2dag.tasktypes.dbt import DbtCLI
from yaml2dag.tasktypes.files import check_relative_path

_DBT_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING}
#: Keys of a dbt log line's `info` that Kestra leaves out of the logged line.
_KNOWN_KEYS = frozenset(
    {"category", "code", "invocation_id", "level", "log_version", "msg", "thread", "thread_name", "type", "name",
     "ts", "pid", "extra"}
)  # fmt: skip
#: run_results.json statuses logged as errors / warnings (others at INFO).
_FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
_WARNING_STATUSES = frozenset({"warn"})


class DbtOutputReader(OutputReader):
    """Read dbt's output: JSON log lines are logged by their level (Kestra's `LogService`), others at INFO."""

    def log_line(self, text: str, is_stderr: bool) -> None:
        """Log one dbt line: a JSON log record at its level (a `warn` marks the task WARNING), else at INFO."""
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            self.log.info("%s", cut(text.strip()))
            return
        info = record.get("info") if isinstance(record.get("info"), dict) else None
        source = info if info is not None else record
        thread = source.get("thread") if info is not None else record.get("thread_name")
        kind = source.get("name") if info is not None else record.get("type")
        extra = {key: value for key, value in (info or {}).items() if key not in _KNOWN_KEYS}
        message = source.get("msg")
        line = f"[Date: {source.get('ts')}] [Thread: {thread}] [Type: {kind}] " + (f"{message} " if message else "")
        line += json.dumps(extra, default=str) if extra else ""
        data = record.get("data")
        stats = data.get("stats") if isinstance(data, dict) else None
        if isinstance(stats, dict):
            for name, value in stats.items():
                self.log.info("Metric counter %s = %s", name, value)
        level = str(source.get("level") or "").lower()
        if level in ("warn", "warning"):
            self.warning = "dbt logged a warning"
        self.log.log(_DBT_LEVELS.get(level, logging.ERROR), "%s", cut(line.rstrip()))


class DbtCLIOperator(_CommandsOperator, task_type=DbtCLI):
    """`io.kestra.plugin.dbt.cli.DbtCLI`: dbt `commands` in the working directory (Process or Docker runner).

    :param commands: shell commands; `dbt …` ones get `--project-dir`, `--log-format`, `--log-path logs`.
    :param profiles: content of `profiles.yml`, written into the working directory.
    :param projectDir: the dbt project's folder, relative to the working directory.
    :param parseRunResults: keep `target/run_results.json` as an output file and log each node (default true).
    :param logFormat: JSON (default), TEXT, DEBUG or NONE (no `--log-format` added).
    :param engine: CORE or FUSION: the default image.
    :param storeManifest: `{key, namespace}`: keep `target/manifest.json` in the KV store after the run.
    :param loadManifest: `{key, namespace}`: write the KV store's manifest to `target/manifest.json` first.

    Outputs: `exitCode`, `vars`, `outputFiles` (`manifest.json`, `run_results.json` and the
    `outputFiles` globs), `taskRunner.containerId` on the Docker runner.
    """

    def _default_image(self) -> str:
        return DbtCLI.FUSION_IMAGE if str(self.engine).upper() == "FUSION" else DbtCLI.DEFAULT_IMAGE

    def _project_root(self, root: Path) -> Path:
        """The dbt project's folder under the working directory `root`."""
        if not self.projectDir:
            return root
        try:
            return root / check_relative_path(str(self.projectDir))
        except ValueError as exc:
            raise TaskFailure(f"projectDir: {exc}") from None

    def _parse_run_results(self) -> bool:
        try:
            return as_flag(self.parseRunResults, "parseRunResults")
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None

    def main_commands(self, workdir: Path, workdir_seen: str) -> list[str]:
        """Write `profiles.yml` and the loaded manifest, then the commands with Kestra's dbt flags."""
        if self.profiles:
            profile_file = workdir / "profiles.yml"
            if profile_file.exists():
                self.log.info("A 'profiles.yml' file already exists in the task working directory; it is overridden")
            profile_file.write_text(str(self.profiles), encoding="utf-8")
        project = self._project_root(workdir)
        self.log.info("dbt project working directory: %s", workdir_seen + str(project)[len(str(workdir)) :])
        if self.loadManifest:
            self._load_manifest(project)
        return [self._with_flags(str(command)) for command in self.commands]

    def _with_flags(self, command: str) -> str:
        if not command.startswith("dbt"):
            return command
        log_format = str(self.logFormat).upper()
        if self.projectDir and "--project-dir" not in command:
            command += f" --project-dir {self.projectDir}"
        if log_format != "NONE" and "--log-format" not in command:
            command += f" --log-format {log_format.lower()}"
        if "--log-path" not in command:
            command += " --log-path logs"
        return command

    def task_environment(self, workdir: Path, workdir_seen: str) -> dict[str, str]:  # noqa: D102
        return {"PYTHONUNBUFFERED": "true", "PIP_ROOT_USER_ACTION": "ignore"}

    def output_reader(self) -> OutputReader:  # noqa: D102
        return DbtOutputReader(self.log)

    def fetch_container_files(self, exit_code: int) -> bool:  # noqa: D102
        return True

    def _load_manifest(self, project: Path) -> None:
        from yaml2dag import kvstore

        settings = self.loadManifest or {}
        entry = kvstore.get(kvstore.check_namespace(settings.get("namespace")), kvstore.check_key(settings.get("key")))
        if entry is None or entry.value is None or not str(entry.value).strip():
            self.log.warning("Property `loadManifest` has been used but no manifest has been found in the KV Store")
            return
        value = entry.value if isinstance(entry.value, str) else json.dumps(entry.value)
        target = project / "target" / "manifest.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value, encoding="utf-8")
        self.log.info("Loaded the dbt manifest %s (namespace %s) into target/manifest.json", settings.get("key"),
                      settings.get("namespace"))  # fmt: skip

    def finish(self, context: Any, root: Path, outputs: dict[str, Any], reader: OutputReader) -> None:
        """Keep the manifest and run results as output files, log each node's result, store the manifest."""
        from yaml2dag.storage import upload_local

        project = self._project_root(root)
        manifest = project / "target" / "manifest.json"
        run_results = project / "target" / "run_results.json"
        files: dict[str, str] = outputs.setdefault("outputFiles", {})
        if not manifest.is_file():
            self.log.warning("dbt manifest not found at %s", manifest.relative_to(root))
        else:
            self.log.info("dbt manifest found at %s", manifest.relative_to(root))
            if self.storeManifest:
                self._store_manifest(manifest)
            files["manifest.json"] = upload_local(context, manifest, "manifest.json")
        if self._parse_run_results() and run_results.is_file():
            self._log_run_results(run_results)
            files["run_results.json"] = upload_local(context, run_results, "run_results.json")
        if not files:
            del outputs["outputFiles"]

    def _store_manifest(self, manifest: Path) -> None:
        from yaml2dag import kvstore

        settings = self.storeManifest or {}
        namespace = kvstore.check_namespace(settings.get("namespace"))
        key = kvstore.check_key(settings.get("key"))
        try:
            document = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TaskFailure(f"storeManifest: cannot read {manifest.name}: {exc}") from None
        kvstore.set_value(namespace, key, document, "JSON")
        self.log.info("Stored the dbt manifest in the KV store as %s (namespace %s)", key, namespace)

    def _log_run_results(self, path: Path) -> None:
        """Log each node of run_results.json (`unique_id => status in Ns (N failures)`, its message, metrics)."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.log.warning("Unable to read dbt's run_results.json: %s", exc)
            return
        for result in document.get("results") or [] if isinstance(document, dict) else []:
            if isinstance(result, dict):
                self._log_result(result)

    def _log_result(self, result: dict[str, Any]) -> None:
        status = str(result.get("status") or "")
        level = logging.INFO
        if status.lower() in _FAILED_STATUSES:
            level = logging.ERROR
        elif status.lower() in _WARNING_STATUSES:
            level = logging.WARNING
        summary = f"{result.get('unique_id')} => {status}"
        if isinstance(result.get("execution_time"), int | float):
            summary += f" in {result['execution_time']:.2f}s"
        failures = result.get("failures")
        if isinstance(failures, int) and failures > 0:
            summary += f" ({failures} failure{'s' if failures != 1 else ''})"
        self.log.log(level, "%s", summary)
        if str(result.get("message") or "").strip():
            self.log.log(level, "%s", cut(str(result["message"])))
        response = result.get("adapter_response")
        for key, metric in (("rows_affected", "rows.affected"), ("bytes_processed", "bytes.processed")):
            if isinstance(response, dict) and isinstance(response.get(key), int | float):
                self.log.info("Metric counter %s = %s", metric, response[key])
