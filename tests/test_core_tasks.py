"""Each core task type run on real Airflow: states, XCom outputs and log lines."""

from __future__ import annotations

import pytest
from conftest import states

pytestmark = pytest.mark.airflow


def test_log_writes_each_message_at_its_level(run_flow):
    result = run_flow(
        """
        id: logs
        namespace: tests.core
        variables:
          who: world
        tasks:
          - id: one
            type: io.kestra.plugin.core.log.Log
            message: "hello {{ vars.who }} from {{ flow.namespace }}.{{ flow.id }} / {{ task.id }}"
          - id: many
            type: io.kestra.plugin.core.log.Log
            level: WARN
            message:
              - first line
              - "second {{ 1 + 1 }}"
          - id: quiet
            type: io.kestra.core.tasks.log.Log
            level: ERROR
            message: logged as error, task still succeeds
        """
    )
    assert states(result) == {"one": "success", "many": "success", "quiet": "success"}
    assert "hello world from tests.core.logs / one" in result.tasks["one"].log_text()
    lines = [(line.level, line.message) for line in result.tasks["many"].logs]
    assert ("WARNING", "first line") in lines
    assert ("WARNING", "second 2") in lines
    assert ("ERROR", "logged as error, task still succeeds") in [
        (line.level, line.message) for line in result.tasks["quiet"].logs
    ]
    assert result.tasks["one"].outputs is None


def test_log_level_from_an_expression_is_checked_when_rendered(run_flow):
    result = run_flow(
        """
        id: badlevel
        namespace: tests.core
        inputs:
          - id: level
            type: STRING
            defaults: LOUD
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            level: "{{ inputs.level }}"
            message: hi
        """
    )
    assert states(result) == {"log": "failed"}
    assert "invalid log level `LOUD`" in result.tasks["log"].log_text()


def test_fail_uses_error_message_or_default(run_flow):
    result = run_flow(
        """
        id: fails
        namespace: tests.core
        tasks:
          - id: default_message
            type: io.kestra.plugin.core.execution.Fail
        finally:
          - id: custom
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: "stopped in {{ flow.id }}"
        """
    )
    assert states(result) == {"default_message": "failed", "custom": "failed"}
    assert "TaskFailure: Task failure" in result.tasks["default_message"].log_text()
    assert "TaskFailure: stopped in fails" in result.tasks["custom"].log_text()
    assert result.state == "failed"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [("{{ 1 == 1 }}", "failed"), ("{{ 1 == 2 }}", "success"), ("0", "success"), ("-0", "success"), ("no", "failed")],
)
def test_fail_condition_follows_kestra_truthiness(run_flow, condition, expected):
    result = run_flow(
        f"""
        id: fail_condition
        namespace: tests.core
        tasks:
          - id: check
            type: io.kestra.plugin.core.execution.Fail
            condition: "{condition}"
            errorMessage: condition held
        """
    )
    assert states(result) == {"check": expected}
    if expected == "failed":
        assert "Fail on a condition: condition held" in result.tasks["check"].log_text()


def test_assert_evaluates_every_condition_and_logs_each_failure(run_flow):
    result = run_flow(
        """
        id: asserts
        namespace: tests.core
        tasks:
          - id: value
            type: io.kestra.plugin.core.debug.Return
            format: "42"
          - id: check
            type: io.kestra.plugin.core.execution.Assert
            errorMessage: "value was {{ outputs.value.value }}"
            conditions:
              - "{{ outputs.value.value == '42' }}"
              - "{{ outputs.value.value == '41' }}"
              - "{{ outputs.missing.value }}"
              - "{{ true }}"
          - id: missing
            type: io.kestra.plugin.core.log.Log
            message: never runs, so it has no outputs
            disabled: true
        """
    )
    assert states(result) == {"value": "success", "check": "failed"}
    log = result.tasks["check"].log_text()
    assert "Assertion `{{ outputs.value.value == '41' }}` failed!" in log
    assert "Assertion `{{ outputs.missing.value }}` failed: Unable to find `outputs.missing`" in log
    assert "2 assertion(s) failed! value was 42" in log
    assert "Assertion `{{ true }}` succeeded" in log


def test_assert_passes_when_all_conditions_hold(run_flow):
    result = run_flow(
        """
        id: asserts_ok
        namespace: tests.core
        tasks:
          - id: check
            type: io.kestra.plugin.core.execution.Assert
            errorMessage: "never rendered {{ outputs.nothing }}"
            conditions:
              - "{{ 'abc' contains 'b' }}"
              - "{{ [1, 2] contains 2 }}"
              - "{{ {'k': 1} contains 'k' }}"
          - id: nothing
            type: io.kestra.plugin.core.log.Log
            message: never runs, so it has no outputs
            disabled: true
        """
    )
    assert states(result) == {"check": "success"}


