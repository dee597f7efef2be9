"""Operators for Kestra's Docker tasks (Run, Stop), on the docker SDK through the Airflow docker provider.

The daemon is the task's `host` (a Docker API URL such as `tcp://docker:2375`), else the Airflow
connection named by `connId` (its host is that URL), else `DOCKER_HOST`, else the local socket.
The `docker` package is imported only when a task runs, so DAG parsing stays light.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.output_lines import LineSplitter
from yaml2dag.operators.working_files import (
    CONTAINER_WORKING_DIR,
    FETCHED_DIR,
    archive_working_dir,
    fetch_working_dir,
    upload_output_files,
    write_input_files,
    write_namespace_files,
)
from yaml2dag.tasktypes.base import as_flag
from yaml2dag.tasktypes.docker import Run, Stop, parse_port_binding, parse_size

LOCAL_SOCKET = "unix:///var/run/docker.sock"
#: Labels put on every container, so a run's containers can be found (and cleaned up) later.
LABEL_DAG_ID = "io.yaml2dag.dag-id"
LABEL_RUN_ID = "io.yaml2dag.run-id"
LABEL_TASK_ID = "io.yaml2dag.task-id"
LABEL_TRY_NUMBER = "io.yaml2dag.try-number"

_OUTPUT_LINE = re.compile(r"^::(\{.*\})::$")
_DOCKER_HUB = frozenset({"registry-1.docker.io", "index.docker.io", "docker.io"})
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}
_SECRET_CREDENTIALS = ("password", "registryToken", "identityToken", "auth")
_MEMORY_ARGUMENTS = {"memory": "mem_limit", "memorySwap": "memswap_limit", "memoryReservation": "mem_reservation"}


class _DockerOperator(KestraOperator):
    """Shared by the Docker operators: which daemon to talk to, and the client for it.

    :param host: Docker API URL (`unix:///var/run/docker.sock`, `tcp://host:2375`...).
    :param connId: Airflow connection whose host is the Docker API URL, used when `host` is unset.
    """

    ui_color = "#e3f2fd"

    def daemon_url(self) -> str:
        """The Docker API URL this task uses: `host`, else the connection, else DOCKER_HOST or the socket."""
        if self.host:
            return self.host
        if self.connId:
            from airflow.sdk import BaseHook

            connection = BaseHook.get_connection(self.connId)
            if not connection.host:
                raise TaskFailure(f"Airflow connection `{self.connId}` has no host (the Docker API URL)")
            if "://" in connection.host:
                return connection.host
            return f"tcp://{connection.host}:{connection.port or 2375}"
        return os.environ.get("DOCKER_HOST") or LOCAL_SOCKET

    def docker_client(self) -> Any:
        """A `docker.APIClient` for the daemon (API version negotiated), via the provider's DockerHook."""
        from airflow.providers.docker.hooks.docker import DockerHook
        from airflow.sdk.exceptions import AirflowException
        from docker.errors import DockerException

        url = self.daemon_url()
        try:
            return DockerHook(docker_conn_id=None, base_url=url).get_conn()
        except (AirflowException, DockerException) as exc:
            raise TaskFailure(f"cannot reach the Docker daemon at {url}: {exc}") from None


