"""Kestra's run-state rules on real Airflow: errors on failure, finally always, state from main tasks only."""

from __future__ import annotations

import pytest
from conftest import states

pytestmark = pytest.mark.airflow


def _flow(main: list[str], errors: list[str] | None = None, finals: list[str] | None = None) -> str:
    """A flow whose tasks are Log tasks, or Fail tasks for ids starting with `fail`."""

    def block(ids: list[str]) -> str:
        lines = []
        for task_id in ids:
            if task_id.startswith("fail"):
                lines.append(f"  - id: {task_id}\n    type: io.kestra.plugin.core.execution.Fail\n")
            else:
                lines.append(
                    f"  - id: {task_id}\n    type: io.kestra.plugin.core.log.Log\n    message: ran {task_id}\n"
                )
        return "".join(lines)

    text = f"id: semantics\nnamespace: tests.semantics\ntasks:\n{block(main)}"
    if errors:
        text += f"errors:\n{block(errors)}"
    if finals:
        text += f"finally:\n{block(finals)}"
    return text


def _in_order(result, task_ids: list[str]) -> bool:
    """True when each task ended before the next one started."""
    tasks = [result.tasks[task_id] for task_id in task_ids]
    return all(earlier.end <= later.start for earlier, later in zip(tasks, tasks[1:], strict=False))


def test_all_succeed_skips_errors_and_runs_finally(run_flow):
    result = run_flow(_flow(["a", "b", "c"], ["e1", "e2"], ["f1", "f2"]))
    assert states(result) == {
        "a": "success",
        "b": "success",
        "c": "success",
        "e1": "skipped",
        "e2": "skipped",
        "f1": "success",
        "f2": "success",
    }
    assert result.state == "success"
    assert _in_order(result, ["a", "b", "c", "f1", "f2"])
    assert "ran a" in result.tasks["a"].log_text()
    assert "ran e1" not in result.tasks["e1"].log_text()


def test_second_task_fails_runs_errors_then_finally_and_fails_the_run(run_flow):
    result = run_flow(_flow(["a", "fail_b", "c"], ["e1", "e2"], ["f1", "f2"]))
    assert states(result) == {
        "a": "success",
        "fail_b": "failed",
        "c": "upstream_failed",
        "e1": "success",
        "e2": "success",
        "f1": "success",
        "f2": "success",
    }
    assert result.state == "failed"
    assert result.tasks["c"].logs == [], "the task after the failure must never run"
    assert _in_order(result, ["fail_b", "e1", "e2", "f1", "f2"])
    assert "Task failure" in result.tasks["fail_b"].log_text()
    assert "ran e2" in result.tasks["e2"].log_text()


def test_failing_errors_task_does_not_stop_the_rest_of_errors(run_flow):
    result = run_flow(_flow(["a", "fail_b", "c"], ["fail_e1", "e2"], ["f1"]))
    assert states(result) == {
        "a": "success",
        "fail_b": "failed",
        "c": "upstream_failed",
        "fail_e1": "failed",
        "e2": "success",
        "f1": "success",
    }
    assert result.state == "failed"
    assert _in_order(result, ["fail_e1", "e2", "f1"])


def test_failing_finally_task_is_ignored_for_the_run_state(run_flow):
    result = run_flow(_flow(["a", "b"], ["e1"], ["fail_f1", "f2"]))
    assert states(result) == {"a": "success", "b": "success", "e1": "skipped", "fail_f1": "failed", "f2": "success"}
    assert result.state == "success"
    assert _in_order(result, ["fail_f1", "f2"])


@pytest.mark.parametrize(
    ("main", "errors", "finals", "expected_state", "expected"),
    [
        (["fail_a", "b"], None, ["f1"], "failed", {"fail_a": "failed", "b": "upstream_failed", "f1": "success"}),
        (["fail_a"], ["e1"], None, "failed", {"fail_a": "failed", "e1": "success"}),
        (["a"], ["e1"], None, "success", {"a": "success", "e1": "skipped"}),
        (["a", "b"], None, None, "success", {"a": "success", "b": "success"}),
        (["a", "fail_b"], None, None, "failed", {"a": "success", "fail_b": "failed"}),
    ],
    ids=["no-errors-block", "no-finally-block", "success-no-finally", "no-blocks", "failure-no-blocks"],
)
def test_missing_blocks_follow_the_same_rules(run_flow, main, errors, finals, expected_state, expected):
    result = run_flow(_flow(main, errors, finals))
    assert states(result) == expected
    assert result.state == expected_state


def test_seed_finally_example_fails_after_alert_and_cleanup(run_flow):
    from conftest import EXAMPLES

    result = run_flow(EXAMPLES / "finally_example.yaml")
    assert states(result) == {"fail": "failed", "send_alert": "success", "cleanup_task": "success"}
    assert result.state == "failed"
    assert "Test downstream tasks" in result.tasks["fail"].log_text()
    assert "alert on failure" in result.tasks["send_alert"].log_text()
    assert "cleaning up resources" in result.tasks["cleanup_task"].log_text()


def test_seed_finally_example_with_successful_first_task(run_flow):
    from conftest import EXAMPLES

    result = run_flow(EXAMPLES / "finally_example_success.yaml")
    assert states(result) == {"log": "success", "send_alert": "skipped", "cleanup_task": "success"}
    assert result.state == "success"
    assert "This flow executes successfully!" in result.tasks["log"].log_text()


