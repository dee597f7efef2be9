"""Kestra's script tasks (plugin-scripts): Python, Shell and Node `Script` / `Commands`, and their task runners.

Every script task builds one shell script (`set -e` when `failFast`, the `beforeCommands`, then the
`commands` or the command running the `script`) and runs `interpreter + [script]` with a task runner:
`io.kestra.plugin.core.runner.Process` (a process on the Airflow worker) or
`io.kestra.plugin.scripts.runner.docker.Docker` (a container). Without `taskRunner` the Airflow
setting `[yaml2dag] default_task_runner` decides (`docker`, Kestra's default, or `process`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from yaml2dag.tasktypes.base import Flag, KestraModel, TaskBase, Text, choice, rendered
from yaml2dag.tasktypes.docker import Cpu, Credentials, Memory, Size
from yaml2dag.tasktypes.files import NamespaceFiles, WorkingDirectoryFiles, check_relative_path
from yaml2dag.tasktypes.flowable import FlowableBase

_SCRIPTS = "yaml2dag.operators.scripts"
PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"


def check_python_version(version: str) -> str:
    """`version` when it is a Python version number (`3`, `3.12`, `3.12.1`)."""
    if not re.fullmatch(r"\d+(\.\d+){0,2}", str(version).strip()):
        raise ValueError(f"pythonVersion `{version}` is not a Python version such as 3.12")
    return str(version).strip()


class ProcessRunner(KestraModel):
    """`io.kestra.plugin.core.runner.Process`: run the script as a process on the Airflow worker."""

    type: Literal["io.kestra.plugin.core.runner.Process"] = Field(description="The runner type.")
    version: str | None = Field(default=None, description="Plugin version (ignored).")


class DockerRunner(KestraModel):
    """`io.kestra.plugin.scripts.runner.docker.Docker`: run the script in a container of `containerImage`."""

    type: Literal["io.kestra.plugin.scripts.runner.docker.Docker"] = Field(description="The runner type.")
    host: Text | None = Field(default=None, description="Docker API URL; default DOCKER_HOST or the local socket.")
    credentials: Credentials | None = Field(default=None, description="Registry login used when pulling.")
    pullPolicy: choice("IF_NOT_PRESENT", "ALWAYS", "NEVER") = Field(  # type: ignore[valid-type]
        default="IF_NOT_PRESENT", description="When to pull the image."
    )
    volumes: list[Text] | None = Field(default=None, description="Bind mounts `hostPath:containerPath[:ro|rw]`.")
    networkMode: Text | None = Field(default=None, description="`bridge`, `host`, `none` or a network name.")
    user: Text | None = Field(default=None, description="User (name or uid[:gid]) the script runs as.")
    entryPoint: list[Text] | None = Field(default=None, description="Image entrypoint; default: none (`['']`).")
    extraHosts: list[Text] | None = Field(default=None, description="`/etc/hosts` entries `name:ip`.")
    cpu: Cpu | None = Field(default=None, description="`{cpus: <number>}`.")
    memory: Memory | None = Field(default=None, description="`{memory, memorySwap, memoryReservation}` sizes.")
    shmSize: Size | None = Field(default=None, description="Size of /dev/shm, such as 128MB.")
    privileged: Flag | None = Field(default=None, description="Run the container privileged.")
    delete: Flag = Field(default=True, description="Remove the container at the end (always done by yaml2dag).")
    version: str | None = Field(default=None, description="Plugin version (ignored).")
    config: Any = None
    deviceRequests: Any = None
    fileHandlingStrategy: Any = None
    wait: Any = None
    resume: Any = None
    killTimeout: Any = None
    portBindings: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset(
        {"config", "deviceRequests", "fileHandlingStrategy", "wait", "resume", "killTimeout", "portBindings"}
    )

    @field_validator("delete")
    @classmethod
    def _always_deleted(cls, value: Any) -> Any:
        """Keeping finished containers would leak them: yaml2dag always removes them."""
        if value is False:
            raise ValueError("`delete: false` is not supported by yaml2dag yet: containers are always removed")
        return value


TaskRunner = Annotated[ProcessRunner | DockerRunner, Field(discriminator="type")]


class _ScriptTask(TaskBase, WorkingDirectoryFiles):
    """Properties every script task has."""

    #: Inside a WorkingDirectory, the planner gives the operator `working_directory` (the shared folder).
    USES_WORKING_DIRECTORY: ClassVar[bool] = True

    #: The image Kestra uses when `containerImage` is not set (Docker runner only).
    DEFAULT_IMAGE: ClassVar[str] = "ubuntu"

    interpreter: list[Text] = rendered(
        default_factory=lambda: ["/bin/sh", "-c"],
        min_length=1,
        description="Command the script is given to as its last argument (default `/bin/sh -c`).",
    )
    beforeCommands: list[Text] | None = rendered(None, description="Commands run first, in the same shell script.")
    env: dict[str, Text] | None = rendered(None, description="Environment variables of the script.")
    containerImage: Text | None = rendered(None, description="Image of the Docker runner (default per type).")
    taskRunner: TaskRunner | None = rendered(
        None, description="Process or Docker; default: the Airflow setting [yaml2dag] default_task_runner."
    )
    warningOnStdErr: Flag = rendered(
        False, description="When true, a successful script that wrote to stderr ends WARNING."
    )
    failFast: Flag = rendered(True, description="Stop at the first failing command (`set -e`).")
    targetOS: choice("AUTO", "LINUX", "WINDOWS") = Field(  # type: ignore[valid-type]
        default="AUTO", description="Operating system of the runner: Linux only."
    )
    runner: Any = None
    docker: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {
        "runner",
        "docker",
    }

    @field_validator("targetOS")
    @classmethod
    def _linux_only(cls, value: str) -> str:
        """Airflow workers and the containers yaml2dag starts are Linux."""
        if value == "WINDOWS":
            raise ValueError("`targetOS: WINDOWS` is not supported by yaml2dag yet: scripts run on Linux")
        return value


class _PythonTask(_ScriptTask):
    """Python-specific properties: `dependencies` are installed with pip before the script runs."""

    DEFAULT_IMAGE: ClassVar[str] = "ghcr.io/kestra-io/kestrapy:latest"

    dependencies: list[Text] | None = rendered(
        None,
        description="pip requirement strings installed before the script: cached on the worker (Process runner), "
        "installed in the container (Docker runner).",
    )
    pythonVersion: Text | None = rendered(
        None,
        description="Process runner: run `python` of this version (`python3.12` on the worker's PATH, or what "
        "`uv python find` finds); Docker runner: the image's Python runs (pick e.g. `python:3.12-slim`).",
    )
    packageManager: choice("PIP", "UV") = rendered(  # type: ignore[valid-type]
        "PIP",
        description="Installer of `dependencies`: PIP (yaml2dag's default) or UV (uv when the worker or image has "
        "it, else pip, as Kestra falls back).",
    )
    dependencyCacheEnabled: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = _ScriptTask.UNSUPPORTED | {"dependencyCacheEnabled"}

    @field_validator("pythonVersion")
    @classmethod
    def _version_number(cls, value: str | None) -> str | None:
        """A literal `pythonVersion` is a version number such as 3.12."""
        if value is not None and "{{" not in value and "{%" not in value:
            check_python_version(value)
        return value


class PythonScript(_PythonTask):
    """Run an inline Python `script` (written to a file, run with `python`)."""

    TYPES: ClassVar = ("io.kestra.plugin.scripts.python.Script",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:PythonScriptOperator"

    script: Text = rendered(description="The Python source.")


class PythonCommands(_PythonTask):
    """Run shell `commands` (typically `python main.py`) in a Python environment."""

    TYPES: ClassVar = ("io.kestra.plugin.scripts.python.Commands",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:PythonCommandsOperator"

    commands: list[Text] = rendered(min_length=1, description="Shell commands, one per line of the script.")


class ShellScript(_ScriptTask):
    """Run an inline shell `script`."""

    TYPES: ClassVar = ("io.kestra.plugin.scripts.shell.Script",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:ShellScriptOperator"

    script: Text = rendered(description="The shell script.")


class ShellCommands(_ScriptTask):
    """Run shell `commands`."""

    TYPES: ClassVar = ("io.kestra.plugin.scripts.shell.Commands",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:ShellCommandsOperator"

    commands: list[Text] = rendered(min_length=1, description="Shell commands, one per line of the script.")


class NodeScript(_ScriptTask):
    """Run an inline JavaScript `script` with `node`."""

    TYPES: ClassVar = ("io.kestra.plugin.scripts.node.Script",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:NodeScriptOperator"
    DEFAULT_IMAGE: ClassVar[str] = "node"

    script: Text = rendered(description="The JavaScript source.")
    npmInstall: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = _ScriptTask.UNSUPPORTED | {"npmInstall"}


class NodeCommands(_ScriptTask):
    """Run shell `commands` (typically `node main.js`) in a Node environment."""

    TYPES: ClassVar = ("io.kestra.plugin.scripts.node.Commands",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:NodeCommandsOperator"
    DEFAULT_IMAGE: ClassVar[str] = "node"

    commands: list[Text] = rendered(min_length=1, description="Shell commands, one per line of the script.")
    npmInstall: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = _ScriptTask.UNSUPPORTED | {"npmInstall"}


class TerraformCLI(_ScriptTask):
    """`io.kestra.plugin.terraform.cli.TerraformCLI`: shell `commands` with Terraform's image by default."""

    TYPES: ClassVar = ("io.kestra.plugin.terraform.cli.TerraformCLI",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:TerraformCLIOperator"
    DEFAULT_IMAGE: ClassVar[str] = "hashicorp/terraform"

    commands: list[Text] = rendered(min_length=1, description="Shell commands, one per line of the script.")


class AnsibleCLI(_ScriptTask):
    """`io.kestra.plugin.ansible.cli.AnsibleCLI`: shell `commands` with an Ansible image by default."""

    TYPES: ClassVar = ("io.kestra.plugin.ansible.cli.AnsibleCLI",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:AnsibleCLIOperator"
    DEFAULT_IMAGE: ClassVar[str] = "cytopia/ansible:latest-tools"

    commands: list[Text] = rendered(min_length=1, description="Shell commands, one per line of the script.")
    ansibleConfig: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = _ScriptTask.UNSUPPORTED | {"ansibleConfig"}


class AwsCLI(_ScriptTask):
    """`io.kestra.plugin.aws.cli.AwsCLI`: shell `commands` with AWS credentials in the environment."""

    TYPES: ClassVar = ("io.kestra.plugin.aws.cli.AwsCLI",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:AwsCLIOperator"
    DEFAULT_IMAGE: ClassVar[str] = "amazon/aws-cli"

    commands: list[Text] = rendered(min_length=1, description="Shell commands, one per line of the script.")
    accessKeyId: Text | None = rendered(None, description="→ AWS_ACCESS_KEY_ID.")
    secretKeyId: Text | None = rendered(None, description="→ AWS_SECRET_ACCESS_KEY (masked in logs).")
    sessionToken: Text | None = rendered(None, description="→ AWS_SESSION_TOKEN (masked in logs).")
    region: Text | None = rendered(None, description="→ AWS_DEFAULT_REGION.")
    endpointOverride: Text | None = rendered(None, description="→ AWS_ENDPOINT_URL.")
    outputFormat: choice("JSON", "TEXT", "TABLE", "YAML") = rendered(  # type: ignore[valid-type]
        "JSON", description="→ AWS_DEFAULT_OUTPUT (lower-cased)."
    )
    compatibilityMode: Any = None
    forcePathStyle: Any = None
    stsRoleArn: Any = None
    stsRoleExternalId: Any = None
    stsRoleSessionName: Any = None
    stsRoleSessionDuration: Any = None
    stsEndpointOverride: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = _ScriptTask.UNSUPPORTED | {
        "compatibilityMode",
        "forcePathStyle",
        "stsRoleArn",
        "stsRoleExternalId",
        "stsRoleSessionName",
        "stsRoleSessionDuration",
        "stsEndpointOverride",
    }


class GCloudCLI(_ScriptTask):
    """`io.kestra.plugin.gcp.cli.GCloudCLI`: shell `commands` with a service account and project for `gcloud`."""

    TYPES: ClassVar = ("io.kestra.plugin.gcp.cli.GCloudCLI",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:GCloudCLIOperator"
    DEFAULT_IMAGE: ClassVar[str] = "google/cloud-sdk"

    commands: list[Text] = rendered(min_length=1, description="Shell commands, one per line of the script.")
    serviceAccount: Text | None = rendered(
        None,
        description="Service account key (JSON), written to a file named by GOOGLE_APPLICATION_CREDENTIALS and "
        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE (masked in logs).",
    )
    projectId: Text | None = rendered(None, description="→ CLOUDSDK_CORE_PROJECT.")
    warningOnStdErr: Flag = rendered(
        True, description="As in Kestra's GCloudCLI, a successful command that wrote to stderr ends WARNING."
    )


class Clone(TaskBase):
    """`io.kestra.plugin.git.Clone`: clone a Git repository into the working directory."""

    TYPES: ClassVar = ("io.kestra.plugin.git.Clone",)
    OPERATOR: ClassVar = f"{_SCRIPTS}:CloneOperator"
    USES_WORKING_DIRECTORY: ClassVar[bool] = True

    url: Text = rendered(description="The repository URL (https://, http://, git://, ssh://, file://).")
    branch: Text | None = rendered(None, description="Branch (or tag) to check out; default the remote HEAD.")
    depth: int | None = Field(default=1, ge=1, description="Shallow clone depth (default 1).")
    directory: Text | None = rendered(None, description="Folder of the clone, relative to the working directory.")
    username: Text | None = rendered(None, description="HTTP(S) user name.")
    password: Text | None = rendered(None, description="HTTP(S) password or token (masked in logs).")
    cloneSubmodules: Flag | None = rendered(None, description="Also clone the submodules.")
    privateKey: Any = None
    passphrase: Any = None
    gitConfig: Any = None
    trustedCaPemPath: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {
        "privateKey",
        "passphrase",
        "gitConfig",
        "trustedCaPemPath",
    }

    @field_validator("directory")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        """The clone stays inside the working directory."""
        if value is not None and "{{" not in value and "{%" not in value:
            check_relative_path(value)
        return value


class WorkingDirectory(FlowableBase):
    """`io.kestra.plugin.core.flow.WorkingDirectory`: children share one working directory.

    Each child stays its own Airflow task; the directory travels between them through the storage
    (a tar snapshot per run), so children may run on different workers.
    """

    TYPES: ClassVar = ("io.kestra.plugin.core.flow.WorkingDirectory", "io.kestra.core.tasks.flows.WorkingDirectory")
    OPERATOR: ClassVar = f"{_SCRIPTS}:WorkingDirectoryOperator"
    #: The planner runs this flowable's start task (it seeds the shared directory) and tells its
    #: children which directory they share.
    START_RUNS: ClassVar[bool] = True
    SHARES_WORKING_DIRECTORY: ClassVar[bool] = True
    USES_WORKING_DIRECTORY: ClassVar[bool] = True

    tasks: list[TaskBase] = Field(min_length=1, description="The children, run one after the other in one folder.")
    inputFiles: dict[str, Text] | Text | None = rendered(
        None, description="Files written into the shared directory first (name → content or kestra:// URI)."
    )
    namespaceFiles: NamespaceFiles | None = rendered(
        None, description="Copy the namespace's files into the shared directory first."
    )
    outputFiles: Any = None
    cache: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = FlowableBase.UNSUPPORTED | {"outputFiles", "cache"}

    @field_validator("tasks")
    @classmethod
    def _runnable_children(cls, tasks: list[TaskBase]) -> list[TaskBase]:
        """As in Kestra, the children of a WorkingDirectory are runnable tasks, not flowables."""
        for task in tasks:
            if isinstance(task, FlowableBase):
                raise ValueError(f"`{task.id}` is a flowable task: a WorkingDirectory only holds runnable tasks")
        return tasks

    @field_validator("inputFiles")
    @classmethod
    def _relative_names(cls, value: Any) -> Any:
        """Input file names stay inside the working directory."""
        if isinstance(value, dict):
            for name in value:
                check_relative_path(name)
        return value


TASK_TYPES: tuple[type[TaskBase], ...] = (
    TerraformCLI,
    AnsibleCLI,
    AwsCLI,
    GCloudCLI,
    Clone,
    WorkingDirectory,
    PythonScript,
    PythonCommands,
    ShellScript,
    ShellCommands,
    NodeScript,
    NodeCommands,
)
