"""Sentry, Zenduty and LINE notifications posted to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import states
from http_support import LoopbackServer, start_server

from yaml2dag.operators.notifications import sentry_url

pytestmark = pytest.mark.airflow


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    monkeypatch.setenv("AIRFLOW_VAR_SENTRY_DSN", state.url + "/hook/api/42/envelope/?sentry_key=SECRETKEY")
    monkeypatch.setenv("AIRFLOW_VAR_ZENDUTY_URL", state.url + "/hook/zenduty/SECRETINTEGRATION/")
    monkeypatch.setenv("AIRFLOW_VAR_LINE_TOKEN", "SECRETLINETOKEN")
    yield state
    httpd.shutdown()


def test_execution_summaries_and_alerts_reach_sentry_zenduty_and_line(run_flow, server):
    result = run_flow(
        f"""
        id: incident
        namespace: tests.notify
        tasks:
          - id: load
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: warehouse unreachable
        errors:
          - id: sentry
            type: io.kestra.plugin.sentry.SentryExecution
            dsn: "{{{{ secret('SENTRY_DSN') }}}}"
            transaction: /execution/id/{{{{ execution.id }}}}
            level: WARNING
            serverName: worker-1
            extra:
              Team: data
          - id: sentry_default
            type: io.kestra.plugin.notifications.sentry.SentryAlert
            dsn: "{server.url}/hook/store"
            endpointType: STORE
          - id: zenduty
            type: io.kestra.plugin.zenduty.ZendutyExecution
            url: "{{{{ secret('ZENDUTY_URL') }}}}"
            summary: Nightly load broke
            urls: ["https://runbooks.example/load"]
          - id: zenduty_alert
            type: io.kestra.plugin.zenduty.ZendutyAlert
            url: "{server.url}/hook/zenduty-alert"
            options:
              headers:
                X-Team: data
            payload: |
              {{"alert_type": "info", "message": "{{{{ flow.id }}}} alert", "entity_id": 12345}}
          - id: line
            type: io.kestra.plugin.line.LineExecution
            url: "{server.url}/hook/line"
            channelAccessToken: "{{{{ secret('LINE_TOKEN') }}}}"
            customMessage: On-call, please investigate.
            customFields:
              Severity: High
        """
    )
    assert states(result) == {
        "load": "failed",
        "sentry": "success",
        "sentry_default": "success",
        "zenduty": "success",
        "zenduty_alert": "success",
        "line": "success",
    }
    received = {request.path: request for request in server.hooks()}
    run_id = result.run_id

    envelope = received["/hook/api/42/envelope/?sentry_key=SECRETKEY"].body.decode()
    header, item, event_text, tail = envelope.split("\n")
    assert tail == ""
    assert json.loads(header)["dsn"].endswith("/hook/api/42/envelope/?sentry_key=SECRETKEY")
    assert json.loads(item) == {
        "type": "event",
        "length": len(event_text.encode()),
        "content_type": "application/json",
        "filename": "application.log",
    }
    event = json.loads(event_text)
    assert event["event_id"] == json.loads(header)["event_id"]
    assert (event["level"], event["platform"], event["server_name"]) == ("warning", "java", "worker-1")
    assert event["transaction"] == f"/execution/id/{run_id}"
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "incident ➛ RUNNING" and exception["module"] == "tests.notify"
    assert exception["value"].startswith("Failed on task `load` after ")
    assert event["extra"]["Execution ID"] == run_id and event["extra"]["Team"] == "data"
    assert event["extra"]["Final task ID"] == "load"

    default = received["/hook/store"].json()  # STORE: the bare event, Kestra's default payload
    assert default["message"] == {"message": f"Execution {run_id} failed"}
    assert default["extra"] == {"Namespace": "tests.notify", "Flow ID": "incident", "Execution ID": run_id}

    zenduty = received["/hook/zenduty/SECRETINTEGRATION/"].json()
    assert zenduty["alert_type"] == "error" and zenduty["entity_id"] == run_id
    assert zenduty["message"] == "Kestra workflow execution" and zenduty["summary"] == "Nightly load broke"
    assert zenduty["urls"] == ["https://runbooks.example/load"]
    assert zenduty["payload"]["Final task ID"] == "load"
    alert = received["/hook/zenduty-alert"]
    assert alert.json() == {"alert_type": "info", "message": "incident alert", "entity_id": 12345}
    assert alert.headers["X-Team"] == "data"

    line = received["/hook/line"]
    assert line.headers["Authorization"] == "Bearer SECRETLINETOKEN"
    (message,) = line.json()["messages"]
    assert message["type"] == "text"
    lines = message["text"].split("\n")
    assert lines[:5] == [
        "Execution RUNNING",
        "Details:",
        f"- ID: {run_id}",
        "- Namespace: tests.notify",
        "- Flow: incident",
    ]
    assert lines[7:] == [
        "- Failed Task: load",
        "On-call, please investigate.",
        "- Severity: High",
        lines[-1],
    ]
    assert lines[-1].startswith("View Execution: http")
    for task in ("sentry", "zenduty", "line"):
        log = result.tasks[task].log_text()
        assert "SECRET" not in log and "Sent a" in log


def test_a_refused_alert_fails_the_task_and_invalid_json_is_caught(run_flow, server):
    result = run_flow(
        f"""
        id: refused
        namespace: tests.notify
        tasks:
          - id: refused
            type: io.kestra.plugin.zenduty.ZendutyAlert
            url: "{server.url}/status/400"
            payload: '{{"message": "x"}}'
            allowFailure: true
          - id: broken
            type: io.kestra.plugin.sentry.SentryAlert
            dsn: "{server.url}/hook/never"
            payload: "not json"
        """
    )
    assert states(result) == {"refused": "warning", "broken": "failed"}
    assert "400" in result.tasks["refused"].log_text()
    assert "`payload` is not valid JSON" in result.tasks["broken"].error
    assert not server.hooks()


def test_a_sentry_saas_dsn_becomes_the_endpoint_url():
    dsn = "https://0123abcd@o42.ingest.sentry.io/4242"
    assert sentry_url(dsn, "ENVELOPE") == (
        "https://o42.ingest.sentry.io/api/4242/envelope/?sentry_version=7&sentry_client=java&sentry_key=0123abcd"
    )
    assert sentry_url(dsn, "STORE").startswith("https://o42.ingest.sentry.io/api/4242/store/?")
    assert sentry_url("https://sentry.internal/hook", "ENVELOPE") == "https://sentry.internal/hook"
