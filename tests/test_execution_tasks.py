"""Tasks acting on the execution (Labels) and flow ids Kestra accepts, run on real Airflow with `dag.test()`."""

from __future__ import annotations

import json

import pytest
from conftest import states

# Oracle: Kestra core/src/test/resources/flows/valids/labels-update-task.yml and RuntimeLabelsTest.update
# (the execution's own labels — given at creation in that test — have no Airflow counterpart).
LABELS_FLOW = """
id: labels-update-task
namespace: tests.execution
labels:
  flowLabelKey: flowLabelValue
  overriddenFlowLabelKey: flowValueThatWillGetOverridden
inputs:
  - id: labelsJson
    type: JSON
  - id: labelsMapKey
    type: STRING
  - id: labelsMapValue
    type: STRING
  - id: labelsListKey
    type: STRING
  - id: labelsListValue
    type: STRING
tasks:
  - id: before
    type: io.kestra.plugin.core.debug.Return
    format: "{{ labels | toJson }}"
  - id: from-render
    type: io.kestra.plugin.core.execution.Labels
    labels: "{{ inputs.labelsJson }}"
  - id: from-map
    type: io.kestra.plugin.core.execution.Labels
    labels:
      "{{ inputs.labelsMapKey }}": "{{ inputs.labelsMapValue }}"
  - id: from-list
    type: io.kestra.core.tasks.executions.Labels
    labels:
      - key: "{{ inputs.labelsListKey }}"
        value: "{{ inputs.labelsListValue }}"
  - id: override-labels
    type: io.kestra.plugin.core.execution.Labels
    labels:
      overriddenFlowLabelKey: "{{ flow.namespace ~ '.' ~ flow.id }}"
      count: 42
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ labels | toJson }}"
"""

INPUTS = {
    "labelsJson": '{"keyFromJson": "valueFromJson"}',
    "labelsMapKey": "keyFromMap",
    "labelsMapValue": "valueFromMap",
    "labelsListKey": "keyFromList",
    "labelsListValue": "valueFromList",
}


@pytest.mark.airflow
def test_labels_tasks_set_the_execution_labels_later_tasks_read(run_flow):
    result = run_flow(LABELS_FLOW, inputs=INPUTS)
    assert result.state == "success"
    assert set(states(result).values()) == {"success"}
    assert json.loads(result.tasks["before"].outputs["value"]) == {
        "flowLabelKey": "flowLabelValue",
        "overriddenFlowLabelKey": "flowValueThatWillGetOverridden",
    }
    assert json.loads(result.tasks["after"].outputs["value"]) == {
        "flowLabelKey": "flowLabelValue",
        "overriddenFlowLabelKey": "tests.execution.labels-update-task",
        "keyFromJson": "valueFromJson",
        "keyFromMap": "valueFromMap",
        "keyFromList": "valueFromList",
        "count": "42",
    }
    assert result.tasks["from-map"].outputs is None  # Kestra's Labels has no outputs
    assert "Execution labels set: keyFromMap=valueFromMap" in result.tasks["from-map"].log_text()


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ("      system.correlationId: x\n", "System labels can only be set by Kestra itself, offending label: "),
        ('    labels: "{{ [1, 2] | toJson }}"\n', "`labels` must render to a JSON map of labels"),
    ],
)
def test_labels_refuses_system_labels_and_values_that_are_not_labels(run_flow, labels, error):
    body = labels if labels.startswith("    labels:") else "    labels:\n" + labels
    result = run_flow(
        "id: bad_labels\nnamespace: tests.execution\ntasks:\n"
        "  - id: set\n    type: io.kestra.plugin.core.execution.Labels\n" + body
    )
    assert (result.state, states(result)) == ("failed", {"set": "failed"})
    assert result.tasks["set"].error.startswith(error), result.tasks["set"].error


@pytest.mark.airflow
@pytest.mark.parametrize("flow_id", ["pause", "resume", "kill", "executions", "airflow", "dag", "os", "import"])
def test_flow_ids_clashing_with_airflow_kestra_or_python_names_compile_and_run(run_flow, flow_id):
    # Kestra's own test flow flows/valids/pause.yaml has `id: pause` (its FlowValidator reserves no id).
    result = run_flow(
        f"id: {flow_id}\nnamespace: tests.execution\ntasks:\n"
        "  - id: pause\n    type: io.kestra.plugin.core.debug.Return\n    format: '{{ flow.id }}'\n"
    )
    assert (result.dag_id, result.state, states(result)) == (
        f"tests.execution.{flow_id}",
        "success",
        {"pause": "success"},
    )
    assert result.tasks["pause"].outputs == {"value": flow_id}


@pytest.mark.airflow
def test_fetch_under_yaml2dag_run_fails_clearly_and_errors_see_why(run_flow):
    result = run_flow(
        "id: fetch_here\nnamespace: tests.execution\ntasks:\n"
        "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        "  - id: fetch\n    type: io.kestra.plugin.core.log.Fetch\n    level: INFO\n"
        "errors:\n  - id: why\n    type: io.kestra.plugin.core.debug.Return\n"
        '    format: "{{ errorLogs()[0].message }}"\n'
    )
    assert (result.state, states(result)) == ("failed", {"hello": "success", "fetch": "failed", "why": "success"})
    assert result.tasks["fetch"].error.startswith("Fetch reads Airflow's task log files, which `yaml2dag run`")
    assert result.tasks["why"].outputs["value"].startswith("Fetch reads Airflow's task log files")
