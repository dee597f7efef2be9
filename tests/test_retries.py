"""Kestra `retry` on Airflow: the waits Kestra computes, maxAttempts, maxDuration, warningOnRetry, flow-level retry.

Flows run for real through `dag.test()`; the waits are read from the task's log lines (the decision
the retry policy handed to Airflow), never from the clock.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import textwrap

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.retries import UNLIMITED_RETRIES, RetrySchedule, retry_arguments
from yaml2dag.tasktypes.base import Retry

SECOND = dt.timedelta(seconds=1)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def waits(log: str) -> list[str]:
    """The `attempt N starts in Xs` decisions of a task's log, in order."""
    return re.findall(r"\w+ retry: attempt \d+ starts in [0-9.e-]+s", log)


# --- the waits, computed as Kestra's nextRetryDate does ------------------------------------------


# (retry block, attempts made, expected wait in seconds)
DELAYS = [
    ({"type": "constant", "interval": "PT5S"}, 1, 5),
    ({"type": "constant", "interval": "PT5S"}, 4, 5),
    ({"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M"}, 1, 0),
    ({"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M"}, 2, 2),
    ({"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M"}, 4, 6),
    ({"type": "exponential", "interval": "PT1S", "maxInterval": "PT5S"}, 4, 5),
    ({"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M", "delayFactor": 3}, 3, 6),
    ({"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M", "delayFactor": 1.9}, 3, 2),
    ({"type": "exponential", "interval": "PT1S", "maxInterval": "PT1M", "delayFactor": 0.5}, 3, 0),
    ({"type": "constant", "interval": "-PT5S"}, 1, 0),
]


@pytest.mark.parametrize(("block", "attempts", "seconds"), DELAYS)
def test_waits_follow_kestra_next_retry_date(block, attempts, seconds):
    schedule = RetrySchedule.from_retry(Retry.model_validate(block))
    assert schedule.delay(attempts) == seconds * SECOND


def test_random_waits_are_whole_milliseconds_between_min_and_max():
    schedule = RetrySchedule.from_retry(
        Retry.model_validate({"type": "random", "minInterval": "PT1S", "maxInterval": "PT2S"})
    )
    rng = random.Random(7)
    drawn = {schedule.delay(1, rng) for _ in range(200)}
    assert all(SECOND <= wait < 2 * SECOND for wait in drawn)
    assert all(wait.microseconds % 1000 == 0 for wait in drawn)
    assert len(drawn) > 50


def test_max_attempts_counts_the_first_attempt_and_max_duration_the_next_start():
    schedule = RetrySchedule.from_retry(
        Retry.model_validate({"type": "constant", "interval": "PT10S", "maxAttempts": 3, "maxDuration": "PT30S"})
    )
    assert schedule.next_delay(1, T0, T0 + 5 * SECOND) == 10 * SECOND
    assert schedule.next_delay(2, T0, T0 + 20 * SECOND) == 10 * SECOND  # starts at 30 s: still allowed
    assert schedule.next_delay(2, T0, T0 + 21 * SECOND) is None  # would start at 31 s
    assert schedule.next_delay(3, T0, T0 + 6 * SECOND) is None  # three attempts made
    unlimited = RetrySchedule.from_retry(Retry.model_validate({"type": "constant", "interval": "PT1S"}))
    assert unlimited.next_delay(500, T0, T0 + 1000 * SECOND) == SECOND
    assert unlimited.retries == UNLIMITED_RETRIES


def _task(text: str):
    return parse_flow_text(
        "id: f\nnamespace: tests.retries\ntasks:\n" + textwrap.indent(textwrap.dedent(text), "  "), "flow.yaml"
    ).tasks[0]