def test_state_task_explains_the_failure(run_flow):
    result = run_flow(_flow(["a", "fail_b"], ["e1"]))
    assert result.state_task is not None
    assert result.state_task.state == "failed"
    assert "`fail_b` failed" in result.state_task.log_text()


def test_disabled_task_leaves_no_trace(run_flow):
    result = run_flow(
        """
        id: disabled
        namespace: tests.semantics
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            message: a
          - id: off
            type: io.kestra.plugin.core.execution.Fail
            disabled: true
          - id: c
            type: io.kestra.plugin.core.log.Log
            message: c
        """
    )
    assert states(result) == {"a": "success", "c": "success"}
    assert result.state == "success"


def test_run_if_false_skips_the_task_and_the_flow_continues(run_flow):
    result = run_flow(
        """
        id: runif
        namespace: tests.semantics
        inputs:
          - id: enabled
            type: BOOLEAN
            defaults: false
        tasks:
          - id: maybe
            type: io.kestra.plugin.core.execution.Fail
            runIf: "{{ inputs.enabled }}"
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: still running
        errors:
          - id: alert
            type: io.kestra.plugin.core.log.Log
            message: alert
        """
    )
    assert states(result) == {"maybe": "skipped", "after": "success", "alert": "skipped"}
    assert result.state == "success"


def test_run_if_that_cannot_render_fails_the_task(run_flow):
    result = run_flow(
        """
        id: runif_error
        namespace: tests.semantics
        tasks:
          - id: broken
            type: io.kestra.plugin.core.log.Log
            message: never
            runIf: "{{ outputs.nothing.here }}"
          - id: nothing
            type: io.kestra.plugin.core.log.Log
            message: never runs, so it has no outputs
            disabled: true
        """
    )
    assert states(result) == {"broken": "failed"}
    assert result.state == "failed"
    assert "Unable to find `outputs.nothing`" in result.tasks["broken"].log_text()


def test_retry_runs_the_task_again_and_counts_attempts(run_flow):
    result = run_flow(
        """
        id: retried
        namespace: tests.semantics
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ taskrun.attemptsCount == 0 }}"
            errorMessage: first attempt fails
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 2
        """
    )
    assert states(result) == {"flaky": "success"}
    assert result.state == "success"


def test_allow_failure_ends_warning_and_the_flow_goes_on(run_flow):
    result = run_flow(
        """
        id: allowed
        namespace: tests.semantics
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: not fatal
            allowFailure: true
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: "{{ errorLogs()[0].message }} was allowed"
        errors:
          - id: alert
            type: io.kestra.plugin.core.log.Log
            message: never runs for a WARNING
        finally:
          - id: cleanup
            type: io.kestra.plugin.core.log.Log
            message: cleanup
        """
    )
    assert states(result) == {"flaky": "warning", "after": "success", "alert": "skipped", "cleanup": "success"}
    assert result.state == "warning"
    assert "allowFailure is set: it ends WARNING" in result.tasks["flaky"].log_text()
    assert "not fatal was allowed" in result.tasks["after"].log_text()
    assert "Flow WARNING: `flaky` ended WARNING" in result.state_task.log_text()


def test_allow_failure_applies_after_the_last_retry_and_to_render_errors(run_flow):
    result = run_flow(
        """
        id: allowed_after_retries
        namespace: tests.semantics
        tasks:
          - id: retried
            type: io.kestra.plugin.core.execution.Fail
            allowFailure: true
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 2
          - id: unrenderable
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.nothing.value }}"
            allowFailure: true
          - id: nothing
            type: io.kestra.plugin.core.log.Log
            message: never runs, so it has no outputs
            disabled: true
        """
    )
    assert states(result) == {"retried": "warning", "unrenderable": "warning"}
    assert result.state == "warning"
    assert "Unable to find `outputs.nothing`" in result.tasks["unrenderable"].log_text()


def test_allow_warning_with_allow_failure_ends_success(run_flow):
    result = run_flow(
        """
        id: allowed_success
        namespace: tests.semantics
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            allowFailure: true
            allowWarning: true
        """
    )
    assert states(result) == {"flaky": "success"}
    assert result.state == "success"
    assert "it ends SUCCESS" in result.tasks["flaky"].log_text()


def test_a_failure_still_wins_over_a_warning(run_flow):
    result = run_flow(
        """
        id: warning_then_failure
        namespace: tests.semantics
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            allowFailure: true
          - id: fatal
            type: io.kestra.plugin.core.execution.Fail
        """
    )
    assert states(result) == {"flaky": "warning", "fatal": "failed"}
    assert result.state == "failed"


@pytest.mark.parametrize(
    ("task_states", "reason"),
    [
        ({"a": "success", "b": "skipped", "c": "removed"}, None),
        ({"a": "success", "b": "failed"}, "`b` failed"),
        ({"a": "failed", "b": "upstream_failed"}, "`a` failed"),
        ({"a": "upstream_failed"}, "a task failed"),
        # A user marked the run failed while `b` was deferring: Airflow on SQLite can lose the mark.
        (
            {"a": "success", "b": "deferred", "c": None},
            "`b` (deferred), `c` (None) had not finished when the run was ended",
        ),
    ],
)
def test_a_scope_fails_when_a_task_failed_or_had_not_ended(task_states, reason):
    from yaml2dag.operators.flowable import failure_reason

    assert failure_reason(task_states) == reason
