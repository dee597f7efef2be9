"""Pause and Subflow: validation, and runs on real Airflow through `dag.test()`.

Pause deadlines (pauseDuration with each behavior, timeout) run here; a manual resume and every
Subflow run need Airflow's scheduler and API server: tests/test_subflow_stack.py.
"""

from __future__ import annotations

import textwrap

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text

HEADER = "id: waits\nnamespace: tests.waits\n"


def errors_of(text: str) -> list:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(textwrap.dedent(text), "flow.yaml")
    return caught.value.errors


def only_error(text: str):
    errors = errors_of(text)
    assert len(errors) == 1, [str(error) for error in errors]
    return errors[0]


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_name",
    [
        "io.kestra.plugin.core.flow.Subflow",
        "io.kestra.core.tasks.flows.Subflow",
        "io.kestra.core.tasks.flows.Flow",
    ],
)
def test_subflow_and_its_legacy_aliases_are_accepted(type_name):
    flow = parse_flow_text(
        HEADER + f"tasks:\n  - id: sub\n    type: {type_name}\n    namespace: tests.child\n    flowId: child\n"
    )
    task = flow.tasks[0]
    assert (task.target_dag_id, task.wait, task.transmitFailed, task.inputs) == ("tests.child.child", True, True, {})


def test_pause_and_its_legacy_alias_are_accepted():
    flow = parse_flow_text(
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.flow.Pause\n"
        "  - id: b\n    type: io.kestra.core.tasks.flows.Pause\n    delay: PT1M\n"
    )
    assert [task.behavior for task in flow.tasks] == ["RESUME", "RESUME"]
    assert flow.tasks[1].operator_arguments()["pauseDuration"] == "PT1M"


def test_subflow_without_flow_id_is_located():
    error = only_error(HEADER + "tasks:\n  - id: sub\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: a\n")
    assert (error.line, error.path) == (4, "tasks[0].flowId")
    assert "missing required property `flowId`" in error.message


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("    revision: 2\n", "revision"),
        ("    scheduleDate: '2025-01-01T00:00:00Z'\n", "scheduleDate"),
        ("    labels:\n      team: a\n", "labels"),
        ("    outputs:\n      x: y\n", "outputs"),
    ],
)
def test_subflow_properties_airflow_cannot_honour_are_refused_with_their_line(extra, key):
    error = only_error(
        HEADER + "tasks:\n  - id: sub\n    type: io.kestra.plugin.core.flow.Subflow\n"
        "    namespace: a\n    flowId: b\n" + extra
    )
    assert (error.line, error.path) == (8, f"tasks[0].{key}")
    assert f"property `{key}` is not supported by yaml2dag yet" in error.message


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("    tasks:\n      - id: t\n        type: io.kestra.plugin.core.log.Log\n        message: hi\n", "tasks"),
        ("    onPause:\n      id: p\n      type: io.kestra.plugin.core.log.Log\n", "onPause"),
        ("    errors: []\n", "errors"),
        ("    finally: []\n", "finally"),
    ],
)
def test_deprecated_and_nested_pause_blocks_are_refused_with_their_line(extra, key):
    error = only_error(HEADER + "tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n" + extra)
    assert (error.line, error.path) == (6, f"tasks[0].{key}")
    assert "is not supported by yaml2dag yet" in error.message


def test_pause_with_both_duration_and_its_alias_is_refused():
    error = only_error(
        HEADER + "tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    pauseDuration: PT1S\n"
        "    delay: PT2S\n"
    )
    assert error.path == "tasks[0]"
    assert "`pauseDuration` or its deprecated alias `delay`, not both" in error.message


def test_pause_behavior_and_duration_are_checked():
    errors = errors_of(
        HEADER + "tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    pauseDuration: 5 minutes\n"
        "    behavior: STOP\n"
    )
    assert {(error.path, error.line) for error in errors} == {("tasks[0].pauseDuration", 6), ("tasks[0].behavior", 7)}
    assert any("must be one of RESUME, WARN, FAIL, CANCEL" in error.message for error in errors)