def test_a_task_retry_wins_and_warning_on_retry_is_the_task_own():
    flow_retry = Retry.model_validate(
        {"type": "constant", "interval": "PT1M", "maxAttempts": 5, "warningOnRetry": True}
    )
    plain = _task("- id: a\n  type: io.kestra.plugin.core.log.Log\n  message: hi\n")
    inherited = retry_arguments(plain, flow_retry)
    assert (inherited["retries"], inherited["retry_delay"], inherited["warning_on_retry"]) == (4, 60 * SECOND, False)
    own = _task(
        "- id: a\n  type: io.kestra.plugin.core.log.Log\n  message: hi\n"
        "  retry: {type: exponential, interval: PT2S, maxInterval: PT8S, maxAttempts: 3, warningOnRetry: true}\n"
    )
    arguments = retry_arguments(own, flow_retry)
    assert (arguments["retries"], arguments["retry_delay"], arguments["warning_on_retry"]) == (2, dt.timedelta(0), True)
    assert retry_arguments(plain) == {}


def test_allow_failure_tasks_do_not_take_an_inherited_retry():
    """Kestra's worker turns the failure into WARNING before the executor looks for a parent retry."""
    flow_retry = Retry.model_validate({"type": "constant", "interval": "PT1S", "maxAttempts": 5})
    allowed = _task("- id: a\n  type: io.kestra.plugin.core.execution.Fail\n  allowFailure: true\n")
    assert retry_arguments(allowed, flow_retry) == {}


# --- real runs ----------------------------------------------------------------------------------


def test_constant_retry_succeeds_on_the_second_attempt(run_flow):
    result = run_flow(
        """
        id: constant_retry
        namespace: tests.retries
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ taskrun.attemptsCount == 0 }}"
            errorMessage: "attempt {{ taskrun.attemptsCount }} fails"
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 3
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: "after {{ taskrun.attemptsCount }}"
        """
    )
    assert states(result) == {"flaky": "success", "after": "success"}
    assert result.state == "success"
    log = result.tasks["flaky"].log_text()
    assert "attempt 0 fails" in log
    assert waits(log) == ["constant retry: attempt 2 starts in 0s"]


def test_exponential_retry_waits_grow_linearly_from_an_immediate_first_retry(run_flow):
    result = run_flow(
        """
        id: exponential_retry
        namespace: tests.retries
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ taskrun.attemptsCount < 3 }}"
            retry:
              type: exponential
              interval: PT0.2S
              maxInterval: PT0.5S
              maxAttempts: 5
        """
    )
    assert states(result) == {"flaky": "success"}
    # After attempt n Kestra waits interval × 2 × (n − 1), capped at maxInterval: 0, 0.4, 0.5 s.
    assert waits(result.tasks["flaky"].log_text()) == [
        "exponential retry: attempt 2 starts in 0s",
        "exponential retry: attempt 3 starts in 0.4s",
        "exponential retry: attempt 4 starts in 0.5s",
    ]


def test_random_retry_waits_between_min_and_max_interval(run_flow):
    result = run_flow(
        """
        id: random_retry
        namespace: tests.retries
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ taskrun.attemptsCount == 0 }}"
            retry:
              type: random
              minInterval: PT0.1S
              maxInterval: PT0.3S
              maxAttempts: 2
        """
    )
    assert states(result) == {"flaky": "success"}
    (decision,) = waits(result.tasks["flaky"].log_text())
    assert 0.1 <= float(decision.rsplit(" ", 1)[1].rstrip("s")) < 0.3


def test_the_task_fails_once_max_attempts_are_used(run_flow):
    result = run_flow(
        """
        id: exhausted
        namespace: tests.retries
        tasks:
          - id: broken
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: "attempt {{ taskrun.attemptsCount }} fails"
            retry:
              type: constant
              interval: PT0S
              maxAttempt: 2
        errors:
          - id: alert
            type: io.kestra.plugin.core.log.Log
            message: "{{ errorLogs()[0].message }}"
        """
    )
    assert states(result) == {"broken": "failed", "alert": "success"}
    assert result.state == "failed"
    log = result.tasks["broken"].log_text()
    assert waits(log) == ["constant retry: attempt 2 starts in 0s"]
    assert "constant retry: no retry left after 2 attempt(s) (maxAttempts)" in log
    assert "attempt 1 fails" in result.tasks["alert"].log_text()


