"""Script tasks on the Process runner, run on real Airflow: outputs, failures, timeouts, hostile output."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.loader import load_yaml
from yaml2dag.validation import parse_flow

pytestmark = pytest.mark.airflow

PROCESS = "taskRunner: {type: io.kestra.plugin.core.runner.Process}"


def test_python_script_outputs_reach_a_later_task(run_flow):
    result = run_flow(
        f"""
        id: pyvars
        namespace: tests.scripts
        tasks:
          - id: compute
            type: io.kestra.plugin.scripts.python.Script
            {PROCESS}
            env:
              FACTOR: "7"
            script: |
              import os
              from kestra import Kestra
              print("working in", os.getcwd() == "{{{{ workingDir }}}}")
              Kestra.outputs({{"answer": 6 * int(os.environ["FACTOR"]), "names": ["a", "b"]}})
              Kestra.counter("rows", 3, {{"table": "t"}})
              print('::{{"outputs": {{"raw": true}}}}::')
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "answer={{{{ outputs.compute.vars.answer }}}} raw={{{{ outputs.compute.vars.raw }}}}"
        """
    )
    assert states(result) == {"compute": "success", "log": "success"}
    assert result.tasks["compute"].outputs == {
        "exitCode": 0,
        "vars": {"answer": 42, "names": ["a", "b"], "raw": True},
    }
    log = result.tasks["compute"].log_text()
    assert "working in True" in log
    assert 'Metric counter rows = 3 {"table": "t"}' in log
    assert "answer=42 raw=true" in result.tasks["log"].log_text()


def test_shell_failure_exit_code_stderr_tail_and_errors(run_flow):
    result = run_flow(
        f"""
        id: shfail
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            commands:
              - echo '::{{"outputs":{{"before":"fail"}}}}::'
              - echo "something broke" >&2
              - exit 3
              - echo never
        errors:
          - id: alert
            type: io.kestra.plugin.core.log.Log
            message: "sh failed with {{{{ outputs.sh.exitCode }}}}"
        """
    )
    assert states(result) == {"sh": "failed", "alert": "success"}
    assert result.tasks["sh"].outputs == {"exitCode": 3, "vars": {"before": "fail"}}
    log = result.tasks["sh"].log_text()
    assert "Command failed with exit code 3; stderr ends with:\nsomething broke" in log
    assert "never" not in log
    assert "sh failed with 3" in result.tasks["alert"].log_text()


def test_fail_fast_false_runs_every_command(run_flow):
    result = run_flow(
        f"""
        id: nofailfast
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Script
            {PROCESS}
            failFast: false
            beforeCommands:
              - false
            script: |
              echo "still ran"
        """
    )
    assert states(result) == {"sh": "success"}
    assert "still ran" in result.tasks["sh"].log_text()


def test_warning_on_stderr_ends_warning_only_when_set(run_flow):
    result = run_flow(
        f"""
        id: stderrwarn
        namespace: tests.scripts
        tasks:
          - id: warns
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            warningOnStdErr: true
            commands: ["echo careful >&2"]
          - id: quiet
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            commands: ["echo careful >&2"]
        """
    )
    assert states(result) == {"warns": "warning", "quiet": "success"}
    assert "warningOnStdErr is set: it ends WARNING" in result.tasks["warns"].log_text()
    assert "ends WARNING" not in result.tasks["quiet"].log_text()
    assert "`warns` ended WARNING" in result.state_task.log_text()
    assert "`quiet`" not in result.state_task.log_text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_timeout_kills_the_whole_process_group(run_flow, tmp_path):
    pids = tmp_path / "pids"
    result = run_flow(
        f"""
        id: sleeper
        namespace: tests.scripts
        tasks:
          - id: sleep
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            timeout: PT3S
            commands:
              - sleep 600 &
              - echo $! > {pids}.tmp
              - echo $$ >> {pids}.tmp
              - mv {pids}.tmp {pids}
              - sleep 600
        """
    )
    assert states(result) == {"sleep": "failed"}
    assert "Timeout" in result.tasks["sleep"].log_text()
    recorded = [int(pid) for pid in pids.read_text().split()]
    assert len(recorded) == 2
    assert [pid for pid in recorded if _alive(pid)] == []


def test_background_process_left_by_a_finished_script_is_killed(run_flow, tmp_path):
    pid_file = tmp_path / "pid"
    result = run_flow(
        f"""
        id: background
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            commands:
              - sleep 600 &
              - echo $! > {pid_file}
              - echo done
        """
    )
    assert states(result) == {"sh": "success"}
    assert not _alive(int(pid_file.read_text()))


def test_default_runner_setting(run_flow, monkeypatch):
    flow = """
        id: defaultrunner
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            commands: ["echo in $WORKING_DIR"]
        """
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DEFAULT_TASK_RUNNER", "process")
    result = run_flow(flow)
    assert states(result) == {"sh": "success"}
    assert "(Process runner)" in result.tasks["sh"].log_text()
    monkeypatch.setenv("AIRFLOW__YAML2DAG__DEFAULT_TASK_RUNNER", "kubernetes")
    result = run_flow(flow)
    assert states(result) == {"sh": "failed"}
    assert "default_task_runner is `kubernetes`: use docker or process" in result.tasks["sh"].log_text()


def test_plugin_defaults_choose_the_runner(run_flow):
    result = run_flow(
        """
        id: pluginrunner
        namespace: tests.scripts
        pluginDefaults:
          - type: io.kestra.plugin.scripts
            values:
              taskRunner:
                type: io.kestra.plugin.core.runner.Process
        tasks:
          - id: py
            type: io.kestra.plugin.scripts.python.Commands
            beforeCommands: ["echo '{\\"x\\": 1}' > data.json"]
            commands:
              - python3 -c "import json; from kestra import Kestra; Kestra.outputs(json.load(open('data.json')))"
        """
    )
    assert states(result) == {"py": "success"}
    assert result.tasks["py"].outputs["vars"] == {"x": 1}


def test_hostile_output_non_utf8_long_lines_malformed_markers(run_flow):
    result = run_flow(
        f"""
        id: hostile
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Script
            {PROCESS}
            script: |
              printf 'caf\\351 \\377\\376 ok\\n'
              echo '::{{"outputs": nope}}::'
              echo '::{{not json}}::'
              echo '::{{"outputs": 5}}::'
              head -c 3000000 /dev/zero | tr '\\0' 'x'; echo
              printf 'last line without newline'
        """
    )
    assert states(result) == {"sh": "success"}
    assert result.tasks["sh"].outputs == {"exitCode": 0, "vars": {}}
    log = result.tasks["sh"].log_text()
    assert "caf\ufffd \ufffd\ufffd ok" in log
    assert log.count("Invalid Kestra line ignored") == 3
    assert "x" * 10_000 + "… [1048596 characters]" in log, log[-400:]
    assert "last line without newline" in log


def test_one_gigabyte_of_stdout_is_streamed_with_bounded_memory(run_flow):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run_flow(
        f"""
        id: bigout
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            commands:
              - head -c 1073741824 /dev/zero | tr '\\0' 'y' | fold -w 1048576; echo
              - echo '::{{"outputs":{{"done":true}}}}::'
        """
    )
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert states(result) == {"sh": "success"}
    assert result.tasks["sh"].outputs["vars"] == {"done": True}
    assert grown_kib < 200 * 1024, f"peak memory grew by {grown_kib} KiB for 1 GiB of output"


def test_node_script_on_process_runner(run_flow):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    result = run_flow(
        f"""
        id: nodescript
        namespace: tests.scripts
        tasks:
          - id: js
            type: io.kestra.plugin.scripts.node.Script
            {PROCESS}
            script: |
              console.log('::' + JSON.stringify({{outputs: {{sum: 1 + 2}}}}) + '::');
        """
    )
    assert states(result) == {"js": "success"}
    assert result.tasks["js"].outputs["vars"] == {"sum": 3}


def test_unknown_interpreter_is_a_clear_failure(run_flow):
    result = run_flow(
        f"""
        id: badinterp
        namespace: tests.scripts
        tasks:
          - id: sh
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            interpreter: ["/bin/no-such-shell", "-c"]
            commands: ["echo hi"]
        """
    )
    assert states(result) == {"sh": "failed"}
    assert "interpreter `/bin/no-such-shell` not found on the Airflow worker" in result.tasks["sh"].log_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("targetOS: WINDOWS", "`targetOS: WINDOWS` is not supported by yaml2dag yet"),
        ("dependencyCacheEnabled: false", "property `dependencyCacheEnabled` is not supported by yaml2dag yet"),
        ('pythonVersion: "three"', "pythonVersion `three` is not a Python version such as 3.12"),
        (
            "namespaceFiles: {enabled: true, namespaces: [other]}",
            "property `namespaces` is not supported by yaml2dag yet",
        ),
        ("taskRunner: {type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes}", "taskRunner"),
        (
            "taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker, deviceRequests: []}",
            "property `deviceRequests` is not supported by yaml2dag yet",
        ),
    ],
)
def test_unsupported_properties_are_located(extra, message):
    text = f"""id: bad
