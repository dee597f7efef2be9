"""Docker Stop on the real daemon: by id, id prefix or name; stop or kill; delete or keep; missing containers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import states

from docker_redis.support import BUSYBOX, REDIS

pytestmark = [pytest.mark.airflow, pytest.mark.docker, pytest.mark.usefixtures("test_images")]


@pytest.fixture
def sleeper(docker_api: Any) -> Iterator[Any]:
    """A running, named busybox container (PID 1 `sleep`, which ignores SIGTERM); removed afterwards."""
    container = docker_api.containers.run(BUSYBOX, ["sleep", "60"], name=f"y2d-{uuid.uuid4().hex[:10]}", detach=True)
    yield container
    import docker

    with contextlib.suppress(docker.errors.NotFound):  # the flow removed it
        container.remove(force=True)


def stop_flow(container_id: str, extra: str = "") -> str:
    """A flow with one Stop task."""
    return f"""
        id: stopper
        namespace: tests.docker
        tasks:
          - id: stop
            type: io.kestra.plugin.docker.cli.Stop
            containerId: "{container_id}"
            {extra}
        """


def exists(docker_api: Any, container_id: str) -> bool:
    """True when the container still exists (any state)."""
    return bool(docker_api.containers.list(all=True, filters={"id": container_id}))


def test_kill_by_name_then_delete(run_flow, docker_api, sleeper):
    result = run_flow(stop_flow(sleeper.name, "kill: true"))
    assert states(result) == {"stop": "success"}
    assert f"Killed container {sleeper.id[:12]}" in result.tasks["stop"].log_text()
    assert f"Removed container {sleeper.id[:12]}" in result.tasks["stop"].log_text()
    assert result.tasks["stop"].outputs is None
    assert not exists(docker_api, sleeper.id)


def test_stop_by_id_prefix_and_keep_the_container(run_flow, docker_api):
    container = docker_api.containers.run(REDIS, detach=True)
    try:
        result = run_flow(stop_flow(container.id[:10], 'delete: "{{ 1 > 2 }}"'))
        assert states(result) == {"stop": "success"}
        assert f"Stopped container {container.id[:12]}" in result.tasks["stop"].log_text()
        container.reload()
        # redis-server exits on SIGTERM, so the graceful stop is quick and the exit code clean.
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 0
    finally:
        container.remove(force=True)


def test_legacy_alias_removes_an_exited_container(run_flow, docker_api):
    container = docker_api.containers.run(BUSYBOX, ["true"], detach=True)
    container.wait()
    result = run_flow(
        f"""
        id: legacystop
        namespace: tests.docker
        tasks:
          - id: stop
            type: io.kestra.plugin.docker.Stop
            containerId: {container.id}
            kill: true
        """
    )
    assert states(result) == {"stop": "success"}
    assert f"Container {container.id[:12]} is not running (exited)" in result.tasks["stop"].log_text()
    assert not exists(docker_api, container.id)


def test_a_container_that_does_not_exist_fails_the_task(run_flow):
    result = run_flow(stop_flow("y2d-no-such-container"))
    assert result.state == "failed"
    assert states(result) == {"stop": "failed"}
    assert (
        "container `y2d-no-such-container` does not exist (never started, or already removed)"
        in result.tasks["stop"].log_text()
    )
