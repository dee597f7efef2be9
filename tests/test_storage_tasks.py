"""Kestra's storage tasks and file functions on real Airflow: files written by one task, read by the next."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.airflow

PIPELINE = """
id: files_pipeline
namespace: tests.storage
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    extension: .txt
    content: |
      one
      two
      three
      four
      five
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.write.uri }}"
  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{ outputs.write.uri }}"
    rows: 2
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: "{{ outputs.split.uris }}"
    separator: "--\\n"
    extension: .txt
  - id: reverse
    type: io.kestra.core.tasks.storages.Reverse
    from: "{{ outputs.write.uri }}"
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ read(outputs.concat.uri) }}|{{ fileSize(outputs.write.uri) }}|{{ fileExists(outputs.write.uri) }}|
      {{- isFileEmpty(outputs.write.uri) }}|{{ read(outputs.reverse.uri) }}
  - id: delete
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{ outputs.split.uris[0] }}"
  - id: gone
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fileExists(outputs.split.uris[0]) }}"
"""


def check_pipeline(result):
    """The outputs of a run of PIPELINE (shared with the S3 test)."""
    assert result.state == "success", {k: v.log_text()[-600:] for k, v in result.tasks.items() if v.state != "success"}
    outputs = {task_id: task.outputs for task_id, task in result.tasks.items()}
    uri = outputs["write"]["uri"]
    assert uri.startswith("kestra:///tests/storage/files_pipeline/executions/")
    assert "/tasks/write/" in uri and uri.endswith(".txt")
    assert outputs["size"] == {"size": len("one\ntwo\nthree\nfour\nfive\n")}
    assert len(outputs["split"]["uris"]) == 3
    assert all(part.endswith(".txt") for part in outputs["split"]["uris"])
    shown = outputs["show"]["value"]
    assert shown == ("one\ntwo\n--\nthree\nfour\n--\nfive\n--\n|24|true|false|five\nfour\nthree\ntwo\none\n")
    assert outputs["delete"] == {"uri": outputs["split"]["uris"][0], "deleted": True}
    assert outputs["gone"]["value"] == "false"


def test_files_cross_tasks_write_split_concat_read(run_flow):
    check_pipeline(run_flow(PIPELINE))
