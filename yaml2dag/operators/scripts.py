"""Operators for Kestra's script tasks: build the shell script, run it with a task runner, read its output.

Two runners:

* **Process** — a child process of the Airflow task, in its own process group and a private
  temporary working directory (removed afterwards). On timeout, on `on_kill` and after the script
  ends, the whole group is killed, so no background process outlives the task.
* **Docker** — a container of `containerImage`, created through the docker SDK (the machinery of
  `yaml2dag.operators.docker`: labels, image policy, host config, removal). The working directory
  and the `kestra` helper module are copied in with `put_archive` (so a remote daemon works too);
  the container is always removed, also on timeout and `on_kill`.

Both stream stdout (INFO) and stderr (ERROR) into the task log line by line with bounded memory
(a line longer than 1 MiB is cut; a logged line is cut at 10,000 characters), decode them as UTF-8
with replacement, and read Kestra's `::{"outputs":...}::`, `::{"metrics":...}::` and
`::{"logs":...}::` lines; malformed ones are logged as warnings and ignored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import uuid
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, ClassVar, cast

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.context import STATE_XCOM_KEY
from yaml2dag.operators.docker import (
    LOCAL_SOCKET,
    DockerRunOperator,
    _ContainerSettings,
    _explain,
    _labels,
    _no_timeout,
    _remove,
)
from yaml2dag.operators.flowable import FlowableStartOperator
from yaml2dag.operators.output_lines import LineSplitter
from yaml2dag.operators.python_deps import (
    cache_key,
    cache_root,
    docker_install_line,
    find_python,
    new_install_dir,
    pip_environment,
    pip_install_argv,
    publish,
    python_tag,
    uv_environment,
    uv_install_argv,
)
from yaml2dag.operators.working_files import (
    CONTAINER_MODULE_DIR,
    CONTAINER_WORKING_DIR,
    FETCHED_DIR,
    KESTRA_MODULE_DIR,
    TaskLog,
    archive_working_dir,
    fetch_working_dir,
    upload_output_files,
    write_input_files,
    write_namespace_files,
)
from yaml2dag.tasktypes.base import as_flag
from yaml2dag.tasktypes.scripts import (
    DOCKER_RUNNER,
    AnsibleCLI,
    AwsCLI,
    Clone,
    GCloudCLI,
    NodeCommands,
    NodeScript,
    PythonCommands,
    PythonScript,
    ShellCommands,
    ShellScript,
    TerraformCLI,
    WorkingDirectory,
    _ScriptTask,
    check_python_version,
)

#: The directory holding the `kestra` helper module put on the scripts' PYTHONPATH.
#: Where the working directory and the helper module are inside a container.
#: Airflow setting naming the runner of tasks without `taskRunner`: `docker` (Kestra's) or `process`.
RUNNER_SETTING = ("yaml2dag", "default_task_runner")
LOG_LINE_CHARS = 10_000
STDERR_TAIL_LINES = 20
_CHUNK = 64 * 1024
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}


# --- reading the script's output -----------------------------------------------------------------


def cut(text: str) -> str:
    """`text` as logged: at most `LOG_LINE_CHARS` characters, with the full length when cut."""
    return text if len(text) <= LOG_LINE_CHARS else f"{text[:LOG_LINE_CHARS]}… [{len(text)} characters]"


class OutputReader:
    """Log each output line and read Kestra's `::{...}::` lines into `vars` and metrics."""

    def __init__(self, log: TaskLog) -> None:
        self.log = log
        self.vars: dict[str, Any] = {}
        self.stderr_lines = 0
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        #: Why the task ends WARNING when it succeeds (None: it ends SUCCESS).
        self.warning: str | None = None

    def line(self, text: str, is_stderr: bool) -> None:
        """Consume one line of stdout or stderr."""
        stripped = text.strip()
        if stripped.startswith("::{") and stripped.endswith("}::"):
            self._message(stripped)
            return
        if is_stderr:
            self.stderr_lines += 1
            self.stderr_tail.append(text[:1000])
        self.log_line(text, is_stderr)

    def log_line(self, text: str, is_stderr: bool) -> None:
        """Log an ordinary output line: stdout at INFO, stderr at ERROR (cut at `LOG_LINE_CHARS`)."""
        self.log.log(logging.ERROR if is_stderr else logging.INFO, "%s", cut(text))

    def _message(self, line: str) -> None:
        try:
            message = json.loads(line[2:-2])
        except json.JSONDecodeError as exc:
            self.log.warning("Invalid Kestra line ignored (%s): %s", exc, line[:LOG_LINE_CHARS])
            return
        if not isinstance(message, dict):
            self.log.warning("Invalid Kestra line ignored (not a JSON object): %s", line[:LOG_LINE_CHARS])
            return
        outputs = message.get("outputs")
        if isinstance(outputs, dict):
            self.vars.update(outputs)
        elif outputs is not None:
            self.log.warning("Invalid Kestra line ignored (`outputs` is not an object): %s", line[:LOG_LINE_CHARS])
        for metric in message.get("metrics") or []:
            if isinstance(metric, dict):
                self.log.info(
                    "Metric %s %s = %s %s",
                    metric.get("type", "counter"),
                    metric.get("name"),
                    metric.get("value"),
                    json.dumps(metric.get("tags") or {}),
                )
        for entry in message.get("logs") or []:
            if isinstance(entry, dict):
                level = _LEVELS.get(str(entry.get("level", "INFO")).upper(), logging.ERROR)
                self.log.log(level, "%s", entry.get("message", ""))
        if message.get("assets") is not None:
            self.log.info("Assets (not tracked by yaml2dag): %s", json.dumps(message["assets"])[:LOG_LINE_CHARS])