class DockerRunOperator(_DockerOperator, task_type=Run):
    """`io.kestra.plugin.docker.cli.Run` (alias `io.kestra.plugin.docker.Run`): run a container.

    With `wait` (the default) the container's stdout (INFO) and stderr (ERROR) are streamed into
    the task log as it runs, `::{"outputs":{...}}::` lines become output `vars`, a non-zero exit
    code fails the task (its outputs are still recorded) and the container is always removed,
    also when the task is killed or times out. With `wait: false` the container is started and
    left running (stop it with a Stop task). Outputs: `exitCode`, `vars`, `taskRunner.containerId`.

    :param host: Docker API URL; default: the `connId` connection, DOCKER_HOST, the local socket.
    :param connId: Airflow connection whose host is the Docker API URL.
    :param credentials: registry login (`registry`, `username`, `password`, `registryToken`,
        `identityToken`, `auth`), used when the image is pulled.
    :param containerImage: the image; a non-Docker-Hub `credentials.registry` is prefixed when missing.
    :param commands: the container command (Docker `Cmd`) as given, no shell added; empty: the image's.
    :param entryPoint: replaces the image entrypoint; empty: the image's.
    :param env: environment variables.
    :param wait: wait for the container to exit (default true).
    :param portBindings: `[ip:]hostPort:containerPort[/protocol]` entries.
    :param volumes: bind mounts `hostPath:containerPath[:ro|rw]`.
    :param networkMode: `bridge`, `host`, `none`, `container:<id>` or a network name.
    :param extraHosts: `/etc/hosts` entries `name:ip` (`name:host-gateway` reaches the host).
    :param user: user (name or uid[:gid]) the command runs as.
    :param pullPolicy: IF_NOT_PRESENT (default), ALWAYS or NEVER.
    :param cpu: `{cpus: <number>}`, how many CPUs the container may use.
    :param memory: `{memory, memorySwap, memoryReservation}` sizes such as `512MB`.
    :param shmSize: size of `/dev/shm`, such as `128MB`.
    :param privileged: run the container privileged.
    """

    template_fields_renderers = {"env": "json", "credentials": "json", "memory": "json"}

    _client: Any = None
    _container_id: str | None = None

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render as Kestra does, then register registry secrets with Airflow's secrets masker."""
        super().render_template_fields(context, jinja_env)
        from airflow.sdk.log import mask_secret

        for name in _SECRET_CREDENTIALS:
            secret = (self.credentials or {}).get(name)
            if secret:
                mask_secret(secret)

    def kestra_context(self, context: Any) -> dict[str, Any]:
        """Kestra's variables plus `workingDir` (the container's working directory) when the task has files."""
        variables = super().kestra_context(context)
        if self._has_files() and "workingDir" not in variables:
            variables["workingDir"] = CONTAINER_WORKING_DIR
        return variables

    def _has_files(self) -> bool:
        """True when `inputFiles`, `outputFiles` or `namespaceFiles` are set: the container gets a working directory."""
        return bool(self.inputFiles or self.outputFiles or self.namespaceFiles)

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        try:
            wait = as_flag(self.wait, "wait")
            privileged = as_flag(self.privileged, "privileged") if self.privileged is not None else None
            settings = _ContainerSettings.build(self, privileged)
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        if self.outputFiles and not wait:
            raise TaskFailure("`outputFiles` need `wait: true`: files are collected once the container has exited")
        with tempfile.TemporaryDirectory(prefix="yaml2dag-docker-run-") as folder:
            workdir = Path(folder) if self._has_files() else None
            if workdir is not None:
                self._prepare_files(workdir)
            exit_code, container_id, variables = self._run_container(settings, wait, context, workdir)
            outputs: dict[str, Any] = {
                "exitCode": exit_code,
                "vars": variables,
                "taskRunner": {"containerId": container_id},
            }
            if workdir is not None and self.outputFiles and exit_code == 0:
                outputs["outputFiles"] = self._collect_output_files(context, workdir)
        if exit_code != 0:
            # Kestra records a failed container's outputs: push them before failing the attempt.
            context["ti"].xcom_push(key="return_value", value=outputs)
            raise TaskFailure(f"Command failed with exit code {exit_code}")
        return outputs

    def _prepare_files(self, workdir: Path) -> None:
        """Write the namespace files, then the input files, into the local copy of the working directory."""
        write_namespace_files(self.namespaceFiles, self.flow.namespace, workdir, self.log)
        write_input_files(self.inputFiles, workdir)

    def _collect_output_files(self, context: Any, workdir: Path) -> dict[str, str]:
        """Upload the files of the fetched working directory that match `outputFiles`."""
        root = workdir / FETCHED_DIR / Path(CONTAINER_WORKING_DIR).name
        return upload_output_files(context, [str(glob) for glob in self.outputFiles], root)

    def _run_container(
        self, settings: _ContainerSettings, wait: bool, context: Any, workdir: Path | None
    ) -> tuple[int, str, dict[str, Any]]:
        """Create the container (with the working directory copied in), run it; exit code, id and `vars`."""
        client = self.docker_client()
        try:
            image = self._image_name()
            self._ensure_image(client, image)
            container_id = self._create(client, image, settings, _labels(self, context), workdir)
            if workdir is not None:
                self._copy_in(client, container_id, workdir)
            if not wait:
                started = self._start_detached(client, container_id, image)
                return 0, container_id, started["vars"]
            self._client, self._container_id = client, container_id
            try:
                exit_code, variables = self._run_to_end(client, container_id, image)
                if workdir is not None and self.outputFiles and exit_code == 0:
                    fetch_working_dir(client, container_id, workdir / FETCHED_DIR)
            finally:
                self._container_id = None
                _remove(client, container_id, self.log)
        finally:
            client.close()
        return exit_code, container_id, variables

    def _copy_in(self, client: Any, container_id: str, workdir: Path) -> None:
        """Put the working directory into the created container (`put_archive`, so a remote daemon works)."""
        from docker.errors import APIError

        try:
            client.put_archive(container_id, "/", archive_working_dir(workdir))
        except APIError as exc:
            _remove(client, container_id, self.log)
            raise TaskFailure(f"Docker could not copy the input files into the container: {_explain(exc)}") from None

    def on_kill(self) -> None:
        """The task was killed or timed out: kill and remove a container we are waiting for."""
        container_id, client = self._container_id, self._client
        if container_id is None or client is None:
            return
        self.log.warning("Task killed: killing container %s", container_id[:12])
        _remove(client, container_id, self.log)

    # --- steps ---

    def _image_name(self) -> str:
        image = str(self.containerImage)
        registry = _registry_host((self.credentials or {}).get("registry"))
        if registry and not image.startswith(registry):
            image = f"{registry}/{image}"
        return image

    def _ensure_image(self, client: Any, image: str) -> None:
        """Pull `image` as `pullPolicy` says; no registry reachable → a clear 'not found locally' error."""
        from docker.errors import ImageNotFound

        policy = str(self.pullPolicy).upper()
        if policy not in ("IF_NOT_PRESENT", "ALWAYS", "NEVER"):
            raise TaskFailure(f"invalid pullPolicy `{self.pullPolicy}`: use IF_NOT_PRESENT, ALWAYS or NEVER")
        if policy != "ALWAYS":
            try:
                client.inspect_image(image)
                return
            except ImageNotFound:
                if policy == "NEVER":
                    raise TaskFailure(f"image `{image}` not found locally, and pullPolicy is NEVER") from None
        problem = self._pull(client, image)
        if problem is None:
            return
        if policy == "ALWAYS":
            raise TaskFailure(f"cannot pull image `{image}` (pullPolicy ALWAYS): {problem}")
        raise TaskFailure(f"image `{image}` not found locally, and pulling it failed: {problem}")

    def _pull(self, client: Any, image: str) -> str | None:
        """Pull `image`; return why it failed, or None."""
        from docker.errors import APIError
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(image)
        self.log.info("Pulling image %s", image)
        try:
            for event in client.pull(
                repository, tag=tag or "latest", stream=True, decode=True, auth_config=self._auth()
            ):
                if "error" in event:
                    return str(event["error"])
        except APIError as exc:
            return str(exc.explanation or exc)
        return None

    def _auth(self) -> dict[str, str] | None:
        credentials = self.credentials or {}
        auth = {
            "username": credentials.get("username"),
            "password": credentials.get("password"),
            "serveraddress": credentials.get("registry"),
            "registrytoken": credentials.get("registryToken"),
            "identitytoken": credentials.get("identityToken"),
            "auth": credentials.get("auth"),
        }
        present = {key: str(value) for key, value in auth.items() if value}
        return present or None

    def _create(
        self,
        client: Any,
        image: str,
        settings: _ContainerSettings,
        labels: dict[str, str],
        workdir: Path | None = None,
    ) -> str:
        from docker.errors import APIError

        try:
            host_config = client.create_host_config(**settings.host_config)
            created = client.create_container(
                image,
                command=list(self.commands) if self.commands else None,
                entrypoint=list(self.entryPoint) if self.entryPoint else None,
                environment=dict(self.env) if self.env else None,
                user=self.user or None,
                labels=labels,
                ports=settings.ports or None,
                working_dir=CONTAINER_WORKING_DIR if workdir is not None else None,
                host_config=host_config,
            )
        except (APIError, ValueError, TypeError) as exc:
            raise TaskFailure(f"Docker could not create the container: {_explain(exc)}") from None
        for warning in created.get("Warnings") or []:
            self.log.warning("Docker: %s", warning)
        return str(created["Id"])

    def _start_detached(self, client: Any, container_id: str, image: str) -> dict[str, Any]:
        from docker.errors import APIError

        try:
            client.start(container_id)
        except APIError as exc:
            _remove(client, container_id, self.log)
            raise TaskFailure(f"Docker could not start the container: {_explain(exc)}") from None
        self.log.info("Started container %s from %s; not waiting for it (wait: false)", container_id[:12], image)
        return {"exitCode": 0, "vars": {}, "taskRunner": {"containerId": container_id}}

    def _run_to_end(self, client: Any, container_id: str, image: str) -> tuple[int, dict[str, Any]]:
        """Start the container, stream its output into the log, and return its exit code and `vars`."""
        from docker.errors import APIError
        from docker.utils.socket import frames_iter

        try:
            sock = client.attach_socket(container_id, params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 1})
            _no_timeout(sock)
            client.start(container_id)
        except APIError as exc:
            raise TaskFailure(f"Docker could not start the container: {_explain(exc)}") from None
        self.log.info("Started container %s from %s", container_id[:12], image)
        variables: dict[str, Any] = {}
        try:
            for is_stderr, line in _lines(frames_iter(sock, tty=False)):
                self._consume(line, is_stderr, variables)
        finally:
            sock.close()
        exit_code = int(client.wait(container_id).get("StatusCode", -1))
        self.log.info("Container %s exited with code %s", container_id[:12], exit_code)
        return exit_code, variables

    def _consume(self, line: str, is_stderr: bool, variables: dict[str, Any]) -> None:
        """Log one line of container output, or read it as Kestra's `::{"outputs":...}::` line."""
        match = _OUTPUT_LINE.match(line)
        if match is None:
            self.log.log(logging.ERROR if is_stderr else logging.INFO, "%s", line)
            return
        try:
            message = json.loads(match.group(1))
        except json.JSONDecodeError as exc:
            self.log.warning("Invalid outputs '%s': %s", line, exc)
            return
        if not isinstance(message, dict):
            self.log.warning("Invalid outputs '%s': not a JSON object", line)
            return
        if isinstance(message.get("outputs"), dict):
            variables.update(message["outputs"])
        for entry in message.get("logs") or []:
            if isinstance(entry, dict):
                level = _LEVELS.get(str(entry.get("level", "INFO")).upper(), logging.ERROR)
                self.log.log(level, "%s", entry.get("message", ""))


