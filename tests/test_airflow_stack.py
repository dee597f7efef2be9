"""The real thing: `airflow standalone` (scheduler, DAG processor, triggerer, API server, LocalExecutor)
serving a folder of flows through `yaml2dag.bundle.KestraFlowsBundle`, as the README's run command
does; flows are triggered and operated through the REST API the UI uses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES

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


class AirflowStack:
    """A running `airflow standalone` and a small REST client for it."""

    def __init__(self, url: str, home: Path, dags: Path, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.home = home
        self.dags = dags
        self.process = process
        self.token = ""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def login(self) -> None:
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        self.token = self.request("POST", "/auth/token", {"username": "admin", "password": passwords["admin"]})[
            "access_token"
        ]

    def wait_for(self, condition: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
            except (urllib.error.URLError, KeyError, ConnectionError):
                value = None
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; see {self.home}/standalone.log")

    def dag_ids(self) -> set[str]:
        if errors := self.import_errors():
            raise AssertionError(f"unexpected DAG import errors: {errors}")
        return {dag["dag_id"] for dag in self.request("GET", "/api/v2/dags?limit=100")["dags"]}

    def import_errors(self) -> dict[str, str]:
        errors = self.request("GET", "/api/v2/importErrors")["import_errors"]
        return {error["filename"]: error["stack_trace"] for error in errors}

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None}
        if conf:
            body["conf"] = conf
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        instances = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {instance["task_id"]: instance["state"] for instance in instances}

    def finished(self, dag_id: str, run_id: str, timeout: float = 120) -> str:
        return self.wait_for(
            lambda: (state := self.run_state(dag_id, run_id)) in ("success", "failed") and state,
            timeout,
            f"run {run_id} of {dag_id} to finish",
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("stack-home")
    dags = tmp_path_factory.mktemp("stack-dags")
    for name in ("finally_example.yaml", "finally_example_success.yaml"):
        shutil.copy(EXAMPLES / name, dags)
    for name, text in FLOWS_FOR_STACK.items():
        (dags / name).write_text(text)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [
                    {
                        "name": "kestra-flows",
                        "classpath": "yaml2dag.bundle.KestraFlowsBundle",
                        "kwargs": {"path": str(dags), "refresh_interval": 2},
                    }
                ]
            ),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
        }
    )
    log = (home / "standalone.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = AirflowStack(f"http://localhost:{port}", home, dags, process)
    try:
        stack.wait_for(lambda: stack.request("GET", "/api/v2/monitor/health"), 180, "the API server")
        stack.wait_for(lambda: (home / "simple_auth_manager_passwords.json.generated").exists(), 60, "the login")
        stack.login()
        yield stack
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_example_flows_appear_as_dags_and_run_with_kestra_states(stack: AirflowStack):
    expected = {"company.team.finally_example", "company.team.success.finally_example", "tests.stack.long_running"}
    stack.wait_for(lambda: expected <= stack.dag_ids(), 120, "the example DAGs")

    failing = stack.trigger("company.team.finally_example")
    succeeding = stack.trigger("company.team.success.finally_example")
    assert stack.finished("company.team.finally_example", failing) == "failed"
    assert stack.task_states("company.team.finally_example", failing) == {
        "fail": "failed",
        "send_alert": "success",
        "cleanup_task": "success",
        "_flow_state": "failed",
    }
    assert stack.finished("company.team.success.finally_example", succeeding) == "success"
    assert stack.task_states("company.team.success.finally_example", succeeding) == {
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


def test_finally_runs_when_a_user_marks_the_run_failed_mid_task(stack: AirflowStack):
    dag_id = "tests.stack.long_running"
    stack.wait_for(lambda: dag_id in stack.dag_ids(), 120, "the long-running DAG")
    run_id = stack.trigger(dag_id)
    stack.wait_for(
        lambda: stack.task_states(dag_id, run_id).get("wait") in ("deferred", "running"), 90, "the Sleep task to start"
    )
    stack.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})
    assert stack.finished(dag_id, run_id) == "failed"
    assert stack.task_states(dag_id, run_id) == {
        "wait": "failed",
        "never": "skipped",
        "cleanup": "success",
        "_flow_state": "failed",
    }


def test_broken_flow_shows_its_own_import_error_until_fixed(stack: AirflowStack):
    stack.wait_for(lambda: "tests.stack.with_inputs" in stack.dag_ids(), 120, "the DAGs")
    broken = stack.dags / "team" / "broken.yaml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text(
        "id: fixed_later\nnamespace: tests.stack\ntasks:\n"
        "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    mesage: hi\n"
    )
    error = stack.wait_for(lambda: stack.import_errors().get("team/broken.yaml.py"), 120, "the import error")
    assert f"{broken}:6:5: tasks[0].mesage: unknown property `mesage`" in error
    assert "did you mean `message`?" in error
    assert len(stack.import_errors()) == 1, "only the broken flow has an error"
    dags = stack.request("GET", "/api/v2/dags?limit=100")["dags"]
    assert {"tests.stack.with_inputs", "company.team.finally_example"} <= {dag["dag_id"] for dag in dags}

    broken.write_text(broken.read_text().replace("mesage", "message"))
    stack.wait_for(lambda: not stack.import_errors(), 120, "the import error to clear")
    stack.wait_for(lambda: "tests.stack.fixed_later" in stack.dag_ids(), 120, "the fixed flow to load")
