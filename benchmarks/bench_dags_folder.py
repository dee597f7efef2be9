"""DAG-folder parse, worker task start and import time, each in fresh processes.

    python benchmarks/bench_dags_folder.py --sizes 100 1000 --repeat 3

Every measurement runs in a fresh interpreter: it imports Airflow, fills a `DagBag` from the folder
(as the DAG processor and workers do) and reports the fill's CPU time (user + system of the process:
unlike wall time, barely changed by other processes on a shared machine), its wall time and the
process's peak RSS.
Figures are medians of `--repeat` runs, forms measured interleaved, reported as ratios to the
hand-written folder of the same run: this machine is shared, absolute seconds drift, ratios much less.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from folders import FORMS, LOADER_FILE, install_dag_factory, make_folder

FILL = textwrap.dedent(
    """
    import resource, sys, time
    from airflow.dag_processing.dagbag import DagBag
    started, cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=sys.argv[1])
    cpu, elapsed = time.process_time() - cpu, time.perf_counter() - started
    assert not bag.import_errors, bag.import_errors
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT", cpu, len(bag.dags), rss, elapsed)
    """
)

IMPORT = textwrap.dedent(
    """
    import importlib, sys, time
    import airflow.sdk
    started = time.process_time()
    for name in sys.argv[1:]:
        importlib.import_module(name)
    print("RESULT", time.process_time() - started)
    """
)

#: What a parse of flows needs (the bundle's generated files import `yaml2dag.dagfolder`, which
#: compiles with `yaml2dag.compiler` into `yaml2dag.operators.*`).
PARSE_TIME_MODULES = ("yaml2dag.bundle", "yaml2dag.dagfolder", "yaml2dag.compiler", "yaml2dag.operators.core")
IMPORT_STEPS = {
    "yaml2dag (package)": ("yaml2dag",),
    "+ loader (PyYAML)": ("yaml2dag.loader",),
    "+ expressions": ("yaml2dag.expressions",),
    "+ tasktypes (pydantic)": ("yaml2dag.tasktypes",),
    "+ model, validation": ("yaml2dag.validation",),
    "+ compiler, operators, bundle": PARSE_TIME_MODULES,
}


def run(script: str, *args: str, env: dict[str, str]) -> list[float]:
    """Run `script` in a fresh interpreter and return the numbers of its RESULT line."""
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark process failed:\n{done.stderr[-3000:]}")
    line = next(line for line in reversed(done.stdout.splitlines()) if line.startswith("RESULT "))
    return [float(value) for value in line.split()[1:]]


def medians(samples: list[list[float]]) -> list[float]:
    """Column-wise medians."""
    return [statistics.median(column) for column in zip(*samples, strict=True)]


#: Airflow stops importing one DAG file after `dagbag_import_timeout` (30 s by default). A whole
#: folder in one file (dag-factory's loader, yaml2dag's loader file) can take longer at N = 5,000:
#: measured without the limit, and the wall seconds printed show which forms would exceed it.
IMPORT_TIMEOUT_SECONDS = "3600"


def base_env(root: Path) -> dict[str, str]:
    """A private Airflow home, no example DAGs, no import time limit."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(root / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": IMPORT_TIMEOUT_SECONDS,
    }


def folder_parse(root: Path, sizes: list[int], repeat: int, dag_factory: Path | None) -> list[dict[str, object]]:
    """Benchmark 1: fill a DagBag from each form's folder; one row per size."""
    env = base_env(root)
    factory_env = {**env, "PYTHONPATH": str(dag_factory)} if dag_factory else env
    forms = [form for form in FORMS if form != "dagfactory" or dag_factory]
    rows = []
    for size in sizes:
        folders = {form: make_folder(root, form, size) for form in forms}
        samples: dict[str, list[list[float]]] = {form: [] for form in forms}
        for _ in range(repeat):  # interleaved, so a burst of load elsewhere hits every form alike
            for form in forms:
                samples[form].append(run(FILL, str(folders[form]), env=factory_env if form == "dagfactory" else env))
        row: dict[str, object] = {"N": size}
        for form in forms:
            seconds, dags, rss, wall = medians(samples[form])
            if dags != size:
                raise RuntimeError(f"{form}: {dags} DAGs for {size} flows")
            row[form] = (seconds, rss, wall)
        rows.append(row)
    return rows


