"""WorkingDirectory and git Clone on real Airflow: children share one folder, synced through the storage."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.loader import load_yaml
from yaml2dag.validation import parse_flow

pytestmark = pytest.mark.airflow

PROCESS = "taskRunner: {type: io.kestra.plugin.core.runner.Process}"


def _git(*arguments: str, cwd: Path) -> None:
    subprocess.run(["git", *arguments], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    """A bare repository with a `main` branch (README.md, data/values.txt) and a `dev` branch."""
    source = tmp_path / "source"
    source.mkdir()
    _git("init", "-q", "-b", "main", cwd=source)
    _git("config", "user.email", "t@example.com", cwd=source)
    _git("config", "user.name", "t", cwd=source)
    (source / "README.md").write_text("hello\n")
    (source / "data").mkdir()
    (source / "data" / "values.txt").write_text("3\n4\n5\n")
    _git("add", ".", cwd=source)
    _git("commit", "-q", "-m", "first", cwd=source)
    _git("checkout", "-q", "-b", "dev", cwd=source)
    (source / "data" / "values.txt").write_text("10\n20\n")
    _git("commit", "-q", "-am", "dev values", cwd=source)
    _git("checkout", "-q", "main", cwd=source)
    bare = tmp_path / "repo.git"
    _git("clone", "-q", "--bare", str(source), str(bare), cwd=tmp_path)
    return bare


@pytest.fixture
def git_daemon(bare_repo: Path) -> Iterator[str]:
    """`git daemon` serving the bare repository on a free loopback port; yields its git:// URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={bare_repo.parent}", str(bare_repo.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"git://127.0.0.1:{port}/{bare_repo.name}"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_clone_then_python_reads_the_clone_and_uploads_output_files(run_flow, bare_repo):
    result = run_flow(
        f"""
        id: wdclone
        namespace: tests.scripts
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            inputFiles:
              factor.txt: "10"
            tasks:
              - id: clone
                type: io.kestra.plugin.git.Clone
                url: file://{bare_repo}
                directory: repo
              - id: compute
                type: io.kestra.plugin.scripts.python.Script
                {PROCESS}
                outputFiles: ["total.txt"]
                script: |
                  from kestra import Kestra
                  factor = int(open("factor.txt").read())
                  total = sum(int(line) for line in open("repo/data/values.txt")) * factor
                  open("total.txt", "w").write(str(total))
                  Kestra.outputs({{"total": total}})
              - id: check
                type: io.kestra.plugin.scripts.shell.Commands
                {PROCESS}
                commands:
                  - cat total.txt repo/README.md
          - id: read
            type: io.kestra.plugin.core.log.Log
            message:
              - "total {{{{ outputs.compute.vars.total }}}}"
              - "file {{{{ read(outputs.compute.outputFiles['total.txt']) }}}}"
        """
    )
    assert states(result) == {"wd": "success", "clone": "success", "compute": "success", "check": "success",
                              "read": "success"}  # fmt: skip
    assert result.tasks["clone"].outputs == {"directory": "repo"}
    assert "120hello" in result.tasks["check"].log_text()
    assert "total 120\nfile 120" in result.tasks["read"].log_text()


def test_clone_a_branch_from_a_git_daemon(run_flow, git_daemon):
    result = run_flow(
        f"""
        id: wddaemon
        namespace: tests.scripts
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: clone
                type: io.kestra.plugin.git.Clone
                url: {git_daemon}
                branch: dev
              - id: sum
                type: io.kestra.plugin.scripts.shell.Commands
                {PROCESS}
                commands:
                  - echo "::{{\\"outputs\\":{{\\"lines\\":$(wc -l < data/values.txt)}}}}::"
                  - test "$(git rev-list --count HEAD)" = 1
        """
    )
    assert states(result) == {"wd": "success", "clone": "success", "sum": "success"}
    assert result.tasks["sum"].outputs["vars"] == {"lines": 2}


def test_clone_failure_is_clear_and_the_password_is_never_logged(run_flow):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_flow(
        f"""
        id: clonefail
        namespace: tests.scripts
        tasks:
          - id: clone
            type: io.kestra.plugin.git.Clone
            url: http://127.0.0.1:{port}/nothing.git
            username: me
            password: hunter2-Secret
        """
    )
    assert states(result) == {"clone": "failed"}
    log = result.tasks["clone"].log_text()
    assert f"git clone of http://127.0.0.1:{port}/nothing.git failed" in log
    assert "hunter2-Secret" not in log


def test_working_directory_holds_only_runnable_tasks():
    text = """id: bad
namespace: tests.scripts
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: hi
"""
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    assert "`seq` is a flowable task: a WorkingDirectory only holds runnable tasks" in str(caught.value)


@pytest.mark.parametrize("refused", ["cache", "outputFiles"])
def test_working_directory_refuses_what_it_does_not_support(refused):
    text = f"""id: bad
namespace: tests.scripts
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    {refused}: {{enabled: true}}
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
"""
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    assert f"flow.yaml:6:5: tasks[0].{refused}: property `{refused}` is not supported by yaml2dag yet" in str(
        caught.value
    )


def test_local_files_put_inputs_in_the_shared_folder_and_send_outputs_to_the_storage(run_flow):
    # Kestra's legacy LocalFiles in a WorkingDirectory: inputs (text and a storage file) reach the
    # script beside it, the script's file comes back out as `uris`.
    result = run_flow(
        f"""
        id: localfiles
        namespace: tests.scripts
        tasks:
          - id: source
            type: io.kestra.plugin.core.storage.Write
            content: "4\\n5\\n"
            extension: .txt
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: put
                type: io.kestra.plugin.core.storage.LocalFiles
                inputs:
                  numbers.txt: "{{{{ outputs.source.uri }}}}"
                  conf/factor.txt: "3"
              - id: compute
                type: io.kestra.plugin.scripts.shell.Commands
                {PROCESS}
                commands:
                  - mkdir -p out && sum=$(( $(head -1 numbers.txt) + $(tail -1 numbers.txt) ))
                  - echo $(( sum * $(cat conf/factor.txt) )) > out/total.txt
              - id: get
                type: io.kestra.plugin.core.storage.LocalFiles
                outputs: ["out/*.txt"]
          - id: read
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ read(outputs.get.uris['out/total.txt']) | trim }}}}"
        """
    )
    assert states(result) == {"source": "success", "wd": "success", "put": "success", "compute": "success",
                              "get": "success", "read": "success"}  # fmt: skip
    assert list(result.tasks["get"].outputs["uris"]) == ["out/total.txt"]
    assert result.tasks["read"].outputs == {"value": "27"}
