"""Runs that hit a limit end as Kestra would, with a clear message, in bounded time and memory.

`timeout` with `allowFailure` (WARNING), a ForEach over more values than Airflow maps, an input
`validator` that backtracks without end, a container line of 64 MB.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError

PROCESS = "taskRunner: {type: io.kestra.plugin.core.runner.Process}"


@pytest.mark.airflow
def test_a_timed_out_task_with_allow_failure_ends_warning_and_the_flow_goes_on(run_flow):
    result = run_flow(
        f"""
        id: timeout_allowed
        namespace: tests.bounded
        tasks:
          - id: slow
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            timeout: PT2S
            allowFailure: true
            commands: [sleep 60]
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: "slow ended {{{{ tasks.slow.state }}}}"
        errors:
          - id: report
            type: io.kestra.plugin.core.log.Log
            message: never
        """
    )
    assert result.state == "warning"
    assert states(result) == {"slow": "warning", "after": "success", "report": "skipped"}
    assert "slow ended WARNING" in result.tasks["after"].log_text()
    assert "Timeout after 0:00:02 (the task's `timeout`)" in result.tasks["slow"].log_text()
    assert "allowFailure is set" in result.tasks["slow"].log_text()
    assert result.duration < 50


@pytest.mark.airflow
def test_a_timed_out_task_without_allow_failure_fails_and_errors_see_the_timeout(run_flow):
    result = run_flow(
        f"""
        id: timeout_failed
        namespace: tests.bounded
        tasks:
          - id: slow
            type: io.kestra.plugin.scripts.shell.Commands
            {PROCESS}
            timeout: PT2S
            commands: [sleep 60]
        errors:
          - id: report
            type: io.kestra.plugin.core.output.OutputValues
            values:
              error: "{{{{ errorLogs()[0].message }}}}"
        """
    )
    assert result.state == "failed"
    assert states(result) == {"slow": "failed", "report": "success"}
    assert result.tasks["report"].outputs == {"values": {"error": "Timeout after 0:00:02 (the task's `timeout`)"}}


@pytest.mark.airflow
def test_a_for_each_over_more_values_than_airflow_maps_fails_naming_the_setting(run_flow, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "1024")
    result = run_flow(
        """
        id: many
        namespace: tests.bounded
        tasks:
          - id: each
            type: io.kestra.plugin.core.flow.ForEach
            values: "{{ range(1, 1025) }}"
            tasks:
              - id: item
                type: io.kestra.plugin.core.log.Log
                message: "{{ taskrun.value }}"
        """
    )
    assert result.state == "failed"
    assert result.tasks["each"].state == "failed"
    log = result.tasks["each"].log_text()
    assert "`values` has 1025 distinct values: Airflow runs a ForEach over at most 1024" in log
    assert "AIRFLOW__CORE__MAX_MAP_LENGTH" in log


CATASTROPHIC = "(a+)+b"


@pytest.mark.airflow
def test_an_input_validator_that_backtracks_without_end_is_bounded(run_flow, flow_file):
    flow = f"""
        id: redos
        namespace: tests.bounded
        inputs:
          - id: name
            type: STRING
            validator: "{CATASTROPHIC}"
          - id: token
            type: SECRET
            validator: "{CATASTROPHIC}"
        tasks:
          - id: show
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ inputs.name }}}}"
        """
    started = time.monotonic()
    with pytest.raises(FlowValidationError) as caught:
        run_flow(flow, inputs={"name": "a" * 40 + "!", "token": "aab"})
    assert time.monotonic() - started < 60
    assert "inputs.name: cannot be checked against the validator `(a+)+b`: the regular expression took more" in str(
        caught.value
    )
    # Airflow would check a Param `pattern` unbounded in the API server and in each task: the
    # validator is yaml2dag's to check, bounded, when the run is created.
    from yaml2dag.flowfile import read_flow
    from yaml2dag.inputs import param_schema

    inputs = {item.id: item for item in read_flow(flow_file(flow)).inputs}
    assert "pattern" not in param_schema(inputs["name"])
    assert param_schema(inputs["name"])["x-yaml2dag-validator"] == CATASTROPHIC
    result = run_flow(flow, inputs={"name": "aab", "token": "ab"})
    assert states(result) == {"show": "success"}


@pytest.mark.airflow
def test_a_simple_validator_stays_the_param_pattern():
    from yaml2dag.flowfile import parse_flow_text
    from yaml2dag.inputs import param_schema

    flow = parse_flow_text(
        "id: v\nnamespace: t\ninputs:\n  - id: code\n    type: STRING\n    validator: '[A-Z]+'\n"
        "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )
    assert param_schema(flow.inputs[0]) == {"type": "string", "pattern": "^(?:[A-Z]+)$"}


def test_a_64_mb_container_line_is_cut_in_bounded_memory():
    from yaml2dag.operators.docker import _lines

    def frames():
        chunk = b"x" * 65536
        for _ in range(1024):  # 64 MiB on stdout, in Docker-sized frames, then a normal line
            yield 1, chunk
        yield 1, b"\nafter\n"
        yield 2, b"on stderr\n"

    tracemalloc.start()
    try:
        lines = list(_lines(frames()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
    assert [(is_stderr, len(text)) for is_stderr, text in lines][1:] == [(False, 5), (True, 9)]
    assert lines[0][1].endswith("[line cut at 1 MiB]")
    assert len(lines[0][1]) < 1024 * 1024 + 100
