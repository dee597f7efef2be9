"""Per-task overhead of yaml2dag operators vs a plain `PythonOperator` doing the same work, via `dag.test()`.

    python benchmarks/bench_tasks.py

Both DAGs chain K tasks that each log one rendered message ("task <id> of <flow id>"): yaml2dag
`Log` tasks (whose message is a Kestra expression rendered by the operator), and `PythonOperator`s
whose callable formats and logs the same text. The marginal cost of one task is
(run with K = 11 − run with K = 1) / 10, so Airflow's fixed cost of a run cancels out; yaml2dag's
flow-state task, run once per flow, is reported with the fixed part. Medians of `--repeat` runs,
run in one process on a private SQLite database (as `yaml2dag run` does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SMALL, LARGE = 1, 11
MESSAGE = '"task {{ taskrun.id }} of {{ flow.id }}"'


def flow_yaml(tasks: int) -> str:
    """A flow of `tasks` chained Log tasks."""
    lines = ["id: overhead", f"namespace: bench.tasks{tasks}", "tasks:"]
    for i in range(tasks):
        lines += [f"  - id: t{i}", "    type: io.kestra.plugin.core.log.Log", f"    message: {MESSAGE}"]
    return "\n".join(lines) + "\n"


def yaml2dag_file(tasks: int) -> str:
    """A DAG file compiling `flow_yaml(tasks)`, as the bundle generates it."""
    call = f"load_embedded_flow(globals(), 'bench.yaml', {flow_yaml(tasks)!r})"
    return f"# airflow DAG file\nfrom yaml2dag.dagfolder import load_embedded_flow\n\n{call}\n"


def python_file(tasks: int) -> str:
    """The same chain of `tasks` tasks as plain `PythonOperator`s whose callable logs the same text."""
    return f"""\
import datetime, logging
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, chain

def log(flow_id, **context):
    logging.getLogger("airflow.task").info("task %s of %s", context["ti"].task_id, flow_id)

with DAG("bench.python{tasks}.overhead", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    chain(*(PythonOperator(task_id=f"t{{i}}", python_callable=log, op_args=["overhead"]) for i in range({tasks})))
"""


def _load(text: str, name: str) -> Any:
    """Write a DAG file into Airflow's dags folder and import it (`dag.test()` needs a real file)."""
    import importlib.util

    from airflow.configuration import conf
    from airflow.sdk import DAG

    path = Path(conf.get("core", "dags_folder"), f"{name}.py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = next(value for value in vars(module).values() if isinstance(value, DAG))
    dag.fileloc = str(path)
    return dag


def _run_seconds(build: Callable[[int], str], tasks: int) -> float:
    dag = _load(build(tasks), f"{build.__name__}{tasks}")
    started = time.perf_counter()
    run = dag.test()
    elapsed = time.perf_counter() - started
    if str(run.state) not in ("success", "DagRunState.SUCCESS"):
        raise RuntimeError(f"{dag.dag_id} ended {run.state}")
    return elapsed


def measure(repeat: int) -> dict[str, tuple[float, float]]:
    """(fixed seconds per run, marginal seconds per task) for each kind of DAG."""
    result = {}
    for label, build in (("yaml2dag Log", yaml2dag_file), ("PythonOperator", python_file)):
        _run_seconds(build, SMALL)  # first run pays Airflow's start-up (database, serializers)
        small = statistics.median(_run_seconds(build, SMALL) for _ in range(repeat))
        large = statistics.median(_run_seconds(build, LARGE) for _ in range(repeat))
        per_task = (large - small) / (LARGE - SMALL)
        result[label] = (small - per_task * SMALL, per_task)
    return result


def main() -> None:
    """Print the per-task table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="yaml2dag-bench-tasks-")  # set before Airflow reads its configuration
    os.environ.update(AIRFLOW_HOME=home, AIRFLOW__CORE__DAGS_FOLDER=f"{home}/dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from yaml2dag.runner import ensure_database, quiet_console

    with quiet_console():
        ensure_database()
        rows = measure(args.repeat)
    python_task = rows["PythonOperator"][1]
    print(f"{'dag.test()':<16} {'fixed per run s':>16} {'per task ms':>12} {'×py':>5}")
    for label, (fixed, per_task) in rows.items():
        print(f"{label:<16} {fixed:>16.2f} {per_task * 1000:>12.0f} {per_task / python_task:>5.2f}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