# --- the operators -------------------------------------------------------------------------------


class _ScriptOperator(KestraOperator):
    """Shared by every script task: the script, the runner, the outputs.

    :param interpreter: the command the script is passed to (default `/bin/sh -c`).
    :param beforeCommands: commands run first, in the same script.
    :param env: environment variables.
    :param containerImage: the Docker runner's image (default per task type).
    :param taskRunner: `{type: io.kestra.plugin.core.runner.Process}` or the Docker runner with its
        properties; default: the Airflow setting `[yaml2dag] default_task_runner`.
    :param warningOnStdErr: a successful script that wrote to stderr ends WARNING.
    :param failFast: `set -e` first (default true).
    :param targetOS: AUTO or LINUX.
    """

    ui_color = "#fff3e0"
    template_fields_renderers: ClassVar[dict[str, str]] = {"env": "json", "taskRunner": "json"}

    #: Set by the planner inside a WorkingDirectory: the id of the directory the task shares.
    working_directory: str | None = None
    _process: subprocess.Popen[bytes] | None = None
    _client: Any = None
    _container_id: str | None = None
    _workdir: str | None = None
    _extra_env: dict[str, str] | None = None

    # -- what each task type runs

    def main_commands(self, workdir: Path, workdir_seen: str) -> list[str]:
        """The commands after `beforeCommands`; files go to `workdir`, which the script sees as `workdir_seen`."""
        raise NotImplementedError

    def task_environment(self, workdir: Path, workdir_seen: str) -> dict[str, str]:
        """Environment variables the task type adds (a task's `env` wins over them)."""
        return {}

    def output_reader(self) -> OutputReader:
        """The reader of the script's output lines."""
        return OutputReader(self.log)

    def finish(self, context: Any, root: Path, outputs: dict[str, Any], reader: OutputReader) -> None:
        """After the script ran (failed or not): add to `outputs` from the working directory `root`."""

    def fetch_container_files(self, exit_code: int) -> bool:
        """Whether the Docker runner copies the container's working directory back."""
        return bool((self.outputFiles and exit_code == 0) or self.working_directory)

    # -- Kestra context: `{{ workingDir }}`

    def kestra_context(self, context: Any) -> dict[str, Any]:
        """Kestra's variables plus `workingDir`, the directory the script runs in."""
        variables = super().kestra_context(context)
        if "workingDir" not in variables:
            variables["workingDir"] = CONTAINER_WORKING_DIR if self._runner() == "docker" else self._host_workdir()
        return variables

    def _host_workdir(self) -> str:
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="yaml2dag-script-")
        return self._workdir

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render as Kestra does, then register registry passwords with Airflow's secrets masker."""
        super().render_template_fields(context, jinja_env)
        from airflow.sdk.log import mask_secret

        credentials = (self.taskRunner or {}).get("credentials") or {}
        for name in ("password", "registryToken", "identityToken", "auth"):
            if credentials.get(name):
                mask_secret(credentials[name])

    def _runner(self) -> str:
        runner = self.taskRunner or {}
        if runner.get("type"):
            return "docker" if runner["type"] == DOCKER_RUNNER else "process"
        from airflow.configuration import conf

        name = str(conf.get(*RUNNER_SETTING, fallback="docker")).strip().lower()
        if name not in ("docker", "process"):
            raise TaskFailure(f"Airflow setting [yaml2dag] default_task_runner is `{name}`: use docker or process")
        return name

    # -- running

    def execute(self, context: Any) -> Any:
        """Run the task, then remove its working directory whatever happened."""
        try:
            return super().execute(context)
        finally:
            workdir, self._workdir = self._workdir, None
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        try:
            fail_fast = as_flag(self.failFast, "failFast")
            warn_on_stderr = as_flag(self.warningOnStdErr, "warningOnStdErr")
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        runner = self._runner()
        workdir = Path(self._host_workdir())
        seen = CONTAINER_WORKING_DIR if runner == "docker" else str(workdir)
        if self.working_directory:
            restore_directory(context, self.working_directory, workdir)
        write_namespace_files(self.namespaceFiles, self.flow.namespace, workdir, self.log)
        write_input_files(self.inputFiles, workdir)
        requirements = self._requirements()
        lines = ["set -e"] if fail_fast else []
        if requirements and runner == "docker":
            lines.append(docker_install_line(requirements, use_uv=self._package_manager() == "UV"))
        lines += [str(line) for line in self.beforeCommands or []]
        lines += self.main_commands(workdir, seen)
        self._extra_env = self.task_environment(workdir, seen)
        argv = [str(part) for part in self.interpreter] + ["\n".join(lines)]
        reader = self.output_reader()
        outputs: dict[str, Any] = {}
        if runner == "docker":
            exit_code, container_id = self._run_docker(argv, workdir, reader, context)
            outputs["taskRunner"] = {"containerId": container_id}
        else:
            exit_code = self._run_process(argv, workdir, reader, requirements)
        outputs = {"exitCode": exit_code, "vars": reader.vars, **outputs}
        if self.working_directory:
            save_directory(context, self.working_directory, self._output_root(workdir))
        if self.outputFiles and exit_code == 0:
            outputs["outputFiles"] = upload_output_files(context, self.outputFiles, self._output_root(workdir))
        self.finish(context, self._output_root(workdir), outputs, reader)
        if exit_code != 0:
            # Kestra records a failed script's outputs: push them before failing the attempt.
            context["ti"].xcom_push(key="return_value", value=outputs)
            tail = "\n".join(reader.stderr_tail)
            raise TaskFailure(
                f"Command failed with exit code {exit_code}" + (f"; stderr ends with:\n{tail}" if tail else "")
            )
        if warn_on_stderr and reader.stderr_lines:
            reader.warning = f"The script wrote {reader.stderr_lines} line(s) to stderr and warningOnStdErr is set"
        if reader.warning:
            self.log.warning("%s: it ends WARNING", reader.warning)
            if not self.allow_warning:
                context["ti"].xcom_push(key=STATE_XCOM_KEY, value="WARNING")
        return outputs

    def _default_image(self) -> str:
        """The Docker runner's image when `containerImage` is not set: the task type's `DEFAULT_IMAGE`."""
        declaration = self.declaration
        assert declaration is not None and issubclass(declaration, _ScriptTask), "a script task's declaration"
        return declaration.DEFAULT_IMAGE

    def _environment(self, base: dict[str, str], module_dir: str, workdir: str) -> dict[str, str]:
        env = dict(base)
        env.update(self._extra_env or {})
        env.update({str(key): str(value) for key, value in (self.env or {}).items()})
        env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{module_dir}" if env.get("PYTHONPATH") else module_dir
        env.setdefault("WORKING_DIR", workdir)
        return env

    def _requirements(self) -> list[str]:
        """The Python `dependencies` (rendered), or [] for other task types."""
        return [str(item) for item in getattr(self, "dependencies", None) or [] if str(item).strip()]

    def _run_process(self, argv: list[str], workdir: Path, reader: OutputReader, requirements: list[str]) -> int:
        env = self._environment(dict(os.environ), str(KESTRA_MODULE_DIR), str(workdir))
        env = self.process_environment(env, workdir)
        if shutil.which(argv[0], path=env.get("PATH")) is None:
            raise TaskFailure(f"interpreter `{argv[0]}` not found on the Airflow worker (PATH={env.get('PATH', '')})")
        if requirements:
            target = self._install_dependencies(requirements, env)
            env["PYTHONPATH"] = f"{target}:{env['PYTHONPATH']}"
        self.log.info("Running the script on the Airflow worker (Process runner) in %s", workdir)
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._process = process
        try:
            _pump_pipes(process, reader)
            return process.wait()
        finally:
            self._process = None
            _kill_group(process)

    def process_environment(self, env: dict[str, str], workdir: Path) -> dict[str, str]:
        """The Process runner's environment (Python tasks put the `pythonVersion` interpreter first on PATH)."""
        return env

    def _package_manager(self) -> str:
        """`packageManager` of the Python tasks (PIP or UV); PIP for the others."""
        return str(getattr(self, "packageManager", None) or "PIP").upper()

    def _install_argv(self, python: str, target: Path, requirements: list[str], env: dict[str, str]) -> list[str]:
        """Pip's install command, or uv's for `packageManager: UV` when the worker has uv (else pip, logged)."""
        if self._package_manager() == "UV":
            uv = shutil.which("uv", path=env.get("PATH"))
            if uv:
                env.update(uv_environment(env))
                return uv_install_argv(uv, python, target, requirements)
            self.log.warning("packageManager is UV but `uv` is not on the Airflow worker's PATH: installing with pip")
        return pip_install_argv(python, target, requirements)

    def _install_dependencies(self, requirements: list[str], env: dict[str, str]) -> Path:
        """Install `requirements` with the worker's Python into the shared cache (once); return the folder."""
        python = shutil.which("python", path=env.get("PATH")) or shutil.which("python3", path=env.get("PATH"))
        if python is None:
            raise TaskFailure("`dependencies` need `python` or `python3` on the Airflow worker: neither found")
        pip_env = {**env, "PYTHONPATH": ""}
        try:
            tag = python_tag(python, pip_env)
        except RuntimeError as exc:
            raise TaskFailure(str(exc)) from None
        root = cache_root()
        final = root / cache_key(requirements, tag)
        if final.is_dir():
            self.log.info("Reusing the cached Python dependencies %s in %s", requirements, final)
            return final
        installing = new_install_dir(root)
        self.log.info("Installing the Python dependencies %s with %s", requirements, python)
        pip_reader = OutputReader(self.log)
        process = subprocess.Popen(
            self._install_argv(python, installing, requirements, pip_env),
            env=pip_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._process = process
        try:
            _pump_pipes(process, pip_reader)
            code = process.wait()
        except BaseException:  # timeout or kill: never leave a half install behind
            shutil.rmtree(installing, ignore_errors=True)
            raise
        finally:
            self._process = None
            _kill_group(process)
        if code != 0:
            shutil.rmtree(installing, ignore_errors=True)
            tail = "\n".join(pip_reader.stderr_tail)
            raise TaskFailure(f"pip could not install the dependencies {requirements} (exit code {code}):\n{tail}")
        if publish(installing, final):
            self.log.info("Python dependencies installed and cached in %s", final)
        else:
            self.log.info("Another task cached the same Python dependencies first: reusing %s", final)
        return final

    def _run_docker(self, argv: list[str], workdir: Path, reader: OutputReader, context: Any) -> tuple[int, str]:
        from docker.errors import APIError
        from docker.utils.socket import frames_iter

        if getattr(self, "pythonVersion", None):
            self.log.info("pythonVersion %s: on the Docker runner the image's Python runs", self.pythonVersion)
        runner = dict(self.taskRunner or {})
        spec = _DockerSpec(runner, str(self.containerImage or self._default_image()), self.log)
        try:
            privileged = as_flag(runner["privileged"], "privileged") if runner.get("privileged") is not None else None
            settings = _ContainerSettings.build(spec.as_docker_run(), privileged)
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        client = _docker_client(runner.get("host"))
        try:
            image = DockerRunOperator._image_name(spec.as_docker_run())
            DockerRunOperator._ensure_image(spec.as_docker_run(), client, image)
            base = pip_environment(dict(os.environ)) if self._requirements() else {}
            base = uv_environment(base) if base and self._package_manager() == "UV" else base
            env = self._environment(base, CONTAINER_MODULE_DIR, CONTAINER_WORKING_DIR)
            try:
                created = client.create_container(
                    image,
                    command=argv,
                    entrypoint=[str(part) for part in runner["entryPoint"]] if runner.get("entryPoint") else [""],
                    environment=env,
                    user=runner.get("user") or None,
                    labels=_labels(self, context),
                    working_dir=CONTAINER_WORKING_DIR,
                    host_config=client.create_host_config(**settings.host_config),
                )
            except (APIError, ValueError, TypeError) as exc:
                raise TaskFailure(f"Docker could not create the container: {_explain(exc)}") from None
            container_id = str(created["Id"])
            self._client, self._container_id = client, container_id
            try:
                client.put_archive(container_id, "/", archive_working_dir(workdir))
                sock = client.attach_socket(container_id, params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 1})
                _no_timeout(sock)
                try:
                    client.start(container_id)
                except APIError as exc:
                    raise TaskFailure(f"Docker could not start the container: {_explain(exc)}") from None
                self.log.info("Running the script in container %s from %s (Docker runner)", container_id[:12], image)
                try:
                    _pump_frames(frames_iter(sock, tty=False), reader)
                finally:
                    sock.close()
                exit_code = int(client.wait(container_id).get("StatusCode", -1))
                if self.fetch_container_files(exit_code):
                    fetch_working_dir(client, container_id, workdir / FETCHED_DIR)
            finally:
                self._container_id = None
                _remove(client, container_id, self.log)
        finally:
            client.close()
        return exit_code, container_id

    def _output_root(self, workdir: Path) -> Path:
        """Where the script's working directory is on the worker once it ended."""
        fetched = workdir / FETCHED_DIR / Path(CONTAINER_WORKING_DIR).name
        return fetched if fetched.is_dir() else workdir

    def on_kill(self) -> None:
        """The task was killed or timed out: kill the script's process group, or its container."""
        process = self._process
        if process is not None:
            self.log.warning("Task killed: killing the script's process group %s", process.pid)
            _kill_group(process)
        container_id, client = self._container_id, self._client
        if container_id is not None and client is not None:
            self.log.warning("Task killed: removing container %s", container_id[:12])
            _remove(client, container_id, self.log)