class _ContainerSettings:
    """The rendered Run properties that become Docker's host config and exposed ports."""

    def __init__(self, host_config: dict[str, Any], ports: list[Any]) -> None:
        self.host_config = host_config
        self.ports = ports

    @classmethod
    def build(cls, task: DockerRunOperator, privileged: bool | None) -> _ContainerSettings:
        """Check and convert the rendered properties; raises ValueError naming the bad one."""
        config: dict[str, Any] = {}
        ports: list[Any] = []
        if task.portBindings:
            bindings: dict[str, list[Any]] = {}
            for text in task.portBindings:
                binding = parse_port_binding(text)
                if binding.container_key not in bindings:
                    ports.append((binding.container_port, binding.protocol))
                bindings.setdefault(binding.container_key, []).append(binding.host_side)
            config["port_bindings"] = bindings
        if task.volumes:
            config["binds"] = [allowed_volume(str(volume)) for volume in task.volumes]
        if task.networkMode:
            config["network_mode"] = str(task.networkMode)
        if task.extraHosts:
            config["extra_hosts"] = [str(entry) for entry in task.extraHosts]
        if task.cpu and task.cpu.get("cpus") is not None:
            config["nano_cpus"] = _nano_cpus(task.cpu["cpus"])
        memory = task.memory or {}
        for key, argument in _MEMORY_ARGUMENTS.items():
            if memory.get(key) is not None:
                config[argument] = parse_size(memory[key])
        if task.shmSize:
            config["shm_size"] = parse_size(task.shmSize)
        if privileged is not None:
            config["privileged"] = allowed_privileged(privileged)
        return cls(config, ports)


