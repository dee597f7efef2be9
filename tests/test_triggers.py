"""Kestra triggers → Airflow scheduling: Schedule (timetables), Flow (assets), Webhook (REST API), refusals.

Schedules are checked through Airflow's own scheduling computation on the serialized DAG; the end-state
asset events are checked in Airflow's database after real runs. tests/test_flow_triggers_stack.py
proves on `airflow standalone` that an upstream run starts its downstream flows.
"""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from conftest import states

from yaml2dag.compiler import compile_flow
from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.triggers import flow_trigger_variables

HEADER = "id: planned\nnamespace: tests.triggers\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
HEADER += "    message: hi\ntriggers:\n"
SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"
FLOW = "io.kestra.plugin.core.trigger.Flow"


def trigger(body: str) -> str:
    """A flow whose `triggers` list is `body` (YAML, indented as list items under `triggers:`)."""
    return HEADER + textwrap.indent(textwrap.dedent(body), "  ")


def dag_of(text: str):
    return compile_flow(parse_flow_text(text, "flow.yaml"))


def errors_of(text: str) -> list:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    return caught.value.errors


def only_error(text: str):
    errors = errors_of(text)
    assert len(errors) == 1, [str(error) for error in errors]
    return errors[0]


def uris(condition) -> list[str]:
    """The asset URIs of an asset condition, in order."""
    if hasattr(condition, "objects"):
        return [uri for item in condition.objects for uri in uris(item)]
    return [condition.uri]


# --- Schedule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "with_seconds", "expression"),
    [
        ("0 9 * * 1-5", False, "0 9 * * 1-5"),
        ("@hourly", False, "0 * * * *"),
        ("@daily", False, "0 0 * * *"),
        ("@midnight", False, "0 0 * * *"),
        ("@weekly", False, "0 0 * * 0"),
        ("@monthly", False, "0 0 1 * *"),
        ("@yearly", False, "0 0 1 1 *"),
        ("@annually", False, "0 0 1 1 *"),
        ("0 30 6 * * *", True, "30 6 * * *"),
        ("00 */5 * * * *", True, "*/5 * * * *"),
        ("@daily", True, "0 0 * * *"),
        ("0 0 * * 7", False, "0 0 * * 7"),
    ],
)
def test_schedule_cron_maps_to_the_same_airflow_cron(cron, with_seconds, expression):
    seconds = "  withSeconds: true\n" if with_seconds else ""
    dag = dag_of(trigger(f"- id: s\n  type: {SCHEDULE}\n  cron: '{cron}'\n{seconds}"))
    assert dag.timetable.expression == expression
    assert (dag.catchup, dag.start_date) == (False, None)


def test_several_schedules_all_fire_in_one_timezone():
    dag = dag_of(
        trigger(
            f"""\
            - id: morning
              type: {SCHEDULE}
              cron: 0 8 * * *
              timezone: Europe/Paris
            - id: evening
              type: {SCHEDULE}
              cron: 0 20 * * *
              timezone: Europe/Paris
            - id: off
              type: {SCHEDULE}
              cron: 0 12 * * *
              timezone: Europe/Paris
              disabled: true
            """
        )
    )
    assert [timetable.expression for timetable in dag.timetable.timetables] == ["0 8 * * *", "0 20 * * *"]


