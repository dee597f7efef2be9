"""Python `dependencies` on the Docker runner: pip runs in the container before the script."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import states
from test_python_dependencies import build_wheel

pytestmark = [pytest.mark.airflow, pytest.mark.docker, pytest.mark.usefixtures("test_images")]

PYTHON = "yaml2dag-test/python"


def _has_pip(docker_api) -> bool:
    import docker

    try:
        docker_api.images.get(PYTHON)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{PYTHON} not built: run scripts/build-images.sh (yaml2dag-debian) then build-test-images.sh")
    output = docker_api.containers.run(
        PYTHON, ["sh", "-c", "python -m pip --version >/dev/null 2>&1 && echo yes || echo no"], entrypoint=[""],
        remove=True, network_mode="none",
    )  # fmt: skip
    return output.decode().strip() == "yes"


def test_pip_failing_in_the_container_fails_the_task_before_the_script(run_flow, docker_api, flow_containers):
    if _has_pip(docker_api):
        pytest.skip(f"{PYTHON} has pip: this test needs an image where pip fails")
    result = run_flow(
        f"""
        id: dockerpydepsfail
        namespace: tests.scripts
        tasks:
          - id: py
            type: io.kestra.plugin.scripts.python.Script
            containerImage: {PYTHON}
            failFast: false
            taskRunner:
              type: io.kestra.plugin.scripts.runner.docker.Docker
              pullPolicy: NEVER
              networkMode: none
            dependencies: [y2d-answer]
            beforeCommands: ["echo before-ran"]
            script: print("script-ran")
        """
    )
    assert states(result) == {"py": "failed"}
    log = result.tasks["py"].log_text()
    assert "No module named pip" in log
    assert "yaml2dag: pip could not install the dependencies (exit code 1)" in log
    messages = {line.message.strip() for line in result.tasks["py"].logs}
    assert "before-ran" not in messages and "script-ran" not in messages  # neither ran after pip failed
    assert flow_containers("dockerpydepsfail") == []


def test_dependencies_installed_in_the_container(run_flow, docker_api, flow_containers, tmp_path: Path, monkeypatch):
    if not _has_pip(docker_api):
        pytest.skip(f"{PYTHON} (Debian python3 without python3-pip) has no pip: the install cannot run in it")
    wheels = build_wheel(tmp_path)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DOCKER_ALLOWED_VOLUMES", str(wheels))
    result = run_flow(
        f"""
        id: dockerpydeps
        namespace: tests.scripts
        tasks:
          - id: py
            type: io.kestra.plugin.scripts.python.Script
            containerImage: {PYTHON}
            env: {{PIP_BREAK_SYSTEM_PACKAGES: "1"}}
            taskRunner:
              type: io.kestra.plugin.scripts.runner.docker.Docker
              pullPolicy: NEVER
              networkMode: none
              volumes: ["{wheels}:{wheels}:ro"]
            dependencies: [y2d-answer==1.0]
            script: |
              import y2d_answer
              print('::{{"outputs": {{"answer": %d}}}}::' % y2d_answer.ANSWER)
        """
    )
    assert states(result) == {"py": "success"}
    assert result.tasks["py"].outputs["vars"] == {"answer": 42}
    assert flow_containers("dockerpydeps") == []
