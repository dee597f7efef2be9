"""Docker Run on the real daemon: log streaming, output vars, exit codes, container settings and cleanup."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from conftest import states

from docker_redis.support import BUSYBOX, DAG_LABEL, REDIS, free_port, wait_for

pytestmark = [pytest.mark.airflow, pytest.mark.docker, pytest.mark.usefixtures("test_images")]

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


def test_run_streams_stdout_and_stderr_and_parses_output_lines(run_flow):
    result = run_flow(
        rf"""
        id: streams
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.cli.Run
            containerImage: {BUSYBOX}
            commands:
              - sh
              - -c
              - |
                echo "hello from {{{{ flow.id }}}}"
                echo "to stderr" >&2
                echo '::{{"outputs":{{"answer":42,"name":"deep thought"}}}}::'
                echo '::{{"outputs":{{"more":[1,2]}},"logs":[{{"level":"WARN","message":"careful"}}]}}::'
                printf 'no newline at the end'
          - id: use
            type: io.kestra.plugin.core.log.Log
            message:
              - "answer={{{{ outputs.run.vars.answer }}}} name={{{{ outputs.run.vars.name }}}}"
              - "code={{{{ outputs.run.exitCode }}}}"
        """
    )
    assert result.state == "success"
    assert states(result) == {"run": "success", "use": "success"}
    outputs = result.tasks["run"].outputs
    assert outputs["exitCode"] == 0
    assert outputs["vars"] == {"answer": 42, "name": "deep thought", "more": [1, 2]}
    assert CONTAINER_ID.match(outputs["taskRunner"]["containerId"])
    lines = [(line.level, line.message) for line in result.tasks["run"].logs]
    assert ("INFO", "hello from streams") in lines
    assert ("ERROR", "to stderr") in lines
    assert ("WARNING", "careful") in lines
    assert ("INFO", "no newline at the end") in lines
    assert "::{" not in result.tasks["run"].log_text()
    assert "answer=42 name=deep thought\ncode=0" in result.tasks["use"].log_text()


def test_log_lines_arrive_while_the_container_runs(airflow_db, flow_file, tmp_path, monkeypatch):
    """The container waits for a file the test writes only after seeing its first line in the task log."""
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DOCKER_ALLOWED_VOLUMES", str(tmp_path))
    from yaml2dag.runner import run_flow

    def on_line(task_id: str, line: Any) -> None:
        if line.message == "waiting for the go file":
            (tmp_path / "go").touch()

    path = flow_file(
        f"""
        id: streaming
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            volumes: ["{tmp_path}:/sync"]
            timeout: PT30S
            commands:
              - sh
              - -c
              - "echo waiting for the go file; while [ ! -e /sync/go ]; do usleep 20000; done; echo got it"
        """
    )
    result = run_flow(path, on_log_line=on_line)
    assert states(result) == {"run": "success"}
    assert result.tasks["run"].log_text().index("waiting for the go file") < result.tasks["run"].log_text().index(
        "got it"
    )


def test_commands_are_the_container_cmd_as_given_without_a_shell(run_flow):
    result = run_flow(
        f"""
        id: noshell
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [echo, "$HOME", "two  spaces", "{{{{ 6 * 7 }}}}", 7]
        """
    )
    assert states(result) == {"run": "success"}
    assert "$HOME two  spaces 42 7" in result.tasks["run"].log_text().splitlines()


def test_image_default_command_runs_when_commands_are_empty(run_flow):
    result = run_flow(
        f"""
        id: defaultcmd
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
        """
    )
    # The image's CMD is `sh`: with no stdin it exits 0 at once.
    assert states(result) == {"run": "success"}
    assert result.tasks["run"].outputs["exitCode"] == 0


def test_entry_point_env_and_user(run_flow):
    result = run_flow(
        f"""
        id: entryenv
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            entryPoint: [sh, -c]
            commands: ['echo "$GREETING #$NUMBER as $(id -u):$(id -g)"']
            env:
              GREETING: "hi {{{{ flow.id }}}}"
              NUMBER: 7
            user: nobody
        """
    )
    assert states(result) == {"run": "success"}
    assert "hi entryenv #7 as 65534:65534" in result.tasks["run"].log_text().splitlines()


def test_non_zero_exit_fails_the_task_but_records_its_outputs(run_flow, flow_containers):
    result = run_flow(
        f"""
        id: exitcode
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [sh, -c, 'echo "::{{\\"outputs\\":{{\\"partial\\":true}}}}::"; echo bye; exit 3']
          - id: never
            type: io.kestra.plugin.core.log.Log
            message: not reached
        errors:
          - id: report
            type: io.kestra.plugin.core.log.Log
            message: "code {{{{ outputs.run.exitCode }}}} partial {{{{ outputs.run.vars.partial }}}}"
        """
    )
    assert result.state == "failed"
    assert states(result) == {"run": "failed", "never": "upstream_failed", "report": "success"}
    outputs = result.tasks["run"].outputs
    assert outputs["exitCode"] == 3
    assert outputs["vars"] == {"partial": True}
    assert CONTAINER_ID.match(outputs["taskRunner"]["containerId"])
    assert "Command failed with exit code 3" in result.tasks["run"].log_text()
    assert "code 3 partial true" in result.tasks["report"].log_text()
    assert flow_containers(result.dag_id) == []


def test_wait_false_starts_the_container_and_returns_at_once(run_flow):
    result = run_flow(
        f"""
        id: detached
        namespace: tests.docker
        tasks:
          - id: start
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [sh, -c, 'echo "::{{\\"outputs\\":{{\\"x\\":1}}}}::"; echo started; exec sleep 60']
            wait: "{{{{ 1 == 2 }}}}"
        finally:
          - id: stop
            type: io.kestra.plugin.docker.Stop
            containerId: "{{{{ outputs.start.taskRunner.containerId }}}}"
            kill: true
        """
    )
    assert states(result) == {"start": "success", "stop": "success"}
    start = result.tasks["start"]
    assert start.outputs["exitCode"] == 0
    assert start.outputs["vars"] == {}
    container_id = start.outputs["taskRunner"]["containerId"]
    assert (start.end - start.start).total_seconds() < 10
    assert "started" not in start.log_text().splitlines()
    # Stop found it still running: the container outlived the task that started it.
    assert f"Killed container {container_id[:12]}" in result.tasks["stop"].log_text()


def test_containers_are_labelled_with_dag_run_and_task(run_flow, docker_api, flow_file):
    started = run_flow(
        f"""
        id: labels
        namespace: tests.docker
        tasks:
          - id: start
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [sleep, "60"]
            wait: false
        """
    )
    container = docker_api.containers.get(started.tasks["start"].outputs["taskRunner"]["containerId"])
    expected = {
        DAG_LABEL: started.dag_id,
        "io.yaml2dag.run-id": started.run_id,
        "io.yaml2dag.task-id": "start",
        "io.yaml2dag.try-number": "1",
    }
    assert {key: container.labels.get(key) for key in expected} == expected
    stopped = run_flow(
        f"""
        id: labelsstop
        namespace: tests.docker
        tasks:
          - id: stop
            type: io.kestra.plugin.docker.cli.Stop
            containerId: {container.id}
            kill: true
        """
    )
    assert states(stopped) == {"stop": "success"}


def test_host_settings_reach_the_container_config(run_flow, docker_api, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DOCKER_ALLOWED_VOLUMES", str(tmp_path))
    (tmp_path / "in.txt").write_text("from the host\n")
    result = run_flow(
        f"""
        id: settings
        namespace: tests.docker
        tasks:
          - id: start
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [sleep, "60"]
            wait: false
            cpu:
              cpus: 0.5
            memory:
              memory: 64MB
              memorySwap: "{{{{ 128 }}}}MB"
              memoryReservation: 32mb
            shmSize: 16MB
            privileged: false
            volumes:
              - "{tmp_path}:/data:ro"
            extraHosts:
              - "static.test:10.1.2.3"
            portBindings:
              - "127.0.0.1::6379"
              - "8125/udp"
        """
    )
    assert states(result) == {"start": "success"}
    container = docker_api.containers.get(result.tasks["start"].outputs["taskRunner"]["containerId"])
    try:
        host = container.attrs["HostConfig"]
        assert host["NanoCpus"] == 500_000_000
        assert host["Memory"] == 64 * 1024**2
        assert host["MemorySwap"] == 128 * 1024**2
        assert host["MemoryReservation"] == 32 * 1024**2
        assert host["ShmSize"] == 16 * 1024**2
        assert host["Privileged"] is False
        assert host["Binds"] == [f"{tmp_path}:/data:ro"]
        assert host["ExtraHosts"] == ["static.test:10.1.2.3"]
        assert host["PortBindings"] == {
            "6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            "8125/udp": [{"HostIp": "", "HostPort": ""}],
        }
        assert container.exec_run(["cat", "/data/in.txt"]).output == b"from the host\n"
        df = container.exec_run(["df", "-k", "/dev/shm"]).output.decode()
        assert " 16384 " in df
    finally:
        container.remove(force=True)


def test_volumes_mount_host_directories_read_write(run_flow, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DOCKER_ALLOWED_VOLUMES", str(tmp_path))
    result = run_flow(
        f"""
        id: volumes
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            volumes: ["{tmp_path}:/out"]
            commands: [sh, -c, "echo written-in-container > /out/result.txt"]
        """
    )
    assert states(result) == {"run": "success"}
    assert (tmp_path / "result.txt").read_text() == "written-in-container\n"


def test_port_bindings_publish_a_container_port(run_flow, docker_api):
    import socket

    port = free_port()
    result = run_flow(
        f"""
        id: ports
        namespace: tests.docker
        tasks:
          - id: start
            type: io.kestra.plugin.docker.Run
            containerImage: {REDIS}
            wait: false
            portBindings: ["127.0.0.1:{port}:6379/tcp"]
        """
    )
    assert states(result) == {"start": "success"}
    container_id = result.tasks["start"].outputs["taskRunner"]["containerId"]

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"AUTH redis\r\nPING\r\n")
                return b"+PONG" in connection.recv(100)
        except OSError:
            return False

    try:
        wait_for(pong, what=f"redis in the container on port {port}")
    finally:
        docker_api.containers.get(container_id).remove(force=True)


def test_network_mode_host_and_host_gateway(run_flow, redis_server):
    result = run_flow(
        f"""
        id: network
        namespace: tests.docker
        tasks:
          - id: hostnet
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            networkMode: host
            commands: [sh, -c, "printf 'PING\\r\\n' | nc -w 5 127.0.0.1 {redis_server.port}"]
          - id: gateway
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            extraHosts: ["host.docker.internal:host-gateway", "static.test:10.1.2.3"]
            commands: [cat, /etc/hosts]
        """
    )
    assert states(result) == {"hostnet": "success", "gateway": "success"}
    assert "+PONG" in result.tasks["hostnet"].log_text()
    hosts = result.tasks["gateway"].log_text()
    assert re.search(r"^\d+\.\d+\.\d+\.\d+\s+host\.docker\.internal$", hosts, re.MULTILINE)
    assert re.search(r"^10\.1\.2\.3\s+static\.test$", hosts, re.MULTILINE)


def test_timeout_fails_the_task_and_removes_the_container(run_flow, flow_containers):
    started = time.monotonic()
    result = run_flow(
        f"""
        id: timeout
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [sh, -c, "echo begun; exec sleep 60"]
            timeout: PT2S
        """
    )
    assert states(result) == {"run": "failed"}
    assert time.monotonic() - started < 30
    assert "begun" in result.tasks["run"].log_text()
    assert "Timeout" in result.tasks["run"].log_text()
    assert flow_containers(result.dag_id) == []


def test_on_kill_kills_and_removes_the_running_container(docker_api):
    """Airflow calls `on_kill` when the task is killed (SIGTERM); the container must not survive it."""
    import threading
    from types import SimpleNamespace

    from yaml2dag.errors import TaskFailure
    from yaml2dag.operators.context import FlowInfo
    from yaml2dag.operators.docker import LABEL_RUN_ID, DockerRunOperator

    operator = DockerRunOperator(
        task_id="killme",
        flow=FlowInfo(id="kill", namespace="tests.docker", task_ids=frozenset({"killme"})),
        kestra_type="io.kestra.plugin.docker.Run",
        containerImage=BUSYBOX,
        commands=["sleep", "60"],
    )
    pushed: dict[str, object] = {}
    task_instance = SimpleNamespace(try_number=1, xcom_push=lambda key, value: pushed.update({key: value}))
    context = {"dag_run": SimpleNamespace(run_id="on-kill-test"), "ti": task_instance}
    failures: list[BaseException] = []

    def run() -> None:
        try:
            operator.run(context)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    label = {"label": f"{LABEL_RUN_ID}=on-kill-test", "status": "running"}
    wait_for(lambda: docker_api.containers.list(filters=label), what="the container to run")
    operator.on_kill()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(failures) == 1 and isinstance(failures[0], TaskFailure)
    assert "exit code 137" in str(failures[0])
    assert pushed["return_value"]["exitCode"] == 137
    assert docker_api.containers.list(all=True, filters={"label": f"{LABEL_RUN_ID}=on-kill-test"}) == []


def test_privileged_is_passed_to_the_created_container(docker_api, monkeypatch):
    """`--privileged` cannot start on every daemon (not on this CI's), so the created config is inspected."""
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DOCKER_ALLOW_PRIVILEGED", "True")
    from yaml2dag.operators.context import FlowInfo
    from yaml2dag.operators.docker import DockerRunOperator, _ContainerSettings

    operator = DockerRunOperator(
        task_id="priv",
        flow=FlowInfo(id="priv", namespace="tests.docker", task_ids=frozenset({"priv"})),
        kestra_type="io.kestra.plugin.docker.Run",
        containerImage=BUSYBOX,
        privileged=True,
    )
    client = operator.docker_client()
    container_id = operator._create(client, BUSYBOX, _ContainerSettings.build(operator, True), {"test": "priv"})
    try:
        assert docker_api.containers.get(container_id).attrs["HostConfig"]["Privileged"] is True
    finally:
        docker_api.containers.get(container_id).remove(force=True)


def test_privileged_run_either_starts_or_fails_cleanly(run_flow, flow_containers, monkeypatch):
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DOCKER_ALLOW_PRIVILEGED", "True")
    result = run_flow(
        f"""
        id: privileged
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            privileged: true
            commands: [sh, -c, "ip link add dummy0 type dummy && echo privileged-ok"]
        """
    )
    task = result.tasks["run"]
    if task.state == "failed":
        assert "Docker could not start the container" in task.log_text()
    else:
        assert "privileged-ok" in task.log_text()
    assert flow_containers(result.dag_id) == []


def test_a_container_that_cannot_start_is_removed(run_flow, redis_server, flow_containers):
    # The host port is taken by the test redis-server, so Docker cannot publish it.
    result = run_flow(
        f"""
        id: nostart
        namespace: tests.docker
        tasks:
          - id: waiting
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            portBindings: ["127.0.0.1:{redis_server.port}:80"]
            commands: [echo, never]
        finally:
          - id: detached
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            portBindings: ["127.0.0.1:{redis_server.port}:80"]
            wait: false
            commands: [echo, never]
        """
    )
    assert states(result) == {"waiting": "failed", "detached": "failed"}
    for task_id in ("waiting", "detached"):
        assert "Docker could not start the container" in result.tasks[task_id].log_text()
    assert flow_containers(result.dag_id) == []


def test_pull_policies(run_flow):
    result = run_flow(
        f"""
        id: pulls
        namespace: tests.docker
        tasks:
          - id: present
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [echo, ok]
        finally:
          - id: never
            type: io.kestra.plugin.docker.Run
            containerImage: yaml2dag-test/missing-image:never
            pullPolicy: NEVER
          - id: ifNotPresent
            type: io.kestra.plugin.docker.Run
            containerImage: yaml2dag-test/missing-image:never
          - id: always
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            pullPolicy: ALWAYS
        """
    )
    assert states(result) == {"present": "success", "never": "failed", "ifNotPresent": "failed", "always": "failed"}
    assert "Pulling image" not in result.tasks["present"].log_text()
    assert (
        "image `yaml2dag-test/missing-image:never` not found locally, and pullPolicy is NEVER"
        in result.tasks["never"].log_text()
    )
    assert "Pulling image" not in result.tasks["never"].log_text()
    assert (
        "image `yaml2dag-test/missing-image:never` not found locally, and pulling it failed:"
        in result.tasks["ifNotPresent"].log_text()
    )
    assert f"cannot pull image `{BUSYBOX}` (pullPolicy ALWAYS):" in result.tasks["always"].log_text()


def test_credentials_prefix_the_registry_and_stay_secret(run_flow):
    result = run_flow(
        """
        id: credentials
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: team/app:1.0
            credentials:
              registry: https://registry.invalid:5000
              username: robot
              password: "{{ 'pa55' ~ 'word-x' }}"
        """
    )
    assert states(result) == {"run": "failed"}
    text = result.tasks["run"].log_text()
    assert "image `registry.invalid:5000/team/app:1.0` not found locally, and pulling it failed" in text
    assert "pa55word-x" not in text
    from airflow.sdk._shared.secrets_masker import redact

    assert redact("login pa55word-x") == "login ***"


def test_daemon_from_host_property_or_airflow_connection(run_flow, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_Y2D_DOCKER_LOCAL", '{"conn_type": "docker", "host": "unix:///var/run/docker.sock"}'
    )
    monkeypatch.setenv("AIRFLOW_CONN_Y2D_DOCKER_NOWHERE", '{"conn_type": "docker", "host": "127.0.0.1", "port": 1}')
    result = run_flow(
        f"""
        id: daemons
        namespace: tests.docker
        tasks:
          - id: byHost
            type: io.kestra.plugin.docker.Run
            host: unix:///var/run/docker.sock
            containerImage: {BUSYBOX}
            commands: [echo, via host]
          - id: byConnection
            type: io.kestra.plugin.docker.Run
            connId: y2d_docker_local
            containerImage: {BUSYBOX}
            commands: [echo, via connection]
        finally:
          - id: badHost
            type: io.kestra.plugin.docker.Run
            host: tcp://127.0.0.1:1
            containerImage: {BUSYBOX}
          - id: badConnection
            type: io.kestra.plugin.docker.Stop
            connId: y2d_docker_nowhere
            containerId: whatever
        """
    )
    assert states(result) == {
        "byHost": "success",
        "byConnection": "success",
        "badHost": "failed",
        "badConnection": "failed",
    }
    assert "via host" in result.tasks["byHost"].log_text()
    assert "via connection" in result.tasks["byConnection"].log_text()
    assert "cannot reach the Docker daemon at tcp://127.0.0.1:1" in result.tasks["badHost"].log_text()
    assert "cannot reach the Docker daemon at tcp://127.0.0.1:1" in result.tasks["badConnection"].log_text()


def test_rendered_values_are_checked_before_any_container_exists(run_flow, flow_containers):
    result = run_flow(
        f"""
        id: rendered
        namespace: tests.docker
        tasks:
          - id: cpus
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            cpu:
              cpus: "{{{{ 'lots' }}}}"
        finally:
          - id: size
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            shmSize: "{{{{ 'huge' }}}}"
          - id: wait
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            wait: "{{{{ 'maybe' }}}}"
          - id: port
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            portBindings: ["{{{{ 'web' }}}}:80"]
        """
    )
    assert states(result) == {"cpus": "failed", "size": "failed", "wait": "failed", "port": "failed"}
    assert "`cpu.cpus` rendered `lots`: it must be a positive number" in result.tasks["cpus"].log_text()
    assert "`huge` is not a size such as 512MB" in result.tasks["size"].log_text()
    assert "`wait` rendered `maybe`: it must be true or false" in result.tasks["wait"].log_text()
    assert "port binding `web:80`: `web` is not a port number" in result.tasks["port"].log_text()
    assert flow_containers(result.dag_id) == []


def test_volumes_and_privileged_are_refused_unless_the_worker_allows_them(
    run_flow, tmp_path, monkeypatch, flow_containers
):
    """As Kestra's `volume-enabled: false`: a flow author must not mount the worker's disk or become root on it."""
    allowed = tmp_path / "shared"
    allowed.mkdir()
    (tmp_path / "escape").symlink_to("/")
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DOCKER_ALLOWED_VOLUMES", f"{allowed}, cache")
    monkeypatch.delenv("AIRFLOW__YAML2DAG__DOCKER_ALLOW_PRIVILEGED", raising=False)

    def run(extra: str) -> Any:
        return run_flow(
            f"""
            id: gated
            namespace: tests.docker
            tasks:
              - id: run
                type: io.kestra.plugin.docker.Run
                containerImage: {BUSYBOX}
                commands: [echo, ran]
                {extra}
            """
        )

    refused = {
        "volumes: ['/:/host']": "volume `/:/host` is not allowed: this worker allows mounting",
        f"volumes: ['{allowed}/../..:/host']": "is not allowed",
        f"volumes: ['{tmp_path}/escape:/host']": "is not allowed",
        "volumes: ['other:/data']": "volume `other:/data` is not allowed",
        "privileged: true": "`privileged: true` is not allowed",
    }
    for extra, message in refused.items():
        result = run(extra)
        assert states(result) == {"run": "failed"}, extra
        assert message in result.tasks["run"].log_text(), extra
        assert "docker_allow" in result.tasks["run"].log_text()
    assert flow_containers("tests.docker.gated") == []
    (allowed / "sub").mkdir()
    result = run(f"volumes: ['{allowed}/sub:/data:ro']\n                privileged: false")
    assert states(result) == {"run": "success"}
    assert "ran" in result.tasks["run"].log_text()
    # The scripts' Docker task runner goes through the same check.
    script = run_flow(
        f"""
        id: gated_script
        namespace: tests.docker
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: {BUSYBOX}
            taskRunner:
              type: io.kestra.plugin.scripts.runner.docker.Docker
              pullPolicy: NEVER
              volumes: ["/etc:/host-etc"]
              privileged: true
            commands: [cat /host-etc/shadow]
        """
    )
    assert states(script) == {"sh": "failed"}
    assert "volume `/etc:/host-etc` is not allowed" in script.tasks["sh"].log_text()


def test_a_container_printing_one_64_mb_line_gets_it_cut_and_goes_on(run_flow):
    """The line is held up to 1 MiB (tests/test_bounded_runs.py measures the memory of the reader)."""
    result = run_flow(
        f"""
        id: hugeline
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            commands: [sh, -c, "head -c 67108864 /dev/zero | tr '\\\\000' x; echo; echo after"]
        """
    )
    assert states(result) == {"run": "success"}
    log = result.tasks["run"].log_text()
    assert "after" in log
    assert "[line cut at 1 MiB]" in log or "characters]" in log
    assert len(log) < 2 * 1024 * 1024


def test_input_namespace_and_output_files_cross_the_storage(run_flow, flow_containers):
    """Kestra's docker Run with files: its output CSV is converted by a serdes task and split by a storage task."""
    result = run_flow(
        f"""
        id: docker_files
        namespace: tests.docker
        tasks:
          - id: source
            type: io.kestra.plugin.core.storage.Write
            content: "30\\n10\\n20\\n"
            extension: .txt
          - id: publish
            type: io.kestra.plugin.core.namespace.UploadFiles
            filesMap:
              lib/header.txt: "{{{{ outputs.source.uri }}}}"
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            namespaceFiles:
              enabled: true
              include: ["lib/**"]
            inputFiles:
              numbers.txt: "{{{{ outputs.source.uri }}}}"
              conf/title.txt: numbers of {{{{ flow.id }}}}
            commands:
              - sh
              - -c
              - |
                echo {{{{ workingDir }}}} > where.txt
                printf 'rank,n\\n' > report.csv
                i=0
                for n in $(sort -n numbers.txt); do i=$((i+1)); echo "$i,$n" >> report.csv; done
                mkdir -p sub && cp conf/title.txt sub/title.txt
                echo "namespace file lines: $(wc -l < lib/header.txt)"
            outputFiles:
              - report.csv
              - where.txt
              - "sub/*.txt"
          - id: rows
            type: io.kestra.plugin.serdes.csv.CsvToIon
            from: "{{{{ outputs.run.outputFiles['report.csv'] }}}}"
          - id: split
            type: io.kestra.plugin.core.storage.Split
            from: "{{{{ outputs.rows.uri }}}}"
            rows: 1
          - id: show
            type: io.kestra.plugin.core.debug.Return
            format: >-
              {{{{ read(outputs.run.outputFiles['where.txt']) | trim }}}}|
              {{{{- read(outputs.run.outputFiles['sub/title.txt']) }}}}|
              {{{{- outputs.split.uris | length }}}}|{{{{ read(outputs.split.uris[0]) | trim }}}}
        """
    )
    assert result.state == "success", {k: v.log_text()[-800:] for k, v in result.tasks.items()}
    outputs = result.tasks["run"].outputs
    assert outputs["exitCode"] == 0
    files = outputs["outputFiles"]
    assert sorted(files) == ["report.csv", "sub/title.txt", "where.txt"]
    assert all(uri.startswith("kestra:///tests/docker/docker_files/executions/") for uri in files.values())
    assert "/tasks/run/" in files["report.csv"]
    assert ("INFO", "namespace file lines: 3") in [(line.level, line.message) for line in result.tasks["run"].logs]
    assert result.tasks["show"].outputs == {"value": '/kestra/working-dir|numbers of docker_files|3|{rank:"1",n:"10"}'}
    assert flow_containers(result.dag_id) == []


def test_a_missing_input_file_fails_before_any_container_exists(run_flow, flow_containers):
    result = run_flow(
        f"""
        id: docker_missing_file
        namespace: tests.docker
        tasks:
          - id: run
            type: io.kestra.plugin.docker.Run
            containerImage: {BUSYBOX}
            inputFiles:
              data.csv: kestra:///tests/docker/docker_missing_file/executions/x/tasks/t/1/none.csv
            commands: [cat, data.csv]
            outputFiles: [data.csv]
        """
    )
    assert result.state == "failed"
    assert result.tasks["run"].error == (
        "`kestra:///tests/docker/docker_missing_file/executions/x/tasks/t/1/none.csv`: no such file in the storage"
    )
    assert flow_containers(result.dag_id) == []