class _ScriptFileOperator(_ScriptOperator):
    """A `Script` task: the script is written to a file in the working directory and run by `PROGRAM`."""

    #: The program that runs the script file, and the file's extension.
    PROGRAM: ClassVar[str] = "python"
    SUFFIX: ClassVar[str] = ".py"

    def main_commands(self, workdir: Path, workdir_seen: str) -> list[str]:  # noqa: D102
        name = f"script_{uuid.uuid4().hex[:12]}{self.SUFFIX}"
        (workdir / name).write_text(str(self.script), encoding="utf-8")
        return [f"{self.program(workdir_seen)} {shlex.quote(f'{workdir_seen}/{name}')}"]

    def program(self, workdir_seen: str) -> str:
        """The program running the script file."""
        return self.PROGRAM


class _PythonVersionMixin:
    """`pythonVersion` on the Process runner: that interpreter is `python` / `python3` for the script and pip."""

    pythonVersion: str | None
    log: Any

    def process_environment(self, env: dict[str, str], workdir: Path) -> dict[str, str]:
        """Put a folder linking `python` and `python3` to the `pythonVersion` interpreter first on PATH."""
        if not self.pythonVersion:
            return env
        try:
            version = check_python_version(str(self.pythonVersion))
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        python = find_python(version, env)
        if python is None:
            raise TaskFailure(
                f"Python {version} (pythonVersion) not found on the Airflow worker: no `python{version}` on PATH "
                "reports it, nor does `uv python find`; install it on the worker or use the Docker runner"
            )
        links = workdir / FETCHED_DIR / "python-bin"
        links.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            (links / name).symlink_to(python)
        self.log.info("pythonVersion %s: running %s", version, python)
        return {**env, "PATH": f"{links}:{env.get('PATH', '')}"}