def worker_start(root: Path, size: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Benchmark 3: a worker's parse for one DAG in a folder of `size` flows vs a folder of 1 flow.

    The parsing context is set as a worker sets it before it runs a task (the DagBag fill time is
    what depends on the folder; the interpreter start and `import airflow` are the same in both).

    A worker parses only the DAG file its task's DAG came from (Airflow 3's task runner fills a
    DagBag from `<bundle path>/<dag_rel_path>`), never the whole folder. Loader file: that file is
    the loader, which skips the other flows using the parsing context. Bundle: the generated file
    of the DAG.
    """
    env = {**base_env(root), "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "bench.team.flow0"}
    result = {}
    for form in ("bundle", "loader"):
        big, one = make_folder(root, form, size), make_folder(root, form, 1)
        dag_file = "flow0.yaml.py" if form == "bundle" else LOADER_FILE
        big, one = big / dag_file, one / dag_file
        times: dict[str, list[float]] = {"big": [], "one": []}
        for _ in range(repeat):
            times["big"].append(run(FILL, str(big), env=env)[0])
            times["one"].append(run(FILL, str(one), env=env)[0])
        result[form] = (statistics.median(times["big"]), statistics.median(times["one"]))
    return result


def import_time(root: Path, repeat: int) -> dict[str, float]:
    """Benchmark 4: milliseconds to import yaml2dag's parse-time modules on top of `airflow.sdk`, cumulated."""
    env = base_env(root)
    steps: list[str] = []
    result = {}
    baseline = statistics.median(run(IMPORT, env=env)[0] for _ in range(repeat))
    for label, modules in IMPORT_STEPS.items():
        steps.extend(modules)
        result[label] = (statistics.median(run(IMPORT, *steps, env=env)[0] for _ in range(repeat)) - baseline) * 1000
    return result


def print_folder_table(rows: list[dict[str, object]]) -> None:
    """The folder-parse table: CPU seconds, ratio to hand-written, peak RSS, wall seconds."""
    forms = [form for form in FORMS if form in rows[0]]
    columns = "".join(f"  {form + ' s':>12} {'×py':>5}" for form in forms)
    print(f"{'N':>6}{columns}   peak RSS MB / wall s: {'/'.join(forms)}")
    for row in rows:
        python_seconds = row["python"][0]  # type: ignore[index]
        cells = "".join(f"  {row[f][0]:>12.2f} {row[f][0] / python_seconds:>5.2f}" for f in forms)  # type: ignore[index]
        rss = "/".join(f"{row[f][1]:.0f}" for f in forms)  # type: ignore[index]
        wall = "/".join(f"{row[f][2]:.1f}" for f in forms)  # type: ignore[index]
        print(f"{row['N']:>6}{cells}   {rss} MB / {wall} s")


def main() -> None:
    """Print the folder-parse table, the worker task start and the import time."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="yaml2dag-bench-"))
    factory = root.parent / "yaml2dag-bench-dagfactory"
    problem = install_dag_factory(factory)
    if problem:
        print(f"dag-factory not measured: {problem}")
    print_folder_table(folder_parse(root, args.sizes, args.repeat, None if problem else factory))
    for form, (big, one) in worker_start(root, max(args.sizes), args.repeat).items():
        print(f"worker task start ({form}): {max(args.sizes)} flows {big:.3f}s, 1 flow {one:.3f}s = {big / one:.2f}×")
    for label, milliseconds in import_time(root, args.repeat).items():
        print(f"import {label:<32} {milliseconds:6.0f} ms over airflow.sdk")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
