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


def test_items_tasks_filter_deduplicate_and_purge(run_flow):
    result = run_flow(
        """
        id: items
        namespace: tests.storage
        tasks:
          - id: rows
            type: io.kestra.plugin.core.storage.Write
            content: |
              {id:1,name:"a",amount:10}
              {id:2,name:"b",amount:200}
              {id:1,name:"a2",amount:30}
              {id:3,name:"c",amount:400}
          - id: big
            type: io.kestra.plugin.core.storage.FilterItems
            from: "{{ outputs.rows.uri }}"
            filterCondition: "{{ amount > 100 }}"
          - id: small
            type: io.kestra.core.tasks.storages.FilterItems
            from: "{{ outputs.rows.uri }}"
            filterCondition: "{{ amount > 100 }}"
            filterType: EXCLUDE
          - id: broken
            type: io.kestra.plugin.core.storage.FilterItems
            from: "{{ outputs.rows.uri }}"
            filterCondition: "{{ nope > 1 }}"
            errorOrNullBehavior: EXCLUDE
          - id: dedup
            type: io.kestra.plugin.core.storage.DeduplicateItems
            from: "{{ outputs.rows.uri }}"
            expr: "{{ id }}"
          - id: parts
            type: io.kestra.plugin.core.storage.Split
            from: "{{ outputs.rows.uri }}"
            partitions: 2
          - id: by_size
            type: io.kestra.plugin.core.storage.Split
            from: "{{ outputs.rows.uri }}"
            bytes: 20B
          - id: show
            type: io.kestra.plugin.core.debug.Return
            format: >-
              {{ fromIon(read(outputs.big.uri), allRows=true) | jq('map(.id)') | first | json }}
              {{ fromIon(read(outputs.small.uri), allRows=true) | length }}
              {{ fromIon(read(outputs.dedup.uri), allRows=true) | jq('map(.name)') | first | json }}
              {{ fromIon(read(outputs.parts.uris[1])).name }}
          - id: purge
            type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles
          - id: after
            type: io.kestra.plugin.core.debug.Return
            format: "{{ fileExists(outputs.rows.uri) }}"
        """
    )
    assert result.state == "success", {k: v.log_text()[-600:] for k, v in result.tasks.items() if v.state != "success"}
    outputs = {task_id: task.outputs for task_id, task in result.tasks.items()}
    assert outputs["big"]["processedItemsTotal"] == 4 and outputs["big"]["droppedItemsTotal"] == 2
    assert outputs["small"]["droppedItemsTotal"] == 2
    assert outputs["broken"]["droppedItemsTotal"] == 4
    assert (outputs["dedup"]["numKeys"], outputs["dedup"]["droppedItemsTotal"]) == (3, 1)
    assert len(outputs["parts"]["uris"]) == 2
    assert len(outputs["by_size"]["uris"]) == 4
    assert outputs["show"]["value"] == '[2,3] 2 ["b","a2","c"] b'
    assert len(outputs["purge"]["uris"]) == 11  # rows, big, small, broken, dedup, 2 parts, 4 by size
    assert outputs["after"]["value"] == "false"


def test_a_missing_file_and_a_traversal_fail_the_task_with_the_uri(run_flow):
    result = run_flow(
        """
        id: bad_files
        namespace: tests.storage
        tasks:
          - id: missing
            type: io.kestra.plugin.core.storage.Size
            uri: kestra:///tests/storage/bad_files/executions/x/tasks/t/r/none.txt
            allowFailure: true
          - id: climb
            type: io.kestra.plugin.core.storage.Concat
            files: ["kestra:///tests/../../../../etc/passwd"]
            allowFailure: true
          - id: outside
            type: io.kestra.plugin.core.debug.Return
            format: "{{ read('file:///etc/passwd') }}"
            allowFailure: true
          - id: other_scheme
            type: io.kestra.plugin.core.storage.Delete
            uri: s3://bucket/key
            allowFailure: true
        """
    )
    logs = {task_id: task.log_text() for task_id, task in result.tasks.items()}
    assert {task.state for task in result.tasks.values()} == {"warning"}
    assert "kestra:///tests/storage/bad_files/executions/x/tasks/t/r/none.txt`: no such file" in logs["missing"]
    assert "kestra:///tests/../../../../etc/passwd` is not a valid storage path" in logs["climb"]
    assert "file:///etc/passwd" in logs["outside"] and "root:" not in logs["outside"]
    assert "s3://bucket/key` is not a Kestra storage URI" in logs["other_scheme"]
