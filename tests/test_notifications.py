"""Chat notifications (incoming webhooks, `*Execution` summaries) posted to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import states
from http_support import LoopbackServer, start_server

pytestmark = pytest.mark.airflow

SECRET_PATH = "/hook/services/T0SECRET/B0SECRET/xoxSECRETtoken"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    # `{{ secret('SLACK_WEBHOOK') }}` reads an Airflow Variable.
    monkeypatch.setenv("AIRFLOW_VAR_SLACK_WEBHOOK", state.url + SECRET_PATH)
    yield state
    httpd.shutdown()


def test_incoming_webhooks_post_their_json_and_mask_the_url(run_flow, server):
    result = run_flow(
        f"""
        id: hooks
        namespace: tests.notify
        inputs:
          - id: who
            type: STRING
            defaults: Ada
        tasks:
          - id: slack
            type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
            url: "{{{{ secret('SLACK_WEBHOOK') }}}}"
            payload: |
              {{
                "text": "Hello {{{{ inputs.who }}}} from {{{{ flow.namespace }}}}.{{{{ flow.id }}}}"
              }}
          - id: slack_text
            type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
            url: "{server.url}/hook/literal/T1/B1/secondSECRET"
            messageText: "Plain {{{{ inputs.who }}}}"
          - id: teams
            type: io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook
            url: "{server.url}/hook/teams"
            payload: '{{"text": "teams"}}'
          - id: discord
            type: io.kestra.plugin.discord.DiscordIncomingWebhook
            url: "{server.url}/hook/discord"
            messageText: discord text
          - id: google
            type: io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook
            url: "{server.url}/hook/google"
            payload:
              text: "google {{{{ inputs.who }}}}"
          - id: mattermost
            type: io.kestra.plugin.notifications.mattermost.MattermostIncomingWebhook
            url: "{server.url}/hook/mattermost"
            messageText: mattermost
        """
    )
    assert set(states(result).values()) == {"success"}
    received = {request.path: request for request in server.hooks()}
    assert received[SECRET_PATH].json() == {"text": "Hello Ada from tests.notify.hooks"}
    assert received[SECRET_PATH].headers["Content-Type"] == "application/json"
    assert received["/hook/literal/T1/B1/secondSECRET"].json() == {"text": "Plain Ada"}
    assert received["/hook/teams"].json() == {"text": "teams"}
    assert received["/hook/discord"].json() == {"content": "discord text"}
    assert received["/hook/google"].json() == {"text": "google Ada"}
    assert received["/hook/mattermost"].json() == {"text": "mattermost"}
    for task in ("slack", "slack_text"):
        log = result.tasks[task].log_text()
        assert "Posted a" in log and "Slack webhook at http://127.0.0.1" in log
        assert "SECRET" not in log


def test_failure_alert_in_errors_names_the_failed_task(run_flow, server):
    flow = """
        id: nightly
        namespace: tests.notify
        inputs:
          - id: fail
            type: BOOLEAN
            defaults: true
        tasks:
          - id: extract
            type: io.kestra.plugin.core.log.Log
            message: extracting
          - id: load
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ inputs.fail }}"
            errorMessage: warehouse unreachable
        errors:
          - id: slack_summary
            type: io.kestra.plugin.notifications.slack.SlackExecution
            url: "{{ secret('SLACK_WEBHOOK') }}"
            channel: "#alerts"
            customMessage: "Nightly load broke"
            customFields:
              Team: data
          - id: slack_text
            type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
            url: "{{ secret('SLACK_WEBHOOK') }}"
            payload: |
              {{ {"text": "Failure in " ~ flow.id ~ ": " ~ errorLogs()[0].taskId
                  ~ " — " ~ errorLogs()[0].message} }}
        """
    result = run_flow(flow)
    assert states(result) == {
        "extract": "success",
        "load": "failed",
        "slack_summary": "success",
        "slack_text": "success",
    }
    summary, text = (request.json() for request in server.hooks())
    assert text == {"text": "Failure in nightly: load — Fail on a condition: warehouse unreachable"}
    assert summary["channel"] == "#alerts"
    status = summary["text"]
    assert "[tests.notify] nightly ➛ RUNNING" in status
    assert "Failed on task `load` after " in status
    assert f"/dags/tests.notify.nightly/runs/{result.run_id.replace(':', '%3A').replace('+', '%2B')}" in status
    assert summary["blocks"][0]["text"]["text"] == "Nightly load broke"
    fields = {field["title"]: field["value"] for field in summary["attachments"][0]["fields"]}
    assert fields == {
        "Namespace": "tests.notify",
        "Job": "nightly",
        "Execution": result.run_id,
        "Status": "RUNNING",
        "Team": "data",
    }
    assert summary["attachments"][0]["color"] == "danger"

    server.received.clear()
    success = run_flow(flow, inputs={"fail": False})
    assert states(success) == {
        "extract": "success",
        "load": "success",
        "slack_summary": "skipped",
        "slack_text": "skipped",
    }
    assert server.hooks() == []


def test_execution_summaries_for_teams_discord_and_google_chat(run_flow, server):
    result = run_flow(
        f"""
        id: summaries
        namespace: tests.notify
        tasks:
          - id: teams
            type: io.kestra.plugin.notifications.teams.TeamsExecution
            url: "{server.url}/hook/teams"
            activityTitle: Kestra
          - id: discord
            type: io.kestra.plugin.notifications.discord.DiscordExecution
            url: "{server.url}/hook/discord"
            username: kestra
            content: Run
          - id: google
            type: io.kestra.plugin.notifications.google.GoogleChatExecution
            url: "{server.url}/hook/google"
        """
    )
    assert set(states(result).values()) == {"success"}
    received = {request.path: request.json() for request in server.hooks()}
    teams = received["/hook/teams"]
    assert teams["@type"] == "MessageCard"
    assert teams["sections"][0]["activityTitle"] == "Kestra"
    assert {"name": "Job", "value": "summaries"} in teams["sections"][0]["facts"]
    discord = received["/hook/discord"]
    assert discord["username"] == "kestra"
    assert discord["content"] == f"Run {result.run_id}"
    assert "Flow ID: summaries" in discord["embeds"][0]["description"]
    assert discord["embeds"][0]["footer"]["text"].startswith("Succeeded after ")
    google = received["/hook/google"]["text"]
    assert google.startswith("Kestra Google notification: Namespace tests.notify, Flow ID summaries")


def test_bad_payload_error_response_unknown_execution_and_unreachable(run_flow, server):
    result = run_flow(
        f"""
        id: badhooks
        namespace: tests.notify
        tasks:
          - id: not_json
            type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
            url: "{{{{ secret('SLACK_WEBHOOK') }}}}"
            payload: "text: not json"
        finally:
          - id: refused
            type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
            url: "{server.url}/status/404"
            messageText: hi
          - id: other_run
            type: io.kestra.plugin.notifications.slack.SlackExecution
            url: "{server.url}/hook/other"
            executionId: some-other-run
          - id: unreachable
            type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
            url: "http://127.0.0.1:9/hook/T/B/unreachableSECRET"
            messageText: hi
        """
    )
    assert set(states(result).values()) == {"failed"}
    log = result.tasks["not_json"].log_text()
    assert "`payload` is not valid JSON (Expecting value at line 1, column 1)" in log
    assert "SECRET" not in log
    assert "with response code '404'" in result.tasks["refused"].log_text()
    assert "executionId `some-other-run` is neither this run nor the run that triggered this flow" in (
        result.tasks["other_run"].log_text()
    )
    unreachable = result.tasks["unreachable"].log_text()
    assert "Slack webhook to http://127.0.0.1:9: cannot connect" in unreachable
    assert "unreachableSECRET" not in unreachable
    assert server.hooks() == []


def test_webhook_needs_a_message(flow_file):
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import read_flow

    path = flow_file(
        """
        id: nomessage
        namespace: tests.notify
        tasks:
          - id: slack
            type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
            url: https://hooks.slack.com/services/x
        """
    )
    with pytest.raises(FlowValidationError, match="set `payload` \\(the JSON message\\) or `messageText`"):
        read_flow(path)
