"""`yaml2dag run` at a terminal: task logs and errors, signals, input errors, `yaml2dag types`.

Every test runs the real CLI in a fresh process; a pseudo-terminal stands for the user's terminal
where the output is read as it comes (the interrupted runs).
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAILING = """\
id: talk
namespace: tests.cli_run
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: ["first line", "second line"]
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "it broke: {{ 40 + 2 }}\\nsecond line of the error"
"""

SLEEPY = """\
id: sleepy
namespace: tests.cli_run
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT600S
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: must never run
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: cleaning up
"""

INPUTS = """\
id: inputs
namespace: tests.cli_run
inputs:
  - id: n
    type: INT
  - id: doc
    type: JSON
    required: false
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.n }}"
"""


def _environment(cache: Path | None = None) -> dict[str, str]:
    """This process's environment without Airflow settings, importing this checkout's yaml2dag."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "YAML2DAG"))}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), clean.get("PYTHONPATH", "")]))
    if cache is not None:
        clean["YAML2DAG_CACHE_DIR"] = str(cache)
    return clean


def yaml2dag(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end, output captured (a throw-away AIRFLOW_HOME)."""
    return subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", *args],
        capture_output=True,
        text=True,
        env=_environment(cache),
        timeout=600,
    )


@pytest.fixture
def flow_file(tmp_path: Path):
    """Write a flow into tmp_path and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "flow.yaml"
        path.write_text(text)
        return path

    return write


def test_run_prints_each_log_line_and_the_error_of_the_failed_task(flow_file, tmp_path: Path):
    flow = flow_file(FAILING)
    cache = tmp_path / "cache"
    process = yaml2dag("run", str(flow), cache=cache)
    assert process.returncode == 1, process.stdout + process.stderr
    lines = process.stdout.splitlines()
    assert lines[:3] == [
        f"{'hello':<30} INFO    first line",
        f"{'hello':<30} INFO    second line",
        f"{'hello':<30} success",
    ], process.stdout
    # One line per error by default: its first line, `…` saying there is more.
    assert f"{'':<30} error: it broke: 42 …" in lines, process.stdout
    assert "second line of the error" not in process.stdout
    assert "Task failed with exception" not in process.stdout, "Airflow's own lines stay hidden"
    # The first run left a migrated metadata database in the cache for the next runs to copy.
    (cached,) = cache.glob("airflow-metadata-*.db")
    with sqlite3.connect(cached) as database:
        assert database.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)

    verbose = yaml2dag("run", str(flow), "--json", cache=cache)
    assert verbose.returncode == 1, verbose.stderr
    report = json.loads(verbose.stdout)
    assert report["tasks"]["boom"]["error"] == "it broke: 42\nsecond line of the error"
    assert report["tasks"]["boom"]["state"] == "failed"
    assert report["tasks"]["hello"] == {
        "state": "success",
        "outputs": {},
        "error": None,
        "logs": [{"level": "INFO", "message": "first line"}, {"level": "INFO", "message": "second line"}],
    }
    assert report["interrupted_by"] is None


def _interrupted_run(flow: Path, signum: int, timeout: float = 400.0) -> tuple[str, int]:
    """Start `yaml2dag run` on a pseudo-terminal, send `signum` once the Sleep task waits; output and exit code."""
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "yaml2dag.cli", "run", str(flow)],
        stdin=child,
        stdout=child,
        stderr=child,
        env=_environment(),
        close_fds=True,
    )
    os.close(child)
    output = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # EIO: the child closed its side of the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
            if not sent and b"Waiting for PT600S" in output:
                process.send_signal(signum)
                sent = True
        assert sent, output.decode(errors="replace")
        return output.decode(errors="replace"), process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_fails_the_running_task_runs_finally_and_exits_128_plus_signal(
    flow_file, signum: signal.Signals, code: int
):
    output, exit_code = _interrupted_run(flow_file(SLEEPY), signum)
    assert exit_code == code, output
    lines = [line.rstrip() for line in output.splitlines()]
    assert f"{'cleanup':<30} INFO    cleaning up" in lines, output
    assert any(line.split()[:2] == ["nap", "failed"] for line in lines), output
    assert any(line.split()[:2] == ["after", "upstream_failed"] for line in lines), output
    errors = [line.split("error: ", 1)[1] for line in lines if line.startswith(f"{'':<30} error: ")]
    assert errors and errors[0].endswith(f"interrupted by {signum.name}"), output
    assert "run failed in" in output and f"(interrupted by {signum.name})" in output
    assert "must never run" not in output
    assert "Traceback" not in output


