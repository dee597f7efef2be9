"""Kestra's Docker tasks: Run (start a container, by default wait for it) and Stop (spec §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, model_validator

from yaml2dag.tasktypes.base import Flag, KestraModel, TaskBase, Text, choice, is_expression, rendered
from yaml2dag.tasktypes.files import WorkingDirectoryFiles

_DOCKER = "yaml2dag.operators.docker"
_SIZE = re.compile(r"^(\d+)\s*([KMG]B)?$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_PROTOCOLS = ("tcp", "udp", "sctp")


# --- sizes and port bindings ---------------------------------------------------------------------


def parse_size(text: str) -> int:
    """Bytes in a Kestra size such as `512MB`, `1gb`, `64kb` or `1048576` (units are powers of 1024)."""
    match = _SIZE.match(str(text).strip())
    if not match:
        raise ValueError(f"`{text}` is not a size such as 512MB, 1GB, 64KB or a number of bytes")
    unit = match.group(2).upper() if match.group(2) else None
    return int(match.group(1)) * _SIZE_UNITS[unit]


@dataclass(frozen=True)
class PortBinding:
    """One `portBindings` entry: `[ip:][hostPort:]containerPort[/protocol]`."""

    container_port: int
    protocol: str = "tcp"
    host_port: int | None = None
    host_ip: str | None = None

    @property
    def container_key(self) -> str:
        """The key Docker uses for the container side, e.g. `6379/tcp`."""
        return f"{self.container_port}/{self.protocol}"

    @property
    def host_side(self) -> Any:
        """The host side in the form the docker SDK takes: port, `(ip, port)`, `(ip,)` or None."""
        if self.host_ip:
            return (self.host_ip, self.host_port) if self.host_port is not None else (self.host_ip,)
        return self.host_port


def parse_port_binding(text: str) -> PortBinding:
    """Parse `8080:80`, `127.0.0.1:8080:80/udp`, `127.0.0.1::80` or `80` (random host port)."""
    spec, _, protocol = str(text).strip().partition("/")
    protocol = protocol.lower() or "tcp"
    if protocol not in _PROTOCOLS:
        raise ValueError(f"port binding `{text}`: protocol must be one of {', '.join(_PROTOCOLS)}")
    parts = spec.split(":")
    if len(parts) > 3:
        raise ValueError(f"port binding `{text}` must read [ip:]hostPort:containerPort[/protocol]")
    ip = parts[0] if len(parts) == 3 else None
    host = parts[-2] if len(parts) >= 2 else ""
    container = parts[-1]
    for port in (host, container):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"port binding `{text}`: `{port}` is not a port number (1-65535)")
    if not container:
        raise ValueError(f"port binding `{text}` has no container port")
    return PortBinding(int(container), protocol, int(host) if host else None, ip or None)


def _scalar_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _checked(parser: Any) -> Any:
    def check(value: str) -> str:
        if not is_expression(value):
            parser(value)
        return value

    return check


def _number_or_expression(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return value
    if is_expression(value):
        return value
    raise ValueError("must be a positive number (or an expression rendering to one)")


#: A size such as `512MB` (or an expression rendering to one).
Size = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_checked(parse_size))]
#: A `portBindings` entry (or an expression rendering to one).
PortBindingText = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_checked(parse_port_binding))]


# --- task models ---------------------------------------------------------------------------------


class Credentials(KestraModel):
    """`credentials`: how to log in to a private registry when the image must be pulled."""

    registry: Text | None = None
    username: Text | None = None
    password: Text | None = None
    registryToken: Text | None = None
    identityToken: Text | None = None
    auth: Text | None = None


class Cpu(KestraModel):
    """`cpu`: `cpus` is how many CPUs the container may use (e.g. 0.5)."""

    cpus: Annotated[float | str, AfterValidator(_number_or_expression)]


class Memory(KestraModel):
    """`memory`: hard limit, swap limit and soft reservation, as sizes such as `512MB`."""

    memory: Size | None = None
    memorySwap: Size | None = None
    memoryReservation: Size | None = None
    memorySwappiness: Any = None
    kernelMemory: Any = None
    oomKillDisable: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset({"memorySwappiness", "kernelMemory", "oomKillDisable"})


class _DockerTask(TaskBase):
    """Properties every Docker task has: the daemon to use and registry access."""

    #: `host` is Kestra's; `connId` is a yaml2dag extension naming an Airflow connection.
    host: Text | None = rendered(None)
    connId: str | None = None
    config: Any = None
    credentials: Credentials | None = rendered(None)

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"config"}


class Run(_DockerTask, WorkingDirectoryFiles):
    """Start a container from `containerImage`; by default wait for it, stream its logs and remove it."""

    TYPES: ClassVar = ("io.kestra.plugin.docker.cli.Run", "io.kestra.plugin.docker.Run")
    OPERATOR: ClassVar = f"{_DOCKER}:DockerRunOperator"

    containerImage: Text = rendered()
    commands: list[Text] = rendered(default_factory=list)
    entryPoint: list[Text] | None = rendered(None)
    env: dict[str, Text] | None = rendered(None)
    wait: Flag = rendered(True)
    portBindings: list[PortBindingText] | None = rendered(None)
    volumes: list[Text] | None = rendered(None)
    networkMode: Text | None = rendered(None)
    extraHosts: list[Text] | None = rendered(None)
    user: Text | None = rendered(None)
    pullPolicy: choice("IF_NOT_PRESENT", "ALWAYS", "NEVER") = rendered("IF_NOT_PRESENT")  # type: ignore[valid-type]
    cpu: Cpu | None = rendered(None)
    memory: Memory | None = rendered(None)
    shmSize: Size | None = rendered(None)
    privileged: Flag | None = rendered(None)
    warningOnStdErr: bool | None = None
    deviceRequests: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = _DockerTask.UNSUPPORTED | {"deviceRequests"}

    @model_validator(mode="after")
    def _output_files_need_wait(self) -> Run:
        if self.outputFiles and self.wait is False:
            raise ValueError("`outputFiles` need `wait: true`: files are collected once the container has exited")
        return self

    @model_validator(mode="after")
    def _stderr_never_warns(self) -> Run:
        if self.warningOnStdErr:
            raise ValueError(
                "`warningOnStdErr: true` is not supported: Airflow has no WARNING state, so stderr lines are "
                "only logged (as in Kestra since 0.22); remove it or set it to false"
            )
        return self


class Stop(_DockerTask):
    """Stop (or kill) a container by id, id prefix or name, then remove it unless `delete: false`."""

    TYPES: ClassVar = ("io.kestra.plugin.docker.cli.Stop", "io.kestra.plugin.docker.Stop")
    OPERATOR: ClassVar = f"{_DOCKER}:DockerStopOperator"

    containerId: Text = rendered()
    kill: Flag = rendered(False)
    delete: Flag = rendered(True)


TASK_TYPES: tuple[type[TaskBase], ...] = (Run, Stop)
