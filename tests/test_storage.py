"""`yaml2dag.storage` on the default local base and on S3 (a real S3 API: moto in server mode on loopback)."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yaml2dag import storage

BUCKET = "yaml2dag-storage-tests"
CONTEXT: dict[str, Any] = {
    "flow": {"namespace": "company.team", "id": "flow_a"},
    "execution": {"id": "manual__2026-01-01T00:00:00+00:00"},
    "task": {"id": "task_a"},
    "taskrun": {"id": "run1"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, with the bucket and the `aws_default` connection."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {name: os.environ.get(name) for name in ("AIRFLOW_CONN_AWS_DEFAULT", "AWS_ACCESS_KEY_ID")}
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def s3_client(endpoint: str) -> Any:
    import boto3

    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The storage base of one test: a local folder (the default form) or a prefix of the S3 bucket."""
    if request.param == "local":
        base = (tmp_path / "storage").as_uri()
    else:
        request.getfixturevalue("s3_endpoint")
        base = f"s3://{BUCKET}/base-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW__YAML2DAG__STORAGE_BASE", base)
    return request.param


def test_default_base_is_a_folder_under_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AIRFLOW__YAML2DAG__STORAGE_BASE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert storage.storage_base_url() == (tmp_path / "yaml2dag-storage").as_uri()


def test_write_read_size_exists_delete(backend: str, tmp_path: Path) -> None:
    with storage.open_write(CONTEXT, "data file.csv") as (uri, stream):
        stream.write(b"a,b\n1,2\n")
    assert uri == (
        "kestra:///company/team/flow_a/executions/manual__2026-01-01T00_00_00_00_00/tasks/task_a/run1/data%20file.csv"
    )
    with storage.open_read(uri) as stream:
        assert stream.read() == b"a,b\n1,2\n"
    assert storage.file_size(uri) == 8
    assert storage.exists(uri)
    local = tmp_path / "up.bin"
    local.write_bytes(bytes(range(256)) * 10)
    uploaded = storage.upload_local(CONTEXT, local)
    assert uploaded.endswith("/run1/up.bin")
    assert storage.download_local(uploaded, tmp_path / "down" / "copy.bin").read_bytes() == local.read_bytes()
    execution = storage.execution_uri("company.team", "flow_a", "manual__2026-01-01T00:00:00+00:00")
    assert sorted(storage.list_files(execution)) == sorted([uri, uploaded])
    assert storage.delete(uri) is True
    assert storage.delete(uri) is False
    assert not storage.exists(uri)
    assert storage.delete_tree(execution) == [uploaded]
    assert list(storage.list_files(execution)) == []


def test_a_failed_write_leaves_no_file(backend: str) -> None:
    with pytest.raises(RuntimeError), storage.open_write(CONTEXT, "half.txt") as (uri, stream):
        stream.write(b"partial")
        raise RuntimeError("task failed mid-write")
    assert not storage.exists(uri)


def test_on_s3_the_object_is_under_the_base_prefix(backend: str, s3_endpoint: str) -> None:
    if backend != "s3":
        pytest.skip("S3 only")
    with storage.open_write(CONTEXT, "x.txt") as (uri, stream):
        stream.write(b"on s3")
    prefix = os.environ["AIRFLOW__YAML2DAG__STORAGE_BASE"].split("/", 3)[3]
    key = f"{prefix}/company/team/flow_a/executions/manual__2026-01-01T00_00_00_00_00/tasks/task_a/run1/x.txt"
    assert s3_client(s3_endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"on s3"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("kestra:///company/../../etc/passwd", "must not be empty nor hold `..`"),
        ("kestra:///company/%2e%2e/%2E%2E/etc/passwd", "must not be empty nor hold `..`"),
        ("kestra:///company//x", "must not be empty nor hold `..`"),
        ("kestra:///a/b\\..\\c", "backslash"),
        ("kestra:///", "must not be empty"),
        ("file:///etc/passwd", "outside it"),
        (f"s3://{BUCKET}/elsewhere/x", "outside it"),
        ("/etc/passwd", "outside it"),
        ("kestra:///company/team/flow_a/executions/x/tasks/t/r/missing.txt", "no such file"),
    ],
)
def test_bad_uris_are_clear_errors_naming_the_uri(backend: str, uri: str, message: str) -> None:
    with pytest.raises(storage.StorageError) as caught, storage.open_read(uri):
        pass
    assert message in str(caught.value)
    assert uri in str(caught.value)


def test_a_symlink_out_of_a_local_base_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "storage"
    (base / "ns").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (base / "ns" / "link.txt").symlink_to(secret)
    (base / "ns" / "dir").symlink_to(tmp_path)
    monkeypatch.setenv("AIRFLOW__YAML2DAG__STORAGE_BASE", base.as_uri())
    for uri in ("kestra:///ns/link.txt", "kestra:///ns/dir/secret.txt"):
        with pytest.raises(storage.StorageError, match="outside the storage base"), storage.open_read(uri):
            pass


def test_file_names_cannot_climb_out_of_the_task_folder(backend: str) -> None:
    with storage.open_write(CONTEXT, "../../../escape.txt") as (uri, stream):
        stream.write(b"x")
    assert uri.endswith("/tasks/task_a/run1/escape.txt")
    with pytest.raises(storage.StorageError):
        storage.new_file_uri(CONTEXT, "..")


@pytest.mark.airflow
def test_the_file_pipeline_runs_on_each_backend(backend: str, run_flow: Any) -> None:
    from test_storage_tasks import PIPELINE, check_pipeline

    check_pipeline(run_flow(PIPELINE))


def test_file_functions_read_namespace_files_and_ion(backend: str) -> None:
    from yaml2dag.errors import RenderError
    from yaml2dag.expressions import render

    with storage.open_uri_write(storage.namespace_file_uri("company.team", "queries/q.sql")) as stream:
        stream.write(b"select 1")
    variables = {"flow": {"namespace": "company.team", "id": "flow_a"}}
    assert render("{{ read('queries/q.sql') }}", variables) == "select 1"
    assert render("{{ fileURI('queries/q.sql') }}", variables) == "kestra:///company/team/_files/queries/q.sql"
    assert render("{{ fileSize('queries/q.sql') }} {{ fileExists('nope.sql') }}", variables) == "8 false"
    assert render("{{ fromIon('{a:1,b:\"x\"}').b }}", {}) == "x"
    assert render("{{ fromIon('{a:1} {a:2}', allRows=true) | length }}", {}) == "2"
    assert render("{{ {'a': 1} | toIon }}", {}) == "{a:1}"
    for template, message in [
        ("{{ read('../../etc/passwd') }}", "not a valid namespace file path"),
        ("{{ read('kestra:///company/team/other.txt') }}", "not an execution file nor a namespace file"),
        ("{{ read('kestra:///company/team/f/executions/e/tasks/t/r/x.txt') }}", "no such file"),
        ("{{ fromIon('{a:') }}", "Invalid ion"),
        ("{{ read('q.sql', namespace='company.team.queries') }}", "company/team/queries/_files/q.sql`: no such file"),
    ]:
        with pytest.raises(RenderError, match=message):
            render(template, variables)
