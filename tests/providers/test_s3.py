"""Kestra's S3 tasks on the Amazon provider's S3Hook, against a real S3 API (moto server on loopback)."""

from __future__ import annotations

import json

import boto3
import pytest
from conftest import states

from providers.servers import PASSWORD, Server

pytestmark = pytest.mark.airflow

SECRET_KEY = "moto-Secret-Key-0123"


def _client(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


def _aws(endpoint: str) -> str:
    return f"""
      region: us-east-1
      accessKeyId: AKIDTEST
      secretKeyId: "{{{{ secret('S3_SECRET') }}}}"
      endpointOverride: {endpoint}
    """


def test_postgres_store_converted_uploaded_to_s3_and_listed(run_flow, postgres_server: Server, s3_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_S3_SECRET", SECRET_KEY)
    aws = _aws(s3_server)
    flow = f"""
    id: pg_to_s3
    namespace: tests.s3
    pluginDefaults:
      - type: io.kestra.plugin.aws.s3
        values:
          {aws.strip().replace(chr(10) + "      ", chr(10) + "          ")}
    tasks:
      - id: bucket
        type: io.kestra.plugin.aws.s3.CreateBucket
        bucket: exports
      - id: query
        type: io.kestra.plugin.jdbc.postgresql.Query
        url: {postgres_server.jdbc_url("postgresql")}
        username: app
        password: {PASSWORD}
        sql: SELECT g AS id, 'name ' || g AS name, g * 1.5 AS score FROM generate_series(1, 3) AS g
        fetchType: STORE
      - id: csv
        type: io.kestra.plugin.serdes.csv.IonToCsv
        from: "{{{{ outputs.query.uri }}}}"
      - id: upload
        type: io.kestra.plugin.aws.s3.Upload
        bucket: exports
        key: daily/rows.csv
        from: "{{{{ outputs.csv.uri }}}}"
        contentType: text/csv
      - id: raw
        type: io.kestra.plugin.aws.s3.Upload
        bucket: exports
        key: daily/ion
        from: ["{{{{ outputs.query.uri }}}}"]
      - id: list
        type: io.kestra.plugin.aws.s3.List
        bucket: exports
        prefix: daily/
        filter: FILES
      - id: back
        type: io.kestra.plugin.aws.s3.Download
        bucket: exports
        key: daily/rows.csv
      - id: check
        type: io.kestra.plugin.core.execution.Assert
        conditions:
          - "{{{{ outputs.query.size == 3 }}}}"
          - "{{{{ read(outputs.back.uri) == read(outputs.csv.uri) }}}}"
    """
    result = run_flow(flow)
    assert set(states(result).values()) == {"success"}, states(result)
    assert result.tasks["query"].outputs["size"] == 3
    assert result.tasks["query"].outputs["uri"].startswith("kestra://")
    keys = sorted(item["key"] for item in result.tasks["list"].outputs["objects"])
    assert keys[0] == "daily/ion/" + result.tasks["query"].outputs["uri"].rsplit("/", 1)[-1]
    assert keys[1] == "daily/rows.csv"
    body = _client(s3_server).get_object(Bucket="exports", Key="daily/rows.csv")["Body"].read().decode()
    assert body.splitlines()[0].replace('"', "") == "id,name,score"
    assert "name 2" in body
    assert result.tasks["back"].outputs["contentType"] == "text/csv"
    everything = " ".join(task.log_text() for task in result.tasks.values()) + json.dumps(
        {task_id: task.outputs for task_id, task in result.tasks.items()}
    )
    assert SECRET_KEY not in everything
    assert PASSWORD not in everything


def test_copy_delete_downloads_and_errors(run_flow, s3_server, monkeypatch):
    client = _client(s3_server)
    client.create_bucket(Bucket="inbox")
    for name in ("a.txt", "b.txt", "skip.csv"):
        client.put_object(Bucket="inbox", Key=f"in/{name}", Body=name.encode())
    monkeypatch.setenv(
        "AIRFLOW_CONN_MY_S3",
        json.dumps({"conn_type": "aws", "login": "k", "password": "s",
                    "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"}}),
    )  # fmt: skip
    result = run_flow(
        """
        id: s3_ops
        namespace: tests.s3
        pluginDefaults:
          - type: io.kestra.plugin.aws.s3
            values:
              connId: my_s3
        tasks:
          - id: copy
            type: io.kestra.plugin.aws.s3.Copy
            from:
              bucket: inbox
              key: in/skip.csv
            to:
              key: archive/skip.csv
            delete: true
          - id: take
            type: io.kestra.plugin.aws.s3.Downloads
            bucket: inbox
            prefix: in/
            regexp: ".*\\\\.txt"
            action: MOVE
            moveTo:
              key: done/
          - id: delete
            type: io.kestra.plugin.aws.s3.Delete
            bucket: inbox
            key: archive/skip.csv
          - id: check
            type: io.kestra.plugin.core.execution.Assert
            conditions:
              - "{{ read(outputs.take.outputFiles['in/a.txt']) == 'a.txt' }}"
          - id: missing
            type: io.kestra.plugin.aws.s3.Download
            bucket: inbox
            key: nothing/here
        """
    )
    assert states(result) == {
        "copy": "success", "take": "success", "delete": "success", "check": "success", "missing": "failed",
    }  # fmt: skip
    assert sorted(result.tasks["take"].outputs["outputFiles"]) == ["in/a.txt", "in/b.txt"]
    remaining = sorted(item["Key"] for item in client.list_objects(Bucket="inbox").get("Contents", []))
    assert remaining == ["done/a.txt", "done/b.txt"]
    assert result.tasks["copy"].outputs["key"] == "archive/skip.csv"
    assert "S3 download of s3://inbox/nothing/here failed" in result.tasks["missing"].log_text()
    assert "Not Found" in result.tasks["missing"].log_text()


def _watch(endpoint: str, bucket: str, action: str, on: str = "CREATE_OR_UPDATE"):
    """The polling trigger an `s3.Trigger` on `bucket`/incoming/ compiles to (as the triggerer rebuilds it)."""
    from yaml2dag.compiler import compile_flow
    from yaml2dag.flowfile import parse_flow_text
    from yaml2dag.operators.polling import KestraPollingTrigger

    text = f"""
id: s3_watch
namespace: tests.s3
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.objects | length }}}}"
triggers:
  - id: watch
    type: io.kestra.plugin.aws.s3.Trigger
    interval: PT1S
    region: us-east-1
    accessKeyId: AKIDTEST
    secretKeyId: {SECRET_KEY}
    endpointOverride: {endpoint}
    bucket: {bucket}
    prefix: incoming/
    action: {action}
    moveTo: {{key: archive}}
    on: {on}
"""
    dag = compile_flow(parse_flow_text(text, "flow.yaml"))
    [watcher] = dag.timetable.asset_condition.watchers
    _, kwargs = watcher.trigger.serialize()
    return KestraPollingTrigger(**json.loads(json.dumps(kwargs)))


def test_s3_trigger_fires_once_per_new_or_changed_object_with_its_stored_copy(s3_server, capsys):
    from yaml2dag import storage

    client = _client(s3_server)
    client.create_bucket(Bucket="watched")
    trigger = _watch(s3_server, "watched", "NONE")
    assert trigger.poll() is None, "an empty prefix does not fire"
    client.put_object(Bucket="watched", Key="incoming/a.csv", Body=b"a,1\n")
    client.put_object(Bucket="watched", Key="incoming/sub/", Body=b"")
    client.put_object(Bucket="watched", Key="other/b.csv", Body=b"b")
    fired = trigger.poll()
    assert fired is not None
    [item] = fired["objects"]
    assert (item["key"], item["size"], item["changeType"]) == ("incoming/a.csv", 4, "CREATE")
    assert item["uri"].startswith("kestra:///tests/s3/s3_watch/executions/trigger_")
    assert "/tasks/watch/" in item["uri"]
    assert storage.read_text(item["uri"]) == "a,1\n"
    assert trigger.poll() is None, "action NONE: the same object does not fire twice"
    client.put_object(Bucket="watched", Key="incoming/a.csv", Body=b"a,2\n")
    [changed] = trigger.poll()["objects"]
    assert changed["changeType"] == "UPDATE"
    assert storage.read_text(changed["uri"]) == "a,2\n"
    assert SECRET_KEY not in capsys.readouterr().out + json.dumps(fired)

    only_new = _watch(s3_server, "watched", "NONE", on="CREATE")
    assert [item["key"] for item in only_new.poll()["objects"]] == ["incoming/a.csv"]
    client.put_object(Bucket="watched", Key="incoming/a.csv", Body=b"a,3\n")
    assert only_new.poll() is None, "on: CREATE ignores updates"


def test_s3_trigger_moves_or_deletes_what_it_fired_with(s3_server):
    client = _client(s3_server)
    client.create_bucket(Bucket="moving")
    client.put_object(Bucket="moving", Key="incoming/x.json", Body=b"{}")
    assert [item["key"] for item in _watch(s3_server, "moving", "MOVE").poll()["objects"]] == ["incoming/x.json"]
    keys = [item["Key"] for item in client.list_objects(Bucket="moving")["Contents"]]
    assert keys == ["archive/x.json"]
    client.put_object(Bucket="moving", Key="incoming/y.json", Body=b"{}")
    deleting = _watch(s3_server, "moving", "DELETE")
    assert [item["key"] for item in deleting.poll()["objects"]] == ["incoming/y.json"]
    assert [item["Key"] for item in client.list_objects(Bucket="moving")["Contents"]] == ["archive/x.json"]
    assert deleting.poll() is None


def test_s3_trigger_mistakes_are_located_errors(flow_file):
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import read_flow

    path = flow_file(
        """
        id: s3_trigger
        namespace: tests.s3
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: hi
        triggers:
          - id: watch
            type: io.kestra.plugin.aws.s3.Trigger
            bucket: inbox
            interval: PT1M
            on: NEW
            stateKey: seen
        """
    )
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    errors = {(error.path, error.message) for error in caught.value.errors}
    assert (
        "triggers[0].action",
        "missing required property `action` for task type `io.kestra.plugin.aws.s3.Trigger`",
    ) in errors
    assert ("triggers[0].on", "`on` must be one of CREATE, UPDATE, CREATE_OR_UPDATE") in errors
    assert (
        "triggers[0].stateKey",
        "property `stateKey` of `io.kestra.plugin.aws.s3.Trigger` is not supported by yaml2dag yet",
    ) in errors
