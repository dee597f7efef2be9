"""Hostile and broken flow files get a clear, located error in bounded time and memory, never a crash.

Also one test per crash the fuzzing found, each pinned to the smallest input that caused it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from yaml2dag.errors import FlowError, FlowValidationError
from yaml2dag.flowfile import parse_flow_text, read_flow
from yaml2dag.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, decode_flow_bytes, load_yaml

HEADER = "id: hostile\nnamespace: tests.hostile\n"
TASKS = "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
FLOW = HEADER + TASKS


def errors_of(text: str) -> list[FlowError]:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    return caught.value.errors


def only_error(text: str) -> FlowError:
    errors = errors_of(text)
    assert len(errors) == 1, [str(error) for error in errors]
    return errors[0]


def parse_in_subprocess(path: Path) -> dict:
    """Parse `path` in a fresh process (a C stack overflow would kill it, not the test run)."""
    code = textwrap.dedent(
        """\
        import json, resource, sys, time
        from yaml2dag.errors import FlowValidationError
        from yaml2dag.flowfile import read_flow
        started = time.monotonic()
        try:
            read_flow(sys.argv[1])
            errors = []
        except FlowValidationError as exc:
            errors = [error.to_dict() for error in exc.errors]
        # VmHWM: this program's peak (ru_maxrss would count the forking parent's memory before exec).
        hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
        peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"errors": errors, "seconds": time.monotonic() - started, "peak_mb": peak}))
        """
    )
    process = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, f"crashed with {process.returncode}: {process.stderr[-2000:]}"
    return json.loads(process.stdout)


# --- nesting --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ("{a: ", "}")], ids=["lists", "maps"])
@pytest.mark.parametrize("depth", [10_000, 1_000_000])
@pytest.mark.timeout(120)
def test_deep_nesting_in_variables_is_a_located_error_not_a_crash(tmp_path, opening, closing, depth):
    """A million levels used to overflow the C stack (segfault); 10,000 in OutputValues hit RecursionError."""
    path = tmp_path / "deep.yaml"
    path.write_text(HEADER + "variables:\n  x: " + opening * depth + "1" + closing * depth + "\n" + TASKS)
    result = parse_in_subprocess(path)
    [error] = result["errors"]
    assert error["message"] == f"values nested more than {MAX_DEPTH} levels deep"
    assert (error["line"], error["hint"]) == (4, "flatten the data")


def test_deep_nesting_in_a_task_property_is_refused_before_any_recursion():
    values = "[" * 10_000 + "'{{ flow.id }}'" + "]" * 10_000
    text = (
        HEADER
        + f"tasks:\n  - id: a\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      x: {values}\n"
    )
    assert "levels deep" in only_error(text).message


def test_block_style_nesting_is_refused_too():
    lines = "".join("  " * (level + 1) + "-\n" for level in range(MAX_DEPTH + 5))
    error = only_error(FLOW + "variables:\n" + lines)
    assert error.message == f"values nested more than {MAX_DEPTH} levels deep"
    assert error.line is not None


@pytest.mark.airflow
def test_the_deepest_accepted_flow_compiles_and_serializes():
    """The depth limit leaves room for Airflow's own recursive serialization of operator arguments."""
    from airflow.serialization.serialized_objects import DagSerialization

    from yaml2dag.compiler import compile_flow

    depth = MAX_DEPTH - 6  # root map, tasks, the task, values, x, then the lists
    values = "[" * depth + "'{{ flow.id }}'" + "]" * depth
    flow = parse_flow_text(
        HEADER
        + f"tasks:\n  - id: a\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      x: {values}\n"
    )
    DagSerialization.to_dict(compile_flow(flow))


def test_aliases_cannot_build_data_deeper_than_the_limit():
    chain = "a0: &a0 " + "[" * 60 + "1" + "]" * 60 + "\n"
    chain += "".join(f"a{n}: &a{n} " + "[" * 60 + f"*a{n - 1}" + "]" * 60 + "\n" for n in range(1, 4))
    error = only_error(FLOW + "variables:\n" + textwrap.indent(chain, "  "))
    assert error.message == f"document expands to more than {MAX_DEPTH} levels deep"


