"""Per-task overhead of yaml2dag's script tasks vs the Airflow operator doing the same on the same runner.

    python benchmarks/bench_scripts.py [--repeat 2] [--no-docker]

Each DAG chains K tasks that run a trivial Python program (`print("hi")`):

* yaml2dag `python.Script` on the Process runner vs a `BashOperator` running `python3 -c 'print("hi")'`
  (both start a child process on the worker), and a `PythonOperator` calling `print` in-process;
* yaml2dag `python.Script` on the Docker runner vs a `DockerOperator` running the same program in
  the same local image (`yaml2dag-test/python`, from scripts/build-test-images.sh).

and shell tasks inside a WorkingDirectory vs the same tasks alone (the cost of restoring and
storing the shared folder through the storage, per child).

The marginal cost of one task is (run with K = LARGE − run with K = 1) / (LARGE − 1), so Airflow's
fixed cost of a run cancels out. Medians of `--repeat` runs, in one process, on a private SQLite
database, all kinds measured in the same run so that the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tasks import _run_seconds  # noqa: E402

SMALL, LARGE = 1, 6
IMAGE = "yaml2dag-test/python"
_HEADER = "import datetime\nfrom airflow.sdk import DAG, chain\n"


def _flow_file(name: str, runner: str) -> Callable[[int], str]:
    def build(tasks: int) -> str:
        lines = ["id: scripts", f"namespace: bench.{name}{tasks}", "tasks:"]
        for i in range(tasks):
            lines += [f"  - id: t{i}", "    type: io.kestra.plugin.scripts.python.Script", f"    taskRunner: {runner}"]
            if "docker" in runner:
                lines.append(f"    containerImage: {IMAGE}")
            lines.append("    script: print('hi')")
        flow = "\n".join(lines) + "\n"
        call = f"load_embedded_flow(globals(), 'bench.yaml', {flow!r})"
        return f"# airflow DAG file\nfrom yaml2dag.dagfolder import load_embedded_flow\n\n{call}\n"

    build.__name__ = name
    return build


def _airflow_file(name: str, imports: str, operator: str) -> Callable[[int], str]:
    def build(tasks: int) -> str:
        return f"""{_HEADER}{imports}
with DAG("bench.{name}{tasks}", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    chain(*({operator} for i in range({tasks})))
"""

    build.__name__ = name
    return build


def _shell_flow(name: str, in_working_directory: bool) -> Callable[[int], str]:
    def build(tasks: int) -> str:
        lines = ["id: scripts", f"namespace: bench.{name}{tasks}", "tasks:"]
        indent = "  "
        if in_working_directory:
            lines += ["  - id: wd", "    type: io.kestra.plugin.core.flow.WorkingDirectory", "    tasks:"]
            indent = "      "
        for i in range(tasks):
            lines += [
                f"{indent}- id: t{i}",
                f"{indent}  type: io.kestra.plugin.scripts.shell.Commands",
                f"{indent}  taskRunner: {{type: io.kestra.plugin.core.runner.Process}}",
                f"{indent}  commands: ['echo {i} > file{i}.txt']",
            ]
        flow = "\n".join(lines) + "\n"
        call = f"load_embedded_flow(globals(), 'bench.yaml', {flow!r})"
        return f"# airflow DAG file\nfrom yaml2dag.dagfolder import load_embedded_flow\n\n{call}\n"

    build.__name__ = name
    return build


#: A WorkingDirectory's children (each restores and stores the shared folder) vs the same tasks alone.
WORKING_DIRECTORY_KINDS = {
    "shell.Commands (Process), alone": _shell_flow("alone", False),
    "shell.Commands in a WorkingDirectory": _shell_flow("shared", True),
}

PROCESS_KINDS = {
    "yaml2dag python.Script (Process)": _flow_file("y2d_process", "{type: io.kestra.plugin.core.runner.Process}"),
    "BashOperator python3 -c": _airflow_file(
        "bash",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "BashOperator(task_id=f't{i}', bash_command=\"python3 -c 'print(\\\"hi\\\")'\")",
    ),
    "PythonOperator print (in-process)": _airflow_file(
        "python",
        "from airflow.providers.standard.operators.python import PythonOperator",
        "PythonOperator(task_id=f't{i}', python_callable=print, op_args=['hi'])",
    ),
}
DOCKER_KINDS = {
    "yaml2dag python.Script (Docker)": _flow_file(
        "y2d_docker", "{type: io.kestra.plugin.scripts.runner.docker.Docker, pullPolicy: NEVER}"
    ),
    "DockerOperator": _airflow_file(
        "docker",
        "from airflow.providers.docker.operators.docker import DockerOperator",
        f"DockerOperator(task_id=f't{{i}}', image='{IMAGE}', command=['python3', '-c', 'print(\"hi\")'], "
        "mount_tmp_dir=False, auto_remove='force', docker_url='unix:///var/run/docker.sock')",
    ),
}


def measure(kinds: dict[str, Callable[[int], str]], repeat: int) -> dict[str, tuple[float, float]]:
    """(fixed seconds per run, marginal seconds per task) for each kind of DAG."""
    result = {}
    for label, build in kinds.items():
        _run_seconds(build, SMALL)  # warm-up: imports, first DAG serialisation
        small = statistics.median(_run_seconds(build, SMALL) for _ in range(repeat))
        large = statistics.median(_run_seconds(build, LARGE) for _ in range(repeat))
        per_task = (large - small) / (LARGE - SMALL)
        result[label] = (small - per_task * SMALL, per_task)
    return result


def main() -> None:
    """Print the per-task table with ratios to the Airflow operator on the same runner."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-docker", action="store_true", help="measure the Process runner only")
    parser.add_argument("--only-working-directory", action="store_true", help="measure the WorkingDirectory only")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="yaml2dag-bench-scripts-")  # set before Airflow reads its configuration
    os.environ.update(AIRFLOW_HOME=home, AIRFLOW__CORE__DAGS_FOLDER=f"{home}/dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from yaml2dag.runner import ensure_database, quiet_console

    groups = [(PROCESS_KINDS, "BashOperator python3 -c")]
    if not args.no_docker:
        groups.append((DOCKER_KINDS, "DockerOperator"))
    groups.append((WORKING_DIRECTORY_KINDS, "shell.Commands (Process), alone"))
    if args.only_working_directory:
        groups = groups[-1:]
    with quiet_console():
        ensure_database()
        measured = [(measure(kinds, args.repeat), reference) for kinds, reference in groups]
    print(f"{'dag.test()':<36} {'fixed per run s':>16} {'per task ms':>12} {'× reference':>13}")
    for rows, reference in measured:
        for label, (fixed, per_task) in rows.items():
            ratio = per_task / rows[reference][1]
            print(f"{label:<36} {fixed:>16.2f} {per_task * 1000:>12.0f} {ratio:>13.2f}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