def test_on_resume_inputs_are_validated_like_flow_inputs():
    errors = errors_of(
        HEADER + "tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n"
        "      - id: reason\n        type: STRNG\n"
        "      - id: file\n        type: FILE\n"
        "      - id: ok\n        type: BOOLEAN\n        mandatory: true\n"
    )
    found = {error.path: error for error in errors}
    assert set(found) == {"tasks[0].onResume[0].type", "tasks[0].onResume[1]", "tasks[0].onResume[2].mandatory"}
    assert found["tasks[0].onResume[0].type"].line == 8
    assert "input type `FILE` is not supported by yaml2dag yet" in found["tasks[0].onResume[1]"].message
    assert "unknown property `mandatory`" in found["tasks[0].onResume[2].mandatory"].message


def test_on_resume_inputs_become_the_params_of_the_resume_form():
    flow = parse_flow_text(
        HEADER + "tasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n"
        "      - id: approved\n        type: BOOLEAN\n        defaults: false\n"
        "      - id: reason\n        type: STRING\n        description: Why\n"
    )
    from yaml2dag.compiler import compile_flow

    params = compile_flow(flow).get_task("p").resume_params
    assert list(params) == ["approved", "reason"]
    assert params["approved"]["value"] is False
    assert params["approved"]["schema"]["type"] == "boolean"
    assert params["reason"]["description"] == "Why"


def test_subflow_expressions_are_checked_when_compiling():
    error = only_error(
        HEADER + "tasks:\n  - id: sub\n    type: io.kestra.plugin.core.flow.Subflow\n"
        "    namespace: a\n    flowId: b\n    inputs:\n      x: '{{ 1 + }}'\n"
    )
    assert (error.line, error.path) == (9, "tasks[0].inputs.x")
    assert "invalid expression" in error.message


# --- Pause deadlines, run on real Airflow -----------------------------------------------------------

PAUSE_FLOW = """
id: pause_{behavior}
namespace: tests.pause
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT1S
    behavior: {behavior}
{extra}  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after the pause
errors:
  - id: on_error
    type: io.kestra.plugin.core.log.Log
    message: "errors ran: {{{{ errorLogs()[0].message }}}}"
"""


def pause_flow(behavior: str, extra: str = "") -> str:
    return PAUSE_FLOW.format(behavior=behavior, extra=extra)


@pytest.mark.airflow
def test_pause_duration_elapsing_with_resume_continues_the_flow(run_flow):
    result = run_flow(pause_flow("RESUME"))
    assert result.state == "success"
    assert states(result) == {"pause": "success", "after": "success", "on_error": "skipped"}
    assert "pauseDuration PT1S elapsed: resuming the run" in result.tasks["pause"].log_text()
    assert result.tasks["pause"].outputs is None


@pytest.mark.airflow
def test_pause_duration_elapsing_with_warn_ends_the_task_and_the_flow_warning(run_flow):
    result = run_flow(pause_flow("WARN"))
    assert result.state == "warning"
    assert states(result) == {"pause": "warning", "after": "success", "on_error": "skipped"}
    assert "pauseDuration PT1S elapsed (behavior WARN): the task ends WARNING" in result.tasks["pause"].log_text()


@pytest.mark.airflow
def test_pause_duration_elapsing_with_warn_and_allow_warning_succeeds(run_flow):
    result = run_flow(pause_flow("WARN", "    allowWarning: true\n"))
    assert result.state == "success"
    assert states(result)["pause"] == "success"


@pytest.mark.airflow
def test_pause_duration_elapsing_with_fail_fails_the_flow_and_runs_errors(run_flow):
    result = run_flow(pause_flow("FAIL"))
    assert result.state == "failed"
    assert states(result) == {"pause": "failed", "after": "upstream_failed", "on_error": "success"}
    assert "errors ran: pauseDuration PT1S elapsed (behavior FAIL)" in result.tasks["on_error"].log_text()


@pytest.mark.airflow
def test_pause_duration_elapsing_with_fail_and_allow_failure_ends_warning(run_flow):
    result = run_flow(pause_flow("FAIL", "    allowFailure: true\n"))
    assert result.state == "warning"
    assert states(result) == {"pause": "warning", "after": "success", "on_error": "skipped"}