#: Host paths (and named volumes) a flow may mount; none by default, as Kestra's `volume-enabled: false`.
VOLUMES_SETTING = ("yaml2dag", "docker_allowed_volumes")
#: Whether a flow may run a privileged container (root on the worker); false by default.
PRIVILEGED_SETTING = ("yaml2dag", "docker_allow_privileged")


def allowed_volume(volume: str) -> str:
    """`volume` (`hostPath:containerPath[:mode]` or `name:containerPath`) when the worker's settings allow it.

    A host path is allowed when it is, once symlinks and `..` are resolved, one of the paths listed in
    `[yaml2dag] docker_allowed_volumes` (comma-separated) or under one; a named volume when its name is
    listed. Raises ValueError naming the setting otherwise: a flow author must not mount the worker's disk.
    """
    from airflow.sdk.configuration import conf

    source = volume.split(":", 1)[0]
    allowed = [entry.strip() for entry in conf.get(*VOLUMES_SETTING, fallback="").split(",") if entry.strip()]
    if source.startswith("/"):
        real = os.path.realpath(source)
        roots = [os.path.realpath(entry) for entry in allowed if entry.startswith("/")]
        permitted = any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots)
    else:
        permitted = source in allowed
    if not permitted:
        listed = ", ".join(allowed) or "nothing"
        raise ValueError(
            f"volume `{volume}` is not allowed: this worker allows mounting {listed} "
            "(Airflow setting [yaml2dag] docker_allowed_volumes, AIRFLOW__YAML2DAG__DOCKER_ALLOWED_VOLUMES: "
            "comma-separated host paths or volume names)"
        )
    return volume


