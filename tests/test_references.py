"""Expressions naming an input, variable or task the flow lacks are compile errors, located, with a suggestion."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_cli_ux import _environment

from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text

FLOW = """\
id: references
namespace: test.references
inputs:
  - id: name
    type: STRING
    defaults: kestra
  - id: request.user
    type: STRING
    defaults: me
  - name: legacy
    type: STRING
    defaults: declared with Kestra's deprecated `name`
variables:
  greeting: hello
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: "{{ vars.greeting }}"
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
  - id: later
    type: io.kestra.plugin.core.log.Log
    disabled: true
    message: later
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: MESSAGE
"""


def errors_of(message: str) -> list[str]:
    """The errors of the flow above with `show`'s message set to `message` (none: compiled)."""
    text = FLOW.replace("MESSAGE", message.replace("\\", "\\\\").replace('"', '\\"').join('""'))
    try:
        parse_flow_text(text, "flow.yaml")
    except FlowValidationError as exc:
        return [str(error) for error in exc.errors]
    return []


@pytest.mark.parametrize(
    "message",
    [
        "{{ inputs.name }} {{ inputs['name'] }} {{ inputs.request.user }} {{ inputs.legacy }}",
        "{{ vars.greeting }} {{ outputs.first.value }} {{ outputs['inner']['a'].value }}",
        "{{ outputs.later }} {{ outputs.loop }}",  # a disabled task, a flowable
        "{{ inputs.other ?? 'x' }} {{ vars.missing ??? 'y' }}",  # tolerant forms accept a missing value
        "{{ vars.missing | default('z') }} {% if outputs.nothing is defined %}x{% endif %}",
        "{{ inputs.other is null }} {{ vars.missing is empty }}",
        "{% set vars = {'x': 1} %}{{ vars.x }}",  # a name the template binds itself
        "{% for outputs in [{'a': 1}] %}{{ outputs.a }}{% endfor %}",
        "{{ outputs[taskrun.value] }} {{ inputs[vars.greeting] }}",  # computed keys are not checked
        "{{ outputs.first_merge }}",  # a task run Kestra generates (ForEachItem)
        "{{ trigger.outputs.x }} {{ parents[0].outputs.y }} {{ execution.id }}",  # other roots
    ],
)
def test_references_that_can_be_right_are_accepted(message: str):
    assert errors_of(message) == []


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            "{{ inputs.nme }}",
            "flow.yaml:32:18: tasks[3].message: unknown input `nme` in `inputs.nme` (did you mean `name`?)",
        ),
        (
            "{{ outputs.missing.x }}",
            "flow.yaml:32:18: tasks[3].message: unknown task `missing` in `outputs.missing` "
            "(tasks: `first`, `inner`, `later`, `loop`, `show`)",
        ),
        (
            "{{ outputs['fisrt'].value }}",
            "tasks[3].message: unknown task `fisrt` in `outputs.fisrt` (did you mean `first`?)",
        ),
        (
            "hi {{ vars.typo }}",
            "flow.yaml:32:21: tasks[3].message: unknown variable `typo` in `vars.typo` (flow variables: `greeting`)",
        ),
        ("{{ vars.greting | upper }}", "unknown variable `greting` in `vars.greting` (did you mean `greeting`?)"),
        ("{% if inputs.nam == 'x' %}y{% endif %}", "unknown input `nam` in `inputs.nam` (did you mean `name`?)"),
    ],
)
def test_unknown_references_are_located_errors_with_a_suggestion(message: str, error: str):
    (found,) = errors_of(message)
    assert error in found


def test_run_if_is_checked_too():
    text = FLOW.replace("    message: MESSAGE", "    message: hi\n    runIf: \"{{ inputs.nmae == 'x' }}\"")
    with pytest.raises(FlowValidationError) as raised:
        parse_flow_text(text, "flow.yaml")
    assert [str(error) for error in raised.value.errors] == [
        "flow.yaml:33:16: tasks[3].runIf: unknown input `nmae` in `inputs.nmae` (did you mean `name`?)"
    ]


def test_validate_command_prints_the_located_errors(tmp_path: Path):
    flow = tmp_path / "typos.yaml"
    flow.write_text(
        textwrap.dedent("""\
        id: typos
        namespace: test.references
        inputs:
          - id: name
            type: INTT
        variables:
          greeting: hi
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            message: "{{ inputs.nme }} {{ outputs.missing.x }} {{ vars.typo }}"
        """)
    )
    done = subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", "validate", str(flow)],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == "1 file(s) checked, 1 with errors, 4 error(s)\n"
    assert done.stderr.splitlines() == [
        f"{flow}:5:11: inputs[0].type: input should be 'STRING', 'ENUM', 'SELECT', 'MULTISELECT', 'INT', 'FLOAT', "
        "'BOOLEAN', 'BOOL', 'DATETIME', 'DATE', 'TIME', 'DURATION', 'FILE', 'JSON', 'YAML', 'URI', 'SECRET', "
        "'ARRAY' or 'EMAIL' (did you mean `INT`?)",
        f"{flow}:11:18: tasks[0].message: unknown input `nme` in `inputs.nme` (did you mean `name`?)",
        f"{flow}:11:35: tasks[0].message: unknown task `missing` in `outputs.missing` (tasks: `a`)",
        f"{flow}:11:59: tasks[0].message: unknown variable `typo` in `vars.typo` (flow variables: `greeting`)",
    ]
