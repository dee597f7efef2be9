"""Docker and Redis task models: every type name compiles, and what yaml2dag refuses is a located error."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from docker_redis.support import SEED_FLOW
from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.tasktypes import TASK_TYPES

HEADER = "id: compiled\nnamespace: tests.compile\ntasks:\n  - id: t\n"
RUN = "    type: io.kestra.plugin.docker.Run\n    containerImage: img\n"
STOP = "    type: io.kestra.plugin.docker.Stop\n    containerId: abc\n"
SET = "    type: io.kestra.plugin.redis.string.Set\n    url: redis://localhost:6379/0\n    key: k\n    value: v\n"
GET = "    type: io.kestra.plugin.redis.string.Get\n    key: k\n"
POP = "    type: io.kestra.plugin.redis.list.ListPop\n    url: redis://localhost\n    key: k\n"
PUSH = "    type: io.kestra.plugin.redis.list.ListPush\n    url: redis://localhost\n    key: k\n"

MINIMAL = {
    "io.kestra.plugin.docker.cli.Run": "containerImage: img",
    "io.kestra.plugin.docker.Run": "containerImage: img",
    "io.kestra.plugin.docker.cli.Stop": "containerId: abc",
    "io.kestra.plugin.docker.Stop": "containerId: abc",
    "io.kestra.plugin.redis.string.Set": "url: redis://h\n    key: k\n    value: v",
    "io.kestra.plugin.redis.Set": "url: redis://h\n    key: k\n    value: v",
    "io.kestra.plugin.redis.string.Get": "url: redis://h\n    key: k",
    "io.kestra.plugin.redis.Get": "url: rediss://h\n    key: k",
    "io.kestra.plugin.redis.string.Delete": "url: redis://h\n    keys: [k]",
    "io.kestra.plugin.redis.Delete": "connId: redis_default\n    keys: [k]",
    "io.kestra.plugin.redis.string.Increment": "url: redis://h\n    key: k",
    "io.kestra.plugin.redis.string.Ttl": "url: unix:///tmp/redis.sock\n    key: k",
    "io.kestra.plugin.redis.list.ListPush": "url: redis://h\n    key: k\n    from: [a]",
    "io.kestra.plugin.redis.ListPush": "url: redis://h\n    key: k\n    from: '[1, 2]'",
    "io.kestra.plugin.redis.list.ListPop": "url: redis://h\n    key: k\n    maxRecords: 1",
    "io.kestra.plugin.redis.ListPop": "url: redis://h\n    key: k\n    maxDuration: PT1S",
    "io.kestra.plugin.redis.pubsub.Publish": "url: redis://h\n    channel: c\n    from: [a]",
    "io.kestra.plugin.redis.Publish": 'url: redis://h\n    channel: c\n    from: "{{ [1, 2] | toJson }}"',
}


def errors_of(body: str) -> list[str]:
    """The errors (as printed) of a one-task flow."""
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(HEADER + body, "flow.yaml")
    return [str(error) for error in caught.value.errors]


@pytest.mark.parametrize("type_name", sorted(MINIMAL))
def test_every_docker_and_redis_type_name_compiles(type_name):
    flow = parse_flow_text(HEADER + f"    type: {type_name}\n    {MINIMAL[type_name]}\n", "flow.yaml")
    assert flow.tasks[0].type == type_name


def test_every_registered_docker_and_redis_type_is_covered():
    ours = {name for name in TASK_TYPES if name.startswith(("io.kestra.plugin.docker", "io.kestra.plugin.redis"))}
    assert ours == set(MINIMAL)


# (case id, task body, the one expected error as printed)
CASES = [
    *(
        (
            name,
            RUN + f"    {name}: {value}\n",
            f"flow.yaml:7:5: tasks[0].{name}: property `{name}` is not supported by yaml2dag yet (remove it)",
        )
        for name, value in (
            ("deviceRequests", "[{driver: nvidia}]"),
            ("config", "'{}'"),
        )
    ),
    (
        "input-file-outside",
        RUN + "    inputFiles: {../a.txt: hello}\n",
        "flow.yaml:7:17: tasks[0].inputFiles: file name `../a.txt` must be a relative path inside the working "
        "directory (no `..`)",
    ),
    (
        "output-files-without-wait",
        RUN + "    wait: false\n    outputFiles: [out.txt]\n",
        "flow.yaml:4:5: tasks[0]: `outputFiles` need `wait: true`: files are collected once the container has exited",
    ),
    (
        "stop-config",
        STOP + "    config: {auths: {}}\n",
        "flow.yaml:7:5: tasks[0].config: property `config` is not supported by yaml2dag yet (remove it)",
    ),
    *(
        (
            f"memory-{name}",
            RUN + f"    memory:\n      {name}: {value}\n",
            f"flow.yaml:8:7: tasks[0].memory.{name}: property `{name}` is not supported by yaml2dag yet (remove it)",
        )
        for name, value in (("kernelMemory", "1MB"), ("memorySwappiness", "10"), ("oomKillDisable", "true"))
    ),
    (
        "warning-on-stderr",
        RUN + "    warningOnStdErr: true\n",
        "flow.yaml:4:5: tasks[0]: `warningOnStdErr: true` is not supported: Airflow has no WARNING state, so stderr "
        "lines are only logged (as in Kestra since 0.22); remove it or set it to false",
    ),
    (
        "port-binding",
        RUN + "    portBindings: ['80:http']\n",
        "flow.yaml:7:20: tasks[0].portBindings[0]: port binding `80:http`: `http` is not a port number (1-65535)",
    ),
    (
        "port-protocol",
        RUN + "    portBindings: ['80:80/icmp']\n",
        "flow.yaml:7:20: tasks[0].portBindings[0]: port binding `80:80/icmp`: protocol must be one of tcp, udp, sctp",
    ),
    (
        "size",
        RUN + "    shmSize: 12XB\n",
        "flow.yaml:7:14: tasks[0].shmSize: `12XB` is not a size such as 512MB, 1GB, 64KB or a number of bytes",
    ),
    (
        "pull-policy",
        RUN + "    pullPolicy: SOMETIMES\n",
        "flow.yaml:7:17: tasks[0].pullPolicy: must be one of IF_NOT_PRESENT, ALWAYS, NEVER",
    ),
    (
        "wait",
        RUN + "    wait: maybe\n",
        "flow.yaml:7:11: tasks[0].wait: must be true or false (or an expression rendering to one)",
    ),
    (
        "cpus",
        RUN + "    cpu: {cpus: 0}\n",
        "flow.yaml:7:17: tasks[0].cpu.cpus: must be a positive number (or an expression rendering to one)",
    ),
    (
        "no-server",
        GET,
        "flow.yaml:4:5: tasks[0]: set `url` (e.g. redis://:password@host:6379/0) or `connId` (an Airflow connection)",
    ),
    (
        "url-scheme",
        GET + "    url: http://localhost:6379\n",
        "flow.yaml:7:10: tasks[0].url: must be a Redis URL such as redis://:password@host:6379/0 (or rediss://, unix://)",
    ),
    (
        "pop-unbounded",
        POP,
        "flow.yaml:4:5: tasks[0]: maxDuration or maxRecords must be set to avoid an infinite loop",
    ),
    (
        "push-storage-uri",
        PUSH + "    from: kestra:///company/team/file.ion\n",
        "flow.yaml:8:11: tasks[0].from: a string `from` must be (or render to) a JSON list; yaml2dag has no Kestra "
        "internal storage, so kestra:// file URIs are not supported",
    ),
    (
        "keep-ttl",
        SET + "    options: {keepTtl: true, expirationDuration: PT1M}\n",
        "flow.yaml:9:14: tasks[0].options: `keepTtl` cannot be combined with `expirationDuration` or `expirationDate`",
    ),
    (
        "serde",
        SET + "    serdeType: XML\n",
        "flow.yaml:9:16: tasks[0].serdeType: must be one of STRING, JSON",
    ),
]


@pytest.mark.parametrize(("body", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_refused_properties_are_located_errors(body, expected):
    assert errors_of(body) == [expected]


def test_dynamic_properties_are_checked_as_expressions():
    errors = errors_of(SET.replace("key: k", "key: '{{ broken'"))
    assert len(errors) == 1 and errors[0].startswith("flow.yaml:7:13: tasks[0].key: invalid expression:")


def test_warning_on_stderr_false_is_what_yaml2dag_does_anyway():
    flow = parse_flow_text(HEADER + RUN + "    warningOnStdErr: false\n", "flow.yaml")
    assert flow.tasks[0].warningOnStdErr is False


def test_compiling_a_dag_imports_neither_docker_nor_redis():
    """The runtime clients are imported when a task runs, never when Airflow parses the DAG."""
    script = textwrap.dedent(
        f"""
        import sys
        from yaml2dag.compiler import compile_flow
        from yaml2dag.flowfile import read_flow

        dag = compile_flow(read_flow({str(SEED_FLOW)!r}))
        assert {{"start", "set", "stop"}} <= set(dag.task_dict), dag.task_dict
        loaded = sorted(name for name in ("docker", "redis") if name in sys.modules)
        print(",".join(loaded) or "none")
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "none"