def scheduler_view(dag):
    """The DAG as the scheduler sees it (serialized, with Airflow's core timetable)."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def test_a_new_scheduled_dag_waits_for_the_next_fire_time_like_kestra():
    """Kestra never starts a past schedule for a new trigger; Airflow would, with a start date in the past."""
    from airflow.sdk.timezone import utcnow

    before = utcnow()
    info = scheduler_view(dag_of(trigger(f"- id: s\n  type: {SCHEDULE}\n  cron: '*/7 * * * *'\n"))).next_dagrun_info(
        last_automated_run_info=None
    )
    assert info.run_after > before
    assert info.run_after.minute % 7 == 0 and info.run_after - before <= dt.timedelta(minutes=7)


@pytest.mark.parametrize("recover", ["", "  recoverMissedSchedules: LAST\n", "  recoverMissedSchedules: ALL\n"])
def test_after_downtime_only_the_latest_missed_schedule_runs(recover):
    """Runs missed while Airflow was down or the DAG paused: one run, for the latest fire time (Kestra LAST)."""
    from airflow.sdk.timezone import utcnow
    from airflow.timetables.base import DagRunInfo

    dag = scheduler_view(dag_of(trigger(f"- id: s\n  type: {SCHEDULE}\n  cron: '@daily'\n{recover}")))
    long_ago = (utcnow() - dt.timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0)
    info = dag.next_dagrun_info(last_automated_run_info=DagRunInfo.interval(long_ago, long_ago))
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    assert info.run_after == today


@pytest.mark.parametrize(
    ("body", "path", "message", "hint"),
    [
        ("  cron: '*/10 * * * * *'\n  withSeconds: true\n", "triggers[0].cron", "seconds other than 0", "seconds"),
        ("  cron: '0 0 9 * * *'\n", "triggers[0].cron", "6 fields, expected 5", "withSeconds: true"),
        ("  cron: '0 9 * * *'\n  withSeconds: true\n", "triggers[0].cron", "5 fields, expected 6", "seconds first"),
        ("  cron: '@reboot'\n", "triggers[0].cron", "unknown cron nickname `@reboot`", "@midnight"),
        ("  cron: '0 9 * * *'\n  recoverMissedSchedules: NONE\n", "triggers[0].recoverMissedSchedules", "NONE", "LAST"),
        ("  cron: '0 9 * * *'\n  conditions: [{type: x.Y}]\n", "triggers[0].conditions[0].type", "not supported", ""),
        ("  cron: '0 9 * * *'\n  lateMaximumDelay: PT1H\n", "triggers[0].lateMaximumDelay", "not supported", ""),
        ("  cron: '0 9 * * *'\n  stopAfter: [FAILED]\n", "triggers[0].stopAfter", "not supported", ""),
        ("  cron: '0 9 * * *'\n  key: abc\n", "triggers[0].key", "not a property of a Schedule trigger", ""),
        ("  timezone: UTC\n", "triggers[0]", "missing required property `cron`", ""),
    ],
)
def test_schedule_mistakes_are_located_errors(body, path, message, hint):
    error = only_error(trigger(f"- id: s\n  type: {SCHEDULE}\n") + textwrap.indent(body, "  "))
    assert error.path == path
    assert message in error.message
    assert hint in error.hint
    assert error.line is not None and error.column is not None


# --- Flow triggers: the schedule --------------------------------------------------------------------


def test_flow_trigger_with_preconditions_waits_for_the_upstream_end_states():
    dag = dag_of(
        trigger(
            f"""\
            - id: after_extract
              type: {FLOW}
              preconditions:
                id: extract_done
                flows:
                  - namespace: company.team
                    flowId: extract
                    states: [SUCCESS, WARNING]
            """
        )
    )
    assert uris(dag.timetable.asset_condition) == [
        "kestra://company.team/extract/SUCCESS",
        "kestra://company.team/extract/WARNING",
    ]
    assert type(dag.timetable.asset_condition).__name__ == "AssetAny"


def test_flow_trigger_on_several_flows_waits_for_all_of_them():
    from airflow.sdk import Asset, AssetAll

    dag = dag_of(
        trigger(
            f"""\
            - id: both
              type: {FLOW}
              dependsOn:
                - namespace: company.team
                  flowId: a
                  states: [SUCCESS]
                - namespace: company.team
                  flowId: b
                  states: [FAILED]
            """
        )
    )
    assert dag.timetable.asset_condition == AssetAll(
        Asset(uri="kestra://company.team/a/SUCCESS"), Asset(uri="kestra://company.team/b/FAILED")
    )


def test_flow_trigger_with_mode_any_fires_on_either_flow():
    dag = dag_of(
        trigger(
            f"""\
            - id: either
              type: {FLOW}
              mode: ANY
              dependsOn:
                - {{namespace: company.team, flowId: a, states: [SUCCESS]}}
                - {{namespace: company.team, flowId: b, states: [SUCCESS]}}
            """
        )
    )
    assert type(dag.timetable.asset_condition).__name__ == "AssetAny"
    assert uris(dag.timetable.asset_condition) == ["kestra://company.team/a/SUCCESS", "kestra://company.team/b/SUCCESS"]


def test_legacy_conditions_and_states_filter_the_upstream_states():
    dag = dag_of(
        trigger(
            """\
            - id: on_failure
              type: io.kestra.core.models.triggers.types.Flow
              states: [FAILED, WARNING, KILLED]
              conditions:
                - type: io.kestra.core.models.conditions.types.ExecutionFlowCondition
                  namespace: company.team
                  flowId: load
                - type: io.kestra.plugin.core.condition.ExecutionStatus
                  notIn: [WARNING]
            """
        )
    )
    assert uris(dag.timetable.asset_condition) == [
        "kestra://company.team/load/FAILED",
        "kestra://company.team/load/KILLED",
    ]


def test_without_states_every_end_state_fires():
    dag = dag_of(trigger(f"- id: f\n  type: {FLOW}\n  dependsOn: [{{namespace: ns, flowId: up}}]\n"))
    assert uris(dag.timetable.asset_condition) == [
        "kestra://ns/up/SUCCESS",
        "kestra://ns/up/WARNING",
        "kestra://ns/up/FAILED",
        "kestra://ns/up/KILLED",
        "kestra://ns/up/CANCELLED",
    ]


def test_schedule_and_flow_triggers_combine_and_a_disabled_trigger_is_left_out():
    dag = dag_of(
        trigger(
            f"""\
            - id: nightly
              type: {SCHEDULE}
              cron: 0 2 * * *
            - id: after_a
              type: {FLOW}
              dependsOn: [{{namespace: ns, flowId: a, states: [SUCCESS]}}]
            - id: after_b
              type: {FLOW}
              dependsOn: [{{namespace: ns, flowId: b, states: [SUCCESS]}}]
            - id: after_c
              type: {FLOW}
              disabled: true
              dependsOn: [{{namespace: ns, flowId: c, states: [SUCCESS]}}]
            """
        )
    )
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    assert dag.timetable.timetable.expression == "0 2 * * *"
    assert uris(dag.timetable.asset_condition) == ["kestra://ns/a/SUCCESS", "kestra://ns/b/SUCCESS"]
    assert type(dag.timetable.asset_condition).__name__ == "AssetAny"
    assert scheduler_view(dag).timetable.summary  # serializes and deserializes for the scheduler


def test_flow_triggered_dag_loads_with_a_required_input_without_defaults():
    # As Kestra: the flow loads; a triggered run without the input fails at start (tests/test_inputs.py).
    text = trigger(f"- id: f\n  type: {FLOW}\n  dependsOn: [{{namespace: ns, flowId: up}}]\n").replace(
        "tasks:", "inputs:\n  - id: day\n    type: STRING\ntasks:"
    )
    assert "day" in dag_of(text).params


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ("  dependsOn: [{namespace: ns}]\n", "triggers[0].dependsOn[0]", "needs both `namespace` and `flowId`"),
        ("  states: [PAUSED]\n", "triggers[0]", "never fires"),
        (
            "  conditions:\n    - type: io.kestra.plugin.core.condition.HasRetryAttempt\n      in: [FAILED]\n",
            "triggers[0].conditions[0].type",
            "condition `io.kestra.plugin.core.condition.HasRetryAttempt` is not supported",
        ),
        (
            "  conditions:\n    - type: io.kestra.plugin.core.condition.ExecutionNamespace\n      namespace: ns\n"
            "      comparison: CONTAINS\n",
            "triggers[0].conditions[0].comparison",
            "EQUALS, PREFIX or SUFFIX",
        ),
        (
            "  conditions:\n    - type: io.kestra.plugin.core.condition.Not\n      conditions:\n"
            "        - {type: io.kestra.plugin.core.condition.DayWeek, dayOfWeek: MONDAY}\n",
            "triggers[0].conditions[0].conditions[0]",
            "not supported inside Not",
        ),
        (
            "  conditions:\n    - type: io.kestra.plugin.core.condition.MultipleCondition\n      window: P2D\n"
            "      conditions:\n"
            "        a: {type: io.kestra.plugin.core.condition.ExecutionFlow, namespace: ns, flowId: a}\n",
            "triggers[0].conditions[0].window",
            "window other than Kestra's default",
        ),
        ("  dependsOn: [{namespace: tests.triggers, flowId: planned}]\n", "triggers[0]", "a flow's own executions"),
        (
            "  conditions:\n    - {type: io.kestra.plugin.core.condition.ExecutionFlow, namespace: ns, flowId: a}\n"
            "    - {type: io.kestra.plugin.core.condition.ExecutionFlow, namespace: ns, flowId: b}\n",
            "triggers[0].conditions",
            "can never hold together",
        ),
        ("  mode: AT_LEAST\n  dependsOn: [{namespace: ns, flowId: a}]\n", "triggers[0].mode", "AT_LEAST"),
        (
            "  preconditions:\n    flows: [{namespace: ns, flowId: a}]\n    timeWindow: {type: DAILY_TIME_WINDOW}\n",
            "triggers[0].preconditions.timeWindow",
            "not supported",
        ),
        (
            "  preconditions:\n    flows: [{namespace: ns, flowId: a}]\n    where: [{id: x}]\n",
            "triggers[0].preconditions.where",
            "supported alone",
        ),
        (
            "  preconditions:\n    flows: [{namespace: ns, flowId: a}]\n    resetOnSuccess: false\n",
            "triggers[0].preconditions.resetOnSuccess",
            "resetOnSuccess",
        ),
        ("  dependsOn: [{namespace: ns, flowId: a, states: [PAUSED]}]\n", "triggers[0].dependsOn[0]", "never fires"),
        ("  dependsOn: [{namespace: ns, flowId: a, states: [DONE]}]\n", "triggers[0].dependsOn[0].states[0]", ""),
        ("  dependsOn: [{namespace: ns, flowId: a}]\n  cron: '@daily'\n", "triggers[0].cron", "not a property"),
        ("  dependsOn: [{namespace: ns, flowId: a}]\n  window: {deadline: '09:00:00'}\n", "triggers[0].window", ""),
    ],
)
def test_flow_trigger_mistakes_are_located_errors(body, path, message):
    error = only_error(trigger(f"- id: f\n  type: {FLOW}\n") + textwrap.indent(body, "  "))
    assert error.path == path
    assert message in error.message
    assert error.line is not None


# --- Webhook and other types ------------------------------------------------------------------------


def test_webhook_trigger_compiles_to_a_dag_started_through_the_rest_api():
    dag = dag_of(trigger("- id: hook\n  type: io.kestra.plugin.core.trigger.Webhook\n  key: 4wjtkzwVGBM9yKnjm3yv8r\n"))
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.start_date is not None  # a plain manual DAG


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ("", "triggers[0]", "missing required property `key`"),
        ("  key: k\n  wait: true\n", "triggers[0].wait", "`wait: true` is not supported"),
        ("  key: k\n  cron: '@daily'\n", "triggers[0].cron", "not a property of a Webhook trigger"),
    ],
)
def test_webhook_mistakes_are_located_errors(body, path, message):
    error = only_error(
        trigger("- id: hook\n  type: io.kestra.plugin.core.trigger.Webhook\n") + textwrap.indent(body, "  ")
    )
    assert (error.path, message in error.message) == (path, True)


@pytest.mark.parametrize(
    "kind",
    [
        "io.kestra.plugin.redis.list.RealtimeTrigger",
        "io.kestra.plugin.core.trigger.Toggle",
        "io.kestra.plugin.gcp.gcs.Trigger",
    ],
)
def test_other_trigger_types_are_located_errors_naming_the_type(kind):
    error = only_error(trigger(f"- id: t\n  type: {kind}\n  url: redis://x\n"))
    assert (error.path, error.message) == ("triggers[0].type", f"trigger type `{kind}` is not supported by yaml2dag")
    assert "Schedule, Flow or Webhook" in error.hint


# --- every flow announces its end state ------------------------------------------------------------


def asset_events(uri: str) -> list:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.uri == uri)
        ).all()
        session.expunge_all()
        return events


FLOWS = {
    "SUCCESS": "    message: fine\n",
    "FAILED": "    message: fine\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n",
    "WARNING": "    message: fine\n  - id: meh\n    type: io.kestra.plugin.core.execution.Fail\n"
    + "    allowFailure: true\n",
}


@pytest.mark.parametrize("state", ["SUCCESS", "FAILED", "WARNING"])
def test_every_run_emits_the_asset_of_its_kestra_end_state(run_flow, state):
    flow_id = f"emits_{state.lower()}"
    text = f"id: {flow_id}\nnamespace: tests.triggers\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
    result = run_flow(text + FLOWS[state])
    assert result.state == {"SUCCESS": "success", "FAILED": "failed", "WARNING": "warning"}[state]
    assert "_flow_event" not in states(result), "the event task is not a flow task"
    [event] = asset_events(f"kestra://tests.triggers/{flow_id}/{state}")
    expected = {
        "executionId": result.run_id,
        "namespace": "tests.triggers",
        "flowId": flow_id,
        "flowRevision": 1,
        "state": state,
        "labels": {},
    }
    assert event.extra == expected
    # The same event on the assets of the namespace, of each enclosing namespace and of every flow.
    for uri in ("kestra://tests.triggers/*/", "kestra://tests/**/", "kestra://tests.triggers/**/", "kestra://**/"):
        assert [found.extra for found in asset_events(uri + state) if found.extra["flowId"] == flow_id] == [expected]
    others = [other for other in ("SUCCESS", "WARNING", "FAILED") if other != state]
    assert all(asset_events(f"kestra://tests.triggers/{flow_id}/{other}") == [] for other in others)
    assert flow_trigger_variables([event]) == expected


def test_the_event_task_never_changes_the_run_state():
    dag = dag_of(trigger(f"- id: s\n  type: {SCHEDULE}\n  cron: '@daily'\n"))
    event, state = dag.get_task("_flow_event"), dag.get_task("_flow_state")
    assert event.is_teardown and not event.on_failure_fail_dagrun
    # Beside `_flow_state`, after the same main task: the flow has no `outputs` to wait for.
    assert event.upstream_task_ids == state.upstream_task_ids == {"a"} and state.on_failure_fail_dagrun
    assert [alias.name for alias in event.outlets] == ["kestra://tests.triggers/planned"]