# --- size -------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_file_over_the_size_limit_is_refused_without_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(FLOW.encode() + b"#" * MAX_FILE_BYTES)
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    [error] = caught.value.errors
    assert (error.file, error.message) == (str(path), "file is larger than 10 MiB")


@pytest.mark.timeout(120)
def test_a_file_just_under_the_limit_full_of_values_is_refused_quickly_in_little_memory(tmp_path):
    """10 MiB of `1,` used to take 24 s and 1.8 GB before the value limit refused it."""
    path = tmp_path / "values.yaml"
    head = FLOW + "variables:\n  x: ["
    count = (MAX_FILE_BYTES - len(head) - 10) // 2
    path.write_text(head + "1," * count + "1]\n")
    assert path.stat().st_size <= MAX_FILE_BYTES
    result = parse_in_subprocess(path)
    [error] = result["errors"]
    assert error["message"] == f"the document holds more than {MAX_NODES} values"
    assert error["line"] == 8
    # It used to peak at 1.8 GB; the bound keeps a wide margin because peak RSS varies between machines.
    assert result["peak_mb"] < 1024


@pytest.mark.timeout(60)
def test_billion_laughs_is_refused_quickly():
    bomb = "  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n" for n in range(1, 10)
    )
    error = only_error(FLOW + "variables:\n" + bomb)
    assert error.message == f"document expands to more than {MAX_NODES} values"


def test_a_recursive_alias_is_refused():
    assert "expands to" in only_error(FLOW + "variables:\n  a: &a [*a]\n").message


# --- encodings and characters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line", "column", "byte"),
    [
        (FLOW.encode() + b"description: caf\xe9\n", 7, 17, "0xe9"),
        ("\ufeff".encode("utf-16-le") + FLOW.encode("utf-16-le"), 1, 1, "0xff"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 1, 1, "0x89"),
    ],
    ids=["latin-1", "utf-16", "binary"],
)
def test_bytes_that_are_not_utf8_are_located(data, line, column, byte):
    with pytest.raises(FlowValidationError) as caught:
        decode_flow_bytes(data, "flow.yaml")
    [error] = caught.value.errors
    assert (error.line, error.column) == (line, column)
    assert error.message == f"invalid UTF-8 byte {byte}"


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f"])
def test_control_characters_are_located(character):
    error = only_error(FLOW + f"description: é{character}\n")
    assert (error.line, error.column) == (7, 15)  # a character, not a byte, after the two-byte é
    assert error.message == f"character U+{ord(character):04X} is not allowed in YAML"
    assert f"\\u{ord(character):04x}" in error.hint


def test_a_lone_surrogate_in_text_is_located():
    error = only_error(FLOW + "description: a\ud800b\n")
    assert (error.line, error.column, error.message) == (7, 15, "invalid character U+D800 (not valid Unicode text)")


def test_a_byte_order_mark_is_accepted():
    assert parse_flow_text("\ufeff" + FLOW).id == "hostile"


# --- YAML features flows do not use ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (FLOW + "id: again\n", 7, 1, "YAML syntax error: duplicate key `id`"),
        (HEADER + "tasks:\n  - id: a\n    id: b\n", 5, 5, "YAML syntax error: duplicate key `id`"),
        (HEADER + "tasks:\n\t- id: a\n", 4, 1, "tab character used for indentation"),
        (FLOW + "variables:\n  x: 1\r\n\ty: 2\n", 9, 1, "tab character used for indentation"),
        (FLOW + "variables:\n  ? [a, b]\n  : 1\n", 8, 5, "YAML syntax error: mapping keys must be plain scalars"),
        (FLOW + "variables:\n  base: &b {a: 1}\n  x:\n    <<: *b\n", 10, 5, "YAML merge keys (`<<`) are not supported"),
        (FLOW + "---\n" + FLOW, 7, 1, "YAML syntax error: but found another document"),
    ],
    ids=["duplicate-key", "duplicate-task-key", "tab", "tab-after-crlf", "complex-key", "merge-key", "two-documents"],
)
def test_yaml_problems_are_located(text, line, column, message):
    error = only_error(text)
    assert (error.line, error.column, error.message) == (line, column, message)