class PythonScriptOperator(_PythonVersionMixin, _ScriptFileOperator, task_type=PythonScript):
    """`io.kestra.plugin.scripts.python.Script`: run `script` with `python` (`python3` when the worker has no `python`).

    Outputs: `exitCode`, `vars` (from `Kestra.outputs({...})` / `::{"outputs":...}::` lines), and
    `taskRunner.containerId` on the Docker runner.
    """

    def program(self, workdir_seen: str) -> str:  # noqa: D102
        if self._runner() == "process" and shutil.which("python") is None and shutil.which("python3"):
            return "python3"
        return "python"


class ShellScriptOperator(_ScriptOperator, task_type=ShellScript):
    """`io.kestra.plugin.scripts.shell.Script`: run `script` in the interpreter (after `beforeCommands`)."""

    def main_commands(self, workdir: Path, workdir_seen: str) -> list[str]:  # noqa: D102
        return [str(self.script)]


class NodeScriptOperator(_ScriptFileOperator, task_type=NodeScript):
    """`io.kestra.plugin.scripts.node.Script`: run `script` with `node`."""

    PROGRAM: ClassVar[str] = "node"
    SUFFIX: ClassVar[str] = ".js"


class _CommandsOperator(_ScriptOperator):
    """A `Commands` task: the commands, one per line of the script."""

    def main_commands(self, workdir: Path, workdir_seen: str) -> list[str]:  # noqa: D102
        return [str(command) for command in self.commands]


