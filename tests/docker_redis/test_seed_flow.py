"""The flagship flow dags/examples/docker_redis.yaml, end to end on the real daemon and the `redis` test image."""

from __future__ import annotations

import pytest
from conftest import states

from docker_redis.support import SEED_FLOW, port_is_free

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.docker,
    pytest.mark.redis,
    pytest.mark.usefixtures("test_images", "seed_redis_image"),
]

SEED_ASSERT = '"{{outputs.get.data == flow.id}}"'


@pytest.fixture
def seed_port() -> None:
    """The seed flow publishes the container's Redis on host port 6379, which must be free."""
    if not port_is_free(6379):
        pytest.skip("host port 6379 is in use (a local redis-server?); the seed flow needs it")


LOCAL = {"host": "127.0.0.1"}


def test_seed_flow_runs_end_to_end(run_flow, seed_port, flow_containers):
    result = run_flow(SEED_FLOW, variables=LOCAL)
    assert result.state == "success"
    assert states(result) == {
        "start": "success",
        "sleep": "success",
        "set": "success",
        "get": "success",
        "assert": "success",
        "delete": "success",
        "getAfterDelete": "success",
        "assertAfterDelete": "success",
        "stop": "success",
    }
    container_id = result.tasks["start"].outputs["taskRunner"]["containerId"]
    assert result.tasks["get"].outputs["data"] == "dockerRedis"
    assert result.tasks["get"].outputs["key"] == f"key_string_{result.run_id}"
    assert result.tasks["delete"].outputs == {"count": 1}
    assert "data" not in result.tasks["getAfterDelete"].outputs
    assert f"Stopped container {container_id[:12]}" in result.tasks["stop"].log_text()
    assert f"Removed container {container_id[:12]}" in result.tasks["stop"].log_text()
    assert "Assertion `{{(outputs.getAfterDelete contains 'data') == false}}` succeeded" in (
        result.tasks["assertAfterDelete"].log_text()
    )
    assert flow_containers(result.dag_id) == []


def test_seed_flow_with_a_failing_assert_still_stops_the_container(run_flow, flow_file, seed_port, flow_containers):
    text = SEED_FLOW.read_text()
    assert SEED_ASSERT in text
    path = flow_file(text.replace(SEED_ASSERT, "\"{{outputs.get.data == 'something else'}}\""), "seed_failing.yaml")
    result = run_flow(path, variables=LOCAL)
    assert result.state == "failed"
    assert states(result) == {
        "start": "success",
        "sleep": "success",
        "set": "success",
        "get": "success",
        "assert": "failed",
        "delete": "upstream_failed",
        "getAfterDelete": "upstream_failed",
        "assertAfterDelete": "upstream_failed",
        "stop": "success",
    }
    assert "1 assertion(s) failed! Invalid get data" in result.tasks["assert"].log_text()
    container_id = result.tasks["start"].outputs["taskRunner"]["containerId"]
    assert f"Removed container {container_id[:12]}" in result.tasks["stop"].log_text()
    assert flow_containers(result.dag_id) == []
