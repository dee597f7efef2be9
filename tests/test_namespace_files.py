"""Namespace files: `_files/<namespace>/` folders of a flows folder published into the storage, `read()` and
script `namespaceFiles` of them, and Kestra's UploadFiles / DownloadFiles / DeleteFiles — real runs through
`dag.test()`, on the local storage base and on S3 (moto server on loopback).
"""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import states
from test_storage import BUCKET, s3_client, s3_endpoint  # noqa: F401 - the moto S3 server fixture

from yaml2dag import storage
from yaml2dag.namespace_files import find_files_folders, path_matcher, publish

pytestmark = pytest.mark.airflow

NAMESPACE = "tests.nsfiles"
LOG_TASK = "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


@pytest.fixture(params=["local", "s3"])
def base(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh storage base for the test: a local folder, or a prefix of the moto S3 bucket."""
    if request.param == "local":
        url = (tmp_path / "storage").as_uri()
    else:
        request.getfixturevalue("s3_endpoint")
        url = f"s3://{BUCKET}/nsfiles-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW__YAML2DAG__STORAGE_BASE", url)
    return url


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def failures(result) -> dict[str, str]:
    return {task_id: task.log_text()[-800:] for task_id, task in result.tasks.items() if task.state != "success"}


# --- Kestra's path patterns (PathMatcherPredicate) ---------------------------------------------------

PATTERNS = [
    # pattern, path, matches — Kestra adds `**/` before a pattern starting with a word character
    ("input.txt", "/input.txt", True),
    ("input.txt", "/a/b/input.txt", True),
    ("input.txt", "/a/xinput.txt", False),
    ("**input.txt", "/a/xinput.txt", True),
    ("**", "/a/b/c.sql", True),
    ("/queries/*.sql", "/queries/q.sql", True),
    ("/queries/*.sql", "/queries/deep/q.sql", False),
    ("/queries/**.sql", "/queries/deep/q.sql", True),
    ("**.upl", "/x/y.upl", True),
    ("**.upl", "/x/y.upl2", False),
    ("glob:/a/?.txt", "/a/b.txt", True),
    ("glob:/a/?.txt", "/a/bc.txt", False),
    ("glob:input.txt", "/input.txt", False),  # an explicit glob is taken as written
    ("/{a,b}/*.txt", "/b/x.txt", True),
    ("/[ab]/*.txt", "/c/x.txt", False),
    ("regex:/q/.*\\.sql", "/q/deep/z.sql", True),
    ("regex:\\.sql", "/q/z.sql", False),  # a regex matches the whole path
]


@pytest.mark.parametrize(("pattern", "path", "expected"), PATTERNS)
def test_patterns_match_as_kestras_path_matcher(pattern: str, path: str, expected: bool) -> None:
    assert path_matcher([pattern])(path) is expected


# --- `_files/` folders of a flows folder ----------------------------------------------------------


def test_files_folders_are_never_flows_and_are_found_at_any_depth(tmp_path: Path) -> None:
    from yaml2dag.bundle import sync_dag_files
    from yaml2dag.dagfolder import find_flow_files

    write(tmp_path / "flow.yaml", "id: a\nnamespace: tests.nsfiles\ntasks: []\n")
    write(tmp_path / "_files" / NAMESPACE / "config.yaml", "not: a flow\n")
    write(tmp_path / "team" / "_files" / "tests.other" / "more.yml", "neither: this\n")
    assert find_flow_files(tmp_path) == [tmp_path / "flow.yaml"]
    assert find_files_folders(tmp_path) == [tmp_path / "_files", tmp_path / "team" / "_files"]
    generated = sync_dag_files(tmp_path, tmp_path.parent / f"{tmp_path.name}-dag-files")
    assert {path.name for path in generated} == {"flow.yaml.py"}


def test_publish_copies_changed_files_and_deletes_the_ones_removed(base: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    state = tmp_path / "state"
    query = write(flows / "_files" / NAMESPACE / "queries" / "q.sql", "select 1\n")
    write(flows / "_files" / NAMESPACE / "notes.txt", "hello\n")
    write(flows / "_files" / "Not A Namespace" / "x.txt", "skipped\n")
    query_uri = storage.namespace_file_uri(NAMESPACE, "queries/q.sql")
    notes_uri = storage.namespace_file_uri(NAMESPACE, "notes.txt")
    assert query_uri == "kestra:///tests/nsfiles/_files/queries/q.sql"

    first = publish(find_files_folders(flows), state)
    assert sorted(first.copied) == [notes_uri, query_uri] and not first.failed
    assert storage.read_text(query_uri) == "select 1\n"
    assert publish(find_files_folders(flows), state).copied == []  # unchanged: nothing copied again

    # A file put into the namespace by other means is never touched by the publication.
    uploaded = storage.namespace_file_uri(NAMESPACE, "uploaded.txt")
    with storage.open_uri_write(uploaded) as stream:
        stream.write(b"from a task")
    query.write_text("select 2\n")
    os.utime(query, ns=(1, 2_000_000_000_000_000_000))
    (flows / "_files" / NAMESPACE / "notes.txt").unlink()
    second = publish(find_files_folders(flows), state)
    assert second.copied == [query_uri] and second.deleted == [notes_uri]
    assert storage.read_text(query_uri) == "select 2\n"
    assert not storage.exists(notes_uri)
    assert storage.read_text(uploaded) == "from a task"


def test_the_bundle_publishes_namespace_files_on_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from yaml2dag.bundle import KestraFlowsBundle

    monkeypatch.setenv("AIRFLOW__YAML2DAG__STORAGE_BASE", (tmp_path / "storage").as_uri())
    flows = tmp_path / "flows"
    write(flows / "flow.yaml", "id: a\nnamespace: tests.nsfiles\ntasks: []\n")
    write(flows / "_files" / NAMESPACE / "lookup.csv", "k,v\n")
    bundle = KestraFlowsBundle(name=f"nsfiles-{uuid.uuid4().hex[:6]}", path=str(flows))
    bundle.refresh()
    assert storage.read_text(storage.namespace_file_uri(NAMESPACE, "lookup.csv")) == "k,v\n"
    assert sorted(path.name for path in bundle.path.rglob("*.py")) == ["flow.yaml.py"]


# --- flows reading them ---------------------------------------------------------------------------

READER = f"""
id: reader
namespace: {NAMESPACE}
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read('queries/q.sql') | trim }}}}|{{{{ fileExists('scripts/run.sh') }}}}|{{{{ fileExists('nope') }}}}"
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    namespaceFiles:
      enabled: true
      include: ["scripts/**", "queries/*.sql"]
      exclude: ["**/skip.sql"]
    commands:
      - sh scripts/run.sh
      - ls queries
