"""docker-compose.yaml run as an operator runs it: CeleryExecutor, PostgreSQL, Redis, two Celery workers.

Flows are dropped into the mounted folder, triggered through the REST API (with inputs), and their
task and run states asserted; a worker is killed mid-task; `docker-compose down -v` cleans up.
The last test takes the stack down, so it stays last in this file.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from e2e import scenarios
from e2e.conftest import ComposeStack

pytestmark = [pytest.mark.docker, pytest.mark.airflow, pytest.mark.timeout(900)]

WORKER_KILL_DAG = "tests.e2e.worker_kill"
WORKER_KILL_FLOW = f"""
id: worker_kill
namespace: tests.e2e
tasks:
  - id: work
    type: io.kestra.plugin.docker.Run
    containerImage: {scenarios.BUSYBOX}
    commands: ["sleep", "15"]
    retry:
      type: constant
      interval: PT1S
      maxAttempts: 2
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: finally runs after the worker died
"""


FILES_DAG = "tests.e2e.files_across_workers"
#: A script writes an output file on one worker; while `wait` is deferred the test stops that worker, so
#: the serdes tasks and the script reading the file run on the other one, through the shared storage volume.
FILES_FLOW = """
id: files_across_workers
namespace: tests.e2e
tasks:
  - id: write
    type: io.kestra.plugin.scripts.python.Script
    taskRunner: {type: io.kestra.plugin.core.runner.Process}
    outputFiles: [report.csv]
    script: |
      import socket
      from kestra import Kestra
      with open("report.csv", "w") as out:
          out.write(f"writer,rows\\n{socket.gethostname()},2\\n")
      Kestra.outputs({"writer": socket.gethostname()})
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT25S
  - id: toIon
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{ outputs.write.outputFiles['report.csv'] }}"
  - id: toParquet
    type: io.kestra.plugin.serdes.parquet.IonToParquet
    from: "{{ outputs.toIon.uri }}"
  - id: read
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner: {type: io.kestra.plugin.core.runner.Process}
    inputFiles:
      copy.csv: "{{ outputs.write.outputFiles['report.csv'] }}"
    commands:
      - echo "::{\\"outputs\\":{\\"content\\":\\"$(tail -1 copy.csv)\\",\\"reader\\":\\"$(hostname)\\"}}::"
  - id: http
    type: io.kestra.plugin.core.http.Request
    uri: http://airflow-apiserver:8080/api/v2/version