def test_max_duration_stops_retrying_long_before_max_attempts(run_flow):
    """maxDuration counts from the first attempt's start, kept across retries in Airflow's task state store."""
    result = run_flow(
        """
        id: bounded
        namespace: tests.retries
        tasks:
          - id: broken
            type: io.kestra.plugin.core.execution.Fail
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 100
              maxDuration: PT2S
        """
    )
    assert states(result) == {"broken": "failed"}
    log = result.tasks["broken"].log_text()
    assert "constant retry: no retry, the next attempt would start after maxDuration" in log
    assert len(waits(log)) < 99


def test_allow_failure_ends_warning_when_max_duration_stops_the_retries(run_flow):
    result = run_flow(
        """
        id: bounded_allowed
        namespace: tests.retries
        tasks:
          - id: broken
            type: io.kestra.plugin.core.execution.Fail
            allowFailure: true
            retry:
              type: exponential
              interval: PT1S
              maxInterval: PT10S
              maxAttempts: 10
              maxDuration: PT1.5S
        """
    )
    # Attempt 2 follows at once; attempt 3 would start 2 s after attempt 2 failed, past maxDuration.
    assert states(result) == {"broken": "warning"}
    assert result.state == "warning"
    log = result.tasks["broken"].log_text()
    assert "exponential retry: no retry, the next attempt would start after maxDuration" in log
    assert "allowFailure is set: it ends WARNING" in log


def test_warning_on_retry_ends_warning_after_a_retried_success(run_flow):
    result = run_flow(
        """
        id: warned
        namespace: tests.retries
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ taskrun.attemptsCount == 0 }}"
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 2
              warningOnRetry: true
          - id: steady
            type: io.kestra.plugin.core.log.Log
            message: first time right
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 2
              warningOnRetry: true
        """
    )
    assert states(result) == {"flaky": "warning", "steady": "success"}
    assert result.state == "warning"
    assert result.to_json()["tasks"]["flaky"]["state"] == "warning"
    assert "warningOnRetry is set: it ends WARNING" in result.tasks["flaky"].log_text()


def test_flow_retry_applies_to_tasks_without_their_own(run_flow):
    result = run_flow(
        """
        id: flow_retry
        namespace: tests.retries
        retry:
          type: constant
          interval: PT0S
          maxAttempts: 3
          warningOnRetry: true
        tasks:
          - id: flaky
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ taskrun.attemptsCount < 2 }}"
          - id: own
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ taskrun.attemptsCount < 1 }}"
            retry:
              type: constant
              interval: PT0S
              maxAttempts: 1
        """
    )
    # `flaky` succeeds on its third attempt (the flow's retry; its warningOnRetry is not the task's).
    # `own` keeps its own single attempt.
    assert states(result) == {"flaky": "success", "own": "failed"}
    assert len(waits(result.tasks["flaky"].log_text())) == 2
    assert "no retry left after 1 attempt(s)" in result.tasks["own"].log_text()


# --- validation -----------------------------------------------------------------------------------

HEADER = "id: checks\nnamespace: tests.retries\n"
TASK = "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    retry:\n"

