"""How `yaml2dag schema` and `yaml2dag eval` behave at a shell: in a cut-short pipe, and on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _environment() -> dict[str, str]:
    """This process's environment without Airflow settings, importing this checkout's yaml2dag."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), clean.get("PYTHONPATH", "")]))
    return clean


def _on_a_terminal(*args: str, timeout: float = 60.0) -> tuple[bytes, int]:
    """Run the CLI with stdout, stdin and stderr on a new pseudo-terminal; its output and exit code."""
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "yaml2dag.cli", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=_environment(),
        close_fds=True,
    )
    os.close(child)
    output = b""
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
        return output, process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()


def test_schema_into_a_pipe_closed_early_exits_quietly_with_141():
    # The schema (over 200 kB) is more than a pipe holds, so the write meets the closed pipe.
    process = subprocess.Popen(
        [sys.executable, "-m", "yaml2dag.cli", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert first == b"{\n"
    assert stderr == b"", stderr.decode()


def test_schema_through_head_in_a_shell_pipeline():
    completed = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m yaml2dag.cli schema | head -n 3"],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=60,
    )
    assert completed.stderr == ""
    assert completed.stdout.splitlines()[0] == "{"
    assert len(completed.stdout.splitlines()) == 3
    assert completed.returncode == 141


def test_schema_in_full_still_exits_0():
    completed = subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", "schema"], capture_output=True, text=True, env=_environment(), timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.endswith("}\n")


def test_eval_on_a_terminal_ends_with_a_newline():
    output, code = _on_a_terminal("eval", "{{ 1 + 2 }}")
    assert code == 0
    assert output == b"3\r\n"  # the terminal turns "\n" into "\r\n"


def test_eval_on_a_terminal_adds_no_second_newline():
    output, code = _on_a_terminal("eval", "line\n")
    assert code == 0
    assert output == b"line\r\n"


def test_eval_on_a_terminal_with_an_empty_result_prints_an_empty_line():
    output, code = _on_a_terminal("eval", "{{ '' }}")
    assert code == 0
    assert output == b"\r\n"


def test_eval_into_a_pipe_prints_the_value_exactly():
    completed = subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", "eval", "{{ 'a' ~ 'b' }}"],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "ab"
