"""The DAG bundle's generated files: one per flow, rewritten only on change, parsed YAML embedded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from yaml2dag.bundle import GENERATED_SUFFIX, sync_dag_files
from yaml2dag.dagfolder import load_embedded_flow
from yaml2dag.loader import dump_parsed, loader_fingerprint

FLOW = """\
id: {flow_id}
namespace: team.bundle
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{message}"
"""


def write_flow(folder: Path, name: str, flow_id: str = "hello", message: str = "hi {{ flow.id }}") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FLOW.format(flow_id=flow_id, message=message))
    return path


def generated_dag(path: Path):
    """Execute a generated DAG file as Airflow imports it; the DAG it defined."""
    namespace: dict[str, object] = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - the file under test
    dags = [value for value in namespace.values() if type(value).__name__ == "DAG"]
    assert len(dags) == 1
    return dags[0]


def test_each_flow_gets_a_dag_file_embedding_its_parsed_yaml(tmp_path):
    flows, target = tmp_path / "flows", tmp_path / "dags"
    write_flow(flows, "hello.yaml")
    write_flow(flows, "team/other.yml", flow_id="other")
    generated = sync_dag_files(flows, target)
    assert sorted(path.relative_to(target).as_posix() for path in generated) == [
        "hello.yaml" + GENERATED_SUFFIX,
        "team/other.yml" + GENERATED_SUFFIX,
    ]
    text = (target / "hello.yaml.py").read_text()
    assert f"PARSED = ('{loader_fingerprint()}', '" in text
    assert text.index("id: hello") < text.index("load_embedded_flow(globals()")  # the YAML first
    dag = generated_dag(target / "hello.yaml.py")
    assert dag.dag_id == "team.bundle.hello"
    assert dag.get_task("hello").message == "hi {{ flow.id }}"


def test_files_are_rewritten_only_when_their_flow_changes(tmp_path):
    flows, target = tmp_path / "flows", tmp_path / "dags"
    flow = write_flow(flows, "hello.yaml")
    write_flow(flows, "stays.yaml", flow_id="stays")
    sync_dag_files(flows, target)
    for generated in target.iterdir():
        os.utime(generated, ns=(1, 1))  # a rewrite gives the file the current time

    flow.write_text(FLOW.format(flow_id="hello", message="changed"))
    sync_dag_files(flows, target)
    assert (target / "stays.yaml.py").stat().st_mtime_ns == 1
    assert (target / "hello.yaml.py").stat().st_mtime_ns != 1
    assert generated_dag(target / "hello.yaml.py").get_task("hello").message == "changed"

    flow.unlink()
    assert sync_dag_files(flows, target) == {target / "stays.yaml.py"}
    assert not (target / "hello.yaml.py").exists()


def test_parsed_yaml_from_another_loader_version_is_ignored(tmp_path):
    text = FLOW.format(flow_id="fresh", message="from the text")
    stale = dump_parsed({"id": "stale", "namespace": "elsewhere", "tasks": []})
    assert stale is not None
    namespace: dict[str, object] = {}
    dag = load_embedded_flow(namespace, str(tmp_path / "fresh.yaml"), text, ("an-older-loader", stale))
    assert dag.dag_id == "team.bundle.fresh"
    assert dag.get_task("hello").message == "from the text"


def test_a_broken_flow_is_a_located_import_error_of_its_own_file(tmp_path, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    flows, target = tmp_path / "flows", tmp_path / "dags"
    write_flow(flows, "good.yaml", flow_id="good")
    broken = flows / "broken.yaml"
    broken.write_text("id: broken\nnamespace: team.bundle\ntasks:\n  - id: [unclosed\n")
    sync_dag_files(flows, target)
    assert "PARSED = None" in (target / "broken.yaml.py").read_text()
    bag = DagBag(dag_folder=str(target))
    assert bag.dag_ids == ["team.bundle.good"]
    (error,) = bag.import_errors.values()
    assert f"{broken}:4:9: YAML syntax error" in error, error  # the `[` never closed


def test_parsing_a_flow_imports_only_the_task_families_it_uses():
    script = textwrap.dedent(
        """
        import sys
        from yaml2dag.flowfile import parse_flow_text
        parse_flow_text("id: f\\nnamespace: n\\ntasks:\\n  - id: a\\n    type: io.kestra.plugin.core.log.Log\\n"
                        "    message: hi\\n")
        print(sorted(name for name in sys.modules if name.startswith("yaml2dag.tasktypes.")))
        from yaml2dag.tasktypes import TASK_TYPES
        print("io.kestra.plugin.docker.cli.Run" in TASK_TYPES, "io.kestra.plugin.redis.string.Get" in list(TASK_TYPES))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded, found = done.stdout.strip().splitlines()
    assert "yaml2dag.tasktypes.docker" not in loaded and "yaml2dag.tasktypes.redis" not in loaded
    assert "yaml2dag.tasktypes.core" in loaded
    assert found == "True True"


