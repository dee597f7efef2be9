"""What an operator does with a running Airflow serving Kestra flows, as checks on any deployment.

Each check takes an `AirflowClient` and asserts task and run states through the REST API; the
docker-compose suite (tests/e2e/) and the embedded default (tests/test_airflow_stack.py) run them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from e2e.airflow_rest import AirflowClient

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "dags" / "examples"
BUSYBOX = "yaml2dag-test/busybox"

INPUTS_DAG = "tests.e2e.greet"
SCHEDULED_DAG = "tests.e2e.every_minute"
FAILING_DAG = "company.team.finally_example"
DOCKER_REDIS_DAG = "company.team.dockerRedis"

FLOWS = {
    "e2e/greet.yaml": """
id: greet
namespace: tests.e2e
inputs:
  - id: who
    type: STRING
  - id: times
    type: INT
    defaults: 1
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.who }} x{{ inputs.times * 2 }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.hello.value }}"
finally:
  - id: bye
    type: io.kestra.plugin.core.log.Log
    message: bye
""",
    "e2e/every_minute.yaml": """
id: every_minute
namespace: tests.e2e
tasks:
  - id: tick
    type: io.kestra.plugin.core.log.Log
    message: "tick {{ execution.id }}"
triggers:
  - id: minutely
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * *"
""",
}

EXPECTED_DAGS = {INPUTS_DAG, SCHEDULED_DAG, FAILING_DAG, DOCKER_REDIS_DAG}


def install_flows(dags: Path, redis_host: str | None = None) -> None:
    """Copy the seed flows and this suite's flows into a served folder of flows.

    `redis_host` rewrites the seed dockerRedis flow's `host` variable (for a deployment that runs
    its tasks on the host itself, where host.docker.internal does not resolve); None keeps it as written.
    """
    for name in ("finally_example.yaml", "finally_example_success.yaml"):
        shutil.copy(EXAMPLES / name, dags / name)
    docker_redis = (EXAMPLES / "docker_redis.yaml").read_text()
    if redis_host is not None:
        docker_redis = docker_redis.replace("host: host.docker.internal", f"host: {redis_host}")
    (dags / "docker_redis.yaml").write_text(docker_redis)
    for name, text in FLOWS.items():
        (dags / name).parent.mkdir(parents=True, exist_ok=True)
        (dags / name).write_text(text.lstrip())


def check_flow_with_inputs_succeeds(client: AirflowClient) -> None:
    """Trigger with typed inputs (as the trigger form does): outputs flow to the next task; run success."""
    run_id = client.trigger(INPUTS_DAG, {"who": "operator", "times": 3})
    assert client.finished(INPUTS_DAG, run_id) == "success"
    assert client.flow_task_states(INPUTS_DAG, run_id) == {
        "hello": "success",
        "log": "success",
        "bye": "success",
        "_flow_state": "success",
    }
    assert client.xcom(INPUTS_DAG, run_id, "hello") == {"value": "hello operator x6"}


def check_wrong_input_type_is_refused(client: AirflowClient) -> None:
    """An INT input given text is refused when the run is created: no run, no task."""
    before = len(client.dag_runs(INPUTS_DAG))
    try:
        client.trigger(INPUTS_DAG, {"who": "operator", "times": "three"})
    except Exception as error:  # noqa: BLE001 - urllib raises HTTPError; its code is what matters
        assert getattr(error, "code", None) == 400, error
    else:
        raise AssertionError("a run with a text value for an INT input was accepted")
    assert len(client.dag_runs(INPUTS_DAG)) == before


def check_failing_seed_flow_runs_errors_and_finally(client: AirflowClient) -> None:
    """The seed `finally_example`: `fail` fails, `send_alert` and `cleanup_task` succeed, the run fails."""
    run_id = client.trigger(FAILING_DAG)
    assert client.finished(FAILING_DAG, run_id) == "failed"
    assert client.flow_task_states(FAILING_DAG, run_id) == {
        "fail": "failed",
        "send_alert": "success",
        "cleanup_task": "success",
        "_flow_state": "failed",
    }


def yaml2dag_containers(dag_id: str) -> list[str]:
    """Ids of the containers (running or not) that yaml2dag's Docker tasks started for `dag_id`."""
    listing = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.yaml2dag.dag-id={dag_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


def remove_yaml2dag_containers(dag_id: str) -> None:
    """Force-remove what a killed task could not clean up."""
    if containers := yaml2dag_containers(dag_id):
        subprocess.run(["docker", "rm", "-f", *containers], capture_output=True, check=False)


def check_docker_redis_seed_flow(client: AirflowClient) -> dict[str, dict]:
    """The seed dockerRedis: a Redis container started, used and stopped in `finally`; all nine tasks succeed.

    Returns the task instances (their `hostname` says which worker ran each task).
    """
    run_id = client.trigger(DOCKER_REDIS_DAG)
    try:
        state = client.finished(DOCKER_REDIS_DAG, run_id, timeout=240)
        instances = client.task_instances(DOCKER_REDIS_DAG, run_id)
        states = client.flow_task_states(DOCKER_REDIS_DAG, run_id)
        assert (state, states) == ("success", dict.fromkeys([*DOCKER_REDIS_TASKS, "_flow_state"], "success"))
        container_id = client.xcom(DOCKER_REDIS_DAG, run_id, "start")["taskRunner"]["containerId"]
        assert container_id
        assert yaml2dag_containers(DOCKER_REDIS_DAG) == [], "the `finally` Stop task removes the container"
        return instances
    finally:
        remove_yaml2dag_containers(DOCKER_REDIS_DAG)


DOCKER_REDIS_TASKS = ["start", "sleep", "set", "get", "assert", "delete", "getAfterDelete", "assertAfterDelete", "stop"]


def check_schedule_fires(client: AirflowClient, deadline: float) -> None:
    """The every-minute Schedule trigger creates a scheduled run that succeeds, before `deadline` (monotonic)."""

    def scheduled_success() -> bool:
        runs = client.dag_runs(SCHEDULED_DAG)
        return any(run["run_type"] == "scheduled" and run["state"] == "success" for run in runs)

    client.wait_for(scheduled_success, max(deadline - time.monotonic(), 5), "a scheduled run of the cron flow", 2)
