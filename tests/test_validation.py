"""Every validation rule answers with file, line, column, path and what to write instead."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import EXAMPLES, FLOWS

from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text, read_flow

HEADER = "id: checks\nnamespace: tests.validation\n"
LOG = "    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def errors_of(text: str) -> list:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(textwrap.dedent(text), "flow.yaml")
    return caught.value.errors


# (case id, flow text, line, column, path, message fragment, hint fragment)
CASES = [
    ("yaml-syntax", HEADER + "tasks:\n  - id: a\n   type: x\n", 5, 4, "", "YAML syntax error", ""),
    ("duplicate-key", HEADER + "tasks:\n  - id: a\n    id: b\n", 5, 5, "", "duplicate key `id`", "remove or rename"),
    ("tab-indent", HEADER + "tasks:\n\t- id: a\n", 4, 1, "", "tab character", "indent with spaces"),
    (
        "unknown-type",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Logg\n    message: hi\n",
        5,
        11,
        "tasks[0].type",
        "unknown task type `io.kestra.plugin.core.log.Logg`",
        "did you mean `io.kestra.plugin.core.log.Log`?",
    ),
    (
        "unsupported-type",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.flow.ForEachItem\n",
        5,
        11,
        "tasks[0].type",
        "not supported by yaml2dag yet",
        "",
    ),
    (
        "unknown-property",
        HEADER + "tasks:\n  - id: a\n" + LOG + "    mesage: typo\n",
        7,
        5,
        "tasks[0].mesage",
        "unknown property `mesage`",
        "did you mean `message`?",
    ),
    (
        "missing-property",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n",
        4,
        5,
        "tasks[0].message",
        "missing required property `message`",
        "",
    ),
    (
        "bad-task-id",
        HEADER + "tasks:\n  - id: bad.id\n" + LOG,
        4,
        9,
        "tasks[0].id",
        "invalid value `bad.id`",
        "",
    ),
    (
        "upper-case-namespace",
        "id: checks\nnamespace: Company.Team\ntasks:\n  - id: a\n" + LOG,
        2,
        12,
        "namespace",
        "must be lower case",
        "",
    ),
    (
        "duplicate-task-id",
        HEADER + "tasks:\n  - id: a\n" + LOG + "finally:\n  - id: a\n" + LOG,
        8,
        9,
        "finally[0].id",
        "duplicate task id `a` (first used at line 4",
        "unique in the whole flow, nested tasks included",
    ),
    (
        "expression-syntax",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: '{{ flow.id == }}'\n",
        6,
        29,
        "tasks[0].message",
        "invalid expression",
        "",
    ),
    (
        "unknown-filter",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: '{{ flow.id | uper }}'\n",
        6,
        28,
        "tasks[0].message",
        "unknown filter `uper`; did you mean `upper`?",
        "",
    ),
    (
        "not-yet-supported-property",
        HEADER + "tasks:\n  - id: a\n" + LOG + "    logToFile: true\n",
        7,
        5,
        "tasks[0].logToFile",
        "property `logToFile` is not supported by yaml2dag yet",
        "remove it",
    ),
    ("empty-tasks", HEADER + "tasks: []\n", 3, 8, "tasks", "at least 1 item", ""),
    ("tasks-not-a-list", HEADER + "tasks: hello\n", 3, 1, "tasks", "`tasks` must be a list of tasks", ""),
    (
        "system-label",
        HEADER + "labels:\n  system.owner: me\ntasks:\n  - id: a\n" + LOG,
        4,
        3,
        "labels",
        "reserved",
        "",
    ),
    ("not-a-mapping", "- just\n- a list\n", 1, 1, "", "a flow must be a YAML mapping", ""),
    (
        "bad-duration",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: 5 seconds\n",
        6,
        15,
        "tasks[0].duration",
        "not an ISO-8601 duration",
        "",
    ),
    (
        "bad-cron",
        HEADER
        + "tasks:\n  - id: a\n"
        + LOG
        + "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: 61 * * * *\n",
        10,
        11,
        "triggers[0].cron",
        "invalid cron expression",
        "5 fields",
    ),
    (
        "bad-level",
        HEADER + "tasks:\n  - id: a\n" + LOG + "    level: LOUD\n",
        7,
        12,
        "tasks[0].level",
        "must be one of TRACE, DEBUG, INFO, WARN, ERROR",
        "",
    ),
    (
        "missing-namespace",
        "id: checks\ntasks:\n  - id: a\n" + LOG,
        1,
        1,
        "namespace",
        "missing required property `namespace`",
        "",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "path", "message", "hint"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_located_and_explained(text, line, column, path, message, hint):
    errors = errors_of(text)
    matching = [error for error in errors if message in error.message]
    assert matching, f"no error mentions {message!r}: {[str(e) for e in errors]}"
    error = matching[0]
    assert error.file == "flow.yaml"
    assert (error.line, error.column) == (line, column), str(error)
    assert error.path == path
    assert hint in error.hint
    assert str(error).startswith(f"flow.yaml:{line}:{column}: ")


def test_seed_log_task_with_error_message_points_at_the_line_and_suggests_message():
    path = FLOWS / "invalid" / "finally_example_success_seed.yaml"
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    messages = {error.path: error for error in caught.value.errors}
    unknown = messages["tasks[0].errorMessage"]
    assert (unknown.line, unknown.column) == (8, 5)
    assert unknown.hint == "did you mean `message`?"
    assert unknown.file == str(path)


def test_every_error_of_a_file_is_reported_at_once():
    errors = errors_of(
        HEADER
        + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        + "  - id: b\n    type: nope\nerrors:\n  - id: c\n    type: io.kestra.plugin.core.log.Log\n    bad: 1\n"
    )
    assert {error.path for error in errors} >= {
        "tasks[0].message",
        "tasks[1].type",
        "errors[0].bad",
        "errors[0].message",
    }


def test_invalid_utf8_is_located(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(
        b"id: x\nnamespace: t\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: caf\xe9\n"
    )
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    error = caught.value.errors[0]
    assert (error.line, error.column) == (6, 17)
    assert "invalid UTF-8" in error.message


def test_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 9):
        previous = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        bomb += f"{name}: &{name} [{', '.join('*' + previous for _ in range(10))}]\n"
    errors = errors_of(bomb)
    assert "expands to more than" in errors[0].message


def test_yaml_1_1_scalars_read_as_written_text():
    flow = parse_flow_text(
        HEADER + "tasks:\n  - id: off\n    type: io.kestra.plugin.core.log.Log\n    message: 12:30\n"
    )
    assert flow.tasks[0].id == "off"
    assert flow.tasks[0].message == "12:30"


def test_legacy_type_aliases_are_accepted():
    flow = parse_flow_text(
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.core.tasks.log.Log\n    message: hi\n"
        "  - id: b\n    type: io.kestra.core.tasks.executions.Fail\n"
    )
    assert [type(task).__name__ for task in flow.tasks] == ["Log", "Fail"]


def test_labels_as_list_or_map_become_strings():
    as_list = parse_flow_text(HEADER + "labels:\n  - key: team\n    value: 7\ntasks:\n  - id: a\n" + LOG)
    as_map = parse_flow_text(HEADER + "labels:\n  team: 7\ntasks:\n  - id: a\n" + LOG)
    assert as_list.labels == as_map.labels == {"team": "7"}


def test_example_flows_are_valid():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name == "docker_redis.yaml":
            continue
        read_flow(path)


def test_tabs_inside_block_scalars_are_text_not_indentation():
    flow = parse_flow_text(
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: |\n      a\n      \tb\n"
    )
    assert flow.tasks[0].message == "a\n\tb\n"


def test_schedules_of_one_flow_share_a_timezone():
    def schedules(second_zone: str) -> str:
        trigger = "  - id: {id}\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '0 {h} * * *'\n"
        return (
            HEADER
            + "tasks:\n  - id: a\n"
            + LOG
            + "triggers:\n"
            + trigger.format(id="morning", h=8)
            + "    timezone: Europe/Paris\n"
            + trigger.format(id="evening", h=20)
            + f"    timezone: {second_zone}\n"
        )

    flow = parse_flow_text(schedules("Europe/Paris"))
    assert [trigger.id for trigger in flow.triggers] == ["morning", "evening"]
    [error] = errors_of(schedules("America/New_York"))
    assert (error.line, error.column, error.path) == (15, 15, "triggers[1].timezone")
    assert "differs from `Europe/Paris`" in error.message
    assert error.hint == "all Schedule triggers of a flow must use the same timezone"
