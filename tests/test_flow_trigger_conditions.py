"""Flow trigger conditions: the assets a trigger is scheduled on, the run-start check, real runs.

The schedule is read from the compiled DAG; `event_mismatch` is Kestra's condition semantics on an
upstream end event; real runs (`dag.test()`) show the check task letting a manual run through.
tests/test_flow_trigger_conditions_stack.py proves the failure-alert pattern on `airflow standalone`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import states

from yaml2dag.compiler import compile_flow
from yaml2dag.errors import FlowValidationError
from yaml2dag.expressions import render
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.triggers import emitted_uris, event_mismatch, trigger_check_specs

BLUEPRINTS = Path("/work/shared/corpora/blueprints")
FLOW = "io.kestra.plugin.core.trigger.Flow"
C = "io.kestra.plugin.core.condition."


def flow_text(triggers: str, namespace: str = "company.alerts", flow_id: str = "alert") -> str:
    head = f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
    return head + "    message: hi\ntriggers:\n" + textwrap.indent(textwrap.dedent(triggers), "  ")


def dag_of(text: str):
    return compile_flow(parse_flow_text(text, "flow.yaml"))


def uris(condition) -> list[str]:
    if hasattr(condition, "objects"):
        return [uri for item in condition.objects for uri in uris(item)]
    return [condition.uri]


def blueprint_triggers(name: str) -> str:
    """The `triggers:` block of a Kestra blueprint, as the body of a flow's triggers list."""
    text = (BLUEPRINTS / name).read_text()
    block = text[text.index("\ntriggers:\n") + len("\ntriggers:\n") :]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith(" "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)) + "\n"


# --- emitted assets -----------------------------------------------------------------------------------


def test_a_run_announces_itself_to_every_kind_of_listener():
    assert emitted_uris("company.team", "etl", "FAILED") == [
        "kestra://company.team/etl/FAILED",
        "kestra://company.team/*/FAILED",
        "kestra://company/**/FAILED",
        "kestra://company.team/**/FAILED",
        "kestra://**/FAILED",
    ]


# --- the schedule of each condition shape -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # ExecutionNamespace PREFIX (`comparison: PREFIX` or `prefix: true`) + ExecutionStatus in.
        ("create-github-issue-on-failure.yaml", ["kestra://company/**/WARNING", "kestra://company/**/FAILED"]),
        ("discord-alert.yaml", ["kestra://company.analytics/**/WARNING", "kestra://company.analytics/**/FAILED"]),
        # ExecutionStatus only: any flow.
        ("failure-alert-slack.yaml", ["kestra://**/WARNING", "kestra://**/FAILED"]),
        # ExecutionNamespace `prefix: true` and the trigger's states.
        ("line-failure-alert.yaml", ["kestra://company.team/**/FAILED"]),
        # ExecutionLabels: every flow, the labels checked when the run starts.
        ("flow-condition-executionlabels.yaml", ["kestra://**/FAILED"]),
        # Not(ExecutionNamespace): every flow, every end state.
        (
            "flow-condition-not.yaml",
            [f"kestra://**/{state}" for state in ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED")],
        ),
    ],
)
def test_blueprint_flow_triggers_listen_to_the_right_assets(name, expected):
    dag = dag_of(flow_text(blueprint_triggers(name)))
    assert uris(dag.timetable.asset_condition) == expected
    assert "_trigger_check" in dag.task_ids
    assert dag.get_task("a").upstream_task_ids == {"_trigger_check"}


def test_multiple_condition_waits_for_every_flow():
    from airflow.sdk import Asset, AssetAll

    dag = dag_of(flow_text(blueprint_triggers("flow-downstream.yaml")))
    assert dag.timetable.asset_condition == AssetAll(
        Asset(uri="kestra://company.team/flow_a/SUCCESS"), Asset(uri="kestra://company.team/flow_b/SUCCESS")
    )
    assert "_trigger_check" not in dag.task_ids, "named flows and states only: the assets are exact"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("{type: %sExecutionNamespace, namespace: company.team}", "kestra://company.team/*/FAILED"),
        ("{type: %sExecutionNamespace, namespace: company.te, comparison: PREFIX}", "kestra://company.te/**/FAILED"),
        ("{type: %sExecutionNamespace, namespace: company., comparison: PREFIX}", "kestra://company/**/FAILED"),
        ("{type: %sExecutionNamespace, namespace: team, comparison: SUFFIX}", "kestra://**/FAILED"),
        ("{type: %sExpression, expression: '{{ trigger.flowId == \"etl\" }}'}", "kestra://**/FAILED"),
    ],
)
def test_namespace_comparisons_listen_to_the_narrowest_assets(condition, expected):
    text = flow_text(f"- id: t\n  type: {FLOW}\n  states: [FAILED]\n  conditions:\n    - {condition % C}\n")
    assert uris(dag_of(text).timetable.asset_condition) == [expected]


def test_a_trigger_on_named_flows_only_has_no_check_task():
    text = flow_text(f"- id: t\n  type: {FLOW}\n  dependsOn: [{{namespace: company.team, flowId: etl}}]\n")
    assert "_trigger_check" not in dag_of(text).task_ids


