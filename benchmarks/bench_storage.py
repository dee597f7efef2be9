"""Storage throughput and memory: write, read, Split and Concat of a large file through `yaml2dag.storage`.

    python benchmarks/bench_storage.py --size-mb 100 [--s3]

Each form runs in a fresh interpreter that reports MB/s and its peak RSS (VmHWM); the baseline is plain
Python copying the same bytes between local files (`shutil.copyfileobj`). Peak RSS stays flat as the
size grows because every path streams by 1 MiB chunks or by lines (try `--size-mb 1000`).
With `--s3`, the base is a bucket of a moto S3 server started on a loopback port.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import json, os, resource, shutil, sys, time
    from pathlib import Path
    from yaml2dag import storage
    form, size_mb, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    context = {"flow": {"namespace": "bench", "id": "storage"}, "execution": {"id": "run1"},
               "task": {"id": form}, "taskrun": {"id": "tr"}}
    line = (b"x" * 99) + b"\\n"
    chunk = line * 10486  # about 1 MiB of 100-byte lines
    total = size_mb * 1024 * 1024
    source = folder / "source.txt"
    if not source.exists():
        with source.open("wb") as handle:
            written = 0
            while written < total:
                handle.write(chunk)
                written += len(chunk)
    size = source.stat().st_size
    storage.storage_base()  # import Airflow and build the file system before timing
    started = time.perf_counter()
    if form == "baseline-copy":
        with source.open("rb") as a, (folder / "copy.txt").open("wb") as b:
            shutil.copyfileobj(a, b, 1 << 20)
    elif form == "write":
        storage.upload_local(context, source, "big.txt")
    elif form == "read":
        uri = storage.upload_local(dict(context, task={"id": "prep"}), source, "big.txt")
        started = time.perf_counter()
        with storage.open_read(uri) as stream:
            while stream.read(1 << 20):
                pass
    elif form in ("split", "concat"):
        from yaml2dag.operators.storage import SplitOperator, lines_of
        uri = storage.upload_local(dict(context, task={"id": "prep"}), source, "big.txt")
        started = time.perf_counter()
        with storage.open_read(uri) as stream:
            parts = SplitOperator._split(context, stream, lambda size, count: size >= 10 << 20, ".txt", b"\\n")
        if form == "concat":
            started = time.perf_counter()
            with storage.open_write(context, "joined.txt") as (_, target):
                for part in parts:
                    with storage.open_read(part) as stream:
                        storage.copy_stream(stream, target)
    elapsed = time.perf_counter() - started
    # VmHWM is this program's own peak. ru_maxrss is not: a child's counts the memory of the process
    # that forked it, as it was before exec -- here the benchmark, whose moto server holds every
    # object uploaded so far, which made S3 peaks look like they grew with the file.
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
    rss = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"form": form, "mb_s": size / elapsed / 1e6, "rss_mb": rss, "seconds": elapsed}))
    """
)

FORMS = ("baseline-copy", "write", "read", "split", "concat")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--s3", action="store_true", help="store on S3 (a moto server on loopback)")
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as folder:
        env = dict(os.environ, PYTHONPATH=str(REPO), AIRFLOW_HOME=str(Path(folder, "home")))
        env["AIRFLOW__YAML2DAG__STORAGE_BASE"] = Path(folder, "storage").as_uri()
        if args.s3:
            import boto3
            from moto.server import ThreadedMotoServer

            port = _free_port()
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            endpoint = f"http://127.0.0.1:{port}"
            keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys).create_bucket(Bucket="bench")
            extra = {"endpoint_url": endpoint, "region_name": "us-east-1"}
            env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
                {"conn_type": "aws", "login": "bench", "password": "bench", "extra": extra}
            )
            env["AIRFLOW__YAML2DAG__STORAGE_BASE"] = "s3://bench/base"
        print(
            f"{'form':<14} {'MB/s':>8} {'peak RSS MB':>12} {'seconds':>8}  ({args.size_mb} MB, "
            f"{'s3 (moto)' if args.s3 else 'local'} base)"
        )
        for form in FORMS:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, form, str(args.size_mb), folder],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if not found:
                print(f"{form:<14} failed: {done.stderr[-800:]}")
                continue
            result = json.loads(found[-1][len("RESULT ") :])
            print(f"{form:<14} {result['mb_s']:>8.1f} {result['rss_mb']:>12.1f} {result['seconds']:>8.2f}")
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