namespace: tests.scripts
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    script: print(1)
    {extra}
"""
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    rendered = str(caught.value)
    assert message in rendered
    assert "flow.yaml:7:" in rendered


def test_cli_tasks_are_refused_as_not_supported_yet():
    text = """id: bad
namespace: tests.scripts
tasks:
  - id: az
    type: io.kestra.plugin.azure.cli.AzCLI
    commands: [az group list]
"""
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    assert "task type `io.kestra.plugin.azure.cli.AzCLI` is not supported by yaml2dag yet" in str(caught.value)


def test_input_files_and_output_files_read_by_the_next_task(run_flow):
    result = run_flow(
        f"""
        id: files
        namespace: tests.scripts
        tasks:
          - id: make
            type: io.kestra.plugin.scripts.python.Script
            {PROCESS}
            inputFiles:
              data/names.txt: |
                ada
                grace
            outputFiles:
              - "*.csv"
              - out/**/*.json
            script: |
              import json, os
              names = open("data/names.txt").read().split()
              with open("names.csv", "w") as f:
                  f.write("name\\n" + "\\n".join(names) + "\\n")
              os.makedirs("out/deep", exist_ok=True)
              json.dump({{"count": len(names)}}, open("out/deep/summary.json", "w"))
          - id: use
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            inputFiles:
              copy.csv: "{{{{ outputs.make.outputFiles['names.csv'] }}}}"
              inline.txt: "made {{{{ outputs.make.outputFiles | length }}}} files"
            commands:
              - cat copy.csv inline.txt
          - id: read
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ read(outputs.make.outputFiles['out/deep/summary.json']) }}}}"
        """
    )
    assert states(result) == {"make": "success", "use": "success", "read": "success"}
    files = result.tasks["make"].outputs["outputFiles"]
    assert sorted(files) == ["names.csv", "out/deep/summary.json"]
    assert all(uri.startswith("kestra:///tests/scripts/files/executions/") for uri in files.values())
    log = result.tasks["use"].log_text()
    assert "name\nada\ngrace\nmade 2 files" in log
    assert '{"count": 2}' in result.tasks["read"].log_text()


def test_input_file_names_must_stay_inside_the_working_directory():
    text = """id: bad
