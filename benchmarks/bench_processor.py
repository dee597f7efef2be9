"""The real DAG processor: time until N new flows are visible as DAGs, and its CPU for one parse loop.

    python benchmarks/bench_processor.py --sizes 100

Each measurement starts `airflow dag-processor --num-runs 1` (every file parsed once, then it exits)
on a fresh copy of a migrated SQLite database, polls the database until the N DAGs are serialized,
and reads the CPU time of the processor and of the per-file children it forked.

Forms: `bundle` (yaml2dag's DAG bundle), `bundle, no warm-up` (the same bundle without the compiler
warm-up of `KestraFlowsBundle.initialize`, i.e. as it was before: every forked child imported yaml2dag
again), `loader` (the loader file, one file for all flows) and `python` (hand-written DAG files).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from folders import flow_sources, make_folder

HERE = Path(__file__).resolve().parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
FORMS = {
    "bundle": "yaml2dag.bundle.KestraFlowsBundle",
    "bundle, no warm-up": "processor_bundles.ColdKestraFlowsBundle",
    "loader": "airflow.dag_processing.bundles.local.LocalDagBundle",
    "python": "airflow.dag_processing.bundles.local.LocalDagBundle",
}


def migrated_database(root: Path) -> Path:
    """An Airflow metadata database (SQLite) migrated once, copied for every measurement."""
    home = root / "processor-template"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    return home / "airflow.db"


def _count_dags(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1) as connection:
            return connection.execute("SELECT count(*) FROM serialized_dag").fetchone()[0]
    except sqlite3.Error:
        return 0


def measure(root: Path, template: Path, form: str, size: int, run: int) -> tuple[float, float]:
    """One processor run: (seconds until `size` DAGs are visible, CPU seconds of the whole run)."""
    home = root / f"processor-{form.replace(', ', '-').replace(' ', '')}-{size}-{run}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(template, home / "airflow.db")
    path = flow_sources(root, size) if form.startswith("bundle") else make_folder(root, form, size)
    bundle = {"name": "bench", "classpath": FORMS[form], "kwargs": {"path": str(path)}}
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    log = (home / "processor.log").open("w")
    process = subprocess.Popen([AIRFLOW, "dag-processor", "--num-runs", "1"], env=env, stdout=log, stderr=log)
    visible = None
    while process.poll() is None:
        if visible is None and _count_dags(home / "airflow.db") >= size:
            visible = time.perf_counter() - started
        time.sleep(0.2)
    log.close()
    if visible is None and _count_dags(home / "airflow.db") >= size:
        visible = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0 or visible is None:
        raise RuntimeError(f"{form}: processor exited {process.returncode}, see {home / 'processor.log'}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return visible, cpu


def processor(root: Path, sizes: list[int], repeat: int) -> list[dict[str, object]]:
    """Benchmark 2: one row per size, every form measured `repeat` times (interleaved), medians."""
    template = migrated_database(root)
    rows = []
    for size in sizes:
        samples: dict[str, list[tuple[float, float]]] = {form: [] for form in FORMS}
        for run in range(repeat):
            for form in FORMS:
                samples[form].append(measure(root, template, form, size, run))
        row: dict[str, object] = {"N": size}
        for form, values in samples.items():
            row[form] = tuple(statistics.median(column) for column in zip(*values, strict=True))
        rows.append(row)
    return rows


def print_processor_table(rows: list[dict[str, object]]) -> None:
    """Seconds until all DAGs are visible and CPU seconds of the parse loop, with ratios to hand-written."""
    print(f"{'N':>6}  {'form':<20} {'visible after s':>15} {'×py':>5} {'CPU s':>8} {'×py':>5}")
    for row in rows:
        python_visible, python_cpu = row["python"]  # type: ignore[misc]
        for form in FORMS:
            visible, cpu = row[form]  # type: ignore[misc]
            print(
                f"{row['N']:>6}  {form:<20} {visible:>15.1f} {visible / python_visible:>5.2f}"
                f" {cpu:>8.1f} {cpu / python_cpu:>5.2f}"
            )


def main() -> None:
    """Print the processor table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="yaml2dag-bench-processor-"))
    print_processor_table(processor(root, args.sizes, args.repeat))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
