"""Expressions in running tasks: the context additions behind `tasks`, `tasksWithState()` and
`errorLogs()`, `secret()` through Airflow Variables, and a few flows run end to end on Airflow."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from yaml2dag.errors import RenderError
from yaml2dag.expressions import render
from yaml2dag.expressions.functions import RUN_INFO_KEY
from yaml2dag.operators.context import ERROR_XCOM_KEY, FlowInfo, build_context


class FakeTaskInstance:
    """Just enough of Airflow's RuntimeTaskInstance for `build_context`."""

    def __init__(self, states: dict[str, str], errors: dict[str, str]) -> None:
        self.states = states
        self.errors = errors
        self.try_number = 1
        self.calls: list[dict[str, Any]] = []

    def get_task_states(self, **kwargs: Any) -> dict[str, dict[str, str]]:
        self.calls.append(kwargs)
        return {
            kwargs["run_ids"][0]: {task: state for task, state in self.states.items() if task in kwargs["task_ids"]}
        }

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.errors.get(task_ids) if key == ERROR_XCOM_KEY else None


def _context(states: dict[str, str], errors: dict[str, str] | None = None) -> tuple[dict[str, Any], FakeTaskInstance]:
    flow = FlowInfo(id="f", namespace="ns", task_ids=frozenset({"a", "b", "c", "me"}))
    ti = FakeTaskInstance(states, errors or {})
    dag_run = SimpleNamespace(run_id="r1", dag_id="ns.f", start_date=None, run_type="manual")
    return build_context(flow, "me", "io.kestra.plugin.core.log.Log", {"dag_run": dag_run, "ti": ti}), ti


def test_tasks_root_maps_airflow_states_to_kestra_names_lazily() -> None:
    context, ti = _context({"a": "success", "b": "failed", "c": "up_for_retry", "me": "running"})
    assert ti.calls == []  # nothing is asked before an expression reads it
    assert render("{{ tasks.a.state }} {{ tasks.b.state }} {{ tasks.c.state }}", context) == "SUCCESS FAILED RETRYING"
    assert render("{{ tasks.me is defined }}", context) == "false"
    assert ti.calls == [{"dag_id": "ns.f", "run_ids": ["r1"], "task_ids": ["a", "b", "c"]}]


def test_tasks_with_state_reads_the_tasks_root() -> None:
    context, _ = _context({"a": "success", "b": "failed", "c": "failed"})
    assert render("{{ tasksWithState('failed') | length }}", context) == "2"
    assert render("{{ tasksWithState('SUCCESS')[0].taskId }}", context) == "a"


def test_error_logs_lists_failed_tasks_with_their_message() -> None:
    context, _ = _context({"a": "success", "b": "failed", "c": "failed"}, {"b": "boom"})
    assert RUN_INFO_KEY in context
    assert render("{{ errorLogs() | length }}", context) == "2"
    assert render("{{ errorLogs()[0].taskId }}: {{ errorLogs()[0].message }}", context) == "b: boom"
    assert render("{{ errorLogs()[1].message }}", context) == "Task c failed"
    assert render("{{ errorLogs()[0].level }} {{ errorLogs()[0].flowId }}", context) == "ERROR f"


def test_no_task_states_outside_a_worker() -> None:
    class Broken(FakeTaskInstance):
        def get_task_states(self, **kwargs: Any) -> dict[str, dict[str, str]]:
            raise RuntimeError("no supervisor")

    flow = FlowInfo(id="f", namespace="ns", task_ids=frozenset({"a"}))
    dag_run = SimpleNamespace(run_id="r1", dag_id="ns.f", start_date=None, run_type="manual")
    context = build_context(flow, "me", "t", {"dag_run": dag_run, "ti": Broken({}, {})})
    assert render("{{ tasksWithState('FAILED') }} {{ errorLogs() }}", context) == "[] []"


def test_secret_reads_an_airflow_variable_and_masks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_API_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("AIRFLOW_VAR_JSON_SECRET", '{"user": "bob", "port": 5432}')
    assert render("{{ secret('API_TOKEN') }}", {}) == "s3cr3t-value"
    assert render("{{ secret('JSON_SECRET', subkey='user') }}", {}) == "bob"
    assert render("{{ kv('JSON_SECRET').port + 1 }}", {}) == "5433"
    from airflow.sdk.log import _secrets_masker  # type: ignore[attr-defined]

    assert "s3cr3t-value" not in _secrets_masker().redact("token=s3cr3t-value")


def test_missing_secret_fails_the_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_NOT_THERE_AT_ALL", raising=False)
    with pytest.raises(RenderError, match="Cannot find secret for key 'NOT_THERE_AT_ALL'"):
        render("{{ secret('NOT_THERE_AT_ALL') }}", {})
    assert render("{{ kv('NOT_THERE_AT_ALL', errorOnMissing=false) ?? 'none' }}", {}) == "none"


@pytest.mark.airflow
def test_expressions_in_a_running_flow(run_flow: Any) -> None:
    result = run_flow(
        """
        id: expressions
        namespace: tests.expressions
        inputs:
          - id: name
            type: STRING
            defaults: World
        variables:
          greeting: "Hello {{ inputs.name }}"
        tasks:
          - id: first
            type: io.kestra.plugin.core.debug.Return
            format: "{{ render(vars.greeting) | upper }}"
          - id: second
            type: io.kestra.plugin.core.debug.Return
            format: >-
              {{ outputs.first.value ~ '!' }} {{ [1, 2, 3] | jq('.[1]') | first }}
              {{ tasksWithState('SUCCESS') | length }} {{ 7 / 2 }} {{ {'b': 1, 'a': 2} }}
              {% for x in ['a', 'b'] %}{{ loop.index }}{{ x }}{% endfor %}
        """
    )
    assert result.state == "success", result
    assert result.tasks["first"].outputs == {"value": "HELLO WORLD"}
    assert result.tasks["second"].outputs == {"value": 'HELLO WORLD! 2 1 3 {"a":2,"b":1} 0a1b'}


@pytest.mark.airflow
def test_a_missing_variable_fails_the_task_with_kestras_message(run_flow: Any) -> None:
    result = run_flow(
        """
        id: strict
        namespace: tests.expressions
        tasks:
          - id: tolerant
            type: io.kestra.plugin.core.debug.Return
            format: "{{ outputs.nothing.value ?? 'fallback' }}"
          - id: bad
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.nothing.value }}"
          - id: nothing
            type: io.kestra.plugin.core.log.Log
            message: never runs, so it has no outputs
            disabled: true
        """
    )
    assert result.tasks["tolerant"].outputs == {"value": "fallback"}
    assert result.tasks["bad"].state == "failed"
    assert "Unable to find `outputs.nothing` used in the expression" in result.tasks["bad"].log_text()
