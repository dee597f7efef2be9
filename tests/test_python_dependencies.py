"""Python `dependencies` on real Airflow runs: pip installs a local wheel (no network), the cache is reused."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import states

pytestmark = pytest.mark.airflow

PROCESS = "taskRunner: {type: io.kestra.plugin.core.runner.Process}"


def build_wheel(tmp_path: Path) -> Path:
    """Build the wheel of a one-module package `y2d_answer` (ANSWER = 42) into a folder; return the folder."""
    project = tmp_path / "project"
    (project / "y2d_answer").mkdir(parents=True)
    (project / "y2d_answer" / "__init__.py").write_text("ANSWER = 42\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "y2d-answer"\nversion = "1.0"\n\n[tool.setuptools]\npackages = ["y2d_answer"]\n'
    )
    wheels = tmp_path / "wheels"
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    subprocess.run([*argv, str(project)], check=True)
    assert list(wheels.glob("y2d_answer-1.0-*.whl"))
    return wheels


@pytest.fixture
def wheel_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point pip at the local wheel only (no index, no network) and the cache at a fresh folder; return it."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(build_wheel(tmp_path)))
    monkeypatch.setenv("AIRFLOW__YAML2DAG__PYTHON_DEPENDENCY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_dependencies_are_installed_once_and_reused_from_the_cache(run_flow, wheel_index):
    result = run_flow(
        f"""
        id: pydeps
        namespace: tests.scripts
        tasks:
          - id: first
            type: io.kestra.plugin.scripts.python.Script
            {PROCESS}
            dependencies:
              - y2d-answer==1.0
            script: |
              import y2d_answer
              print('::{{"outputs": {{"answer": %d, "where": "%s"}}}}::' % (y2d_answer.ANSWER, y2d_answer.__file__))
          - id: second
            type: io.kestra.plugin.scripts.python.Commands
            {PROCESS}
            dependencies: ["y2d-answer==1.0"]
            commands:
              - python -c 'import y2d_answer; print("::{{\\"outputs\\":{{\\"again\\":%d}}}}::" % y2d_answer.ANSWER)'
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "answer={{{{ outputs.first.vars.answer }}}} again={{{{ outputs.second.vars.again }}}}"
        """
    )
    assert states(result) == {"first": "success", "second": "success", "log": "success"}
    assert result.tasks["first"].outputs["vars"]["answer"] == 42
    assert result.tasks["first"].outputs["vars"]["where"].startswith(str(wheel_index))
    assert result.tasks["second"].outputs["vars"] == {"again": 42}
    assert "Python dependencies installed and cached in" in result.tasks["first"].log_text()
    assert "Reusing the cached Python dependencies ['y2d-answer==1.0'] in" in result.tasks["second"].log_text()
    assert "answer=42 again=42" in result.tasks["log"].log_text()
    entries = [path.name for path in wheel_index.iterdir()]
    assert len(entries) == 1 and len(entries[0]) == 64  # one complete entry, no leftover temporary install


def test_a_missing_package_fails_the_task_with_pips_message(run_flow, wheel_index):
    result = run_flow(
        f"""
        id: pydepsmissing
        namespace: tests.scripts
        tasks:
          - id: py
            type: io.kestra.plugin.scripts.python.Script
            {PROCESS}
            dependencies: [y2d-no-such-package]
            script: print("never")
        """
    )
    assert states(result) == {"py": "failed"}
    log = result.tasks["py"].log_text()
    assert "pip could not install the dependencies ['y2d-no-such-package'] (exit code 1)" in log
    assert "No matching distribution found for y2d-no-such-package" in log
    assert "never" not in log.replace('print("never")', "")
    assert list(wheel_index.iterdir()) == []  # the failed install left nothing in the cache


def _uv() -> str | None:
    """The `uv` binary: on PATH, or from the `uv` package (a dev dependency)."""
    try:
        import uv  # type: ignore[import-not-found]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _other_python() -> tuple[str, str] | None:
    """A runnable interpreter of another minor version than this one (pyenv's or the system's): (path, `3.X`)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3.*")))
    candidates += sorted(glob.glob("/usr/bin/python3.*"))
    for candidate in candidates:
        match = re.search(r"python(3\.\d+)$", candidate)
        if not match or match.group(1) == f"3.{sys.version_info.minor}":
            continue
        done = subprocess.run([candidate, "-c", "print(1)"], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return candidate, match.group(1)
    return None


def test_python_version_runs_that_interpreter_and_uv_installs_for_it(run_flow, wheel_index):
    uv, other = _uv(), _other_python()
    if uv is None or other is None:
        pytest.skip("needs uv (dev dependency) and a second Python 3.X on this machine")
    python, version = other
    path = f"{Path(uv).parent}:{Path(python).parent}:{os.environ['PATH']}"
    result = run_flow(
        f"""
        id: pyversion
        namespace: tests.scripts
        tasks:
          - id: py
            type: io.kestra.plugin.scripts.python.Script
            {PROCESS}
            pythonVersion: "{version}"
            packageManager: UV
            env: {{PATH: "{path}"}}
            dependencies: [y2d-answer==1.0]
            script: |
              import sys, y2d_answer
              version = "%d.%d" % sys.version_info[:2]
              print('::{{"outputs": {{"version": "%s", "answer": %d}}}}::' % (version, y2d_answer.ANSWER))
          - id: cmd
            type: io.kestra.plugin.scripts.python.Commands
            {PROCESS}
            pythonVersion: "{version}"
            env: {{PATH: "{path}"}}
            commands: ["python3 -c 'import sys; print(sys.version_info[:2])'"]
        """
    )
    assert states(result) == {"py": "success", "cmd": "success"}
    assert result.tasks["py"].outputs["vars"] == {"version": version, "answer": 42}
    log = result.tasks["py"].log_text()
    assert f"pythonVersion {version}: running {python}" in log
    assert "Installed 1 package" in log  # uv's report, not pip's "Successfully installed"
    assert f"(3, {version.split('.')[1]})" in result.tasks["cmd"].log_text()
    assert len(list(wheel_index.iterdir())) == 1  # cached for that Python


def test_missing_python_version_and_missing_uv_are_clear(run_flow, wheel_index):
    path = ":".join(part for part in os.environ["PATH"].split(":") if not Path(part, "uv").exists())
    result = run_flow(
        f"""
        id: pyversionmissing
        namespace: tests.scripts
        tasks:
          - id: nouv
            type: io.kestra.plugin.scripts.python.Script
            {PROCESS}
            packageManager: UV
            env: {{PATH: "{path}"}}
            dependencies: [y2d-answer==1.0]
            script: import y2d_answer; print("answer", y2d_answer.ANSWER)
          - id: nopython
            type: io.kestra.plugin.scripts.python.Script
            {PROCESS}
            pythonVersion: "3.99"
            script: print("never")
        """
    )
    assert states(result) == {"nopython": "failed", "nouv": "success"}
    assert "Python 3.99 (pythonVersion) not found on the Airflow worker" in result.tasks["nopython"].log_text()
    log = result.tasks["nouv"].log_text()
    assert "packageManager is UV but `uv` is not on the Airflow worker's PATH: installing with pip" in log
    assert "answer 42" in log
