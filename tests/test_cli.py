"""The `yaml2dag` command as users call it: a real process, exit codes, stdout contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, FLOWS

SEED_INVALID = FLOWS / "invalid" / "finally_example_success_seed.yaml"


def yaml2dag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh process with a clean Airflow environment (throw-away AIRFLOW_HOME)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", *args], capture_output=True, text=True, env=clean, timeout=300
    )


def test_run_json_reports_failed_seed_flow_with_errors_and_finally():
    process = yaml2dag("run", str(EXAMPLES / "finally_example.yaml"), "--json")
    assert process.returncode == 1, process.stderr
    report = json.loads(process.stdout)
    assert report["dag_id"] == "company.team.finally_example"
    assert report["state"] == "failed"
    assert {task: value["state"] for task, value in report["tasks"].items()} == {
        "fail": "failed",
        "send_alert": "success",
        "cleanup_task": "success",
    }
    assert all(value["outputs"] == {} for value in report["tasks"].values())


def test_run_prints_states_and_table_and_exits_0_on_success(tmp_path: Path):
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "id: cli\nnamespace: tests.cli\ninputs:\n  - id: who\n    type: STRING\n"
        "variables:\n  greeting: hi\n"
        "tasks:\n  - id: ret\n    type: io.kestra.plugin.core.debug.Return\n"
        '    format: "{{ vars.greeting }} {{ inputs.who }}"\n'
        "finally:\n  - id: bye\n    type: io.kestra.plugin.core.log.Log\n    message: bye\n"
    )
    process = yaml2dag("run", str(flow), "--input", "who=kestra", "--var", "greeting=hello")
    assert process.returncode == 0, process.stdout + process.stderr
    lines = process.stdout.splitlines()
    assert lines[:2] == [f"{'ret':<30} INFO    Returning `hello kestra`", f"{'ret':<30} success"], process.stdout
    assert any(line.split()[:3] == ["ret", "success", '{"value":'] for line in lines)
    assert '"hello kestra"' in process.stdout
    assert "tests.cli.cli: run success" in process.stdout


def test_run_exits_2_on_a_compile_error_or_a_bad_input():
    invalid = yaml2dag("run", str(SEED_INVALID))
    assert invalid.returncode == 2
    assert f"{SEED_INVALID}:8:5: tasks[0].errorMessage: unknown property" in invalid.stderr
    bad_input = yaml2dag("run", str(EXAMPLES / "finally_example.yaml"), "--input", "nope=1")
    assert bad_input.returncode == 2
    assert "unknown input `nope`" in bad_input.stderr


def test_validate_points_at_the_error_message_line_of_the_seed_flow():
    process = yaml2dag("validate", str(SEED_INVALID))
    assert process.returncode == 1
    assert f"{SEED_INVALID}:8:5: tasks[0].errorMessage: unknown property `errorMessage`" in process.stderr
    assert "did you mean `message`?" in process.stderr
    assert "1 file(s) checked, 1 with errors" in process.stdout


def test_validate_json_and_folders(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ok.yaml").write_text((EXAMPLES / "finally_example.yaml").read_text())
    (tmp_path / "bad.yml").write_text("id: x\nnamespace: t\ntasks: []\n")
    process = yaml2dag("validate", str(tmp_path), "--json")
    assert process.returncode == 1
    [error] = json.loads(process.stdout)
    assert error["file"] == str(tmp_path / "bad.yml")
    assert (error["line"], error["path"]) == (3, "tasks")
    assert yaml2dag("validate", str(tmp_path / "sub")).returncode == 0


@pytest.mark.parametrize(
    ("expression", "context", "output", "code"),
    [
        ("{{ inputs.name | upper }}!", {"inputs": {"name": "kestra"}}, "KESTRA!", 0),
        ("{{ [1, 2] }} {{ null }}{{ true }}", {}, "[1,2] true", 0),
        ("{{ inputs.missing }}", {"inputs": {}}, "Unable to find `inputs.missing`", 1),
    ],
)
def test_eval_renders_like_a_task(tmp_path: Path, expression, context, output, code):
    context_file = tmp_path / "ctx.json"
    context_file.write_text(json.dumps(context))
    process = yaml2dag("eval", expression, "--context", str(context_file))
    assert process.returncode == code
    assert output in (process.stdout if code == 0 else process.stderr)


def test_help_documents_every_command():
    process = yaml2dag("--help")
    assert process.returncode == 0
    for command in ("run", "validate", "eval"):
        assert command in process.stdout
    run_help = yaml2dag("run", "--help").stdout
    for option in ("--input", "--var", "--json", "--verbose"):
        assert option in run_help
