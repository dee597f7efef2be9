"""Large files cross the storage in bounded memory: a 2 GB download is stored, split, copied and sized by a
real flow (`yaml2dag run` in a child process), whose peak memory (VmHWM) matches a run of a 20 MB file.

Also on S3 (a moto server in its own process): reads and writes stream there too.
Deselect with `-m "not slow"` (the 2 GB run takes a few minutes on a loaded two-core machine).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import LoopbackServer, start_server

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024

FLOW = """
id: big_file
namespace: tests.large
inputs:
  - id: url
    type: STRING
tasks:
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: "{{ inputs.url }}"
  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{ outputs.download.uri }}"
    bytes: 256MB
  - id: copy
    type: io.kestra.plugin.core.storage.Concat
    files: "{{ outputs.split.uris }}"
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.copy.uri }}"
  - id: head
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fileSize(outputs.download.uri) }} {{ isFileEmpty(outputs.copy.uri) }}"
finally:
  - id: purge
    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles
"""

#: Runs `yaml2dag run --json` in this process, then prints its own peak resident memory (VmHWM: the
#: peak of this program only; ru_maxrss would also count the forking parent's memory before exec).
CHILD = textwrap.dedent(
    """\
    import sys
    from yaml2dag.cli import main
    code = main(["run", sys.argv[1], "--json", "--input", "url=" + sys.argv[2]])
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
    print("PEAK_KB " + hwm[0].split()[1], file=sys.stderr)
    sys.exit(code)
    """
)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    yield state
    httpd.shutdown()


def run_child(flow: Path, url: str, env: dict[str, str]) -> tuple[dict, float]:
    """The `--json` result of running `flow` in a fresh process, and that process's peak RSS in MB."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(flow), url], env=env, capture_output=True, text=True, timeout=1500
    )
    peaks = [line for line in done.stderr.splitlines() if line.startswith("PEAK_KB ")]
    assert peaks, done.stderr[-3000:]
    result = json.loads(done.stdout[done.stdout.index("{") :])
    return result, int(peaks[-1].split()[1]) / 1024


def child_env(tmp_path: Path, base: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `yaml2dag run` child: a throw-away Airflow home, the storage `base`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(PYTHONPATH=str(REPO), AIRFLOW__YAML2DAG__STORAGE_BASE=base, NO_COLOR="1")
    env.update(extra or {})
    return env


def check(result: dict, size: int) -> None:
    assert result["state"] == "success", {k: v["error"] for k, v in result["tasks"].items()}
    tasks = result["tasks"]
    assert tasks["download"]["outputs"]["length"] == size
    assert len(tasks["split"]["outputs"]["uris"]) == -(-size // (256 * MB))  # parts of 256 MB (and a line)
    assert tasks["size"]["outputs"] == {"size": size}
    assert tasks["head"]["outputs"] == {"value": f"{size} false"}
    assert tasks["purge"]["state"] == "success"


def test_a_2_gb_file_crosses_the_storage_in_bounded_memory(server: LoopbackServer, tmp_path: Path) -> None:
    flow = tmp_path / "big_file.yaml"
    flow.write_text(FLOW)
    env = child_env(tmp_path, (tmp_path / "storage").as_uri())
    small_size, big_size = 20_000_000, 2 * 1024 * MB - 48  # whole 100-byte lines; the big one just under 2 GiB
    small, small_peak = run_child(flow, f"{server.url}/lines/{small_size}", env)
    check(small, small_size)
    big, big_peak = run_child(flow, f"{server.url}/lines/{big_size}", env)
    check(big, big_size)
    print(f"peak RSS (VmHWM) of `yaml2dag run`: {small_peak:.0f} MB for 20 MB, {big_peak:.0f} MB for 2 GiB")
    # Every task streams: 100 times the data costs no more memory than a run of 20 MB (reading the
    # file, or a part of it, into memory would add at least 256 MB).
    assert big_peak < small_peak + 64, f"peak {big_peak:.0f} MB for 2 GB vs {small_peak:.0f} MB for 20 MB"
    assert not any(path.is_file() for path in (tmp_path / "storage").rglob("*"))  # purged by `finally`


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_process() -> Iterator[str]:
    """A moto S3 server in a process of its own (it keeps objects in memory), with the bucket `large`."""
    port = _free_port()
    code = textwrap.dedent(
        f"""\
        import time, boto3
        from moto.server import ThreadedMotoServer
        ThreadedMotoServer(ip_address="127.0.0.1", port={port}, verbose=False).start()
        keys = dict(aws_access_key_id="moto-access-key", aws_secret_access_key="moto-secret-key")
        client = boto3.client("s3", endpoint_url="http://127.0.0.1:{port}", region_name="us-east-1", **keys)
        client.create_bucket(Bucket="large")
        print("ready", flush=True)
        time.sleep(3600)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_s3_reads_and_writes_stream_in_bounded_memory(server: LoopbackServer, tmp_path: Path, moto_process: str):
    flow = tmp_path / "big_file.yaml"
    flow.write_text(FLOW)
    connection = {
        "conn_type": "aws",
        "login": "moto-access-key",
        "password": "moto-secret-key",  # masked in logs and XComs: it must not be part of any path
        "extra": {"endpoint_url": moto_process, "region_name": "us-east-1"},
    }
    env = child_env(tmp_path, f"s3://large/run-{time.time_ns()}", {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)})
    small, small_peak = run_child(flow, f"{server.url}/lines/20000000", env)
    check(small, 20_000_000)
    big, big_peak = run_child(flow, f"{server.url}/lines/300000000", env)
    check(big, 300_000_000)
    print(f"peak RSS (VmHWM) of `yaml2dag run` on S3: {small_peak:.0f} MB for 20 MB, {big_peak:.0f} MB for 300 MB")
    # S3 reads go by 8 MiB ranged requests and writes by 8 MiB parts: 15 times the data, same memory.
    assert big_peak < small_peak + 64, f"peak {big_peak:.0f} MB for 300 MB vs {small_peak:.0f} MB for 20 MB"
