"""Subflow and Pause on the real thing: `airflow standalone` (scheduler, triggerer, API server) serving
flows through the DAG bundle; runs are started, watched and resumed through the REST API the UI uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.airflow_rest import AirflowClient, airflow_standalone

pytestmark = pytest.mark.airflow

CHILD = "tests.subflow.child"
SUBFLOW_FLOWS = {
    "child.yaml": """
id: child
namespace: tests.subflow
inputs:
  - id: who
    type: STRING
  - id: outcome
    type: STRING
    defaults: ok
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.who }}"
  - id: maybe_fail
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ inputs.outcome == 'fail' }}"
    errorMessage: the child was asked to fail
  - id: maybe_warn
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ inputs.outcome == 'warn' }}"
    allowFailure: true
  - id: note
    type: io.kestra.plugin.core.storage.Write
    content: "note for {{ inputs.who }}"
    extension: .txt
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.greet.value }}"
  - id: size
    type: INT
    value: "{{ inputs.who | length }}"
  - id: note
    type: FILE
    value: "{{ outputs.note.uri }}"
""",
    "parent.yaml": """
id: parent
namespace: tests.subflow
inputs:
  - id: outcome
    type: STRING
    defaults: ok
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.subflow
    flowId: child
    inputs:
      who: airflow
      outcome: "{{ inputs.outcome }}"
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sub.executionId }} {{ outputs.sub.state }}"
  - id: child_outputs
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sub.outputs.greeting }} ({{ outputs.sub.outputs.size }}): {{ read(outputs.sub.outputs.note) }}"
errors:
  - id: on_error
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sub.state }}: {{ errorLogs()[0].message }}"
""",
    "parent_lenient.yaml": """
id: parent_lenient
namespace: tests.subflow
tasks:
  - id: sub
    type: io.kestra.core.tasks.flows.Flow
    namespace: tests.subflow
    flowId: child
    transmitFailed: false
    inputs:
      who: lenient
      outcome: fail
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sub.state }}"
""",
    "parent_nowait.yaml": """
id: parent_nowait
namespace: tests.subflow
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.subflow
    flowId: child
    wait: false
    inputs:
      who: fire-and-forget
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sub.executionId }} {{ outputs.sub.state ?? 'no state' }}"
""",
    "parent_broken.yaml": """
id: parent_broken
namespace: tests.subflow
inputs:
  - id: target
    type: STRING
    defaults: nothere
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.subflow
    flowId: "{{ inputs.target }}"
errors:
  - id: on_error
    type: io.kestra.plugin.core.debug.Return
    format: "{{ errorLogs()[0].message }}"
""",
}
PAUSE_FLOWS = {
    "pause_manual.yaml": """
id: manual
namespace: tests.pause
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    description: Check the numbers, then resume.
    onResume:
      - id: approved
        type: BOOLEAN
      - id: reason
        type: STRING
        defaults: none given
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ outputs.approve.onResume.approved }} {{ outputs.approve.onResume.reason }}
      by {{ outputs.approve.resumed.by }}
""",
    "pause_early.yaml": """