namespace: tests.scripts
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      ../escape.txt: nope
    commands: [ls]
"""
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    assert "file name `../escape.txt` must be a relative path inside the working directory" in str(caught.value)


def test_terraform_and_ansible_cli_run_their_commands(run_flow):
    result = run_flow(
        f"""
        id: clitasks
        namespace: tests.scripts
        tasks:
          - id: tf
            type: io.kestra.plugin.terraform.cli.TerraformCLI
            {PROCESS}
            inputFiles:
              main.tf: 'output "x" {{ value = 1 }}'
            beforeCommands: ["test -f main.tf"]
            commands: ["echo '::{{\\"outputs\\":{{\\"planned\\":1}}}}::'"]
          - id: ansible
            type: io.kestra.plugin.ansible.cli.AnsibleCLI
            {PROCESS}
            commands: ["echo playbook done"]
        """
    )
    assert states(result) == {"tf": "success", "ansible": "success"}
    assert result.tasks["tf"].outputs["vars"] == {"planned": 1}
    assert "playbook done" in result.tasks["ansible"].log_text()


def test_namespace_files_are_copied_into_the_working_directory(run_flow, airflow_db):
    from yaml2dag.storage import namespace_file_uri, open_uri_write

    for path, content in {"queries/a.sql": b"select 1", "queries/b.sql": b"select 2", "main.py": b"print(1)"}.items():
        with open_uri_write(namespace_file_uri("tests.nsfiles", path)) as target:
            target.write(content)
    with open_uri_write(namespace_file_uri("tests.other", "secret.txt")) as target:
        target.write(b"not ours")
    result = run_flow(
        f"""
        id: nsfiles
        namespace: tests.nsfiles
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            namespaceFiles:
              enabled: true
              include: ["queries/**"]
              exclude: ["**/b.sql"]
            tasks:
              - id: ls
                type: io.kestra.plugin.scripts.shell.Commands
                {PROCESS}
                namespaceFiles: {{include: ["*.py"]}}
                commands: ["find . -type f -not -name 'script_*' | sort | tr '\\n' ' '"]
        """
    )
    assert states(result) == {"wd": "success", "ls": "success"}
    log = result.tasks["ls"].log_text()
    assert "./main.py ./queries/a.sql " in log
    assert "b.sql" not in log and "secret.txt" not in log


@pytest.fixture
def moto_s3() -> Iterator[str]:
    """A moto S3 server (server mode) on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_aws_cli_gets_credentials_region_and_endpoint_from_its_properties(run_flow, moto_s3):
    python = sys.executable
    result = run_flow(
        f"""
        id: awscli
        namespace: tests.scripts
        tasks:
          - id: aws
            type: io.kestra.plugin.aws.cli.AwsCLI
            {PROCESS}
            accessKeyId: AKIDTEST
            secretKeyId: s3cret-Key-Value
            region: eu-west-3
            endpointOverride: {moto_s3}
            commands:
              - echo "key=$AWS_SECRET_ACCESS_KEY format=$AWS_DEFAULT_OUTPUT"
              - >-
                {python} -c "import boto3, json; s3 = boto3.client('s3');
                s3.create_bucket(Bucket='made-by-kestra',
                CreateBucketConfiguration={{'LocationConstraint': 'eu-west-3'}});
                names = [b['Name'] for b in s3.list_buckets()['Buckets']];
                print('::' + json.dumps({{'outputs': {{'buckets': names}}}}) + '::')"
        """
    )
    assert states(result) == {"aws": "success"}
    # The S3 server is shared by the session: other tests' buckets may be there too.
    assert "made-by-kestra" in result.tasks["aws"].outputs["vars"]["buckets"]
    log = result.tasks["aws"].log_text()
    assert "key=*** format=json" in log
    assert "s3cret-Key-Value" not in log
