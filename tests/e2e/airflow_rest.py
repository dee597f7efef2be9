"""A small client for Airflow's REST API (the one the UI uses), and `airflow standalone` as a process.

Shared by tests/test_airflow_stack.py (the README's embedded default) and tests/e2e/ (the
docker-compose stack): both serve a folder of flows through `yaml2dag.bundle.KestraFlowsBundle`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet


class AirflowClient:
    """Drives one Airflow deployment through `/api/v2`; `diagnostics` says where its logs are."""

    def __init__(self, url: str, diagnostics: str) -> None:
        self.url = url
        self.diagnostics = diagnostics
        self.token = ""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def login(self, username: str, password: str) -> None:
        self.token = self.request("POST", "/auth/token", {"username": username, "password": password})["access_token"]

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
        """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
            except (urllib.error.URLError, KeyError, ConnectionError, TimeoutError):
                value = None
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; see {self.diagnostics}")

    def dag_ids(self) -> set[str]:
        if errors := self.import_errors():
            raise AssertionError(f"unexpected DAG import errors: {errors}")
        return {dag["dag_id"] for dag in self.request("GET", "/api/v2/dags?limit=100")["dags"]}

    def import_errors(self) -> dict[str, str]:
        errors = self.request("GET", "/api/v2/importErrors")["import_errors"]
        return {error["filename"]: error["stack_trace"] for error in errors}

    def wait_for_dags(self, expected: set[str], timeout: float = 180) -> None:
        self.wait_for(lambda: expected <= self.dag_ids(), timeout, f"the DAGs {sorted(expected)}", interval=1)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None}
        if conf:
            body["conf"] = conf
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        instances = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {instance["task_id"]: instance for instance in instances}

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {task_id: instance["state"] for task_id, instance in self.task_instances(dag_id, run_id).items()}

    def wait_for_scheduler_loops(self, loops: int = 2, timeout: float = 60) -> None:
        """Wait until the scheduler heartbeats `loops` more times (each loop handles executor events).

        Resuming a deferred task before the scheduler has handled its worker's exit makes Airflow
        3.3 mark the task failed ("finished with state success, but the task instance's state
        attribute is queued"); a person never resumes that fast, a test must wait for it.
        """
        for _ in range(loops):
            seen = self.request("GET", "/api/v2/monitor/health")["scheduler"]["latest_scheduler_heartbeat"]
            self.wait_for(
                lambda seen=seen: (
                    self.request("GET", "/api/v2/monitor/health")["scheduler"]["latest_scheduler_heartbeat"] != seen
                ),
                timeout,
                "the scheduler's next loop",
            )

    def flow_task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Task states without `_flow_event`, the teardown that only emits the flow's end-state asset
        event (tests/test_flow_triggers_stack.py covers it)."""
        states = self.task_states(dag_id, run_id)
        states.pop("_flow_event", None)
        return states

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.request("GET", path)["value"]

    def finished(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        return self.wait_for(
            lambda: (state := self.run_state(dag_id, run_id)) in ("success", "failed") and state,
            timeout,
            f"run {run_id} of {dag_id} to finish",
        )


def free_port() -> int:
    """A TCP port free on this machine right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _another_free_port(taken: int) -> int:
    """A free port other than `taken` (chosen but not bound yet, so the system could hand it out again)."""
    while (port := free_port()) == taken:
        pass
    return port


def standalone_environment(home: Path, dags: Path, port: int) -> dict[str, str]:
    """The environment of the README's run command (scripts/airflow-standalone.sh), with faster polling."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    bundle = {"name": "kestra-flows", "classpath": "yaml2dag.bundle.KestraFlowsBundle"}
    bundle["kwargs"] = {"path": str(dags), "refresh_interval": 2}  # type: ignore[assignment]
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
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            # The triggerer's log server takes a fixed port (8794) otherwise: another stack would hold it.
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_another_free_port(port)),
        }
    )
    return env


@contextlib.contextmanager
def airflow_standalone(home: Path, dags: Path) -> Iterator[AirflowClient]:
    """Start `airflow standalone` serving `dags`, log in as admin, and stop it (process group) afterwards."""
    port = free_port()
    log_path = home / "standalone.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            env=standalone_environment(home, dags, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = AirflowClient(f"http://localhost:{port}", str(log_path))
        try:
            # Up to 6 minutes: on a loaded 2-core machine the five components start in 3 to 5 minutes.
            client.wait_for(lambda: client.request("GET", "/api/v2/monitor/health"), 360, "the API server")
            passwords_file = home / "simple_auth_manager_passwords.json.generated"
            client.wait_for(passwords_file.exists, 60, "the login")
            client.login("admin", json.loads(passwords_file.read_text())["admin"])
            yield client
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
