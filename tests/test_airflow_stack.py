"""The real thing: `airflow standalone` (scheduler, DAG processor, triggerer, API server, LocalExecutor)
serving a folder of flows through `yaml2dag.bundle.KestraFlowsBundle`, as the README's run command
does; flows are triggered and operated through the REST API the UI uses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e import scenarios
from e2e.airflow_rest import AirflowClient, airflow_standalone

pytestmark = pytest.mark.airflow

FLOWS_FOR_STACK = {
    "long_running.yaml": """
id: long_running
namespace: tests.stack
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT120S
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: never
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: cleaned up after the run was marked failed
""",
    "with_secret.yaml": """
id: with_secret
namespace: tests.stack
inputs:
  - id: apiToken
    type: SECRET
    validator: "s3cr3t-[a-z]+-[0-9]+"
tasks:
  - id: check
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.apiToken == 's3cr3t-token-123' }} {{ inputs.apiToken | length }}"
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "token {{ inputs.apiToken }}"
""",
    "with_inputs.yaml": """
id: with_inputs
namespace: tests.stack
inputs:
  - id: who
    type: STRING
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.who }}"
""",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("stack-home")
    dags = tmp_path_factory.mktemp("stack-dags")
    # The e2e scenarios' flows; dockerRedis reaches its Redis on 127.0.0.1, as tasks run on this host.
    scenarios.install_flows(dags, redis_host="127.0.0.1")
    for name, text in FLOWS_FOR_STACK.items():
        (dags / name).write_text(text)
    shutil.copy(scenarios.EXAMPLES / "flowables.yaml", dags / "flowables.yaml")
    with airflow_standalone(home, dags) as client:
        yield AirflowStack(client, dags)


class AirflowStack:
    """The embedded default's REST client, and the folder of flows it serves."""

    def __init__(self, client: AirflowClient, dags: Path) -> None:
        self.client = client
        self.dags = dags

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_example_flows_appear_as_dags_and_run_with_kestra_states(stack: AirflowStack):
    expected = {"company.team.finally_example", "company.team.success.finally_example", "tests.stack.long_running"}
    stack.wait_for(lambda: expected <= stack.dag_ids(), 120, "the example DAGs")

    failing = stack.trigger("company.team.finally_example")
    succeeding = stack.trigger("company.team.success.finally_example")
    assert stack.finished("company.team.finally_example", failing) == "failed"
    assert stack.flow_task_states("company.team.finally_example", failing) == {
        "fail": "failed",
        "send_alert": "success",
        "cleanup_task": "success",
        "_flow_state": "failed",
    }
    assert stack.finished("company.team.success.finally_example", succeeding) == "success"
    assert stack.flow_task_states("company.team.success.finally_example", succeeding) == {
        "log": "success",
        "send_alert": "skipped",
        "cleanup_task": "success",
        "_flow_state": "success",
    }


def test_inputs_are_passed_from_the_trigger_form(stack: AirflowStack):
    stack.wait_for(lambda: "tests.stack.with_inputs" in stack.dag_ids(), 120, "the DAG with inputs")
    run_id = stack.trigger("tests.stack.with_inputs", {"who": "airflow"})
    assert stack.finished("tests.stack.with_inputs", run_id) == "success"
    xcom = stack.request(
        "GET", f"/api/v2/dags/tests.stack.with_inputs/dagRuns/{run_id}/taskInstances/hello/xcomEntries/return_value"
    )
    assert xcom["value"] == {"value": "hello airflow"}


def test_a_secret_input_is_never_shown_by_the_rest_api_and_tasks_still_read_it(stack: AirflowStack):
    dag_id = "tests.stack.with_secret"
    stack.wait_for(lambda: dag_id in stack.dag_ids(), 120, "the DAG with a SECRET input")
    # The trigger form posts to this same endpoint; a `referer` header only marks the run as UI-triggered.
    run_id = stack.trigger(dag_id, {"apiToken": "s3cr3t-token-123"})
    run = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    assert run["conf"]["apiToken"].startswith("yaml2dag-sealed:v1:")
    assert stack.finished(dag_id, run_id) == "success"
    assert stack.xcom(dag_id, run_id, "check") == {"value": "true 16"}
    log = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/show/logs/1")
    assert "token ***" in json.dumps(log)
    shown = [
        stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"),
        stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100"),
        stack.request("POST", "/api/v2/dags/~/dagRuns/list", {"dag_ids": [dag_id]}),
        stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"),
        log,
    ]
    assert "s3cr3t-token-123" not in json.dumps(shown)

    # The validator Airflow cannot check on a sealed value is checked before the run is stored.
    with pytest.raises(urllib.error.HTTPError) as refused:
        stack.trigger(dag_id, {"apiToken": "not-the-format"})
    assert refused.value.code == 400
    detail = refused.value.read().decode()
    assert "apiToken" in detail and "not-the-format" not in detail


