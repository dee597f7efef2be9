"""Fetch, Labels and a scheduled run lacking a required input on the real thing: `airflow standalone`
(scheduler, LocalExecutor workers writing task log files) serving flows through the DAG bundle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e.airflow_rest import AirflowClient, airflow_standalone

pytestmark = pytest.mark.airflow

# Oracle: Kestra core/src/test/resources/flows/valids/get-log.yaml, get-log-taskid.yaml and
# FetchTest (size counts the lines the tasks logged; `tasksId` keeps one task's).
FLOWS = {
    "get_log.yaml": """
id: get_log
namespace: tests.execstack
tasks:
  - id: task-1
    type: io.kestra.plugin.core.debug.Echo
    format: task 1
  - id: task-2
    type: io.kestra.plugin.core.debug.Echo
    format: task 2
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: careful
  - id: all
    type: io.kestra.plugin.core.log.Fetch
  - id: one-task
    type: io.kestra.plugin.core.log.Fetch
    tasksId:
      - task-1
  - id: warnings
    type: io.kestra.plugin.core.log.Fetch
    level: WARN
  - id: by-id
    type: io.kestra.plugin.core.log.Fetch
    executionId: "{{ execution.id }}"
    namespace: tests.execstack
    flowId: get_log
  - id: rows
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs['one-task'].uri) }}"
""",
    "scheduled_input.yaml": """
id: scheduled_input
namespace: tests.execstack
inputs:
  - id: name
    type: STRING
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.name }}"
triggers:
  - id: every_minute
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * *"
""",
    "labelled.yaml": """
id: labelled
namespace: tests.execstack
labels:
  team: data
tasks:
  - id: set
    type: io.kestra.plugin.core.execution.Labels
    labels:
      stage: "{{ 'prod' | upper }}"
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ labels.team }}/{{ labels.stage }}"
""",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowClient]:
    home = tmp_path_factory.mktemp("execution-stack-home")
    dags = tmp_path_factory.mktemp("execution-stack-dags")
    for name, text in FLOWS.items():
        (dags / name).write_text(text)
    with airflow_standalone(home, dags) as client:
        client.wait_for_dags({"tests.execstack.get_log", "tests.execstack.scheduled_input", "tests.execstack.labelled"})
        # A first run absorbs the stack's slow start (a loaded machine can time a first task out).
        client.finished("tests.execstack.labelled", client.trigger("tests.execstack.labelled"), timeout=300)
        yield client


def xcom(stack: AirflowClient, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
    return stack.request("GET", path)["value"]


def test_fetch_stores_the_run_task_logs_by_task_and_level(stack: AirflowClient):
    dag_id = "tests.execstack.get_log"
    run_id = stack.trigger(dag_id)
    assert stack.finished(dag_id, run_id) == "success"
    assert set(stack.flow_task_states(dag_id, run_id).values()) == {"success"}
    sizes = {task: xcom(stack, dag_id, run_id, task)["size"] for task in ("all", "one-task", "warnings", "by-id")}
    assert sizes == {"all": 3, "one-task": 1, "warnings": 1, "by-id": 3}
    assert xcom(stack, dag_id, run_id, "all")["uri"].startswith("kestra://")
    row = xcom(stack, dag_id, run_id, "rows")["value"]
    for field in ('namespace:"tests.execstack"', 'flowId:"get_log"', 'taskId:"task-1"', 'level:"INFO"'):
        assert field in row
    assert 'message:"task 1"' in row and f'executionId:"{run_id}"' in row


def test_a_scheduled_run_without_a_required_input_fails_at_start(stack: AirflowClient):
    dag_id = "tests.execstack.scheduled_input"
    manual = stack.trigger(dag_id, {"name": "kestra"})
    assert stack.finished(dag_id, manual) == "success"
    assert xcom(stack, dag_id, manual, "hello") == {"value": "hello kestra"}
    after = max(run["run_after"] for run in stack.dag_runs(dag_id))
    scheduled = stack.wait_for(
        lambda: next(
            (
                run["dag_run_id"]
                for run in stack.dag_runs(dag_id)
                if run["run_type"] == "scheduled" and run["run_after"] > after
            ),
            None,
        ),
        150,
        "a scheduled run",
        interval=2,
    )
    assert stack.finished(dag_id, scheduled) == "failed"
    assert stack.flow_task_states(dag_id, scheduled) == {"hello": "failed", "_flow_state": "failed"}
    error = xcom(stack, dag_id, scheduled, "hello", "kestra_error")
    assert error.startswith("input `name`: missing required input: this run was started by the Schedule trigger")


def test_labels_set_by_a_task_are_read_by_the_next_task(stack: AirflowClient):
    dag_id = "tests.execstack.labelled"
    run_id = stack.trigger(dag_id)
    assert stack.finished(dag_id, run_id) == "success"
    assert xcom(stack, dag_id, run_id, "set", "kestra_labels") == {"stage": "PROD"}
    assert xcom(stack, dag_id, run_id, "read") == {"value": "data/PROD"}