"""


def test_files_next_to_the_flow_are_read_and_given_to_scripts(base: str, run_flow, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    write(flows / "_files" / NAMESPACE / "queries" / "q.sql", "select 42\n")
    write(flows / "_files" / NAMESPACE / "queries" / "skip.sql", "select 0\n")
    write(flows / "_files" / NAMESPACE / "scripts" / "run.sh", "echo running $(cat queries/q.sql)\n")
    write(flows / "_files" / NAMESPACE / "scripts" / "config.yaml", "tasks: not a flow\n")
    result = run_flow(write(flows / "reader.yaml", READER))
    assert result.state == "success", failures(result)
    assert states(result) == {"show": "success", "script": "success"}
    assert result.tasks["show"].outputs == {"value": "select 42|true|false"}
    lines = [line.message for line in result.tasks["script"].logs]
    assert "running select 42" in lines
    assert "q.sql" in lines and "skip.sql" not in lines


MANAGER = f"""
id: manager
namespace: {NAMESPACE}
tasks:
  - id: make
    type: io.kestra.plugin.core.storage.Write
    content: "id,total\\n1,10\\n"
    extension: .csv
  - id: upload
    type: io.kestra.plugin.core.namespace.UploadFiles
    destination: /data
    filesMap:
      orders.csv: "{{{{ outputs.make.uri }}}}"
      deep/copy.csv: "{{{{ outputs.make.uri }}}}"
  - id: again
    type: io.kestra.plugin.core.namespace.UploadFiles
    conflict: SKIP
    filesMap: '{{{{ {{"data/orders.csv": outputs.make.uri, "data/new.csv": outputs.make.uri}} | toJson }}}}'
  - id: download
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: "{{{{ flow.namespace }}}}"
    files: ["/data/**.csv"]
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(outputs.download.files['/data/orders.csv']) }}}}{{{{ read('data/deep/copy.csv') | length }}}}"
  - id: delete
    type: io.kestra.plugin.core.namespace.DeleteFiles
    namespace: "{{{{ flow.namespace }}}}"
    files: copy.csv
    deleteParentFolder: true
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ fileExists('data/deep/copy.csv') }}}} {{{{ fileExists('data/orders.csv') }}}}"
  - id: conflict
    type: io.kestra.plugin.core.namespace.UploadFiles
    conflict: ERROR
    filesMap:
      /data/orders.csv: "{{{{ outputs.make.uri }}}}"
