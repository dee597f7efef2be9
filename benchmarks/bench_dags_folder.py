"""DAG-folder parse benchmark: yaml2dag YAML vs the same DAGs hand-written with `airflow.sdk`.

    python benchmarks/bench_dags_folder.py                 # N = 100 and 1,000
    python benchmarks/bench_dags_folder.py --sizes 100 1000 5000 --repeat 5

Every measurement runs in a fresh Python process (as Airflow's DAG processor does): it imports
Airflow, fills a `DagBag` from the folder and reports the fill time and the peak RSS. Figures are
medians of `--repeat` runs, reported as ratios to the hand-written folder measured in the same run
(this machine is shared: absolute seconds drift, ratios much less). Also measured:
- worker parse: a `DagBag` fill with Airflow's parsing context set to one DAG, as a worker does
  before running a task, in a folder of N flows vs a folder of 1 flow;
- `import yaml2dag.dagfolder, yaml2dag.compiler` on top of `import airflow.sdk`.
The 5-task flow shape is the one of the performance issue: 3 main tasks, 1 errors, 1 finally.
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

REPO = Path(__file__).resolve().parent.parent

FLOW = """\
id: flow{i}
namespace: bench.team
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: "a {{{{ flow.id }}}}"
  - id: b
    type: io.kestra.plugin.core.log.Log
    message: b
  - id: c
    type: io.kestra.plugin.core.log.Log
    message: c
errors:
  - id: e
    type: io.kestra.plugin.core.log.Log
    message: e
finally:
  - id: f
    type: io.kestra.plugin.core.log.Log
    message: f
"""

HAND_WRITTEN = """\
import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TaskGroup


def log(message):
    print(message)


with DAG("bench.team.flow{i}", schedule=None, start_date=datetime.datetime(2024, 1, 1), tags=["bench.team"]):
    a = PythonOperator(task_id="a", python_callable=log, op_args=["a"])
    b = PythonOperator(task_id="b", python_callable=log, op_args=["b"], trigger_rule="none_failed")
    c = PythonOperator(task_id="c", python_callable=log, op_args=["c"], trigger_rule="none_failed")
    a >> b >> c
    with TaskGroup("errors", prefix_group_id=False):
        e = PythonOperator(task_id="e", python_callable=log, op_args=["e"], trigger_rule="one_failed")
    c >> e
    with TaskGroup("finally", prefix_group_id=False):
        f = PythonOperator(task_id="f", python_callable=log, op_args=["f"]).as_teardown()
    [c, e] >> f
"""

FILL = textwrap.dedent(
    """
    import resource, sys, time
    from airflow.dag_processing.dagbag import DagBag
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed = time.perf_counter() - started
    assert not bag.import_errors, bag.import_errors
    print("RESULT", elapsed, len(bag.dags), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """
)

IMPORT = textwrap.dedent(
    """
    import sys, time
    import airflow.sdk
    started = time.perf_counter()
    if sys.argv[1] == "yes":
        import yaml2dag.dagfolder, yaml2dag.compiler, yaml2dag.operators.core
    print("RESULT", time.perf_counter() - started)
    """
)


def make_folders(root: Path, size: int) -> tuple[Path, Path]:
    """A folder of `size` flows with the loader, and the same DAGs as hand-written Python files."""
    yaml_folder, python_folder = root / f"yaml-{size}", root / f"python-{size}"
    for folder in (yaml_folder, python_folder):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    shutil.copy(REPO / "dags" / "yaml2dag_flows.py", yaml_folder)
    for i in range(size):
        (yaml_folder / f"flow{i}.yaml").write_text(FLOW.format(i=i))
        (python_folder / f"dag{i}.py").write_text(HAND_WRITTEN.format(i=i))
    return yaml_folder, python_folder


def run(script: str, *args: str, env: dict[str, str] | None = None) -> list[float]:
    """Run `script` in a fresh interpreter and return the numbers it printed."""
    output = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=env
    ).stdout
    line = next(line for line in reversed(output.splitlines()) if line.startswith("RESULT "))
    return [float(value) for value in line.split()[1:]]


def median(script: str, repeat: int, *args: str, env: dict[str, str] | None = None) -> list[float]:
    """Column-wise medians of `repeat` fresh-process runs."""
    samples = [run(script, *args, env=env) for _ in range(repeat)]
    return [statistics.median(column) for column in zip(*samples, strict=True)]


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="yaml2dag-bench-"))
    env = {**os.environ, "AIRFLOW_HOME": str(root / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    print(f"{'N':>6}  {'hand-written s':>14}  {'yaml2dag s':>10}  {'ratio':>6}  {'RSS MB (py/yaml)':>17}")
    for size in args.sizes:
        yaml_folder, python_folder = make_folders(root, size)
        python_time, python_dags, python_rss = median(FILL, args.repeat, str(python_folder), env=env)
        yaml_time, yaml_dags, yaml_rss = median(FILL, args.repeat, str(yaml_folder), env=env)
        assert python_dags == yaml_dags == size
        print(
            f"{size:>6}  {python_time:>14.2f}  {yaml_time:>10.2f}  {yaml_time / python_time:>6.2f}"
            f"  {python_rss:>7.0f} / {yaml_rss:<7.0f}"
        )

    size = max(args.sizes)
    many, _ = make_folders(root, size)
    one, _ = make_folders(root, 1)
    worker_env = {**env, "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "bench.team.flow0"}
    many_time = median(FILL, args.repeat, str(many), env=worker_env)[0]
    one_time = median(FILL, args.repeat, str(one), env=worker_env)[0]
    print(f"\nworker parse (one DAG): {size} flows {many_time:.3f}s, 1 flow {one_time:.3f}s")

    base = median(IMPORT, args.repeat, "no", env=env)[0]
    with_yaml2dag = median(IMPORT, args.repeat, "yes", env=env)[0]
    print(f"import yaml2dag on top of airflow.sdk: {(with_yaml2dag - base) * 1000:.0f} ms")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