def allowed_privileged(privileged: bool) -> bool:
    """`privileged`, when false or allowed by `[yaml2dag] docker_allow_privileged`; else ValueError naming it."""
    from airflow.sdk.configuration import conf

    if privileged and not conf.getboolean(*PRIVILEGED_SETTING, fallback=False):
        raise ValueError(
            "`privileged: true` is not allowed: a privileged container is root on the worker; enable it with "
            "the Airflow setting [yaml2dag] docker_allow_privileged = True (AIRFLOW__YAML2DAG__DOCKER_ALLOW_PRIVILEGED)"
        )
    return privileged


class DockerStopOperator(_DockerOperator, task_type=Stop):
    """`io.kestra.plugin.docker.cli.Stop` (alias `io.kestra.plugin.docker.Stop`): stop a container.

    A container that does not exist fails the task; one that is no longer running is only removed.

    :param host: Docker API URL; default: the `connId` connection, DOCKER_HOST, the local socket.
    :param connId: Airflow connection whose host is the Docker API URL.
    :param containerId: the container's id, id prefix or name.
    :param kill: send SIGKILL instead of a graceful stop (SIGTERM, then SIGKILL after Docker's 10 s).
    :param delete: remove the container afterwards (default true).
    """

    def run(self, context: Any) -> None:  # noqa: D102
        from docker.errors import APIError, NotFound

        try:
            kill, delete = as_flag(self.kill, "kill"), as_flag(self.delete, "delete")
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        name = str(self.containerId).strip()
        if not name:
            raise TaskFailure("`containerId` rendered empty")
        client = self.docker_client()
        try:
            try:
                info = client.inspect_container(name)
            except NotFound:
                raise TaskFailure(f"container `{name}` does not exist (never started, or already removed)") from None
            container_id = info["Id"]
            if info["State"].get("Running"):
                if kill:
                    client.kill(container_id)
                    self.log.info("Killed container %s", container_id[:12])
                else:
                    client.stop(container_id)
                    self.log.info("Stopped container %s", container_id[:12])
            else:
                self.log.info("Container %s is not running (%s)", container_id[:12], info["State"].get("Status"))
            if delete:
                client.remove_container(container_id, v=True, force=True)
                self.log.info("Removed container %s", container_id[:12])
        except APIError as exc:
            raise TaskFailure(f"Docker could not stop container `{name}`: {_explain(exc)}") from None
        finally:
            client.close()


