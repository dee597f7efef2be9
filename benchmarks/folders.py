"""The equivalent DAG folders the benchmarks compare: one 5-task flow (3 main, 1 errors, 1 finally) N times.

- `bundle`: yaml2dag's DAG bundle, one generated `<flow>.yaml.py` per flow (what `airflow-standalone.sh`
  and `docker-compose.yaml` run, so what users run by default);
- `loader`: the flow files plus the one loader file `dags/yaml2dag_flows.py`;
- `python`: the same DAGs hand-written with `airflow.sdk` (one `.py` per DAG);
- `dagfactory`: the same DAGs as dag-factory YAML (one file per DAG) plus its loader file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORMS = ("bundle", "loader", "python", "dagfactory")
DAG_FACTORY_VERSION = "1.1.0"
#: The loader DAG file copied into the `loader` folders.
LOADER_FILE = "yaml2dag_flows.py"

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

DAG_FACTORY = """\
bench.team.flow{i}:
  default_args:
    start_date: 2024-01-01
  schedule: null
  catchup: false
  tags: [bench.team]
  task_groups:
    errors:
      tooltip: errors
    finally:
      tooltip: finally
  tasks:
    a:
      operator: airflow.providers.standard.operators.python.PythonOperator
      python_callable: builtins.print
      op_args: [a]
    b:
      operator: airflow.providers.standard.operators.python.PythonOperator
      python_callable: builtins.print
      op_args: [b]
      trigger_rule: none_failed
      dependencies: [a]
    c:
      operator: airflow.providers.standard.operators.python.PythonOperator
      python_callable: builtins.print
      op_args: [c]
      trigger_rule: none_failed
      dependencies: [b]
    e:
      operator: airflow.providers.standard.operators.python.PythonOperator
      python_callable: builtins.print
      op_args: [e]
      trigger_rule: one_failed
      task_group_name: errors
      dependencies: [c]
    f:
      operator: airflow.providers.standard.operators.python.PythonOperator
      python_callable: builtins.print
      op_args: [f]
      trigger_rule: all_done
      task_group_name: finally
      dependencies: [c, e]
"""

DAG_FACTORY_LOADER = """\
# airflow DAG file: dag-factory loads every YAML file of this folder.
from pathlib import Path

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), dags_folder=str(Path(__file__).parent))
"""


def flow_sources(root: Path, size: int) -> Path:
    """A folder of `size` Kestra flow files (no DAG file): what the bundle serves."""
    folder = _fresh(root / f"flows-{size}")
    for i in range(size):
        (folder / f"flow{i}.yaml").write_text(FLOW.format(i=i))
    return folder


def make_folder(root: Path, form: str, size: int) -> Path:
    """The DAG folder Airflow parses for `size` flows written in `form` (one of `FORMS`)."""
    folder = _fresh(root / f"{form}-{size}")
    if form == "bundle":
        from yaml2dag.bundle import sync_dag_files

        sync_dag_files(flow_sources(root, size), folder)
    elif form == "loader":
        shutil.copy(REPO / "dags" / LOADER_FILE, folder)
        for i in range(size):
            (folder / f"flow{i}.yaml").write_text(FLOW.format(i=i))
    elif form == "python":
        for i in range(size):
            (folder / f"dag{i}.py").write_text(HAND_WRITTEN.format(i=i))
    elif form == "dagfactory":
        (folder / "dag_factory_dags.py").write_text(DAG_FACTORY_LOADER)
        for i in range(size):
            (folder / f"dag{i}.yaml").write_text(DAG_FACTORY.format(i=i))
    else:
        raise ValueError(f"unknown form {form!r}")
    return folder


def install_dag_factory(target: Path) -> str | None:
    """Install dag-factory (without dependencies: Airflow is already there) into `target`.

    Returns None when it can be imported from `target`, else why not. It goes into its own folder,
    put on PYTHONPATH only for the dag-factory measurements, so the project's venv is untouched.
    """
    if (target / "dagfactory" / "__init__.py").exists():
        return None
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    done = subprocess.run([*command, f"dag-factory=={DAG_FACTORY_VERSION}"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"pip install dag-factory=={DAG_FACTORY_VERSION} failed: {done.stderr.strip().splitlines()[-1:]}"
    return None


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