@pytest.mark.parametrize(
    "value",
    ["!!int abc", "!!int ''", "!!float x", "!!bool maybe", "!!map scalar", "!!timestamp 2024-01-01",
     "!!binary aGk=", "!!set {a}", "!!omap [a: 1]", "!!pairs [a: 1]", "!custom x"],
)  # fmt: skip
def test_explicit_tags_are_located_errors(value):
    """`!!int abc` raised ValueError, `!!bool maybe` KeyError, `!!map x` ValueError; dates, bytes and sets
    reached the compiler (a `!!timestamp` default broke Airflow's params)."""
    error = only_error(FLOW + f"variables:\n  x: {value}\n")
    assert (error.line, error.column) == (8, 6)
    assert "tag" in error.message or "is not a valid" in error.message or "expected a mapping" in error.message


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_loading_never_runs_code_from_yaml(tmp_path, monkeypatch, tag):
    marker = tmp_path / "ran"

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("code from YAML was run")

    monkeypatch.setattr(os, "system", forbidden)
    text = FLOW + "variables:\n  x: " + tag.format(marker=marker) + "\n"
    error = only_error(text)
    assert error.message.startswith("unsupported YAML tag `!!python/")
    assert (error.line, error.column) == (8, 6)
    assert not marker.exists()
    with pytest.raises(FlowValidationError):
        load_yaml("!!python/object/apply:os.system ['touch " + str(marker) + "']\n")
    assert not marker.exists()


# --- crashes the fuzzing found, each now a located error -------------------------------------------


def test_an_empty_document_is_located_at_its_start():
    for text in ("", "# only a comment\n"):
        error = only_error(text)
        assert (error.line, error.column) == (1, 1)


def test_unknown_property_on_a_schedule_trigger_is_an_error_not_a_key_error():
    text = (
        FLOW + "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n    '': 1\n"
    )
    error = only_error(text)
    assert error.message == "unknown property `` for a Schedule trigger"


def test_a_duration_too_long_for_python_is_an_error():
    error = only_error(
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: P9999999999D\n"
    )
    assert "longer than the longest duration supported" in error.message
    assert (error.line, error.column) == (6, 15)


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ("    timeout: -PT1S\n", "tasks[0].timeout", "`-PT1S` must be a positive duration"),
        ("    timeout: PT0S\n", "tasks[0].timeout", "`PT0S` must be a positive duration"),
        ("    timeout: P999999999D\n", "tasks[0].timeout", "`P999999999D` is longer than the longest Airflow supports"),
        ("    timeout: PT99999999999H\n", "tasks[0].timeout", "`PT99999999999H` is longer than the longest duration"),
        (
            "    retry:\n      type: constant\n      interval: PT1S\n      maxAttempt: " + "1" + "0" * 30 + "\n",
            "tasks[0].retry.maxAttempt",
            "input should be less than or equal to 2147483647",
        ),
        (
            "    retry:\n      type: constant\n      interval: P99999999D\n      maxAttempts: 3\n",
            "tasks[0].retry.interval",
            "`P99999999D` is longer than the longest Airflow supports",
        ),
        (
            "concurrency:\n  limit: 1000000000000000000000000000000\n",
            "concurrency.limit",
            "less than or equal to 2147483647",
        ),
    ],
)
def test_timeouts_and_limits_airflow_cannot_hold_are_located_errors_not_overflows(extra, path, message):
    """Negative or zero timeouts (Kestra refuses them), and numbers that overflowed Airflow's timer or database."""
    error = only_error(FLOW + extra)
    assert error.path == path
    assert message in error.message


