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


def test_s3_trigger_is_refused_at_validation(flow_file):
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
            action: NONE
        """
    )
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    assert "io.kestra.plugin.aws.s3.Trigger" in str(caught.value)
    assert "not supported by yaml2dag" in str(caught.value)
    assert "flow.yaml:10:" in str(caught.value)