# The signal lands after the Sleep deferred and before dag.test() runs its trigger: the moment
# dag.test() turns the task's answer back into a scheduler operator (it did end the whole run before).
_SIGNAL_WHILE_DEFERRING = """
import json, os, signal, sys
import yaml2dag.runner as runner
from yaml2dag.cli import main

sent = []
run_flow = runner.run_flow


def patched_run_flow(*args, **kwargs):
    import airflow.serialization.serialized_objects as serialized

    build = serialized.create_scheduler_operator

    def create_scheduler_operator(task):
        if not sent and getattr(task, "task_id", "") == "nap":
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return build(task)

    serialized.create_scheduler_operator = create_scheduler_operator
    return run_flow(*args, **kwargs)


runner.run_flow = patched_run_flow
code = main(["run", sys.argv[1], "--json"])
print(json.dumps({"sent": bool(sent), "code": code}))
"""


def test_a_signal_between_a_deferral_and_its_trigger_still_runs_finally(flow_file):
    flow = flow_file(SLEEPY)
    process = subprocess.run(
        [sys.executable, "-c", _SIGNAL_WHILE_DEFERRING, str(flow)],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=400,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    report, ending = process.stdout.rsplit("\n{", 1)
    assert json.loads("{" + ending) == {"sent": True, "code": 143}
    states = {task: value["state"] for task, value in json.loads(report)["tasks"].items()}
    assert states == {"nap": "failed", "after": "upstream_failed", "cleanup": "success"}, report


def test_input_errors_name_the_option_and_a_deep_json_value_is_refused(flow_file):
    flow = flow_file(INPUTS)
    bad = yaml2dag("run", str(flow), "--input", "n=abc")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "--input: inputs.n: must be a whole number, got `abc`"

    deep = "[" * 20_000 + "]" * 20_000
    nested = yaml2dag("run", str(flow), "--input", "n=1", "--input", f"doc={deep}")
    assert nested.returncode == 2
    assert nested.stderr.strip() == "--input: inputs.doc: nested 20000 levels deep; at most 256 are supported"


def test_types_lists_every_supported_type_with_its_docs_page_and_aliases():
    from yaml2dag.tasktypes import TASK_TYPES

    listed = yaml2dag("types")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    log_docs = "https://kestra.io/plugins/core/log/io.kestra.plugin.core.log.log"
    assert f"io.kestra.plugin.core.log.Log  {log_docs}  (aliases: io.kestra.core.tasks.log.Log)" in lines
    as_json = yaml2dag("types", "--json")
    assert as_json.returncode == 0, as_json.stderr
    entries = json.loads(as_json.stdout)
    assert len(entries) == len(lines)
    named = {entry["type"] for entry in entries} | {alias for entry in entries for alias in entry["aliases"]}
    assert named == set(TASK_TYPES), "every registered type, lazily loaded families included"
    redis = next(entry for entry in entries if entry["type"] == "io.kestra.plugin.redis.string.Get")
    assert redis["docs"] == "https://kestra.io/plugins/plugin-redis/string/io.kestra.plugin.redis.string.get"
    assert redis["aliases"] == ["io.kestra.plugin.redis.Get"]
    assert redis["summary"].startswith("GET `key`")
