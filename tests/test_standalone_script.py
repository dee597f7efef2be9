"""scripts/airflow-standalone.sh for real: Ctrl-C (SIGINT) or SIGTERM stops every Airflow process it
started, within 20 s, and frees the port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "airflow-standalone.sh"
#: What the command lines (process titles) of the components `airflow standalone` starts contain.
COMPONENTS = ("airflow scheduler", "airflow api_server", "airflow triggerer", "airflow dag-processor")

pytestmark = pytest.mark.airflow


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    """True when Airflow's health endpoint on `port` answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2):
            return True
    except OSError:
        return False


def port_is_free(port: int) -> bool:
    """True when nothing listens on `port` and a server could bind it again (as uvicorn does: SO_REUSEADDR)."""
    with socket.socket() as client:
        client.settimeout(1)
        if client.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def session_processes(session: int) -> list[psutil.Process]:
    """The live (not zombie) processes of a session."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes of the list that still run (a zombie counts as gone)."""
    running = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def describe(processes: list[psutil.Process]) -> str:
    """One line per process: its id and command line."""
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            lines.append(f"{process.pid} {' '.join(process.cmdline())[:160]}")
    return "\n".join(lines)


@pytest.mark.timeout(420)
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"])
def test_a_signal_stops_every_airflow_process_and_frees_the_port(tmp_path: Path, signum: int, exit_code: int):
    port = free_port()
    home = tmp_path / "airflow"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW_PORT=str(port),
        # The virtualenv running these tests, with this checkout's yaml2dag first on the path.
        YAML2DAG_SKIP_SETUP="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")])),
    )
    output = tmp_path / "script.out"
    with output.open("wb") as sink:
        script = subprocess.Popen(
            ["bash", str(SCRIPT)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while not (answers(port) and "Press Ctrl-C to stop" in output.read_text()):
            log = home / "standalone.log"
            assert script.poll() is None, f"the script exited:\n{output.read_text()}\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"Airflow did not start within 300 s:\n{output.read_text()}"
            time.sleep(1)
        # Every component runs (the API server answered; the others may still be importing).
        deadline = time.monotonic() + 60
        while True:
            started = [script_process := psutil.Process(script.pid), *script_process.children(recursive=True)]
            started += [process for process in session_processes(script.pid) if process not in started]
            commands = " ".join(" ".join(process.cmdline()) for process in alive(started))
            if all(name in commands for name in COMPONENTS) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert all(name in commands for name in COMPONENTS), describe(started)
        assert "Login: admin / " in output.read_text()

        signalled = time.monotonic()
        script.send_signal(signum)
        # 20 s on a quiet machine (measured 10.4-10.5 s); a loaded CI machine gets twice that.
        assert script.wait(timeout=40) == exit_code, output.read_text()
        while (left := alive(started) + session_processes(script.pid)) and time.monotonic() - signalled < 40:
            time.sleep(0.1)
        elapsed = time.monotonic() - signalled
        assert not left, f"still running {elapsed:.1f}s after {signum.name}:\n{describe(left)}"
        assert port_is_free(port), f"port {port} is still in use"
        print(f"\n{signum.name}: {len(started)} processes, all gone {elapsed:.1f} s after the signal")
        assert "looks like production" not in (home / "standalone.log").read_text()
    finally:
        # Whatever this test started and left (after a failure): the script's session, and what it saw.
        with contextlib.suppress(ProcessLookupError):
            script.kill()
        for process in alive(started) + session_processes(script.pid):
            with contextlib.suppress(psutil.Error):
                process.kill()
        script.wait(timeout=10)
