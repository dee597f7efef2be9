"""KV store across runs, flow `outputs`, and FILE inputs, on real Airflow."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow


def failures(result: Any) -> dict[str, str]:
    return {task_id: task.log_text()[-800:] for task_id, task in result.tasks.items() if task.state != "success"}


def test_kv_set_in_one_run_is_read_in_the_next(run_flow: Any) -> None:
    key = f"k{uuid.uuid4().hex[:8]}"
    setter = f"""
    id: kv_set
    namespace: tests.kv.child
    tasks:
      - id: set_text
        type: io.kestra.plugin.core.kv.Set
        key: {key}
        value: hello
      - id: set_number
        type: io.kestra.plugin.core.kv.Set
        key: {key}_n
        value: "41"
        kvType: NUMBER
      - id: set_parent
        type: io.kestra.plugin.core.kv.Set
        namespace: tests.kv
        key: {key}_p
        value: {{"a": [1, 2]}}
      - id: set_expired
        type: io.kestra.plugin.core.kv.Set
        key: {key}_gone
        value: old
        ttl: PT0S
      - id: no_overwrite
        type: io.kestra.plugin.core.kv.Set
        key: {key}
        value: other
        overwrite: false
        allowFailure: true
    """
    first = run_flow(setter)
    assert first.tasks["no_overwrite"].state == "warning"
    assert "Key already exists" in first.tasks["no_overwrite"].log_text()
    reader = f"""
    id: kv_get
    namespace: tests.kv.child
    tasks:
      - id: get
        type: io.kestra.plugin.core.kv.Get
        key: {key}
      - id: missing
        type: io.kestra.plugin.core.kv.Get
        key: {key}_none
      - id: keys
        type: io.kestra.plugin.core.kv.GetKeys
        prefix: {key}
      - id: show
        type: io.kestra.plugin.core.debug.Return
        format: >-
          {{{{ kv('{key}') }}}} {{{{ kv('{key}_n') + 1 }}}} {{{{ kv('{key}_p').a[1] }}}}
          {{{{ kv('{key}_gone', errorOnMissing=false) ?? 'expired' }}}}
      - id: delete
        type: io.kestra.plugin.core.kv.Delete
        key: {key}
      - id: after
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ kv('{key}', errorOnMissing=false) ?? 'deleted' }}}}"
    """
    second = run_flow(reader)
    assert second.state == "success", failures(second)
    assert second.tasks["get"].outputs == {"value": "hello"}
    assert second.tasks["missing"].outputs is None
    assert second.tasks["keys"].outputs == {"keys": [key, f"{key}_n"]}
    assert second.tasks["show"].outputs == {"value": "hello 42 2 expired"}
    assert second.tasks["delete"].outputs == {"deleted": True}
    assert second.tasks["after"].outputs == {"value": "deleted"}


def test_kv_values_are_airflow_variables_under_a_prefix(run_flow: Any) -> None:
    from airflow.models.variable import Variable

    key = f"v{uuid.uuid4().hex[:8]}"
    result = run_flow(
        f"""
        id: kv_var
        namespace: tests.kv
        tasks:
          - id: set
            type: io.kestra.plugin.core.kv.Set
            key: {key}
            value: "2026-01-02"
            kvType: DATE
        """
    )
    assert result.state == "success", failures(result)
    stored = json.loads(Variable.get(f"kestra.kv/tests.kv/{key}"))
    assert stored["type"] == "DATE" and stored["value"] == "2026-01-02" and stored["expirationDate"] is None


def test_flow_outputs_are_rendered_at_the_end(run_flow: Any) -> None:
    result = run_flow(
        """
        id: with_outputs
        namespace: tests.outputs
        tasks:
          - id: write
            type: io.kestra.plugin.core.storage.Write
            content: "{{ 6 * 7 }}"
            extension: .txt
        outputs:
          - id: answer
            type: INT
            value: "{{ read(outputs.write.uri) }}"
          - id: file
            type: FILE
            value: "{{ outputs.write.uri }}"
          - id: label
            type: STRING
            value: "{{ flow.id }}"
        """
    )
    assert result.state == "success", failures(result)
    assert result.outputs["answer"] == 42
    assert result.outputs["label"] == "with_outputs"
    assert result.outputs["file"] == result.tasks["write"].outputs["uri"]
    document = result.to_json()
    assert document["outputs"] == result.outputs


def test_a_required_output_that_cannot_render_fails_the_flow(run_flow: Any) -> None:
    result = run_flow(
        """
        id: bad_outputs
        namespace: tests.outputs
        tasks:
          - id: ok
            type: io.kestra.plugin.core.debug.Return
            format: x
        outputs:
          - id: broken
            type: INT
            value: "{{ outputs.ok.value }}"
        """
    )
    assert result.state == "failed"
    assert "output `broken` cannot be rendered" in result.state_task.log_text()


FILE_FLOW = """
id: file_input
namespace: tests.inputs
inputs:
  - id: data
    type: FILE
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.data }}|{{ read(inputs.data) }}"
  - id: again
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.data }}"
"""


def test_a_file_input_from_a_local_path_is_read_with_read(run_flow: Any, tmp_path: Path) -> None:
    from yaml2dag.flowfile import read_flow
    from yaml2dag.runner import coerce_inputs

    local = tmp_path / "rows.csv"
    local.write_text("a,b\n1,2\n")
    flow_path = tmp_path / "file_input.yaml"
    flow_path.write_text(FILE_FLOW)
    inputs = coerce_inputs(read_flow(flow_path), {"data": f"@{local}"})
    result = run_flow(flow_path, inputs)
    assert result.state == "success", failures(result)
    uri, text = result.tasks["show"].outputs["value"].split("|")
    assert uri.startswith("kestra:///tests/inputs/file_input/executions/") and uri.endswith("/inputs/data/rows.csv")
    assert text == "a,b\n1,2\n"
    assert result.tasks["again"].outputs["value"] == uri


def test_a_file_input_over_http_is_downloaded_into_storage(run_flow: Any, tmp_path: Path) -> None:
    (tmp_path / "served.txt").write_text("served over http")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/served.txt"
        result = run_flow(FILE_FLOW, {"data": url})
    finally:
        server.shutdown()
    assert result.state == "success", failures(result)
    assert result.tasks["show"].outputs["value"].endswith("/inputs/data/served.txt|served over http")


def test_file_inputs_outside_the_allowed_roots_or_missing_fail_clearly(
    run_flow: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    monkeypatch.setenv("AIRFLOW__YAML2DAG__FILE_INPUT_ROOTS", str(tmp_path / "allowed"))
    refused = run_flow(FILE_FLOW, {"data": secret.as_uri()})
    assert refused.state == "failed"
    assert "outside the folders FILE inputs may read" in refused.tasks["show"].log_text()
    missing = run_flow(FILE_FLOW, {"data": "kestra:///tests/inputs/file_input/executions/x/inputs/data/none.csv"})
    assert missing.state == "failed"
    assert "no such file in the storage" in missing.tasks["show"].log_text()
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "ok.txt").write_text("fine")
    allowed = run_flow(FILE_FLOW, {"data": (tmp_path / "allowed" / "ok.txt").as_uri()})
    assert allowed.state == "success", failures(allowed)
    assert allowed.tasks["show"].outputs["value"].endswith("|fine")


def test_yaml2dag_run_uploads_a_local_file_and_prints_the_flow_outputs(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    data = tmp_path / "input.txt"
    data.write_text("line one\nline two\n")
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        """
id: cli_files
namespace: tests.cli
inputs:
  - id: data
    type: FILE
tasks:
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ inputs.data }}"
outputs:
  - id: bytes
    type: INT
    value: "{{ outputs.size.size }}"
  - id: first
    type: STRING
    value: "{{ read(inputs.data) | split('\\n') | first }}"
"""
    )
    clean = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    process = subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", "run", str(flow), "--input", f"data=@{data}", "--json"],
        capture_output=True,
        text=True,
        env=clean,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    report = json.loads(process.stdout)
    assert report["outputs"] == {"bytes": 18, "first": "line one"}
    missing = subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", "run", str(flow), "--input", f"data=@{tmp_path / 'nope.txt'}"],
        capture_output=True,
        text=True,
        env=clean,
        timeout=300,
    )
    assert missing.returncode != 0
    assert "no such local file" in missing.stdout + missing.stderr
