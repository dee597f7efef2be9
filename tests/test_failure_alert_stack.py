"""The "failure alert" blueprint pattern on the real stack (`airflow standalone` + the DAG bundle).

A flow fails → the alert flow, started by its Flow trigger, posts a SlackExecution summary naming the
failed flow, its run and its failed task (plus a plain message) to a webhook server on 127.0.0.1; the
same flow succeeding posts nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.airflow_rest import AirflowClient, airflow_standalone
from http_support import LoopbackServer, start_server

pytestmark = pytest.mark.airflow

NAMESPACE = "tests.alerting"


def _flows(hook: str) -> dict[str, str]:
    return {
        "nightly.yaml": f"""
id: nightly
namespace: {NAMESPACE}
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: extract
    type: io.kestra.plugin.core.log.Log
    message: extracting
  - id: load
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ inputs.fail }}}}"
    errorMessage: warehouse unreachable
""",
        "alert.yaml": f"""
id: alert
namespace: {NAMESPACE}
tasks:
  - id: slack_summary
    type: io.kestra.plugin.slack.notifications.SlackExecution
    url: "{hook}/hook/summary"
    executionId: "{{{{ trigger.executionId }}}}"
  - id: slack_text
    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
    url: "{hook}/hook/text"
    messageText: >-
      {{{{ trigger.namespace }}}}.{{{{ trigger.flowId }}}} {{{{ trigger.executionId }}}} {{{{ trigger.state }}}}
triggers:
  - id: on_failure
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: nightly_failed
      flows:
        - namespace: {NAMESPACE}
          flowId: nightly
          states: [FAILED]
""",
    }


@pytest.fixture(scope="module")
def hook() -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    yield state
    httpd.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, hook: LoopbackServer) -> Iterator[AirflowClient]:
    home = tmp_path_factory.mktemp("alert-home")
    # On a loaded machine a worker's first call to the execution API can take longer than the default
    # 5 s, and Airflow then fails the task before it starts; give it time (environment variables
    # starting with AIRFLOW are not passed to the stack, its airflow.cfg is).
    # The file then also holds the secrets Airflow would generate into it, shared by all its processes.
    secret = secrets.token_urlsafe(32)
    (home / "airflow.cfg").write_text(
        f"[workers]\nexecution_api_timeout = 60\n[api_auth]\njwt_secret = {secret}\n[api]\nsecret_key = {secret}\n"
    )
    dags: Path = tmp_path_factory.mktemp("alert-dags")
    for name, text in _flows(hook.url).items():
        (dags / name).write_text(text)
    with airflow_standalone(home, dags) as client:
        client.wait_for_dags({f"{NAMESPACE}.nightly", f"{NAMESPACE}.alert"})
        yield client


def _diagnose(stack: AirflowClient, dag_id: str, run_id: str) -> str:
    """Task states and the failed tasks' logs of a run, for an assertion message."""
    states = stack.task_states(dag_id, run_id)
    logs = []
    for task_id, state in states.items():
        if state == "failed":
            path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1"
            content = stack.request("GET", path).get("content", [])
            logs.append(f"--- {task_id}\n" + "\n".join(str(line.get("event", line)) for line in content[-15:]))
    return f"{states}\n" + "\n".join(logs)


def _alert_runs(stack: AirflowClient) -> list[dict]:
    return [run for run in stack.dag_runs(f"{NAMESPACE}.alert") if run["run_type"] == "asset_triggered"]


def test_a_successful_run_posts_nothing(stack: AirflowClient, hook: LoopbackServer):
    run_id = stack.trigger(f"{NAMESPACE}.nightly", {"fail": False})
    state = stack.finished(f"{NAMESPACE}.nightly", run_id)
    assert state == "success", _diagnose(stack, f"{NAMESPACE}.nightly", run_id)
    stack.wait_for_scheduler_loops(3)
    assert _alert_runs(stack) == []
    assert hook.hooks() == []


def test_a_failed_run_starts_the_alert_that_names_it_and_its_failed_task(stack: AirflowClient, hook: LoopbackServer):
    run_id = stack.trigger(f"{NAMESPACE}.nightly", {"fail": True})
    assert stack.finished(f"{NAMESPACE}.nightly", run_id) == "failed"
    [started] = stack.wait_for(lambda: _alert_runs(stack), 120, "the alert run")
    assert stack.finished(f"{NAMESPACE}.alert", started["dag_run_id"]) == "success"
    posted = {request.path: request.json() for request in hook.hooks()}
    assert posted["/hook/text"] == {"text": f"{NAMESPACE}.nightly {run_id} FAILED"}
    summary = posted["/hook/summary"]
    assert f"[{NAMESPACE}] nightly ➛ FAILED" in summary["text"]
    assert "Failed on task `load`" in summary["text"]
    assert f"/dags/{NAMESPACE}.nightly/runs/" in summary["text"]
    fields = {field["title"]: field["value"] for field in summary["attachments"][0]["fields"]}
    assert fields == {"Namespace": NAMESPACE, "Job": "nightly", "Execution": run_id, "Status": "FAILED"}
    assert summary["attachments"][0]["color"] == "danger"
