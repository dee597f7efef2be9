"""Script tasks on the Docker runner (real daemon, local images): outputs, Kestra.outputs, failures, timeout."""

from __future__ import annotations

import pytest
from conftest import states

from docker_redis.support import BUSYBOX

pytestmark = [pytest.mark.airflow, pytest.mark.docker, pytest.mark.usefixtures("test_images")]

PYTHON = "yaml2dag-test/python"


@pytest.fixture
def python_image(docker_api):
    """The Python stand-in image (built from yaml2dag-debian:bookworm by scripts/build-test-images.sh)."""
    import docker

    try:
        docker_api.images.get(PYTHON)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{PYTHON} not built: run scripts/build-images.sh (yaml2dag-debian) then build-test-images.sh")


def test_python_script_with_kestra_outputs_in_a_container(run_flow, python_image, flow_containers):
    result = run_flow(
        f"""
        id: dockerpy
        namespace: tests.scripts
        tasks:
          - id: compute
            type: io.kestra.plugin.scripts.python.Script
            containerImage: {PYTHON}
            taskRunner:
              type: io.kestra.plugin.scripts.runner.docker.Docker
              pullPolicy: NEVER
              networkMode: none
              user: "65534"
              cpu: {{cpus: 1}}
              memory: {{memory: 256MB}}
            env:
              WHO: container
            script: |
              import os, sys
              from kestra import Kestra
              print("hello from", os.environ["WHO"], "uid", os.getuid(), "in", os.getcwd())
              print("to stderr", file=sys.stderr)
              Kestra.outputs({{"answer": 42}})
              Kestra.logger().warning("careful")
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "answer={{{{ outputs.compute.vars.answer }}}}"
        """
    )
    assert states(result) == {"compute": "success", "log": "success"}
    outputs = result.tasks["compute"].outputs
    assert outputs["exitCode"] == 0 and outputs["vars"] == {"answer": 42}
    assert len(outputs["taskRunner"]["containerId"]) == 64
    lines = [(line.level, line.message) for line in result.tasks["compute"].logs]
    assert ("INFO", "hello from container uid 65534 in /kestra/working-dir") in lines
    assert ("ERROR", "to stderr") in lines
    assert any(level == "WARNING" and message.endswith(" - careful") for level, message in lines)
    assert "answer=42" in result.tasks["log"].log_text()
    assert flow_containers("dockerpy") == []


def test_shell_failure_in_a_container(run_flow):
    result = run_flow(
        f"""
        id: dockersh
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: {BUSYBOX}
            taskRunner: {{type: io.kestra.plugin.scripts.runner.docker.Docker, pullPolicy: NEVER}}
            commands:
              - echo "disk full" >&2
              - exit 3
        errors:
          - id: alert
            type: io.kestra.plugin.core.log.Log
            message: "failed: {{{{ outputs.sh.exitCode }}}}"
        """
    )
    assert states(result) == {"sh": "failed", "alert": "success"}
    assert result.tasks["sh"].outputs["exitCode"] == 3
    assert "Command failed with exit code 3; stderr ends with:\ndisk full" in result.tasks["sh"].log_text()
    assert "failed: 3" in result.tasks["alert"].log_text()


def test_timeout_removes_the_container(run_flow, flow_containers):
    result = run_flow(
        f"""
        id: dockersleep
        namespace: tests.scripts
        tasks:
          - id: sleep
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: {BUSYBOX}
            taskRunner: {{type: io.kestra.plugin.scripts.runner.docker.Docker, pullPolicy: NEVER}}
            timeout: PT3S
            commands: ["sleep 600"]
        """
    )
    assert states(result) == {"sleep": "failed"}
    assert "Timeout" in result.tasks["sleep"].log_text()
    assert flow_containers("dockersleep") == []


def test_missing_image_is_a_clear_error(run_flow):
    result = run_flow(
        """
        id: noimage
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: yaml2dag-test/no-such-image
            taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker}
            commands: ["echo hi"]
        """
    )
    assert states(result) == {"sh": "failed"}
    assert "image `yaml2dag-test/no-such-image` not found locally" in result.tasks["sh"].log_text()


def test_unknown_interpreter_in_a_container_fails_clearly(run_flow, flow_containers):
    result = run_flow(
        f"""
        id: dockerinterp
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: {BUSYBOX}
            taskRunner: {{type: io.kestra.plugin.scripts.runner.docker.Docker, pullPolicy: NEVER}}
            interpreter: ["/bin/no-such-shell", "-c"]
            commands: ["echo hi"]
        """
    )
    assert states(result) == {"sh": "failed"}
    assert "Docker could not start the container" in result.tasks["sh"].log_text()
    assert "no-such-shell" in result.tasks["sh"].log_text()
    assert flow_containers("dockerinterp") == []


def test_output_files_from_a_container_are_read_by_the_next_task(run_flow, python_image):
    result = run_flow(
        f"""
        id: dockerfiles
        namespace: tests.scripts
        tasks:
          - id: make
            type: io.kestra.plugin.scripts.python.Script
            containerImage: {PYTHON}
            taskRunner: {{type: io.kestra.plugin.scripts.runner.docker.Docker, pullPolicy: NEVER, user: "65534"}}
            inputFiles:
              in.txt: "21"
            outputFiles: ["result.txt"]
            script: |
              value = int(open("in.txt").read()) * 2
              open("result.txt", "w").write(f"value={{value}}")
          - id: read
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ read(outputs.make.outputFiles['result.txt']) }}}}"
        """
    )
    assert states(result) == {"make": "success", "read": "success"}
    assert list(result.tasks["make"].outputs["outputFiles"]) == ["result.txt"]
    assert "value=42" in result.tasks["read"].log_text()


def test_working_directory_shared_with_a_container(run_flow, python_image, tmp_path, flow_containers):
    import subprocess

    source = tmp_path / "source"
    source.mkdir()
    (source / "values.txt").write_text("1\n2\n3\n")
    for command in (["init", "-q", "-b", "main"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@e", "commit",
                                                                  "-q", "-m", "v"]):  # fmt: skip
        subprocess.run(["git", *command], cwd=source, check=True, capture_output=True)
    result = run_flow(
        f"""
        id: dockerwd
        namespace: tests.scripts
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: clone
                type: io.kestra.plugin.git.Clone
                url: file://{source}
                directory: repo
              - id: compute
                type: io.kestra.plugin.scripts.python.Script
                containerImage: {PYTHON}
                taskRunner: {{type: io.kestra.plugin.scripts.runner.docker.Docker, pullPolicy: NEVER}}
                script: |
                  total = sum(int(line) for line in open("repo/values.txt"))
                  open("total.txt", "w").write(str(total))
              - id: show
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner: {{type: io.kestra.plugin.core.runner.Process}}
                commands: ["echo total=$(cat total.txt)"]
        """
    )
    assert states(result) == {"wd": "success", "clone": "success", "compute": "success", "show": "success"}
    assert "total=6" in result.tasks["show"].log_text()
    assert flow_containers("dockerwd") == []


def test_cli_tasks_default_to_their_tool_image(run_flow):
    result = run_flow(
        """
        id: cliimage
        namespace: tests.scripts
        tasks:
          - id: tf
            type: io.kestra.plugin.terraform.cli.TerraformCLI
            taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker, pullPolicy: NEVER}
            commands: ["terraform version"]
        """
    )
    assert states(result) == {"tf": "failed"}
    assert "image `hashicorp/terraform` not found locally, and pullPolicy is NEVER" in result.tasks["tf"].log_text()