def test_return_and_output_values_are_readable_by_later_tasks(run_flow):
    result = run_flow(
        """
        id: outputs
        namespace: tests.core
        tasks:
          - id: ret
            type: io.kestra.plugin.core.debug.Return
            format: "{{ flow.id | upper }}"
          - id: values
            type: io.kestra.plugin.core.output.OutputValues
            values:
              name: "{{ outputs.ret.value }}"
              count: 3
              nested:
                items: [a, "{{ 1 + 1 }}"]
          - id: from_json
            type: io.kestra.plugin.core.output.OutputValues
            values: "{{ {'k': outputs.values.values.count * 2} }}"
          - id: use
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.values.values.name }}-{{ outputs.values.values.nested.items[1] }}"
        """
    )
    assert states(result) == {"ret": "success", "values": "success", "from_json": "success", "use": "success"}
    assert result.tasks["ret"].outputs == {"value": "OUTPUTS"}
    assert result.tasks["values"].outputs == {
        "values": {"name": "OUTPUTS", "count": 3, "nested": {"items": ["a", "2"]}}
    }
    assert result.tasks["from_json"].outputs == {"values": {"k": 6}}
    assert "OUTPUTS-2" in result.tasks["use"].log_text()


def test_undefined_variable_fails_the_task_naming_the_expression(run_flow):
    # `vars.nope` written out is a compile error (tests/test_references.py); a computed name fails at run time.
    result = run_flow(
        """
        id: strict
        namespace: tests.core
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "value: {{ vars['no' ~ 'pe'] }}"
        """
    )
    assert states(result) == {"log": "failed"}
    assert (
        "Unable to find `vars` used in the expression `value: {{ vars['no' ~ 'pe'] }}`"
        in result.tasks["log"].log_text()
    )


def test_inputs_and_execution_variables(run_flow):
    result = run_flow(
        """
        id: inputs
        namespace: tests.core
        inputs:
          - id: name
            type: STRING
          - id: times
            type: INT
            defaults: 2
        tasks:
          - id: ret
            type: io.kestra.plugin.core.debug.Return
            format: "{{ inputs.name }}x{{ inputs.times * 2 }}|{{ execution.id is defined }}|{{ taskrun.attemptsCount }}"
        """,
        inputs={"name": "kestra"},
    )
    assert states(result) == {"ret": "success"}
    assert result.tasks["ret"].outputs == {"value": "kestrax4|true|0"}


def test_missing_required_input_is_refused_before_any_task_runs(run_flow):
    from yaml2dag.errors import FlowValidationError

    flow = """
        id: required_input
        namespace: tests.core
        inputs:
          - id: name
            type: STRING
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{ inputs.name }}"
        """
    with pytest.raises(FlowValidationError, match="inputs.name: missing required input"):
        run_flow(flow)
    with pytest.raises(FlowValidationError, match="inputs.name"):
        run_flow(flow, inputs={"name": 3})


def test_sleep_defers_and_succeeds(run_flow):
    result = run_flow(
        """
        id: sleeps
        namespace: tests.core
        tasks:
          - id: nap
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.2S
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: awake
        """
    )
    assert states(result) == {"nap": "success", "after": "success"}
    log = result.tasks["nap"].log_text()
    assert "Waiting for PT0.2S" in log
    assert "Waited PT0.2S" in log, "the task must resume after its trigger fired"
    nap = result.tasks["nap"]
    assert (nap.end - nap.start).total_seconds() >= 0.2


def test_variable_override_for_local_runs(run_flow):
    result = run_flow(
        """
        id: overrides
        namespace: tests.core
        variables:
          host: host.docker.internal
        tasks:
          - id: ret
            type: io.kestra.plugin.core.debug.Return
            format: "{{ vars.host }}"
        """,
        variables={"host": "127.0.0.1"},
    )
    assert result.tasks["ret"].outputs == {"value": "127.0.0.1"}


def test_errors_task_reads_the_failure_message_with_error_logs(run_flow):
    result = run_flow(
        """
        id: error_logs
        namespace: tests.core
        tasks:
          - id: boom
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: "disk full on {{ flow.id }}"
        errors:
          - id: alert
            type: io.kestra.plugin.core.log.Log
            message: "{{ errorLogs()[0].taskId }} said: {{ errorLogs()[0].message }}"
        """
    )
    assert states(result) == {"boom": "failed", "alert": "success"}
    assert "boom said: disk full on error_logs" in result.tasks["alert"].log_text()


def test_echo_logs_its_rendered_format_at_its_level(run_flow):
    result = run_flow(
        """
        id: echo
        namespace: tests.core
        tasks:
          - id: hello
            type: io.kestra.plugin.core.debug.Echo
            format: "{{ task.id }} says {{ 40 + 2 }}"
          - id: legacy
            type: io.kestra.core.tasks.debugs.Echo
            level: WARN
            format: careful
        """
    )
    assert states(result) == {"hello": "success", "legacy": "success"}
    assert ("INFO", "hello says 42") in [(line.level, line.message) for line in result.tasks["hello"].logs]
    assert ("WARNING", "careful") in [(line.level, line.message) for line in result.tasks["legacy"].logs]