class PythonCommandsOperator(_PythonVersionMixin, _CommandsOperator, task_type=PythonCommands):
    """`io.kestra.plugin.scripts.python.Commands`: run shell `commands` (such as `python main.py`)."""


class ShellCommandsOperator(_CommandsOperator, task_type=ShellCommands):
    """`io.kestra.plugin.scripts.shell.Commands`: run shell `commands`."""


class NodeCommandsOperator(_CommandsOperator, task_type=NodeCommands):
    """`io.kestra.plugin.scripts.node.Commands`: run shell `commands` (such as `node main.js`)."""


class TerraformCLIOperator(_CommandsOperator, task_type=TerraformCLI):
    """`io.kestra.plugin.terraform.cli.TerraformCLI`: shell `commands`; default image `hashicorp/terraform`."""


class AnsibleCLIOperator(_CommandsOperator, task_type=AnsibleCLI):
    """`io.kestra.plugin.ansible.cli.AnsibleCLI`: shell `commands`; default image `cytopia/ansible:latest-tools`."""


class AwsCLIOperator(_CommandsOperator, task_type=AwsCLI):
    """`io.kestra.plugin.aws.cli.AwsCLI`: shell `commands`; default image `amazon/aws-cli`.

    As in Kestra: `accessKeyId`, `secretKeyId`, `sessionToken`, `region`, `endpointOverride` and
    `outputFormat` become AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
    AWS_DEFAULT_REGION, AWS_ENDPOINT_URL and AWS_DEFAULT_OUTPUT; `env` wins over them.
    """

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render, mask the secret key and token, and put the AWS settings under `env`."""
        super().render_template_fields(context, jinja_env)
        from airflow.sdk.log import mask_secret

        settings = {
            "AWS_ACCESS_KEY_ID": self.accessKeyId,
            "AWS_SECRET_ACCESS_KEY": self.secretKeyId,
            "AWS_SESSION_TOKEN": self.sessionToken,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpointOverride,
            "AWS_DEFAULT_OUTPUT": str(self.outputFormat).lower(),
        }
        for secret in (self.secretKeyId, self.sessionToken):
            if secret:
                mask_secret(secret)
        self.env: dict[str, Any] = {**{key: value for key, value in settings.items() if value}, **(self.env or {})}


class GCloudCLIOperator(_CommandsOperator, task_type=GCloudCLI):
    """`io.kestra.plugin.gcp.cli.GCloudCLI`: shell `commands`; default image `google/cloud-sdk`.

    As in Kestra: `serviceAccount` (the JSON key) is written to a file in the working directory (in
    yaml2dag's own folder, kept out of output files and WorkingDirectory snapshots) named by
    GOOGLE_APPLICATION_CREDENTIALS and CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE (the key is masked in
    logs), `projectId` becomes CLOUDSDK_CORE_PROJECT; `env` wins over both.
    """

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render, then mask the service account key (whole, and its `private_key`)."""
        super().render_template_fields(context, jinja_env)
        if self.serviceAccount:
            from airflow.sdk.log import mask_secret

            mask_secret(str(self.serviceAccount))
            with contextlib.suppress(json.JSONDecodeError, TypeError, AttributeError):
                private_key = json.loads(str(self.serviceAccount)).get("private_key")
                if private_key:
                    mask_secret(str(private_key))

    def task_environment(self, workdir: Path, workdir_seen: str) -> dict[str, str]:  # noqa: D102
        env: dict[str, str] = {}
        if self.serviceAccount:
            # In yaml2dag's own folder of the working directory: never an output file nor in a snapshot.
            name = f"{FETCHED_DIR}/gcloud-service-account-{uuid.uuid4().hex[:12]}.json"
            key_file = workdir / name
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(str(self.serviceAccount), encoding="utf-8")
            seen = f"{workdir_seen}/{name}"
            env.update(GOOGLE_APPLICATION_CREDENTIALS=seen, CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=seen)
        if self.projectId:
            env["CLOUDSDK_CORE_PROJECT"] = str(self.projectId)
        return env


class CloneOperator(KestraOperator, task_type=Clone):
    """`io.kestra.plugin.git.Clone`: `git clone` into the working directory (of its WorkingDirectory).

    Uses the `git` command of the worker. `username`/`password` go to git as an HTTP Basic
    `Authorization` header through the environment (never the command line, never the log; the
    password is masked). Output `directory`: the clone's folder, relative to the working directory.
    """

    ui_color = "#fff3e0"
    working_directory: str | None = None

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render as Kestra does, then register the password with Airflow's secrets masker."""
        super().render_template_fields(context, jinja_env)
        if self.password:
            from airflow.sdk.log import mask_secret

            mask_secret(self.password)

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        import base64

        from yaml2dag.tasktypes.files import check_relative_path

        git = shutil.which("git")
        if git is None:
            raise TaskFailure("`git` is not installed on the Airflow worker")
        directory = str(self.directory or ".")
        try:
            if directory != ".":
                check_relative_path(directory)
            submodules = as_flag(self.cloneSubmodules, "cloneSubmodules") if self.cloneSubmodules is not None else False
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        workdir = Path(tempfile.mkdtemp(prefix="yaml2dag-clone-"))
        try:
            if self.working_directory:
                restore_directory(context, self.working_directory, workdir)
            command = [git, "clone", "--depth", str(self.depth or 1)]
            if self.branch:
                command += ["--branch", str(self.branch)]
            if submodules:
                command += ["--recurse-submodules", "--shallow-submodules"]
            command += ["--", str(self.url), directory]
            env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
            if self.username or self.password:
                token = base64.b64encode(f"{self.username or ''}:{self.password or ''}".encode()).decode()
                from airflow.sdk.log import mask_secret

                mask_secret(token)
                env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader")
                env["GIT_CONFIG_VALUE_0"] = f"Authorization: Basic {token}"
            self.log.info("Cloning %s%s into %s", self.url, f" ({self.branch})" if self.branch else "", directory)
            done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
            for line in (done.stdout + done.stderr).splitlines():
                self.log.info("git: %s", line)
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-3:]
                raise TaskFailure(f"git clone of {self.url} failed (exit code {done.returncode}): {' '.join(tail)}")
            if self.working_directory:
                save_directory(context, self.working_directory, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return {"directory": directory}


class WorkingDirectoryOperator(FlowableStartOperator, task_type=WorkingDirectory):
    """Start of `io.kestra.plugin.core.flow.WorkingDirectory`: create the shared directory.

    Writes `inputFiles` into a fresh folder and stores it as the directory's snapshot; each child
    then restores the snapshot, runs, and stores the folder again (see `restore_directory`).
    """

    working_directory: str | None = None

    def run(self, context: Any) -> None:  # noqa: D102
        workdir = Path(tempfile.mkdtemp(prefix="yaml2dag-workingdir-"))
        try:
            write_namespace_files(self.namespaceFiles, self.flow.namespace, workdir, self.log)
            write_input_files(self.inputFiles, workdir)
            save_directory(context, str(self.working_directory), workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


# --- shared working directories --------------------------------------------------------------------


def snapshot_uri(context: Any, directory_id: str) -> str:
    """The `kestra://` URI of a WorkingDirectory's snapshot in this run (one per ForEach iteration)."""
    from urllib.parse import quote

    from yaml2dag.storage import execution_uri, run_location

    namespace, flow_id, run_id, _, _ = run_location(context)
    index = getattr(context["ti"], "map_index", -1)
    suffix = "" if index is None or index < 0 else f"-{index}"
    return f"{execution_uri(namespace, flow_id, run_id)}/working-directories/{quote(directory_id)}{suffix}.tar.gz"


def save_directory(context: Any, directory_id: str, root: Path) -> None:
    """Store `root` (without yaml2dag's own folders) as the WorkingDirectory's snapshot."""
    from yaml2dag.storage import copy_stream, open_uri_write

    with tempfile.TemporaryFile() as buffer:
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(root.iterdir()):
                if path.name != FETCHED_DIR:
                    tar.add(path, arcname=path.name)
        buffer.seek(0)
        with open_uri_write(snapshot_uri(context, directory_id)) as target:
            copy_stream(buffer, target)


def restore_directory(context: Any, directory_id: str, workdir: Path) -> None:
    """Unpack the WorkingDirectory's snapshot into `workdir` (links and paths checked by tar's `data` filter)."""
    from yaml2dag.storage import copy_stream, open_read

    with tempfile.TemporaryFile() as buffer:
        with open_read(snapshot_uri(context, directory_id)) as source:
            copy_stream(source, buffer)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer, mode="r:gz") as tar:
            tar.extractall(workdir, filter="data")


# --- helpers -------------------------------------------------------------------------------------


class _DockerSpec:
    """The Docker runner's properties under the names the Docker Run machinery reads (its image methods)."""

    _image_name = DockerRunOperator._image_name
    _ensure_image = DockerRunOperator._ensure_image
    _pull = DockerRunOperator._pull
    _auth = DockerRunOperator._auth

    def __init__(self, runner: dict[str, Any], image: str, log: TaskLog) -> None:
        self.containerImage = image
        self.log = log
        self.pullPolicy = runner.get("pullPolicy") or "IF_NOT_PRESENT"
        self.credentials = runner.get("credentials")
        self.portBindings = None
        self.volumes = runner.get("volumes")
        self.networkMode = runner.get("networkMode")
        self.extraHosts = runner.get("extraHosts")
        self.cpu = runner.get("cpu")
        self.memory = runner.get("memory")
        self.shmSize = runner.get("shmSize")

    def as_docker_run(self) -> DockerRunOperator:
        """The spec where Docker Run's machinery expects its operator: it reads only the attributes set here."""
        return cast(DockerRunOperator, self)


def _docker_client(host: str | None) -> Any:
    """A docker `APIClient` for `host`, else DOCKER_HOST, else the local socket (via the provider's hook)."""
    from airflow.providers.docker.hooks.docker import DockerHook
    from airflow.sdk.exceptions import AirflowException
    from docker.errors import DockerException

    url = host or os.environ.get("DOCKER_HOST") or LOCAL_SOCKET
    try:
        return DockerHook(docker_conn_id=None, base_url=url).get_conn()
    except (AirflowException, DockerException) as exc:
        raise TaskFailure(f"cannot reach the Docker daemon at {url}: {exc}") from None


def _pump_pipes(process: subprocess.Popen[bytes], reader: OutputReader) -> None:
    """Read stdout and stderr as they come until both close, or the script ended and went quiet."""
    streams: dict[IO[bytes], tuple[bool, LineSplitter]] = {
        process.stdout: (False, LineSplitter()),  # type: ignore[dict-item]
        process.stderr: (True, LineSplitter()),  # type: ignore[dict-item]
    }
    with selectors.DefaultSelector() as selector:
        for stream in streams:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            events = selector.select(timeout=0.5)
            if not events and process.poll() is not None:
                break  # the script is done; a background child still holds the pipes
            for key, _ in events:
                data = os.read(key.fd, _CHUNK)
                is_stderr, splitter = streams[key.fileobj]  # type: ignore[index]
                if not data:
                    selector.unregister(key.fileobj)
                    lines: Iterable[str] = splitter.flush()
                else:
                    lines = splitter.feed(data)
                for line in lines:
                    reader.line(line, is_stderr)
    for stream, (is_stderr, splitter) in streams.items():
        for line in splitter.flush():
            reader.line(line, is_stderr)
        stream.close()


def _pump_frames(frames: Iterable[tuple[int, bytes]], reader: OutputReader) -> None:
    """Read Docker's multiplexed frames (stream 1 stdout, 2 stderr) line by line."""
    splitters = {False: LineSplitter(), True: LineSplitter()}
    for stream, data in frames:
        is_stderr = stream == 2
        for line in splitters[is_stderr].feed(data):
            reader.line(line, is_stderr)
    for is_stderr, splitter in splitters.items():
        for line in splitter.flush():
            reader.line(line, is_stderr)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the script's process group (the script and anything it started), then reap the script."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