"""


def test_dropped_flows_appear_as_dags(compose_stack: ComposeStack):
    assert compose_stack.client.dag_ids() >= scenarios.EXPECTED_DAGS
    for name, text in {"worker_kill.yaml": WORKER_KILL_FLOW, "files_across_workers.yaml": FILES_FLOW}.items():
        (compose_stack.dags / "e2e" / name).write_text(text)
        (compose_stack.dags / "e2e" / name).chmod(0o644)
    compose_stack.client.wait_for_dags({WORKER_KILL_DAG, FILES_DAG}, timeout=120)


def test_flow_with_inputs_runs_on_celery(compose_stack: ComposeStack):
    scenarios.check_flow_with_inputs_succeeds(compose_stack.client)
    scenarios.check_wrong_input_type_is_refused(compose_stack.client)


def test_failing_seed_flow_ends_failed_after_errors_and_finally(compose_stack: ComposeStack):
    scenarios.check_failing_seed_flow_runs_errors_and_finally(compose_stack.client)


def test_docker_redis_seed_runs_unmodified_through_the_worker_docker_socket(compose_stack: ComposeStack):
    instances = scenarios.check_docker_redis_seed_flow(compose_stack.client)
    workers = {container[:12] for container in compose_stack.containers("airflow-worker")}
    assert instances["start"]["hostname"] in workers, "a Celery worker container started Redis"


def test_killed_worker_mid_task_leads_to_a_retry_and_finally_runs(compose_stack: ComposeStack):
    client = compose_stack.client
    client.wait_for_dags({WORKER_KILL_DAG}, timeout=120)
    run_id = client.trigger(WORKER_KILL_DAG)
    running: dict = {}
    try:
        running = client.wait_for(
            lambda: (
                (work := client.task_instances(WORKER_KILL_DAG, run_id).get("work"))
                and work["state"] == "running"
                and work["hostname"]
                and work
            ),
            120,
            "the Docker Run task to run on a worker",
        )
        time.sleep(3)  # the container is started and its output streamed
        subprocess.run(["docker", "kill", running["hostname"]], check=True, capture_output=True)
        assert client.finished(WORKER_KILL_DAG, run_id, timeout=240) == "success"
        instances = client.task_instances(WORKER_KILL_DAG, run_id)
        assert client.flow_task_states(WORKER_KILL_DAG, run_id) == {
            "work": "success",
            "cleanup": "success",
            "_flow_state": "success",
        }
        assert instances["work"]["try_number"] == 2, "the killed try is failed by the heartbeat check and retried"
        assert instances["work"]["hostname"] != running["hostname"], "the retry ran on the surviving worker"
    finally:
        scenarios.remove_yaml2dag_containers(WORKER_KILL_DAG)
        if running.get("hostname"):  # the next tests need both workers again
            subprocess.run(["docker", "start", running["hostname"]], check=False, capture_output=True)


def test_output_files_written_on_one_worker_are_read_on_the_other(compose_stack: ComposeStack):
    client = compose_stack.client
    client.wait_for_dags({FILES_DAG}, timeout=120)
    # Two running workers (a worker killed by an earlier test is started again, and Celery needs a moment).
    client.wait_for(lambda: len(compose_stack.containers("airflow-worker")) >= 2, 120, "both Celery workers")
    time.sleep(10)
    run_id = client.trigger(FILES_DAG)
    writer = client.wait_for(
        lambda: (
            (instances := client.task_instances(FILES_DAG, run_id)).get("write", {}).get("state") == "success"
            and instances["write"]["hostname"]
        ),
        120,
        "the script writing report.csv to succeed",
    )
    stopped = [container for container in compose_stack.containers("airflow-worker") if container[:12] == writer]
    assert stopped, f"the writer {writer} is a Celery worker container"
    subprocess.run(["docker", "stop", "--time", "20", *stopped], check=True, capture_output=True)
    try:
        assert client.finished(FILES_DAG, run_id, timeout=240) == "success"
        instances = client.task_instances(FILES_DAG, run_id)
        assert client.flow_task_states(FILES_DAG, run_id) == dict.fromkeys(
            ["write", "wait", "toIon", "toParquet", "read", "http", "_flow_state"], "success"
        )
        for task in ("toIon", "toParquet", "read", "http"):
            assert instances[task]["hostname"] not in ("", writer), f"{task} ran on the other worker"
        report = client.xcom(FILES_DAG, run_id, "write")
        assert report["vars"] == {"writer": writer}
        assert report["outputFiles"]["report.csv"].startswith("kestra:///tests/e2e/files_across_workers/executions/")
        read = client.xcom(FILES_DAG, run_id, "read")["vars"]
        assert read == {"content": f"{writer},2", "reader": instances["read"]["hostname"]}
        assert client.xcom(FILES_DAG, run_id, "toIon")["uri"].endswith(".ion")
        assert client.xcom(FILES_DAG, run_id, "toParquet")["uri"].endswith(".parquet")
        http = client.xcom(FILES_DAG, run_id, "http")
        assert http["code"] == 200 and json.loads(http["body"])["version"] == "3.3.2"
    finally:
        subprocess.run(["docker", "start", *stopped], check=False, capture_output=True)


def test_every_minute_schedule_fires(compose_stack: ComposeStack):
    # The flow was dropped when the stack started; a scheduled run is due within two minutes.
    scenarios.check_schedule_fires(compose_stack.client, time.monotonic() + 130)


def test_down_leaves_no_container_network_or_volume(compose_stack: ComposeStack):
    assert compose_stack.leftovers().keys() >= {"containers", "networks", "volumes"}
    compose_stack.save_logs()
    compose_stack.down()
    assert compose_stack.leftovers() == {}