@pytest.mark.airflow
def test_pause_duration_elapsing_with_cancel_stops_the_flow_even_with_allow_failure(run_flow):
    result = run_flow(pause_flow("CANCEL", "    allowFailure: true\n"))
    assert result.state == "failed"
    assert states(result)["pause"] == "failed"
    assert states(result)["after"] == "upstream_failed"
    assert "(behavior CANCEL): the run is cancelled" in result.tasks["pause"].log_text()


@pytest.mark.airflow
def test_pause_timeout_without_a_resume_fails_the_task(run_flow):
    result = run_flow(
        """
        id: pause_timeout
        namespace: tests.pause
        tasks:
          - id: pause
            type: io.kestra.plugin.core.flow.Pause
            pauseDuration: PT1H
            timeout: PT1S
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: never
        """
    )
    assert result.state == "failed"
    assert states(result) == {"pause": "failed", "after": "upstream_failed"}
    assert "Pause timed out: nobody resumed the run within 0:00:01" in result.tasks["pause"].log_text()


@pytest.mark.airflow
def test_pause_timeout_with_allow_failure_ends_warning_and_the_flow_goes_on(run_flow):
    result = run_flow(
        """
        id: pause_timeout_allowed
        namespace: tests.pause
        tasks:
          - id: pause
            type: io.kestra.core.tasks.flows.Pause
            timeout: PT1S
            allowFailure: true
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: "pause ended {{ tasks.pause.state }}"
        """
    )
    assert result.state == "warning"
    assert states(result) == {"pause": "warning", "after": "success"}
    assert "pause ended WARNING" in result.tasks["after"].log_text()


@pytest.mark.airflow
def test_pause_duration_from_an_expression_and_the_delay_alias(run_flow):
    result = run_flow(
        """
        id: pause_rendered
        namespace: tests.pause
        inputs:
          - id: wait
            type: STRING
            defaults: PT1S
        tasks:
          - id: first
            type: io.kestra.plugin.core.flow.Pause
            pauseDuration: "{{ inputs.wait }}"
          - id: second
            type: io.kestra.core.tasks.flows.Pause
            delay: PT0S
        """
    )
    assert result.state == "success"
    assert states(result) == {"first": "success", "second": "success"}


@pytest.mark.airflow
def test_pause_without_a_deadline_fails_clearly_under_yaml2dag_run(run_flow):
    result = run_flow(
        """
        id: pause_forever
        namespace: tests.pause
        tasks:
          - id: pause
            type: io.kestra.plugin.core.flow.Pause
        """
    )
    assert result.state == "failed"
    assert "only a person can resume it from the Airflow UI" in result.tasks["pause"].log_text()


@pytest.mark.airflow
def test_subflow_fails_clearly_under_yaml2dag_run_and_errors_see_why(run_flow):
    result = run_flow(
        """
        id: parent
        namespace: tests.subflow
        tasks:
          - id: sub
            type: io.kestra.plugin.core.flow.Subflow
            namespace: tests.subflow
            flowId: child
        errors:
          - id: why
            type: io.kestra.plugin.core.log.Log
            message: "{{ errorLogs()[0].message }}"
        """
    )
    assert result.state == "failed"
    assert states(result) == {"sub": "failed", "why": "success"}
    assert "Subflow `tests.subflow.child` needs Airflow's scheduler" in result.tasks["why"].log_text()


@pytest.mark.airflow
def test_subflow_calling_its_own_flow_fails(run_flow):
    result = run_flow(
        """
        id: selfish
        namespace: tests.subflow
        tasks:
          - id: sub
            type: io.kestra.plugin.core.flow.Subflow
            namespace: "{{ flow.namespace }}"
            flowId: "{{ flow.id }}"
        """
    )
    assert states(result) == {"sub": "failed"}
    assert "a Subflow cannot run its own flow `tests.subflow.selfish`" in result.tasks["sub"].log_text()
