"""Flow triggers on the real stack: `airflow standalone` (scheduler, DAG processor, API server) serving
flows through the DAG bundle. An upstream run's end-state asset event starts the flows waiting for
that state — and only those.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.airflow_rest import AirflowClient, airflow_standalone

pytestmark = pytest.mark.airflow

NAMESPACE = "tests.flowtrig"


def downstream(flow_id: str, upstream: str, states: str) -> str:
    """A flow started by a Flow trigger when `upstream` ends in one of `states`."""
    return f"""
id: {flow_id}
namespace: {NAMESPACE}
tasks:
  - id: react
    type: io.kestra.plugin.core.log.Log
    message: "{flow_id} started"
triggers:
  - id: after_upstream
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: upstream_done
      flows:
        - namespace: {NAMESPACE}
          flowId: {upstream}
          states: {states}
"""


FLOWS = {
    "extract.yaml": f"""
id: extract
namespace: {NAMESPACE}
tasks:
  - id: work
    type: io.kestra.plugin.core.log.Log
    message: extracted
""",
    "broken_load.yaml": f"""
id: broken_load
namespace: {NAMESPACE}
tasks:
  - id: load
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the load failed
""",
    "on_extract_success.yaml": downstream("on_extract_success", "extract", "[SUCCESS]"),
    "on_extract_failure.yaml": downstream("on_extract_failure", "extract", "[FAILED]"),
    # The legacy shape: an ExecutionFlow condition and the trigger's `states`.
    "on_load_failure.yaml": f"""
id: on_load_failure
namespace: {NAMESPACE}
tasks:
  - id: alert
    type: io.kestra.plugin.core.log.Log
    message: the load failed
triggers:
  - id: load_failed
    type: io.kestra.core.models.triggers.types.Flow
    states: [FAILED]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {NAMESPACE}
        flowId: broken_load
""",
}
DAGS = {f"{NAMESPACE}.{name.removesuffix('.yaml')}" for name in FLOWS}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowClient]:
    home = tmp_path_factory.mktemp("flowtrig-home")
    dags: Path = tmp_path_factory.mktemp("flowtrig-dags")
    for name, text in FLOWS.items():
        (dags / name).write_text(text)
    with airflow_standalone(home, dags) as client:
        client.wait_for_dags(DAGS)
        yield client


def started_runs(stack: AirflowClient, dag_id: str) -> list[dict]:
    return [run for run in stack.dag_runs(dag_id) if run["run_type"] == "asset_triggered"]


def test_a_successful_upstream_run_starts_the_flow_waiting_for_success_only(stack: AirflowClient):
    run_id = stack.trigger(f"{NAMESPACE}.extract")
    state = stack.finished(f"{NAMESPACE}.extract", run_id)
    assert state == "success", stack.task_states(f"{NAMESPACE}.extract", run_id)
    assert stack.task_states(f"{NAMESPACE}.extract", run_id)["_flow_event"] == "success"

    dag_id = f"{NAMESPACE}.on_extract_success"
    [started] = stack.wait_for(lambda: started_runs(stack, dag_id), 120, "the downstream run")
    assert stack.finished(dag_id, started["dag_run_id"]) == "success"
    assert stack.task_states(dag_id, started["dag_run_id"])["react"] == "success"

    events = stack.request("GET", "/api/v2/assets/events?limit=100")["asset_events"]
    [event] = [event for event in events if event["uri"] == f"kestra://{NAMESPACE}/extract/SUCCESS"]
    assert event["extra"]["executionId"] == run_id
    assert event["extra"]["state"] == "SUCCESS"
    assert started_runs(stack, f"{NAMESPACE}.on_extract_failure") == [], "a FAILED trigger ignores a success"


def test_a_failed_upstream_run_starts_the_flow_waiting_for_failure(stack: AirflowClient):
    run_id = stack.trigger(f"{NAMESPACE}.broken_load")
    assert stack.finished(f"{NAMESPACE}.broken_load", run_id) == "failed"
    assert stack.task_states(f"{NAMESPACE}.broken_load", run_id) == {
        "load": "failed",
        "_flow_state": "failed",
        "_flow_event": "success",
    }
    dag_id = f"{NAMESPACE}.on_load_failure"
    [started] = stack.wait_for(lambda: started_runs(stack, dag_id), 120, "the alerting run")
    assert stack.finished(dag_id, started["dag_run_id"]) == "success"
    assert started_runs(stack, f"{NAMESPACE}.on_extract_failure") == []
