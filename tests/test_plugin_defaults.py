"""`pluginDefaults` / `taskDefaults`: applied to every task and trigger as Kestra applies them, and
errors caused by a default located at the default."""

from __future__ import annotations

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text

HEADER = "id: defaults\nnamespace: tests.defaults\n"
LOG_TYPE = "io.kestra.plugin.core.log.Log"


def errors_of(text: str) -> list:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    return caught.value.errors


@pytest.mark.airflow
def test_defaults_fill_tasks_forced_ones_override_them_in_every_block(run_flow):
    result = run_flow(
        """
        id: defaults
        namespace: tests.defaults
        pluginDefaults:
          - type: io.kestra.plugin.core.log
            values:
              level: WARN
          - type: io.kestra.plugin.core.debug.Return
            forced: true
            values:
              format: forced value
        tasks:
          - id: warn
            type: io.kestra.plugin.core.log.Log
            message: level from the default
          - id: own
            type: io.kestra.plugin.core.log.Log
            level: ERROR
            message: own level wins
          - id: ret
            type: io.kestra.plugin.core.debug.Return
            format: own format loses
          - id: fail
            type: io.kestra.plugin.core.execution.Fail
        errors:
          - id: alert
            type: io.kestra.core.tasks.log.Log
            message: "legacy name: the prefix does not match it"
        finally:
          - id: last
            type: io.kestra.plugin.core.log.Log
            message: in finally
        """
    )
    assert states(result) == {
        "warn": "success",
        "own": "success",
        "ret": "success",
        "fail": "failed",
        "alert": "success",
        "last": "success",
    }
    levels = {task_id: {line.level for line in result.tasks[task_id].logs} for task_id in ("warn", "own", "last")}
    assert "WARNING" in levels["warn"] and "WARNING" in levels["last"]
    assert "ERROR" in levels["own"]
    assert result.tasks["ret"].outputs == {"value": "forced value"}
    # `io.kestra.plugin.core.log` is not a prefix of the legacy name `io.kestra.core.tasks.log.Log`.
    alert = [(line.level, line.message) for line in result.tasks["alert"].logs]
    assert ("INFO", "legacy name: the prefix does not match it") in alert


def test_defaults_reach_tasks_nested_in_flowables():
    flow = parse_flow_text(
        HEADER
        + f"pluginDefaults:\n  - type: {LOG_TYPE}\n    values:\n      level: DEBUG\n"
        + "tasks:\n  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n"
        + f"      - id: inner\n        type: {LOG_TYPE}\n        message: hi\n"
    )
    assert flow.tasks[0].tasks[0].level == "DEBUG"


def test_first_matching_default_wins_maps_merge_and_lists_concatenate():
    flow = parse_flow_text(
        HEADER
        + "pluginDefaults:\n"
        + f"  - type: {LOG_TYPE}\n    values:\n      level: DEBUG\n      message: [from default]\n"
        + "  - type: io.kestra\n    values:\n      level: ERROR\n      description: from prefix\n"
        + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    message: [own]\n"
    )
    task = flow.tasks[0]
    assert (task.level, task.description) == ("DEBUG", "from prefix")
    assert task.message == ["from default", "own"]


def test_first_forced_default_wins_over_later_forced_ones():
    flow = parse_flow_text(
        HEADER
        + "pluginDefaults:\n"
        + f"  - type: {LOG_TYPE}\n    forced: true\n    values:\n      level: DEBUG\n"
        + "  - type: io.kestra.plugin.core\n    forced: true\n    values:\n      level: ERROR\n"
        + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    level: WARN\n    message: hi\n"
    )
    assert flow.tasks[0].level == "DEBUG"


def test_a_default_for_a_legacy_type_name_also_applies_to_the_current_name_and_task_defaults_alias_works():
    flow = parse_flow_text(
        HEADER
        + "taskDefaults:\n  - type: io.kestra.core.tasks.log.Log\n    values:\n      level: TRACE\n"
        + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    message: hi\n"
    )
    assert flow.tasks[0].level == "TRACE"


def test_defaults_apply_to_triggers():
    flow = parse_flow_text(
        HEADER
        + "pluginDefaults:\n  - type: io.kestra.plugin.core.trigger.Schedule\n    values:\n"
        + "      timezone: Europe/Paris\n"
        + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    message: hi\n"
        + "triggers:\n  - id: daily\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '0 9 * * *'\n"
    )
    assert flow.triggers[0].timezone == "Europe/Paris"


def test_an_unknown_property_from_a_prefix_default_is_located_at_the_default():
    [error] = errors_of(
        HEADER
        + "pluginDefaults:\n  - type: io.kestra.plugin.core\n    values:\n      colour: red\n"
        + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    message: hi\n"
    )
    assert (error.path, error.line, error.column) == ("pluginDefaults[0].values.colour", 6, 7)
    assert error.message == (
        f"unknown property `colour` for task type `{LOG_TYPE}` (set on `tasks[0].colour` by pluginDefaults)"
    )


def test_a_bad_value_from_a_default_is_located_at_the_default():
    [error] = errors_of(
        HEADER
        + f"pluginDefaults:\n  - type: {LOG_TYPE}\n    values:\n      level: LOUD\n"
        + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    message: hi\n"
    )
    assert error.path == "pluginDefaults[0].values.level"
    assert error.line == 6
    assert "(set on `tasks[0].level` by pluginDefaults)" in error.message


def test_a_default_for_an_exact_type_may_only_name_its_properties_even_if_no_task_uses_it():
    [error] = errors_of(
        HEADER
        + "pluginDefaults:\n  - type: io.kestra.plugin.core.debug.Return\n    values:\n      formt: x\n"
        + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    message: hi\n"
    )
    assert error.path == "pluginDefaults[0].values.formt"
    assert (
        error.message
        == "unknown property `formt` for task type `io.kestra.plugin.core.debug.Return` in plugin defaults"
    )


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        ("  - type: io.kestra\n", "pluginDefaults[0].values", "missing required property `values`"),
        ("  - type: io.kestra\n    values:\n      level: null\n", "pluginDefaults[0].values", "no value given"),
        ("  - values:\n      level: WARN\n", "pluginDefaults[0].type", "missing required property `type`"),
    ],
)
def test_malformed_default_entries_are_located(entry, path, message):
    [error] = errors_of(
        HEADER + "pluginDefaults:\n" + entry + f"tasks:\n  - id: log\n    type: {LOG_TYPE}\n    message: x\n"
    )
    assert error.path == path
    assert error.message.startswith(message), error.message