def test_upstream_labels_and_when_are_checked_when_the_run_starts():
    text = flow_text(
        f"""\
        - id: t
          type: {FLOW}
          preconditions:
            id: p
            flows:
              - namespace: company.team
                flowId: etl
                states: [FAILED]
                labels: {{team: data}}
                when: "{{{{ trigger.state == 'FAILED' }}}}"
        """
    )
    dag = dag_of(text)
    assert uris(dag.timetable.asset_condition) == ["kestra://company.team/etl/FAILED"]
    [spec] = dag.get_task("_trigger_check").triggers
    assert spec["upstreams"] == [
        {
            "namespace": "company.team",
            "flowId": "etl",
            "states": ["FAILED"],
            "labels": {"team": "data"},
            "when": "{{ trigger.state == 'FAILED' }}",
        }
    ]


def test_the_check_task_serializes_for_the_scheduler():
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dag_of(flow_text(blueprint_triggers("create-github-issue-on-failure.yaml")))
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert "_trigger_check" in restored.task_ids
    assert uris(restored.timetable.asset_condition) == ["kestra://company/**/WARNING", "kestra://company/**/FAILED"]


# --- the run-start check: Kestra's condition semantics --------------------------------------------------


def event(namespace: str = "company.team", flow_id: str = "etl", state: str = "FAILED", **labels: str) -> dict:
    return {
        "executionId": "manual__1",
        "namespace": namespace,
        "flowId": flow_id,
        "flowRevision": 1,
        "state": state,
        "labels": labels,
    }


def mismatch(triggers: str, upstream: dict, own: tuple[str, str] = ("company.alerts", "alert")) -> str | None:
    flow = parse_flow_text(flow_text(triggers, *own), "flow.yaml")
    [spec] = trigger_check_specs(flow)
    return event_mismatch(spec, upstream, own, render)


ALERT = f"""\
- id: on_failure
  type: {FLOW}
  conditions:
    - {{type: {C}ExecutionStatus, in: [FAILED, WARNING]}}
    - {{type: {C}ExecutionNamespace, namespace: company, comparison: PREFIX}}
"""


def test_the_alert_fires_on_a_failure_under_its_namespace_prefix():
    assert mismatch(ALERT, event()) is None
    assert mismatch(ALERT, event(state="WARNING")) is None
    assert "state SUCCESS" in mismatch(ALERT, event(state="SUCCESS"))
    assert "ExecutionNamespace" in mismatch(ALERT, event(namespace="other.team"))
    assert mismatch(ALERT, event(namespace="company")) is None


def test_a_flow_is_never_triggered_by_its_own_execution():
    assert "own execution" in mismatch(ALERT, event(namespace="company.alerts", flow_id="alert"))
    assert mismatch(ALERT, event(namespace="company.alerts", flow_id="other")) is None


@pytest.mark.parametrize(
    ("conditions", "upstream", "fires"),
    [
        (f"[{{type: {C}ExecutionLabels, labels: {{owner: john.doe}}}}]", event(owner="john.doe"), True),
        (f"[{{type: {C}ExecutionLabels, labels: {{owner: john.doe}}}}]", event(owner="jane"), False),
        (f"[{{type: {C}ExecutionLabels, labels: [{{key: owner, value: john.doe}}]}}]", event(), False),
        (f"[{{type: {C}ExecutionNamespace, namespace: .team, comparison: SUFFIX}}]", event(), True),
        (f"[{{type: {C}ExecutionNamespace, namespace: company.team}}]", event(namespace="company.team.x"), False),
        (f"[{{type: {C}Not, conditions: [{{type: {C}ExecutionNamespace, namespace: company, prefix: true}}]}}]",
         event(), False),
        (f"[{{type: {C}Not, conditions: [{{type: {C}ExecutionNamespace, namespace: other, prefix: true}}]}}]",
         event(), True),
        (f"[{{type: {C}Or, conditions: [{{type: {C}ExecutionFlow, namespace: x, flowId: y}}, "
         f"{{type: {C}ExecutionStatus, in: [FAILED]}}]}}]", event(), True),
        (f"[{{type: {C}Expression, expression: \"{{{{ trigger.flowId == 'etl' }}}}\"}}]", event(), True),
        (f"[{{type: {C}Expression, expression: \"{{{{ trigger.flowId == 'etl' }}}}\"}}]", event(flow_id="x"), False),
        (f"[{{type: {C}Expression, expression: \"{{{{ labels.team ?? '' }}}}\"}}]", event(team="data"), True),
    ],
)  # fmt: skip
def test_conditions_no_asset_expresses_are_evaluated_on_the_event(conditions, upstream, fires):
    triggers = f"- id: t\n  type: {FLOW}\n  conditions: {conditions}\n"
    assert (mismatch(triggers, upstream) is None) is fires


