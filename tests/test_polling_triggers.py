"""Kestra's HTTP polling trigger (`io.kestra.plugin.core.http.Trigger`): planned as an Airflow asset
watcher, and polled by the trigger the triggerer runs — here against a real HTTP server on loopback.
The whole path (triggerer → asset event → DAG run reading `trigger.*`) runs in
tests/test_polling_triggers_stack.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import textwrap
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from http_support import LoopbackServer, start_server

from yaml2dag.compiler import compile_flow
from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.operators.polling import KestraPollingTrigger
from yaml2dag.triggers import flow_trigger_variables

pytestmark = pytest.mark.airflow

HEADER = """id: price_alert
namespace: tests.polling
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body }}"
triggers:
"""


def flow(body: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(body), "  ")


def watched(text: str) -> tuple[object, KestraPollingTrigger]:
    """The DAG of `text` and the polling trigger of its (only) watched asset."""
    dag = compile_flow(parse_flow_text(text, "flow.yaml"))
    [asset] = [asset for asset in _assets(dag.timetable.asset_condition) if asset.watchers]
    [watcher] = asset.watchers
    assert isinstance(watcher.trigger, KestraPollingTrigger)
    return dag, watcher.trigger


def _assets(condition) -> list:
    if hasattr(condition, "objects"):
        return [asset for item in condition.objects for asset in _assets(item)]
    return [condition]


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    return [(error.path, error.message) for error in caught.value.errors]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    yield state
    httpd.shutdown()


def first_event(trigger: KestraPollingTrigger) -> dict:
    """Drive the trigger as the triggerer does until it yields its first event; return the payload."""

    async def collect() -> dict:
        events = trigger.run()
        try:
            event = await anext(events)
        finally:
            await events.aclose()
        return event.payload

    return asyncio.run(collect())


# --- planning -------------------------------------------------------------------------------------


def test_http_trigger_becomes_an_asset_watched_by_the_polling_trigger(server: LoopbackServer):
    dag, trigger = watched(
        flow(
            f"""
            - id: http
              type: io.kestra.plugin.core.http.Trigger
              uri: {server.url}/price
              responseCondition: "{{{{ json(response.body).price <= 110 }}}}"
              interval: PT2S
              headers:
                X-Team: "{{{{ flow.namespace }}}}"
            """
        )
    )
    [asset] = _assets(dag.timetable.asset_condition)
    assert asset.uri == "kestra://tests.polling/price_alert/triggers/http"
    assert asset.watchers[0].name == "tests.polling.price_alert.http"
    classpath, kwargs = trigger.serialize()
    assert classpath == "yaml2dag.operators.polling.KestraPollingTrigger"
    assert kwargs["interval"] == 2.0
    assert kwargs["operator"] == "yaml2dag.operators.http:HttpRequestOperator"
    assert kwargs["arguments"]["uri"] == f"{server.url}/price"
    assert kwargs["settings"] == {"responseCondition": "{{ json(response.body).price <= 110 }}"}
    # The triggerer rebuilds the trigger from what the DAG processor serialized.
    assert KestraPollingTrigger(**json.loads(json.dumps(kwargs))).serialize() == (classpath, kwargs)


def test_the_serialized_dag_keeps_the_watcher():
    from airflow.serialization.serialized_objects import DagSerialization

    dag, _ = watched(flow("- id: http\n  type: io.kestra.plugin.fs.http.Trigger\n  uri: https://example.com/x\n"))
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    [asset] = _assets(restored.timetable.asset_condition)
    assert asset.uri == "kestra://tests.polling/price_alert/triggers/http"


def test_stop_after_gives_the_trigger_a_stop_marker_the_end_event_task_writes():
    from yaml2dag.plan import plan_flow

    text = flow("- id: http\n  type: io.kestra.plugin.core.http.Trigger\n  uri: https://x\n  stopAfter: [SUCCESS]\n")
    _, trigger = watched(text)
    marker = "kestra:///tests/polling/price_alert/triggers/http/stopped"
    assert trigger.serialize()[1]["stop_marker"] == marker
    plan = plan_flow(parse_flow_text(text, "flow.yaml"))
    assert plan.tasks["_flow_event"].arguments["stop_after"] == {"http": ["SUCCESS"]}


def test_a_stopped_trigger_does_not_poll(server: LoopbackServer, capsys: pytest.CaptureFixture[str]):
    from yaml2dag import storage

    _, trigger = watched(
        flow(
            f"- id: stopped\n  type: io.kestra.plugin.core.http.Trigger\n  uri: {server.url}/json\n  interval: PT1S\n"
            "  stopAfter: [SUCCESS]\n"
        )
    )
    with storage.open_uri_write(trigger.stop_marker) as stream:
        stream.write(b"SUCCESS run1\n")
    before = len(server.received)
    logged: list[str] = []

    async def until_stopped() -> None:
        task = asyncio.ensure_future(anext(trigger.run()))
        while "is stopped (stopAfter)" not in "".join(logged):
            await asyncio.sleep(0.1)
            logged.append(capsys.readouterr().out)
        task.cancel()

    asyncio.run(until_stopped())
    assert len(server.received) == before, "a stopped trigger sends no request"
    storage.delete(trigger.stop_marker)
    assert trigger.poll() is not None and not trigger.stopped(), "deleting the marker starts it again"


def test_schedule_and_polling_triggers_combine_and_a_disabled_one_is_left_out():
    dag = compile_flow(
        parse_flow_text(
            flow(
                """
                - id: daily
                  type: io.kestra.plugin.core.trigger.Schedule
                  cron: "0 9 * * *"
                - id: http
                  type: io.kestra.plugin.core.http.Trigger
                  uri: https://example.com/x
                - id: off
                  type: io.kestra.plugin.core.http.Trigger
                  uri: https://example.com/y
                  disabled: true
                """
            ),
            "flow.yaml",
        )
    )
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    assert [asset.uri for asset in _assets(dag.timetable.asset_condition)] == [
        "kestra://tests.polling/price_alert/triggers/http"
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  uri: ftp://x\n", ("triggers[0].uri", "must be an http:// or https:// URL (or an expression")),
        ("  uri: https://x\n  interval: '{{ vars.i }}'\n", ("triggers[0].interval", "invalid `interval`")),
        ("  uri: https://x\n  interval: PT0S\n", ("triggers[0].interval", "at least one second")),
        ("  uri: https://x\n  metod: GET\n", ("triggers[0].metod", "unknown property `metod`")),
        ("  uri: https://x\n  runIf: 'true'\n", ("triggers[0].runIf", "unknown property `runIf`")),
        ("  uri: https://x\n  encryptBody: true\n", ("triggers[0].encryptBody", "is not supported by yaml2dag yet")),
        ("  uri: https://x\n  conditions: []\n", ("triggers[0].conditions", "is not supported by yaml2dag yet")),
        ("  uri: https://x\n  stopAfter: [RUNNING]\n", ("triggers[0].stopAfter[0]", "never ends in this state")),
        ("  uri: https://x\n  cron: '0 * * * *'\n", ("triggers[0].cron", "is not a property of")),
        (
            "  method: GET\n",
            ("triggers[0].uri", "missing required property `uri` for task type `io.kestra.plugin.core.http.Trigger`"),
        ),
        ("  uri: https://x\n  body: '{{ oops('\n", ("triggers[0].body", "invalid expression")),
        ("  uri: https://x\n  options: {proxy: {}}\n", ("triggers[0].options.proxy", "not supported by yaml2dag yet")),
    ],
)
def test_http_trigger_mistakes_are_located_errors(body: str, expected: tuple[str, str]):
    found = errors_of(flow(f"- id: http\n  type: io.kestra.plugin.core.http.Trigger\n{body}"))
    assert any(path == expected[0] and expected[1] in message for path, message in found), found


# --- polling a real server -------------------------------------------------------------------------


def test_the_trigger_fires_when_the_response_condition_becomes_true(server: LoopbackServer):
    before = len([seen for seen in server.received if seen.path == "/price"])
    _, trigger = watched(
        flow(
            f"""
            - id: http
              type: io.kestra.plugin.core.http.Trigger
              uri: {server.url}/price
              responseCondition: "{{{{ json(response.body).price <= {110 - 20 * before} }}}}"
              interval: PT1S
              headers:
                X-Team: "{{{{ flow.namespace }}}}"
            """
        )
    )
    payload = first_event(trigger)
    prices = [seen for seen in server.received if seen.path == "/price"][before:]
    assert len(prices) == 3, "150 and 130 do not fire, 110 does"
    assert prices[-1].headers["X-Team"] == "tests.polling"
    assert payload["triggerId"] == "http"
    assert payload["type"] == "io.kestra.plugin.core.http.Trigger"
    variables = payload["variables"]
    assert variables["code"] == 200
    assert json.loads(variables["body"]) == {"price": 110 - 20 * before}
    assert variables["headers"]["X-Price"] == [str(before + 3)]
    assert variables["uri"] == f"{server.url}/price"


def test_the_default_condition_is_a_code_below_400_and_a_5xx_does_not_fail_the_poll(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
):
    _, failing = watched(
        flow(f"- id: http\n  type: io.kestra.plugin.core.http.Trigger\n  uri: {server.url}/status/503\n")
    )
    assert failing.poll() is None
    assert "responseCondition rendered `false` (code 503)" in capsys.readouterr().out
    _, ok = watched(flow(f"- id: http\n  type: io.kestra.plugin.core.http.Trigger\n  uri: {server.url}/json\n"))
    fired = ok.poll()
    assert fired is not None and fired["code"] == 200 and json.loads(fired["body"]) == {"hello": "world"}


def test_an_unreachable_server_is_logged_and_polled_again(capsys: pytest.CaptureFixture[str]):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, trigger = watched(
        flow(
            f"- id: http\n  type: io.kestra.plugin.core.http.Trigger\n"
            f"  uri: http://127.0.0.1:{port}/x\n  interval: PT1S\n"
        )
    )

    logged: list[str] = []

    async def two_failed_polls() -> None:
        task = asyncio.ensure_future(anext(trigger.run()))
        while "".join(logged).count("poll failed") < 2:
            assert not task.done(), "no event may come from an unreachable server"
            await asyncio.sleep(0.1)
            logged.append(capsys.readouterr().out)
        task.cancel()

    asyncio.run(two_failed_polls())
    assert f"poll failed (TaskFailure: request to http://127.0.0.1:{port}: cannot connect" in "".join(logged)


def test_a_secret_password_is_masked_in_the_event_and_the_logs(server: LoopbackServer, capsys):
    _, trigger = watched(
        flow(
            f"""
            - id: http
              type: io.kestra.plugin.core.http.Trigger
              uri: {server.url}/echo
              options:
                auth: {{type: BASIC, username: bob, password: Pa55-trigger-w0rd}}
                logs: [REQUEST_HEADERS]
            """
        )
    )
    payload = first_event(trigger)
    logged = capsys.readouterr().out
    assert "Request headers" in logged
    assert "Pa55-trigger-w0rd" not in json.dumps(payload)
    assert "Pa55-trigger-w0rd" not in logged
    echoed = json.loads(payload["variables"]["body"])
    assert echoed["headers"]["Authorization"] == "***", "the Basic credentials the server echoes are masked too"


# --- what the run reads --------------------------------------------------------------------------


def test_a_run_reads_the_latest_polling_event_as_trigger_variables():
    def event(extra: dict, second: int) -> SimpleNamespace:
        import datetime as dt

        return SimpleNamespace(extra=extra, timestamp=dt.datetime(2026, 1, 1, 0, 0, second, tzinfo=dt.UTC))

    polled = {"from_trigger": True, "payload": {"triggerId": "http", "variables": {"code": 200, "body": "{}"}}}
    upstream = {"executionId": "run1", "namespace": "a", "flowId": "b", "state": "SUCCESS"}
    assert flow_trigger_variables([event(upstream, 1), event(polled, 2)]) == {"code": 200, "body": "{}"}
    assert flow_trigger_variables([event(upstream, 3), event(polled, 2)])["executionId"] == "run1"
    assert flow_trigger_variables([event({"from_trigger": True, "payload": {"other": 1}}, 1)]) is None