errors:
  - id: why
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ errorLogs()[0].message }}}}"
"""


def test_upload_download_delete_namespace_files(base: str, run_flow) -> None:
    result = run_flow(MANAGER)
    assert result.state == "failed"
    assert states(result) == {
        "make": "success",
        "upload": "success",
        "again": "success",
        "download": "success",
        "show": "success",
        "delete": "success",
        "after": "success",
        "conflict": "failed",
        "why": "success",
    }
    outputs = {task_id: task.outputs for task_id, task in result.tasks.items()}
    assert outputs["upload"]["files"] == {
        "/data/orders.csv": "kestra:///tests/nsfiles/_files/data/orders.csv",
        "/data/deep/copy.csv": "kestra:///tests/nsfiles/_files/data/deep/copy.csv",
    }
    assert outputs["again"]["files"] == {"/data/new.csv": "kestra:///tests/nsfiles/_files/data/new.csv"}
    assert "Kept the existing namespace file /data/orders.csv (conflict: SKIP)" in result.tasks["again"].log_text()
    downloaded = outputs["download"]["files"]
    assert sorted(downloaded) == ["/data/deep/copy.csv", "/data/new.csv", "/data/orders.csv"]
    for path, uri in downloaded.items():
        assert uri.startswith("kestra:///tests/nsfiles/manager/executions/") and "/tasks/download/" in uri
        assert uri.endswith(path)
    assert outputs["show"] == {"value": "id,total\n1,10\n14"}
    assert "Deleted namespace file /data/deep/copy.csv" in result.tasks["delete"].log_text()
    assert outputs["after"] == {"value": "false true"}
    assert not any(True for _ in storage.list_files("kestra:///tests/nsfiles/_files/data/deep"))
    assert outputs["why"]["value"] == (
        "namespace file `/data/orders.csv` of tests.nsfiles already exists (conflict: ERROR)"
    )


WORKDIR_UPLOAD = f"""
id: workdir_upload
namespace: {NAMESPACE}
tasks:
  - id: wdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: make
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - mkdir -p dbt/models other
          - echo "select 1" > dbt/models/a.sql
          - echo "ignored" > other/b.txt
      - id: upload
        type: io.kestra.plugin.core.namespace.UploadFiles
        files: ["glob:**/dbt/**"]
        destination: /project
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read('project/dbt/models/a.sql') | trim }}}} {{{{ fileExists('project/other/b.txt') }}}}"
  - id: outside
    type: io.kestra.plugin.core.namespace.UploadFiles
    files: ["**"]
errors:
  - id: why
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ errorLogs()[0].message }}}}"
"""


def test_upload_files_globs_match_the_working_directory(base: str, run_flow) -> None:
    result = run_flow(WORKDIR_UPLOAD)
    assert result.state == "failed"
    assert result.tasks["upload"].state == "success", failures(result)
    assert result.tasks["upload"].outputs == {
        "files": {"/project/dbt/models/a.sql": "kestra:///tests/nsfiles/_files/project/dbt/models/a.sql"}
    }
    assert result.tasks["show"].outputs == {"value": "select 1 false"}
    assert result.tasks["outside"].state == "failed"
    assert result.tasks["why"].outputs["value"].startswith("`files` match files of a WorkingDirectory")


def test_namespace_file_tasks_are_validated_with_their_line() -> None:
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import parse_flow_text

    flow = f"""
id: bad
namespace: {NAMESPACE}
tasks:
  - id: nothing
    type: io.kestra.plugin.core.namespace.UploadFiles
    namespace: x
  - id: purge
    type: io.kestra.plugin.core.namespace.PurgeFiles
"""
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(flow, "bad.yaml")
    messages = [(error.line, error.message) for error in caught.value.errors]
    assert any(line == 5 and "set `files` or `filesMap`" in message for line, message in messages), messages
    assert any(line == 9 and "not supported by yaml2dag yet" in message for line, message in messages), messages


def test_the_loader_file_publishes_namespace_files_in_the_dag_processor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yaml2dag.dagfolder import load_dags_folder

    monkeypatch.setenv("AIRFLOW__YAML2DAG__STORAGE_BASE", (tmp_path / "storage").as_uri())
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    flows = tmp_path / "flows"
    write(flows / "flow.yaml", f"id: loaded\nnamespace: {NAMESPACE}\n{LOG_TASK}")
    write(flows / "team" / "_files" / NAMESPACE / "a.txt", "from the loader\n")
    result = load_dags_folder({}, flows)
    assert sorted(result.dags) == ["tests.nsfiles.loaded"] and not result.errors
    assert storage.read_text(storage.namespace_file_uri(NAMESPACE, "a.txt")) == "from the loader\n"
    assert list((tmp_path / "home" / "yaml2dag-namespace-files").glob("*.json"))  # this host's manifest