# (case id, retry block under a task, line, column, path, message)
INVALID = [
    (
        "exponential without maxInterval",
        "type: exponential\ninterval: PT1S\n",
        8,
        7,
        "maxInterval",
        "`exponential` retry needs `maxInterval`",
    ),
    (
        "random without minInterval",
        "type: random\nmaxInterval: PT1S\n",
        8,
        7,
        "minInterval",
        "`random` retry needs `minInterval`",
    ),
    (
        "constant without interval",
        "type: constant\nmaxAttempts: 2\n",
        8,
        7,
        "interval",
        "`constant` retry needs `interval`",
    ),
    (
        "interval not below maxDuration",
        "type: constant\ninterval: PT10S\nmaxDuration: PT10S\n",
        10,
        20,
        "maxDuration",
        "`maxDuration` (PT10S) must be longer than `interval` (PT10S)",
    ),
    (
        "interval not below maxInterval",
        "type: exponential\ninterval: PT10S\nmaxInterval: PT5S\n",
        10,
        20,
        "maxInterval",
        "`maxInterval` (PT5S) must be longer than `interval` (PT10S)",
    ),
    (
        "random bounds reversed",
        "type: random\nminInterval: PT3S\nmaxInterval: PT2S\n",
        10,
        20,
        "maxInterval",
        "`maxInterval` (PT2S) must be longer than `minInterval` (PT3S)",
    ),
    (
        "random maxInterval beyond maxDuration",
        "type: random\nminInterval: PT1S\nmaxInterval: PT9S\nmaxDuration: PT5S\n",
        11,
        20,
        "maxDuration",
        "`maxDuration` (PT5S) must be longer than `maxInterval` (PT9S)",
    ),
    (
        "delayFactor on constant",
        "type: constant\ninterval: PT1S\ndelayFactor: 2\n",
        10,
        20,
        "delayFactor",
        "`delayFactor` is not a property of `constant` retry",
    ),
    (
        "expression interval",
        "type: constant\ninterval: '{{ vars.i }}'\n",
        9,
        17,
        "interval",
        "`interval` must be a fixed duration",
    ),
    (
        "expression maxDuration",
        "type: constant\ninterval: PT1S\nmaxDuration: '{{ vars.d }}'\n",
        10,
        20,
        "maxDuration",
        "`maxDuration` must be a fixed duration",
    ),
    (
        "both attempt names",
        "type: constant\ninterval: PT1S\nmaxAttempts: 2\nmaxAttempt: 3\n",
        11,
        19,
        "maxAttempt",
        "set `maxAttempts` or its alias `maxAttempt`, not both",
    ),
    (
        "new execution",
        "type: constant\ninterval: PT1S\nbehavior: CREATE_NEW_EXECUTION\n",
        10,
        17,
        "behavior",
        "retry behavior `CREATE_NEW_EXECUTION` is not supported by yaml2dag yet",
    ),
]


@pytest.mark.parametrize(
    ("block", "line", "column", "where", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_retry_blocks_are_located_errors(block, line, column, where, message):
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(HEADER + TASK + textwrap.indent(block, "      "), "flow.yaml")
    (error,) = caught.value.errors
    assert (error.line, error.column, error.path) == (line, column, f"tasks[0].retry.{where}")
    assert error.message.startswith(message)


def test_a_flow_retry_is_checked_like_a_task_retry():
    text = HEADER + "retry:\n  type: constant\n  interval: PT1S\n  behavior: CREATE_NEW_EXECUTION\n" + TASK[:-11]
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    (error,) = caught.value.errors
    assert (error.line, error.column, error.path) == (6, 13, "retry.behavior")
    assert "not supported by yaml2dag yet" in error.message


def test_every_retry_type_with_its_properties_is_accepted():
    for block in (
        "type: constant\ninterval: PT1S\nmaxAttempts: 3\nmaxDuration: PT1M\nwarningOnRetry: true\n",
        "type: exponential\ninterval: PT1S\nmaxInterval: PT1M\ndelayFactor: 3\nmaxAttempt: 4\n",
        "type: random\nminInterval: PT1S\nmaxInterval: PT5S\nmaxDuration: PT1M\nbehavior: RETRY_FAILED_TASK\n",
    ):
        flow = parse_flow_text(HEADER + TASK + textwrap.indent(block, "      "), "flow.yaml")
        assert flow.tasks[0].retry is not None
        assert parse_flow_text(HEADER + "retry:\n" + textwrap.indent(block, "  ") + TASK[:-11], "flow.yaml").retry
