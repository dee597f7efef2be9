"""`yaml2dag compile`: the DAG a flow becomes, readable or as JSON; exit 2 when it does not compile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, FLOWS

from yaml2dag.cli import main

SEED_INVALID = FLOWS / "invalid" / "finally_example_success_seed.yaml"
SCHEDULED = """\
id: nightly
namespace: tests.compile
description: |
  Nightly load.

  Details.
concurrency:
  limit: 2
labels:
  team: data
inputs:
  - id: name
    type: STRING
    description: who to greet
    defaults: kestra
  - id: size
    type: INT
    required: false
triggers:
  - id: weekdays
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * 1-5"
    timezone: Europe/Paris
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }}"
    timeout: PT5M
    retry:
      type: constant
      maxAttempts: 3
      interval: PT10S
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


def compile_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["compile", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_lists_each_task_with_operator_rule_group_teardown_and_upstream(capsys):
    structure = compile_json(EXAMPLES / "finally_example.yaml", capsys)
    assert structure["dag_id"] == "company.team.finally_example"
    assert structure["schedule"] is None
    assert structure["params"] == {}
    assert structure["tags"] == ["company.team"]
    tasks = {task["task_id"]: task for task in structure["tasks"]}
    assert list(tasks) == ["fail", "send_alert", "cleanup_task", "_flow_state", "_flow_event"]
    assert {task_id: task["operator"] for task_id, task in tasks.items()} == {
        "fail": "yaml2dag.operators.core.FailOperator",
        "send_alert": "yaml2dag.operators.core.LogOperator",
        "cleanup_task": "yaml2dag.operators.core.LogOperator",
        "_flow_state": "yaml2dag.operators.state.FlowStateOperator",
        "_flow_event": "yaml2dag.operators.state.FlowEventOperator",
    }
    assert tasks["fail"]["kestra_type"] == "io.kestra.plugin.core.execution.Fail"
    assert tasks["send_alert"] | {"operator": None, "kestra_type": None} == {
        "task_id": "send_alert",
        "operator": None,
        "kestra_type": None,
        "trigger_rule": "one_failed",
        "group": "errors",
        "teardown": False,
        "fails_run": False,
        "upstream": ["fail"],
        "retries": 0,
        "retry_delay": None,
        "execution_timeout": None,
    }
    assert (tasks["cleanup_task"]["group"], tasks["cleanup_task"]["teardown"]) == ("finally", True)
    assert tasks["cleanup_task"]["upstream"] == ["fail", "send_alert"]
    assert (tasks["_flow_state"]["teardown"], tasks["_flow_state"]["fails_run"]) == (True, True)
    assert tasks["_flow_state"]["group"] is None


def test_json_shows_schedule_params_limits_retries_and_timeouts(tmp_path, capsys):
    flow = tmp_path / "nightly.yaml"
    flow.write_text(SCHEDULED)
    structure = compile_json(flow, capsys)
    assert structure["description"] == "Nightly load."
    assert structure["schedule"] == {
        "timetable": "CronTriggerTimetable",
        "cron": ["0 9 * * 1-5"],
        "timezone": "Europe/Paris",
    }
    assert structure["max_active_runs"] == 2
    assert structure["tags"] == ["team:data", "tests.compile"]
    assert structure["params"]["name"] == {
        "required": False,
        "default": "kestra",
        "description": "who to greet",
        "schema": {"type": "string"},
    }
    assert structure["params"]["size"]["schema"] == {"type": ["integer", "null"]}
    hello, ret = structure["tasks"][:2]
    assert (hello["retries"], hello["retry_delay"], hello["execution_timeout"]) == (2, 10.0, 300.0)
    assert (ret["trigger_rule"], ret["upstream"]) == ("none_failed", ["hello"])


def test_text_output_is_a_readable_table(capsys):
    assert main(["compile", str(EXAMPLES / "finally_example.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "DAG company.team.finally_example"
    assert "schedule:        none (triggered by hand)" in lines[1]
    header = next(index for index, line in enumerate(lines) if line.split()[:2] == ["TASK", "OPERATOR"])
    rows = [line.split(None, 4) for line in lines[header + 1 :]]
    assert [row[:4] for row in rows] == [
        ["fail", "FailOperator", "all_success", "-"],
        ["send_alert", "LogOperator", "one_failed", "errors"],
        ["cleanup_task", "LogOperator", "all_done_setup_success", "finally"],
        ["_flow_state", "FlowStateOperator", "all_done_setup_success", "-"],
        ["_flow_event", "FlowEventOperator", "all_done_setup_success", "-"],
    ]
    assert rows[2][4] == "fail, send_alert  teardown"
    assert rows[3][4] == "fail              teardown; fails the run"


def test_text_output_shows_schedule_and_params(tmp_path, capsys):
    flow = tmp_path / "nightly.yaml"
    flow.write_text(SCHEDULED)
    assert main(["compile", str(flow)]) == 0
    out = capsys.readouterr().out
    assert "schedule:        0 9 * * 1-5 (Europe/Paris)" in out
    assert "max active runs: 2" in out
    assert '    name: string, default "kestra" (who to greet)' in out
    assert "    size: integer|null, default null" in out
    assert "retries 2 every 10s; timeout 300s" in out


FLOW_TRIGGERED = """\
id: report
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: upstream done
triggers:
  - id: after_both
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      flows:
        - namespace: company.team
          flowId: extract
          states: [SUCCESS]
        - namespace: company.team
          flowId: load
          states: [SUCCESS, WARNING]
"""


def test_flow_trigger_schedule_is_shown_as_the_asset_condition(tmp_path, capsys):
    flow = tmp_path / "report.yaml"
    flow.write_text(FLOW_TRIGGERED)
    assert main(["compile", str(flow), "--json"]) == 0
    schedule = json.loads(capsys.readouterr().out)["schedule"]
    assert schedule == {
        "timetable": "AssetTriggeredTimetable",
        "assets": "(kestra://company.team/extract/SUCCESS & "
        "(kestra://company.team/load/SUCCESS | kestra://company.team/load/WARNING))",
    }
    assert main(["compile", str(flow)]) == 0
    assert f"schedule:        when these flows end: {schedule['assets']}" in capsys.readouterr().out

    flow.write_text(
        FLOW_TRIGGERED + "  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: 0 2 * * *\n"
    )
    assert main(["compile", str(flow), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)["schedule"]
    assert both["timetable"] == "AssetOrTimeSchedule"
    assert both["cron"] == ["0 2 * * *"] and both["assets"] == schedule["assets"]


def test_a_flow_that_does_not_compile_exits_2_with_located_errors(capsys):
    assert main(["compile", str(SEED_INVALID)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{SEED_INVALID}:8:5: tasks[0].errorMessage: unknown property `errorMessage`" in captured.err
    assert main(["compile", str(SEED_INVALID), "--json"]) == 2
    errors = json.loads(capsys.readouterr().out)
    assert {(error["line"], error["column"], error["path"]) for error in errors} >= {(8, 5, "tasks[0].errorMessage")}


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_command_needs_no_airflow_home_and_imports_no_airflow(tmp_path):
    """The command prints the plan: no Airflow home is created, no Airflow module imported."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env["HOME"] = str(tmp_path)
    process = subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", "compile", str(EXAMPLES / "finally_example.yaml"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["dag_id"] == "company.team.finally_example"
    assert not (tmp_path / "airflow").exists()
    probe = (
        "import sys, runpy; sys.argv = ['yaml2dag', 'compile', sys.argv[1]]\n"
        "try:\n    runpy.run_module('yaml2dag.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'), file=sys.stderr)"
    )
    process = subprocess.run(
        [sys.executable, "-c", probe, str(EXAMPLES / "flowables.yaml")], capture_output=True, text=True, env=env
    )
    assert process.stderr.strip().splitlines()[-1] == "[]"
