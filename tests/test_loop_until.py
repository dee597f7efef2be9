"""LoopUntil (and its deprecated name WaitFor) on real DAG runs: one child DAG run per iteration.

Each test runs one of Kestra's own WaitFor test flows (core/src/test/resources/flows/valids/
waitfor*.yaml, asserted by core/src/test/java/io/kestra/plugin/core/flow/WaitForCaseTest.java)
with `dag.test()`, the iterations' runs included, and checks each task's state, the run's state,
the outputs and the number of iterations.
"""

from __future__ import annotations

import textwrap

import pytest
from conftest import states

FLOW = "io.kestra.plugin.core.flow"
OUTPUT_VALUES = "io.kestra.plugin.core.output.OutputValues"

pytestmark = pytest.mark.airflow


def flow(body: str, flow_id: str) -> str:
    """A flow document with `body` under a fixed namespace."""
    return f"id: {flow_id}\nnamespace: test.loops\n" + textwrap.dedent(body)


def _child_runs(dag_id: str) -> list[str]:
    """The states of every run of a child DAG, oldest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id))
        return [str(getattr(run.state, "value", run.state)) for run in runs]


def _loop(kind: str, condition: str, frequency: str, extra: str = "", tasks: str = "") -> str:
    return f"""
    tasks:
      - id: waitfor
        type: {FLOW}.{kind}
        condition: "{condition}"
        {frequency}
        {extra}
        tasks:
          {tasks}
          - id: output_values
            type: {OUTPUT_VALUES}
            values:
              count: "{{{{ outputs.waitfor.iterationCount + 1 }}}}"
      - id: after
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ outputs.output_values.values.count }}}}/{{{{ outputs.waitfor.iterationCount }}}}"
    """


def test_loop_until_stops_when_the_condition_holds(run_flow):
    # Kestra: waitfor-multiple-tasks.yaml, WaitForCaseTest.waitforMultipleTasks: SUCCESS, the last
    # output_values has count "4" (iterations 1, 2, 3 output "2", "3", "4").
    body = _loop(
        "LoopUntil",
        "{{ outputs.output_values.values.count == '4' }}",
        "checkFrequency: {interval: PT0.1S}",
        tasks="- id: echo\n            type: io.kestra.plugin.core.log.Log\n            message: looping ...",
    )
    result = run_flow(flow(body, "waitfor-multiple-tasks"))
    assert result.state == "success"
    assert states(result) == dict.fromkeys(["waitfor", "echo", "output_values", "after"], "success")
    assert result.tasks["output_values"].outputs == {"values": {"count": "4"}}
    # WaitFor.java / ExecutorService: the count goes up once more before the condition is read.
    assert result.tasks["waitfor"].outputs == {"iterationCount": 4}
    assert result.tasks["after"].outputs == {"value": "4/4"}
    assert _child_runs("test.loops.waitfor-multiple-tasks__waitfor")[-3:] == ["success"] * 3


def test_wait_for_alias_stops_after_one_iteration(run_flow):
    # Kestra: waitfor.yaml, WaitForCaseTest.waitfor: SUCCESS with outputs (count "2" != "4" at once).
    body = _loop("WaitFor", "{{ outputs.output_values.values.count != '4' }}", "checkFrequency: {interval: PT0.1S}")
    result = run_flow(flow(body, "waitfor"))
    assert result.state == "success"
    assert states(result)["waitfor"] == "success"
    assert result.tasks["waitfor"].outputs == {"iterationCount": 2}
    assert result.tasks["output_values"].outputs == {"values": {"count": "2"}}
    assert _child_runs("test.loops.waitfor__waitfor") == ["success"]


def test_max_iterations_fails_with_fail_on_max_reached(run_flow):
    # Kestra: waitfor-max-iterations.yaml, WaitForCaseTest.waitforMaxIterations: FAILED.
    body = _loop(
        "WaitFor",
        "{{ outputs.output_values.values.count == '10' }}",
        "checkFrequency: {maxIterations: 3, interval: PT0.1S}",
        "failOnMaxReached: true",
    )
    result = run_flow(flow(body, "waitfor-max-iterations"))
    assert result.state == "failed"
    assert states(result)["waitfor"] == "failed"
    assert states(result)["after"] == "upstream_failed"
    assert "max iterations reached after 3 iterations" in (result.tasks["waitfor"].error or "")
    assert result.tasks["output_values"].outputs == {"values": {"count": "4"}}
    assert _child_runs("test.loops.waitfor-max-iterations__waitfor")[-3:] == ["success"] * 3


def test_max_iterations_succeeds_without_fail_on_max_reached(run_flow):
    # Kestra: waitfor-no-success.yaml, WaitForCaseTest.waitforNoSuccess: SUCCESS (failOnMaxReached
    # defaults to false). Condition never true here (count "99"): the maximum ends the loop.
    body = _loop(
        "LoopUntil",
        "{{ outputs.output_values.values.count == '99' }}",
        "checkFrequency: {maxIterations: 2, interval: PT0.1S}",
    )
    result = run_flow(flow(body, "waitfor-no-success"))
    assert result.state == "success"
    assert states(result) == dict.fromkeys(["waitfor", "output_values", "after"], "success")
    assert result.tasks["after"].outputs == {"value": "3/3"}


def test_max_duration_fails_with_fail_on_max_reached(run_flow):
    # Kestra: waitfor-max-duration.yaml, WaitForCaseTest.waitforMaxDuration: FAILED (condition never true).
    body = _loop(
        "WaitFor",
        "{{ outputs.output_values.values.count == '-5' }}",
        "checkFrequency: {maxDuration: PT0.5S, interval: PT0.1S}",
        "failOnMaxReached: true",
    )
    result = run_flow(flow(body, "waitfor-max-duration"))
    assert result.state == "failed"
    assert states(result)["waitfor"] == "failed"
    assert "max duration reached" in (result.tasks["waitfor"].error or "")
    runs = _child_runs("test.loops.waitfor-max-duration__waitfor")
    assert runs and set(runs) == {"success"}  # every iteration succeeded; the duration ended the loop


def test_a_failed_iteration_fails_the_loop_at_once(run_flow):
    # Kestra: waitfor-multiple-tasks-failed.yaml, WaitForCaseTest.waitforMultipleTasksFailed: FAILED,
    # the failing task run once (attempt 1): no further iteration.
    body = _loop(
        "WaitFor",
        "{{ outputs.output_values.values.count == '6' }}",
        "checkFrequency: {maxIterations: 5, interval: PT0.1S}",
    ).replace(
        "      - id: after",
        "          - id: fail\n            type: io.kestra.plugin.core.execution.Fail\n      - id: after",
    )
    result = run_flow(flow(body, "waitfor-multiple-tasks-failed"))
    assert result.state == "failed"
    assert states(result)["waitfor"] == "failed"
    assert states(result)["fail"] == "failed"
    assert states(result)["after"] == "upstream_failed"
    assert _child_runs("test.loops.waitfor-multiple-tasks-failed__waitfor") == ["failed"]


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        (
            f"""
            tasks:
              - id: each
                type: {FLOW}.ForEach
                values: [a]
                tasks:
                  - id: loop
                    type: {FLOW}.LoopUntil
                    condition: "true"
                    tasks: [{{id: work, type: io.kestra.plugin.core.log.Log, message: x}}]
            """,
            "`LoopUntil` inside a ForEach is not supported by yaml2dag yet",
            10,
        ),
        (
            f"""
            tasks:
              - id: loop
                type: {FLOW}.WaitFor
                condition: "true"
                tasks: [{{id: stop, type: io.kestra.plugin.core.execution.Exit, state: KILLED}}]
            """,
            "`Exit` inside a LoopUntil is not supported by yaml2dag yet",
            8,
        ),
        (
            f"""
            tasks:
              - id: loop
                type: {FLOW}.LoopUntil
                condition: "true"
                checkFrequency: {{interval: soon}}
                tasks: [{{id: work, type: io.kestra.plugin.core.log.Log, message: x}}]
            """,
            "`soon` is not an ISO-8601 duration",
            8,
        ),
    ],
    ids=["in-foreach", "exit-inside", "bad-interval"],
)
def test_what_yaml2dag_cannot_run_is_a_located_error(body, message, line):
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.loader import load_yaml
    from yaml2dag.validation import parse_flow

    text = flow(body, "refused")
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    found = [(error.message, error.line) for error in caught.value.errors]
    assert any(message in text and at == line for text, at in found), found


def test_yaml2dag_run_reports_each_iteration_live(airflow_db, flow_file):
    # The live lines of `yaml2dag run`: each iteration's task and log line, then the loop's state.
    from yaml2dag.runner import run_flow

    done: list[tuple[str, str]] = []
    logged: list[tuple[str, str]] = []
    body = f"""
    tasks:
      - id: loop
        type: {FLOW}.LoopUntil
        condition: "{{{{ outputs.r.value == '2' }}}}"
        checkFrequency: {{interval: PT0.1S}}
        tasks:
          - id: r
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ outputs.loop.iterationCount }}}}"
    """
    result = run_flow(
        flow_file(flow(body, "live")),
        on_task_done=lambda task_id, state: done.append((task_id, state)),
        on_log_line=lambda task_id, line: logged.append((task_id, line.message)),
    )
    assert result.state == "success"
    assert done == [("r", "success"), ("r", "success"), ("loop", "success")]
    returned = [entry for entry in logged if entry[1].startswith("Returning")]
    assert returned == [("r", "Returning `1`"), ("r", "Returning `2`")]
    assert result.tasks["loop"].outputs == {"iterationCount": 3}