def test_finally_runs_when_a_user_marks_the_run_failed_mid_task(stack: AirflowStack):
    dag_id = "tests.stack.long_running"
    stack.wait_for(lambda: dag_id in stack.dag_ids(), 120, "the long-running DAG")
    run_id = stack.trigger(dag_id)
    # Deferred, not just running: on SQLite, Airflow can lose a mark that lands while the task is
    # deferring (the defer's update reads `running` before the mark commits and writes `deferred`
    # after it, as SQLite ignores SELECT ... FOR UPDATE); the task then succeeds 120 s later.
    stack.wait_for(lambda: stack.task_states(dag_id, run_id).get("wait") == "deferred", 90, "the Sleep task to defer")
    stack.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})
    assert stack.finished(dag_id, run_id) == "failed"
    assert stack.flow_task_states(dag_id, run_id) == {
        "wait": "failed",
        "never": "skipped",
        "cleanup": "success",
        "_flow_state": "failed",
    }


def test_nested_flowables_run_and_show_as_nested_groups_in_the_graph(stack: AirflowStack):
    dag_id = "company.team.flowables"
    stack.wait_for(lambda: dag_id in stack.dag_ids(), 120, "the flowables example DAG")
    run_id = stack.trigger(dag_id, {"environment": "prod"})
    assert stack.finished(dag_id, run_id) == "success"  # Kestra WARNING: the Airflow run succeeds
    task_states = stack.task_states(dag_id, run_id)
    assert task_states["announce_prod"] == "success"
    assert task_states["announce_dev"] == "skipped"
    assert task_states["flaky_check"] == "failed"
    assert task_states["report"] == "success"
    assert task_states["tolerant.end"] == "success"
    assert task_states["_flow_state"] == "success"
    assert stack.xcom(dag_id, run_id, "_flow_state") == {"state": "WARNING"}

    structure = stack.request("GET", f"/ui/structure/structure_data?dag_id={dag_id}")
    groups = _groups(structure["nodes"])
    assert {"check", "regions", "fan_out", "tolerant"} <= set(groups)
    assert "tolerant" in groups["fan_out"], "AllowFailure `tolerant` is drawn inside Parallel `fan_out`"
    assert "flaky_check" in groups["tolerant"]


def _groups(nodes: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Group id → ids of its direct children, from the UI's graph structure."""
    found: dict[str, set[str]] = {}
    for node in nodes:
        children = node.get("children") or []
        if children:
            found[node["id"]] = {child["id"] for child in children}
            found.update(_groups(children))
    return found


def test_broken_flow_shows_its_own_import_error_until_fixed(stack: AirflowStack):
    stack.wait_for(lambda: "tests.stack.with_inputs" in stack.dag_ids(), 120, "the DAGs")
    broken = stack.dags / "team" / "broken.yaml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text(
        "id: fixed_later\nnamespace: tests.stack\ntasks:\n"
        "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    mesage: hi\n"
    )
    error = stack.wait_for(lambda: stack.import_errors().get("team/broken.yaml.py"), 120, "the import error")
    # The located messages alone, first: no traceback of yaml2dag's frames.
    assert error.startswith(f"{broken}:4:5: tasks[0].message: missing required property `message`"), error
    assert f"\n{broken}:6:5: tasks[0].mesage: unknown property `mesage`" in error
    assert "did you mean `message`?" in error
    assert len(stack.import_errors()) == 1, "only the broken flow has an error"
    dags = stack.request("GET", "/api/v2/dags?limit=100")["dags"]
    assert {"tests.stack.with_inputs", "company.team.finally_example"} <= {dag["dag_id"] for dag in dags}

    broken.write_text(broken.read_text().replace("mesage", "message"))
    stack.wait_for(lambda: not stack.import_errors(), 120, "the import error to clear")
    stack.wait_for(lambda: "tests.stack.fixed_later" in stack.dag_ids(), 120, "the fixed flow to load")


# The e2e scenarios of tests/e2e (the compose stack), on the embedded default (minus Celery specifics).


def test_scenario_flow_with_inputs_succeeds_and_a_wrong_type_is_refused(stack: AirflowStack):
    stack.wait_for_dags(scenarios.EXPECTED_DAGS)
    scenarios.check_flow_with_inputs_succeeds(stack.client)
    scenarios.check_wrong_input_type_is_refused(stack.client)


def test_scenario_failing_seed_flow(stack: AirflowStack):
    scenarios.check_failing_seed_flow_runs_errors_and_finally(stack.client)


@pytest.mark.docker
def test_scenario_docker_redis_seed_flow(stack: AirflowStack):
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.skip("needs the Docker daemon")
    label = '{{ index .Config.Labels "io.yaml2dag.test-image.fingerprint" }}'
    inspect = subprocess.run(["docker", "image", "inspect", "-f", label, "redis"], capture_output=True, text=True)
    if inspect.returncode or not inspect.stdout.strip():
        pytest.skip("needs `redis` to be the test image of scripts/build-test-images.sh (not a Redis image of yours)")
    scenarios.check_docker_redis_seed_flow(stack.client)


def test_scenario_every_minute_schedule_fires(stack: AirflowStack):
    scenarios.check_schedule_fires(stack.client, time.monotonic() + 130)