@pytest.mark.airflow
def test_the_longest_accepted_timeout_and_limits_compile():
    from yaml2dag.compiler import compile_flow

    text = (
        HEADER
        + "concurrency:\n  limit: 2147483647\n"
        + TASKS
        + "    timeout: PT596523H\n"
        + "    retry:\n      type: constant\n      interval: PT1S\n      maxAttempts: 2147483647\n"
    )
    dag = compile_flow(parse_flow_text(text, "flow.yaml"))
    assert dag.max_active_runs == 2147483647
    assert dag.get_task("a").execution_timeout.total_seconds() == 596523 * 3600


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ("    timeout: '{{ vars.t }}'\n", "tasks[0].timeout", "`timeout` must be a fixed duration"),
        (
            "    retry:\n      type: constant\n      maxAttempts: 2\n      interval: '{{ vars.i }}'\n",
            "tasks[0].retry.interval",
            "`interval` must be a fixed duration",
        ),
    ],
)
def test_expressions_where_the_dag_needs_a_fixed_duration_are_errors(extra, path, message):
    """The compiler parsed them when building the DAG and raised ValueError."""
    error = only_error(FLOW + extra)
    assert error.path == path
    assert error.message.startswith(message)


def test_ids_longer_than_airflow_allows_are_errors():
    task = only_error(
        HEADER + "tasks:\n  - id: " + "a" * 251 + "\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )
    assert (task.path, task.message) == ("tasks[0].id", "string should have at most 250 characters")
    dag = only_error("id: " + "a" * 100 + "\nnamespace: " + "b" * 150 + "\n" + TASKS)
    assert dag.path == "id"
    assert "251 characters long; Airflow allows 250" in dag.message


def test_an_unknown_time_zone_is_an_error():
    text = FLOW + "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"
    error = only_error(text + "    timezone: Mars/Olympus\n")
    assert (error.path, error.line, error.column) == ("triggers[0].timezone", 11, 15)
    assert error.message == "unknown time zone `Mars/Olympus`"


@pytest.mark.parametrize(
    ("input_yaml", "path", "message"),
    [
        ("    type: STRING\n    validator: '('\n", "inputs[0].validator", "invalid regular expression"),
        ("    type: STRING\n    min: a\n", "inputs[0].min", "`min` on a STRING input is not supported"),
        ("    type: DURATION\n    max: PT1H\n", "inputs[0].max", "`max` on a DURATION input is not supported"),
        ("    type: INT\n    min: one\n", "inputs[0].min", "`min` must be a number"),
    ],
)
def test_input_settings_that_would_break_the_param_schema_are_errors(input_yaml, path, message):
    """Airflow failed to serialize such a DAG: it vanished with an error naming no file or line."""
    error = only_error(HEADER + "inputs:\n  - id: x\n" + input_yaml + TASKS)
    assert error.path == path
    assert error.message.startswith(message)


SCHEDULE = "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"


@pytest.mark.parametrize(
    ("input_yaml", "path", "message"),
    [
        (
            "    type: INT\n    defaults: abc\n",
            "inputs[0].defaults",
            "`defaults` of a INT input must be a whole number",
        ),
    ],
)
def test_scheduled_flows_need_defaults_of_the_input_type(input_yaml, path, message):
    """Airflow refuses a scheduled DAG whose params lack a valid default: compile_flow raised ValueError."""
    error = only_error(HEADER + "inputs:\n  - id: x\n" + input_yaml + TASKS + SCHEDULE)
    assert error.path == path
    assert error.message.startswith(message)


@pytest.mark.airflow
def test_scheduled_flow_with_optional_and_defaulted_inputs_compiles():
    from yaml2dag.compiler import compile_flow

    inputs = "inputs:\n  - id: x\n    type: STRING\n    required: false\n  - id: y\n    type: INT\n    defaults: 3\n"
    dag = compile_flow(parse_flow_text(HEADER + inputs + TASKS + SCHEDULE))
    assert set(dag.params) == {"x", "y"}


@pytest.mark.airflow
def test_a_blank_description_compiles():
    """The compiler took the first line of the stripped description: IndexError for blanks."""
    from yaml2dag.compiler import compile_flow

    flow = parse_flow_text(HEADER + "description: '   '\n" + TASKS)
    assert flow.description is None
    assert compile_flow(flow).description is None
