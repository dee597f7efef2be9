"""Polling triggers on the real stack: `airflow standalone` (its triggerer runs the asset watchers)
serving flows through the DAG bundle, an HTTP server and a moto S3 server on loopback.

The HTTP trigger polls a price until its `responseCondition` holds (the test lowers the price once
the stack serves requests), then a run starts and reads the response as `trigger.*`, and its
success stops the trigger (`stopAfter`); the S3
trigger sees a new object, downloads it into the internal storage, moves it under `archive/`, and
a run starts reading `trigger.objects`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from e2e.airflow_rest import AirflowClient, airflow_standalone, free_port
from http_support import LoopbackServer, start_server

pytestmark = pytest.mark.airflow

NAMESPACE = "tests.polling"


@pytest.fixture(scope="module")
def price_server() -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    yield state
    httpd.shutdown()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


def flows(price_url: str, s3_endpoint: str) -> dict[str, str]:
    return {
        "price_alert.yaml": f"""
id: price_alert
namespace: {NAMESPACE}
tasks:
  - id: price
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.code }}}}|{{{{ json(trigger.body).price }}}}|{{{{ trigger.uri }}}}"
triggers:
  - id: http
    type: io.kestra.plugin.core.http.Trigger
    uri: {price_url}
    responseCondition: "{{{{ json(response.body).price <= 110 }}}}"
    interval: PT3S
    stopAfter: [SUCCESS]
""",
        "inbox_watch.yaml": f"""
id: inbox_watch
namespace: {NAMESPACE}
tasks:
  - id: files
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{{{ trigger.objects | length }}}}|{{{{ trigger.objects[0].key }}}}|{{{{ trigger.objects[0].changeType }}}}|{{{{
      read(trigger.objects[0].uri) }}}}
triggers:
  - id: watch
    type: io.kestra.plugin.aws.s3.Trigger
    interval: PT3S
    region: us-east-1
    accessKeyId: AKIDTEST
    secretKeyId: moto-secret
    endpointOverride: {s3_endpoint}
    bucket: stack-inbox
    prefix: incoming/
    action: MOVE
    moveTo:
      key: archive
""",
    }


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, price_server: LoopbackServer, s3_endpoint: str
) -> Iterator[AirflowClient]:
    # A bucket of its own: the session's S3 server is shared, and tests/providers/test_s3.py uses `inbox`.
    s3(s3_endpoint).create_bucket(Bucket="stack-inbox")
    home = tmp_path_factory.mktemp("polling-home")
    dags: Path = tmp_path_factory.mktemp("polling-dags")
    price_server.answers["price"] = {"price": 150}
    for name, text in flows(f"{price_server.url}/answer/price", s3_endpoint).items():
        (dags / name).write_text(text)
    with airflow_standalone(home, dags) as client:
        client.wait_for_dags({f"{NAMESPACE}.price_alert", f"{NAMESPACE}.inbox_watch"})
        yield client


def succeeded(stack: AirflowClient, dag_id: str, run_id: str, attempts: int = 3) -> bool:
    """Whether the run ends success; a failed run is cleared and waited for again (`attempts` in all).

    On an overloaded machine the API server can time out a task's start (`PATCH …/run`), failing
    the task before it ran; clearing the run reruns it with the same triggering events. A run that
    fails for a reason of its own fails every attempt.
    """
    for _ in range(attempts):
        if stack.finished(dag_id, run_id, timeout=300) == "success":
            return True
        # Every task again, `_flow_event` included: it then announces (and acts on) the new end state.
        body = {"dry_run": False, "dag_run_id": run_id, "only_failed": False}
        stack.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", body)
        stack.wait_for(lambda: stack.run_state(dag_id, run_id) not in ("failed",), 60, "the cleared run")
    return False


def started_runs(stack: AirflowClient, dag_id: str) -> list[dict]:
    return sorted(
        (run for run in stack.dag_runs(dag_id) if run["run_type"] == "asset_triggered"),
        key=lambda run: run["queued_at"],
    )


def test_the_http_trigger_starts_a_run_once_the_response_condition_holds(
    stack: AirflowClient, price_server: LoopbackServer
):
    dag_id = f"{NAMESPACE}.price_alert"
    url = f"{price_server.url}/answer/price"
    stack.wait_for(lambda: len(_asked(price_server)) >= 2, 120, "two polls of the price")
    assert started_runs(stack, dag_id) == [], "150 does not meet the condition"
    price_server.answers["price"] = {"price": 110}
    first, *_ = stack.wait_for(lambda: started_runs(stack, dag_id), 240, "a run started by the HTTP trigger")
    price_server.answers["price"] = {"price": 150}  # each poll meeting the condition starts a run, as in Kestra
    assert succeeded(stack, dag_id, first["dag_run_id"])
    assert stack.xcom(dag_id, first["dag_run_id"], "price") == {"value": f"200|110|{url}"}
    events = stack.request("GET", "/api/v2/assets/events?limit=100")["asset_events"]
    polled = [event for event in events if event["uri"] == f"kestra://{NAMESPACE}/price_alert/triggers/http"]
    assert polled and all(event["extra"]["from_trigger"] is True for event in polled)
    prices = [json.loads(event["extra"]["payload"]["variables"]["body"])["price"] for event in polled]
    assert set(prices) == {110}, "only responses meeting the condition are events"


def test_stop_after_success_stops_the_http_trigger(stack: AirflowClient, price_server: LoopbackServer):
    log = Path(stack.diagnostics)
    marker = log.parent / "yaml2dag-storage" / "tests" / "polling" / "price_alert" / "triggers" / "http" / "stopped"
    stack.wait_for(marker.exists, 120, "the stop marker of the HTTP trigger")
    assert marker.read_text().startswith("SUCCESS asset_triggered__")
    stack.wait_for(lambda: "price_alert.http is stopped (stopAfter)" in log.read_text(), 60, "the trigger to stop")
    dag_id = f"{NAMESPACE}.price_alert"
    runs, asked = len(started_runs(stack, dag_id)), len(_asked(price_server))
    price_server.answers["price"] = {"price": 90}
    stack.wait_for_scheduler_loops(3)
    assert len(_asked(price_server)) == asked, "a stopped trigger polls no more"
    assert len(started_runs(stack, dag_id)) == runs


def _asked(server: LoopbackServer) -> list:
    return [seen for seen in server.received if seen.path == "/answer/price"]


def test_the_s3_trigger_downloads_moves_and_starts_a_run_with_the_objects(stack: AirflowClient, s3_endpoint: str):
    dag_id = f"{NAMESPACE}.inbox_watch"
    client = s3(s3_endpoint)
    assert started_runs(stack, dag_id) == [], "an empty prefix starts nothing"
    client.put_object(Bucket="stack-inbox", Key="incoming/orders.csv", Body=b"id,amount\n1,10\n")
    [run] = stack.wait_for(lambda: started_runs(stack, dag_id), 240, "a run started by the S3 trigger")
    assert succeeded(stack, dag_id, run["dag_run_id"])
    value = stack.xcom(dag_id, run["dag_run_id"], "files")["value"]
    assert value == "1|incoming/orders.csv|CREATE|id,amount\n1,10\n"
    keys = sorted(item["Key"] for item in client.list_objects(Bucket="stack-inbox").get("Contents", []))
    assert keys == ["archive/orders.csv"], "MOVE: the object left incoming/"