def parse_in_dag_processor_child(dag_file: Path, bundle_path: Path) -> dict[str, str]:
    """Parse one DAG file as Airflow's DAG processor does (a supervised child); its import errors."""
    import selectors
    import time
    import uuid

    import structlog
    from airflow.dag_processing.processor import DagFileProcessorProcess, in_process_api_server
    from airflow.sdk.api.client import Client

    client = Client(base_url=None, token="", dry_run=True, transport=in_process_api_server().transport)
    client.base_url = "http://in-process.invalid./"  # type: ignore[assignment] - as Airflow's manager does
    selector = selectors.DefaultSelector()
    with open(os.devnull, "wb") as logs:
        process = DagFileProcessorProcess.start(
            id=uuid.uuid4(),
            path=dag_file,
            bundle_path=bundle_path,
            bundle_name="kestra-flows",
            dag_file_rel_path=str(dag_file.relative_to(bundle_path)),
            callbacks=[],
            selector=selector,
            logger=structlog.get_logger(),
            logger_filehandle=logs,
            client=client,
        )
        deadline = time.monotonic() + 300
        while not process.is_ready and time.monotonic() < deadline:  # the manager's loop, for one child
            for key, _ in selector.select(timeout=1.0):
                handler, on_close = key.data
                try:
                    more = handler(key.fileobj)
                except (BrokenPipeError, ConnectionResetError):
                    more = False
                if not more:
                    on_close(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
    assert process.parsing_result is not None, "the DAG processor child sent no result"
    return dict(process.parsing_result.import_errors or {})


def test_dag_processor_records_only_the_located_messages_of_a_broken_flow(tmp_path, airflow_db):
    flows, target = tmp_path / "flows", tmp_path / "dags"
    broken = flows / "team" / "broken.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "id: broken\nnamespace: team.bundle\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: hi\n    mesage: hi\n"
    )
    sync_dag_files(flows, target)
    errors = parse_in_dag_processor_child(target / "team" / "broken.yaml.py", target)
    # What Airflow stores and shows (UI "DAG Import Errors", /api/v2/importErrors): the messages alone.
    assert errors == {
        "team/broken.yaml.py": f"{broken}:7:5: tasks[0].mesage: unknown property `mesage` for task type "
        "`io.kestra.plugin.core.log.Log` (did you mean `message`?)"
    }


def test_in_process_import_error_keeps_no_validation_frames(tmp_path, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    flows, target = tmp_path / "flows", tmp_path / "dags"
    (flows / "bad.yaml").parent.mkdir(parents=True)
    (flows / "bad.yaml").write_text("id: bad\nnamespace: team.bundle\ntasks: []\n")
    sync_dag_files(flows, target)
    (error,) = DagBag(dag_folder=str(target)).import_errors.values()
    # A DagBag over a folder keeps Airflow's traceback setting: only the generated file's frames.
    assert "validation.py" not in error and "bad.yaml.py" in error
    assert error.rstrip().splitlines()[-1].startswith(f"yaml2dag.errors.FlowValidationError: {flows / 'bad.yaml'}:3:")