def test_several_triggers_any_of_them_fires():
    triggers = ALERT + f"- id: exact\n  type: {FLOW}\n  dependsOn: [{{namespace: x, flowId: y, states: [SUCCESS]}}]\n"
    flow = parse_flow_text(flow_text(triggers), "flow.yaml")
    specs = trigger_check_specs(flow)
    own = ("company.alerts", "alert")
    assert [event_mismatch(spec, event("x", "y", "SUCCESS"), own, render) is None for spec in specs] == [False, True]
    assert [event_mismatch(spec, event(), own, render) is None for spec in specs] == [True, False]


# --- real runs ----------------------------------------------------------------------------------------------


def test_a_manual_run_of_an_alert_flow_is_not_filtered(run_flow):
    """Only runs started by an asset event are checked; a manual run runs its tasks."""
    result = run_flow(flow_text(ALERT, namespace="tests.conditions", flow_id="manual_alert"))
    assert result.state == "success"
    assert states(result) == {"a": "success"}


# --- preconditions.where ----------------------------------------------------------------------------------

WHERE = f"""\
- id: any_prod_failure
  type: {FLOW}
  preconditions:
    id: prod
    where:
      - id: prod_failures
        filters:
          - {{field: NAMESPACE, type: STARTS_WITH, value: company.prod}}
          - {{field: STATE, type: IN, values: [FAILED, WARNING]}}
          - {{field: FLOW_ID, type: REGEX, value: "etl_.*"}}
"""


def test_a_where_filter_listens_to_its_namespace_and_states():
    dag = dag_of(flow_text(WHERE))
    assert uris(dag.timetable.asset_condition) == [
        "kestra://company.prod/**/WARNING",
        "kestra://company.prod/**/FAILED",
    ]
    assert "_trigger_check" in dag.task_ids


@pytest.mark.parametrize(
    ("upstream", "fires"),
    [
        (event("company.prod", "etl_orders"), True),
        (event("company.prod.eu", "etl_orders", "WARNING"), True),
        (event("company.prod", "load_orders"), False),  # REGEX is a full match, as Java's `matches`
        (event("company.prod", "etl_orders", "SUCCESS"), False),
        (event("company.dev", "etl_orders"), False),
    ],
)
def test_where_filters_follow_kestra(upstream, fires):
    assert (mismatch(WHERE, upstream) is None) is fires


def test_where_or_operand_and_expression():
    triggers = f"""\
    - id: t
      type: {FLOW}
      preconditions:
        id: p
        where:
          - id: either
            operand: OR
            filters:
              - {{field: FLOW_ID, type: EQUAL_TO, value: a}}
              - {{field: EXPRESSION, type: IS_TRUE, value: "{{{{ trigger.namespace == 'x' }}}}"}}
    """
    assert mismatch(triggers, event("company.team", "a")) is None
    assert mismatch(triggers, event("x", "b")) is None
    assert "does not hold" in mismatch(triggers, event("company.team", "b"))


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            "    flows: [{namespace: ns, flowId: a}]\n    where: [{id: w, filters: [{field: STATE, type: EQUAL_TO, "
            "value: FAILED}]}]\n",
            "triggers[0].preconditions.where",
            "supported alone",
        ),
        ("    where: [{id: w, filters: [{field: LABELS, type: EQUAL_TO, value: x}]}]\n",
         "triggers[0].preconditions.where[0].filters[0]", "needs `field`"),
        ("    where: [{id: w, filters: [{field: STATE, type: IN, value: FAILED}]}]\n",
         "triggers[0].preconditions.where[0].filters[0]", "needs `values`"),
    ],
)  # fmt: skip
def test_where_mistakes_are_located_errors(body, path, message):
    text = flow_text(f"- id: t\n  type: {FLOW}\n  preconditions:\n    id: p\n" + body)
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    [error] = caught.value.errors
    assert (error.path, message in error.message) == (path, True)


def test_a_condition_that_cannot_be_rendered_is_not_met_and_does_not_fail():
    """Kestra logs a condition it cannot evaluate and does not fire; the check must not fail the run."""
    triggers = f"- id: t\n  type: {FLOW}\n  conditions: [{{type: {C}Expression, expression: '{{{{ nope.x }}}}'}}]\n"
    assert "could not be evaluated" in mismatch(triggers, event())


def test_the_check_comes_before_a_flowable_first_task():
    text = flow_text(ALERT).replace(
        "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
        "  - id: branch\n    type: io.kestra.plugin.core.flow.If\n    condition: 'true'\n    then:\n"
        "      - id: a\n        type: io.kestra.plugin.core.log.Log\n        message: hi\n",
    )
    dag = dag_of(text)
    assert dag.get_task("branch.start").upstream_task_ids == {"_trigger_check"}


def test_a_manual_run_with_a_flowable_first_runs_through_the_check(run_flow):
    text = flow_text(ALERT, namespace="tests.conditions", flow_id="manual_if").replace(
        "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
        "  - id: branch\n    type: io.kestra.plugin.core.flow.If\n    condition: 'true'\n    then:\n"
        "      - id: a\n        type: io.kestra.plugin.core.log.Log\n        message: hi\n",
    )
    result = run_flow(text)
    assert result.state == "success"
    assert states(result)["a"] == "success"