# --- helpers ---------------------------------------------------------------------------------------


def _labels(task: KestraOperator, context: Any) -> dict[str, str]:
    return {
        LABEL_DAG_ID: str(task.dag_id),
        LABEL_RUN_ID: str(context["dag_run"].run_id),
        LABEL_TASK_ID: task.task_id,
        LABEL_TRY_NUMBER: str(getattr(context["ti"], "try_number", 1)),
    }


def _registry_host(registry: str | None) -> str | None:
    """The host to prefix images with for `credentials.registry` (none for Docker Hub), as Kestra does."""
    if not registry:
        return None
    if "://" in registry:
        from urllib.parse import urlsplit

        host = urlsplit(registry).netloc or None
    else:
        host = registry.split("/", 1)[0]
    return None if host is None or host in _DOCKER_HUB else host


def _remove(client: Any, container_id: str, log: logging.Logger | Any) -> None:
    """Kill (if running) and remove a container; a container already gone is fine."""
    from docker.errors import APIError, NotFound

    try:
        client.remove_container(container_id, v=True, force=True)
    except NotFound:
        return
    except APIError as exc:
        if exc.response is not None and exc.response.status_code == 409:  # removal already in progress
            return
        log.warning("Could not remove container %s: %s", container_id[:12], _explain(exc))


def _no_timeout(sock: Any) -> None:
    """Let a log stream wait as long as the container is silent (the client's 60 s timeout is for calls)."""
    for candidate in (sock, getattr(sock, "_sock", None)):
        if candidate is not None and hasattr(candidate, "settimeout"):
            candidate.settimeout(None)


def _lines(frames: Iterable[tuple[int, bytes]]) -> Iterator[tuple[bool, str]]:
    """Split Docker's multiplexed frames into (is_stderr, line) pairs, keeping stdout and stderr apart.

    A line longer than `MAX_LINE_BYTES` (1 MiB) is cut: a container printing one huge line costs
    bounded memory.
    """
    splitters = {False: LineSplitter(), True: LineSplitter()}
    for stream, data in frames:
        is_stderr = stream == 2
        for line in splitters[is_stderr].feed(data):
            yield is_stderr, line
    for is_stderr, splitter in splitters.items():
        for line in splitter.flush():
            yield is_stderr, line


def _nano_cpus(cpus: Any) -> int:
    try:
        value = float(cpus)
    except (TypeError, ValueError):
        value = 0.0
    if value <= 0:
        raise ValueError(f"`cpu.cpus` rendered `{cpus}`: it must be a positive number")
    return int(value * 1_000_000_000)


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