id: early
namespace: tests.pause
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT1H
    behavior: FAIL
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: resumed before the hour
""",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowClient]:
    home = tmp_path_factory.mktemp("subflow-stack-home")
    dags = tmp_path_factory.mktemp("subflow-stack-dags")
    for name, text in {**SUBFLOW_FLOWS, **PAUSE_FLOWS}.items():
        (dags / name).write_text(text)
    with airflow_standalone(home, dags) as client:
        ids = {f"tests.subflow.{Path(name).stem}" for name in SUBFLOW_FLOWS} | {
            "tests.pause.manual",
            "tests.pause.early",
        }
        client.wait_for_dags(ids)
        yield client


def xcom(stack: AirflowClient, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
    return stack.request("GET", path)["value"]


def hitl_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"


# --- Subflow ---------------------------------------------------------------------------------------


def test_parent_runs_the_child_with_its_inputs_and_reads_its_outputs(stack: AirflowClient):
    run_id = stack.trigger("tests.subflow.parent")
    assert stack.finished("tests.subflow.parent", run_id) == "success"
    outputs = xcom(stack, "tests.subflow.parent", run_id, "sub")
    child_run = outputs["executionId"]
    note = outputs["outputs"]["note"]
    assert note.startswith("kestra:///tests/subflow/child/executions/") and note.endswith(".txt")
    assert outputs == {
        "executionId": child_run,
        "state": "SUCCESS",
        "outputs": {"greeting": "hello airflow", "size": 7, "note": note},
    }
    assert stack.run_state(CHILD, child_run) == "success"
    assert xcom(stack, CHILD, child_run, "greet") == {"value": "hello airflow"}
    assert xcom(stack, "tests.subflow.parent", run_id, "report") == {"value": f"{child_run} SUCCESS"}
    # Kestra's `outputs.<subflow task>.outputs.<id>`, a FILE output read through the shared storage.
    assert xcom(stack, "tests.subflow.parent", run_id, "child_outputs") == {
        "value": "hello airflow (7): note for airflow"
    }
    assert stack.task_states("tests.subflow.parent", run_id)["on_error"] == "skipped"


def test_child_failure_fails_the_subflow_task_when_transmitted(stack: AirflowClient):
    run_id = stack.trigger("tests.subflow.parent", {"outcome": "fail"})
    assert stack.finished("tests.subflow.parent", run_id) == "failed"
    task_states = stack.task_states("tests.subflow.parent", run_id)
    assert (task_states["sub"], task_states["report"], task_states["on_error"]) == (
        "failed",
        "upstream_failed",
        "success",
    )
    child_run = xcom(stack, "tests.subflow.parent", run_id, "sub")["executionId"]
    assert stack.run_state(CHILD, child_run) == "failed"
    message = xcom(stack, "tests.subflow.parent", run_id, "on_error")["value"]
    assert message == f"FAILED: Subflow `{CHILD}` run {child_run} ended FAILED"


def test_child_warning_ends_the_subflow_task_warning(stack: AirflowClient):
    run_id = stack.trigger("tests.subflow.parent", {"outcome": "warn"})
    assert stack.finished("tests.subflow.parent", run_id) == "success"
    assert xcom(stack, "tests.subflow.parent", run_id, "sub", "kestra_state") == "WARNING"
    assert xcom(stack, "tests.subflow.parent", run_id, "_flow_state") == {"state": "WARNING"}
    assert xcom(stack, "tests.subflow.parent", run_id, "report")["value"].endswith(" WARNING")


def test_child_failure_is_not_transmitted_when_transmit_failed_is_false(stack: AirflowClient):
    run_id = stack.trigger("tests.subflow.parent_lenient")
    assert stack.finished("tests.subflow.parent_lenient", run_id) == "success"
    assert stack.task_states("tests.subflow.parent_lenient", run_id)["sub"] == "success"
    assert xcom(stack, "tests.subflow.parent_lenient", run_id, "report") == {"value": "FAILED"}


def test_wait_false_succeeds_once_the_child_run_exists(stack: AirflowClient):
    run_id = stack.trigger("tests.subflow.parent_nowait")
    assert stack.finished("tests.subflow.parent_nowait", run_id) == "success"
    outputs = xcom(stack, "tests.subflow.parent_nowait", run_id, "sub")
    assert set(outputs) == {"executionId"}
    assert xcom(stack, "tests.subflow.parent_nowait", run_id, "report") == {
        "value": f"{outputs['executionId']} no state"
    }
    assert stack.finished(CHILD, outputs["executionId"]) == "success"


def test_missing_target_flow_fails_the_task_with_a_clear_message(stack: AirflowClient):
    run_id = stack.trigger("tests.subflow.parent_broken")
    assert stack.finished("tests.subflow.parent_broken", run_id) == "failed"
    message = xcom(stack, "tests.subflow.parent_broken", run_id, "on_error")["value"]
    assert message.startswith("Subflow target `tests.subflow.nothere` not found")


def test_inputs_the_child_refuses_fail_the_subflow_task(stack: AirflowClient):
    # the child's `who` input is required: a run without it cannot be created
    run_id = stack.trigger("tests.subflow.parent_broken", {"target": "child"})
    assert stack.finished("tests.subflow.parent_broken", run_id) == "failed"
    message = xcom(stack, "tests.subflow.parent_broken", run_id, "on_error")["value"]
    assert message.startswith(f"Subflow `{CHILD}`: the run could not be created")


# --- Pause -----------------------------------------------------------------------------------------


def test_pause_waits_for_a_person_and_resumes_with_the_on_resume_inputs(stack: AirflowClient):
    dag_id = "tests.pause.manual"
    run_id = stack.trigger(dag_id)
    stack.wait_for(
        lambda: stack.task_states(dag_id, run_id).get("approve") == "awaiting_input", 90, "the Pause to wait for input"
    )
    detail = stack.request("GET", hitl_path(dag_id, run_id, "approve"))
    assert detail["options"] == ["Resume"]
    assert detail["subject"] == "Resume tests.pause.manual: task `approve` is paused"
    assert "Check the numbers, then resume." in detail["body"]
    assert set(detail["params"]) == {"approved", "reason"}
    assert stack.run_state(dag_id, run_id) == "running"
    stack.wait_for_scheduler_loops()

    stack.request(
        "PATCH",
        hitl_path(dag_id, run_id, "approve"),
        {"chosen_options": ["Resume"], "params_input": {"approved": True, "reason": "looks right"}},
    )
    assert stack.finished(dag_id, run_id) == "success"
    outputs = xcom(stack, dag_id, run_id, "approve")
    assert outputs["onResume"] == {"approved": True, "reason": "looks right"}
    assert outputs["resumed"]["by"] == "admin"
    assert xcom(stack, dag_id, run_id, "report") == {"value": "true looks right by admin"}


def test_pause_with_a_duration_can_be_resumed_before_it_elapses(stack: AirflowClient):
    dag_id = "tests.pause.early"
    run_id = stack.trigger(dag_id)
    stack.wait_for(lambda: stack.task_states(dag_id, run_id).get("hold") == "deferred", 90, "the Pause to defer")
    stack.wait_for(lambda: stack.request("GET", hitl_path(dag_id, run_id, "hold")), 30, "the resume request")
    stack.wait_for_scheduler_loops()
    stack.request("PATCH", hitl_path(dag_id, run_id, "hold"), {"chosen_options": ["Resume"]})
    assert stack.finished(dag_id, run_id) == "success"
    task_states = stack.task_states(dag_id, run_id)
    assert (task_states["hold"], task_states["after"]) == ("success", "success")
