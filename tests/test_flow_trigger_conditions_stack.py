"""The "failure alert" blueprint pattern on the real stack (`airflow standalone`, scheduler included).

An alert flow with a Flow trigger on `ExecutionNamespace` (prefix `company`) + `ExecutionStatus`
(FAILED, WARNING) runs when any flow under `company` fails, and reports that flow's namespace, id
and run; a successful run triggers nothing. A label condition the failed run does not meet leaves
a run with every task skipped (and no end event), and a flow that fails on every flow's failure does
not trigger itself. A Schedule trigger with `conditions` is served by the yaml2dag timetable, which
the scheduler loads through the yaml2dag plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import airflow_rest
from e2e.airflow_rest import AirflowClient, airflow_standalone

pytestmark = pytest.mark.airflow

FLOWS = {
    "etl.yaml": """
id: etl
namespace: company.team
labels:
  team: data
tasks:
  - id: load
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the load failed
""",
    "etl_ok.yaml": """
id: etl_ok
namespace: company.team
tasks:
  - id: load
    type: io.kestra.plugin.core.log.Log
    message: loaded
""",
    # The blueprint `create-github-issue-on-failure` (its task replaced by one we can read back).
    "on_failure.yaml": """
id: on_failure
namespace: company.alerts
tasks:
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.namespace }}|{{ trigger.flowId }}|{{ trigger.executionId }}|{{ trigger.state }}"
triggers:
  - id: on_failure
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in:
          - FAILED
          - WARNING
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: company
        comparison: PREFIX
""",
    # Listens to the same failures, but only of runs labelled team=finance.
    "finance_alert.yaml": """
id: finance_alert
namespace: alerts
tasks:
  - id: page
    type: io.kestra.plugin.core.log.Log
    message: finance failure
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: cleanup
triggers:
  - id: finance_failed
    type: io.kestra.plugin.core.trigger.Flow
    states: [FAILED]
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: company
        prefix: true
      - type: io.kestra.plugin.core.condition.ExecutionLabels
        labels:
          team: finance
""",
    # Fails on any failure anywhere, itself included: Kestra never triggers a flow with its own execution.
    "selfish.yaml": """
id: selfish
namespace: loop
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
triggers:
  - id: any_failure
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [FAILED]
""",
    "mondays.yaml": """
id: mondays
namespace: schedules
tasks:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: a Monday
triggers:
  - id: daily_but_mondays_only
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 11 * * *"
    conditions:
      - type: io.kestra.plugin.core.condition.DayWeek
        dayOfWeek: MONDAY
""",
}
DAGS = {
    "schedules.mondays",
    "company.team.etl",
    "company.team.etl_ok",
    "company.alerts.on_failure",
    "alerts.finance_alert",
    "loop.selfish",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowClient]:
    home = tmp_path_factory.mktemp("alert-home")
    dags: Path = tmp_path_factory.mktemp("alert-dags")
    # yaml2dag's Airflow plugin, as its entry point registers it once the package is installed.
    plugins = tmp_path_factory.mktemp("alert-plugins")
    (plugins / "yaml2dag_plugin.py").write_text("from yaml2dag.plugin import Yaml2DagPlugin  # noqa: F401\n")
    for name, text in FLOWS.items():
        (dags / name).write_text(text)
    base = airflow_rest.standalone_environment

    def patient(home: Path, dags: Path, port: int) -> dict[str, str]:
        # On a loaded machine the API server may answer a task's first call after the 5 s default;
        # the retried call is then refused (the task already started) and the task fails.
        return {
            **base(home, dags, port),
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        }

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(airflow_rest, "standalone_environment", patient)
        with airflow_standalone(home, dags) as client:
            client.wait_for_dags(DAGS)
            yield client


def started_runs(stack: AirflowClient, dag_id: str) -> list[dict]:
    return [run for run in stack.dag_runs(dag_id) if run["run_type"] == "asset_triggered"]


def finished_runs(stack: AirflowClient, dag_id: str, count: int) -> list[dict] | None:
    runs = [run for run in started_runs(stack, dag_id) if run["state"] in ("success", "failed")]
    return runs if len(runs) >= count else None


def test_a_failure_under_the_namespace_runs_the_alert_flow_with_the_failed_run(stack: AirflowClient):
    # A successful run first: it emits SUCCESS events only, which no alert flow listens to.
    ok_run = stack.trigger("company.team.etl_ok")
    assert stack.finished("company.team.etl_ok", ok_run) == "success"
    failed_run = stack.trigger("company.team.etl")
    assert stack.finished("company.team.etl", failed_run) == "failed"

    [alert] = stack.wait_for(lambda: finished_runs(stack, "company.alerts.on_failure", 1), 180, "the alert run")
    assert alert["state"] == "success"
    states = stack.task_states("company.alerts.on_failure", alert["dag_run_id"])
    assert states["_trigger_check"] == "success" and states["report"] == "success"
    report = stack.xcom("company.alerts.on_failure", alert["dag_run_id"], "report")
    assert report == {"value": f"company.team|etl|{failed_run}|FAILED"}
    # Exactly one alert: the successful run of etl_ok triggered none.
    assert len(started_runs(stack, "company.alerts.on_failure")) == 1


def test_a_label_condition_the_failed_run_misses_skips_every_task(stack: AirflowClient):
    [run] = stack.wait_for(lambda: finished_runs(stack, "alerts.finance_alert", 1), 180, "the finance alert run")
    assert run["state"] == "success"
    assert stack.task_states("alerts.finance_alert", run["dag_run_id"]) == {
        "_trigger_check": "success",
        "page": "skipped",
        "cleanup": "skipped",
        "_flow_state": "skipped",
        "_flow_event": "skipped",
    }


def test_a_flow_listening_to_every_failure_does_not_trigger_itself(stack: AirflowClient):
    # The first run answers etl's failure and fails; its own failure starts a second run, which the
    # check skips entirely (no end event, so nothing more starts).
    runs = stack.wait_for(lambda: finished_runs(stack, "loop.selfish", 2), 240, "two runs of loop.selfish")
    runs.sort(key=lambda run: run["queued_at"] or run["run_after"])
    first, second = runs[0], runs[1]
    assert first["state"] == "failed"
    assert stack.task_states("loop.selfish", first["dag_run_id"])["boom"] == "failed"
    assert stack.task_states("loop.selfish", second["dag_run_id"]) == {
        "_trigger_check": "success",
        "boom": "skipped",
        "_flow_state": "skipped",
        "_flow_event": "skipped",
    }
    assert second["state"] == "success"
    assert len(started_runs(stack, "loop.selfish")) == 2


def test_a_schedule_with_conditions_plans_only_matching_fire_times(stack: AirflowClient):
    """The DAG processor serialized the yaml2dag timetable and the scheduler planned a Monday."""
    import pendulum

    dag = stack.request("GET", "/api/v2/dags/schedules.mondays")
    assert dag["timetable_summary"] == "0 11 * * * (with conditions)"
    run_after = pendulum.parse(dag["next_dagrun_run_after"])
    assert (run_after.day_of_week, run_after.hour, run_after.minute) == (pendulum.MONDAY, 11, 0)
