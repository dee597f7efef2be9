"""Shared fixtures: one real Airflow home (SQLite) per test session, and a helper that runs a flow.

Airflow reads its configuration on first import, so the environment is set here, before any
test module imports `airflow`. Every flow runs through `dag.test()` in this process: the first
run pays Airflow's start-up, the next ones take a fraction of a second.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

_HOME = Path(tempfile.mkdtemp(prefix="yaml2dag-tests-"))
os.environ["AIRFLOW_HOME"] = str(_HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("NO_COLOR", "1")
# SECRET inputs are sealed with Airflow's Fernet key (yaml2dag.sealing); `yaml2dag run` makes one too.
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "dags" / "examples"
FLOWS = Path(__file__).resolve().parent / "flows"


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """An initialised Airflow metadata database, shared by the whole session."""
    from yaml2dag.runner import ensure_database, prepare_airflow_home, quiet_console

    prepare_airflow_home()
    with quiet_console():
        ensure_database()
    yield _HOME
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture
def flow_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write flow YAML (dedented) to a file and return its path."""

    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def run_flow(airflow_db: Path, flow_file: Callable[[str], Path]) -> Callable[..., Any]:
    """Run a flow (YAML text or a path) on real Airflow and return its `RunResult`."""
    from yaml2dag.runner import run_flow as run

    def runner(flow: str | Path, inputs: dict[str, Any] | None = None, variables: dict[str, Any] | None = None) -> Any:
        path = flow if isinstance(flow, Path) else flow_file(flow)
        return run(path, inputs, variables)

    return runner


def states(result: Any) -> dict[str, str]:
    """Task id → Airflow state of a `RunResult`."""
    return {task_id: task.state for task_id, task in result.tasks.items()}
