"""How long `yaml2dag run` takes on the seed flow, first and second call, and where the time goes.

    python benchmarks/bench_run.py [--rounds 3] [--flow dags/examples/finally_example.yaml]

Each round runs, alternating so that machine load hits all alike:
  * `no cache`: the metadata database migrated from scratch (YAML2DAG_CACHE_DIR= disables the cache,
    as every run did before the cache existed);
  * `first`: an empty cache folder: migrate, then fill the cache;
  * `second`: the same folder again: the database is copied from the cache.
Wall time of the whole command and CPU time (user + system of the process) are reported as medians;
CPU time is what the load of other processes does not inflate. A breakdown (imports, database,
DAG load + sync, the run itself) comes from one instrumented process per mode.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "dags" / "examples" / "finally_example.yaml"

#: Runs in a child process: the CLI's steps one by one, timed (wall and CPU seconds).
_BREAKDOWN = """
import json, sys, time
def now(): return time.monotonic(), time.process_time()
marks = {"start": now()}
from yaml2dag.runner import prepare_airflow_home
prepare_airflow_home()
from yaml2dag import runner
import airflow.models, airflow.sdk
marks["imports"] = now()
with runner.quiet_console():
    runner.ensure_database()
marks["database"] = now()
import airflow.dag_processing.dagbag as dagbag
sync = [0.0, 0.0]
def timed(function):
    def wrapper(*args, **kwargs):
        started = now()
        try:
            return function(*args, **kwargs)
        finally:
            ended = now()
            sync[0] += ended[0] - started[0]
            sync[1] += ended[1] - started[1]
    return wrapper
runner._load_dag = timed(runner._load_dag)
dagbag.sync_bag_to_db = timed(dagbag.sync_bag_to_db)
result = runner.run_flow(sys.argv[1])
marks["run"] = now()
steps = {}
previous = marks["start"]
for name in ("imports", "database", "run"):
    steps[name] = [marks[name][0] - previous[0], marks[name][1] - previous[1]]
    previous = marks[name]
steps["run"] = [steps["run"][0] - sync[0], steps["run"][1] - sync[1]]
steps["dag load + sync"] = sync
print(json.dumps(steps))
"""


def environment(cache: str | None) -> dict[str, str]:
    """A clean environment (throw-away AIRFLOW_HOME) importing this checkout, with the given cache folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "YAML2DAG"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    if cache is not None:
        env["YAML2DAG_CACHE_DIR"] = cache
    return env


def timed_command(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Time the modes alternately, then print medians, ratios and the breakdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode (median)")
    parser.add_argument("--flow", type=Path, default=SEED, help="the flow to run")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "yaml2dag.cli", "run", str(args.flow)]
    samples: dict[str, list[tuple[float, float]]] = {"no cache": [], "first": [], "second": []}
    with tempfile.TemporaryDirectory(prefix="yaml2dag-bench-run-") as scratch:
        for round_ in range(args.rounds):
            cache = str(Path(scratch, f"cache-{round_}"))
            samples["no cache"].append(timed_command(cli, environment("")))
            samples["first"].append(timed_command(cli, environment(cache)))
            samples["second"].append(timed_command(cli, environment(cache)))
        breakdown = {}
        for mode, cache in (("no cache", ""), ("second", str(Path(scratch, "cache-0")))):
            output = subprocess.run(
                [sys.executable, "-c", _BREAKDOWN, str(args.flow)],
                env=environment(cache),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            breakdown[mode] = json.loads(output.strip().splitlines()[-1])
    load = os.getloadavg()[0]
    print(f"`yaml2dag run {args.flow.name}`, {args.rounds} rounds, {os.cpu_count()} cores, load average {load:.1f}\n")
    print(f"{'mode':<10} {'wall (median)':>14} {'CPU (median)':>13}  samples (wall s)")
    medians = {}
    for mode, values in samples.items():
        wall = statistics.median(value[0] for value in values)
        cpu = statistics.median(value[1] for value in values)
        medians[mode] = (wall, cpu)
        print(f"{mode:<10} {wall:>13.1f}s {cpu:>12.1f}s  {', '.join(f'{value[0]:.1f}' for value in values)}")
    base_wall, base_cpu = medians["no cache"]
    for mode in ("first", "second"):
        wall, cpu = medians[mode]
        print(f"{mode} / no cache: wall {wall / base_wall:.2f}, CPU {cpu / base_cpu:.2f}")
    print(f"\n{'step (one process)':<20} " + " ".join(f"{mode:>22}" for mode in breakdown))
    for step in ("imports", "database", "dag load + sync", "run"):
        cells = [f"{breakdown[mode][step][0]:>8.1f}s wall {breakdown[mode][step][1]:>5.1f}s CPU" for mode in breakdown]
        print(f"{step:<20} " + " ".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
