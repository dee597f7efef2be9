"""Flow inputs on real Airflow: every type reaches tasks as Kestra gives it, bad values are refused
before any task runs, SECRET values are masked, `dependsOn` and Schedule trigger `inputs` apply."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text

HEADER = "id: inputs\nnamespace: tests.inputs\n"
LOG = "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
SCHEDULE = "triggers:\n  - id: daily\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '0 9 * * *'\n"


def only_error(text: str):
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    assert len(caught.value.errors) == 1, caught.value.errors
    return caught.value.errors[0]


@pytest.mark.airflow
def test_every_input_type_reaches_tasks_as_kestra_gives_it(run_flow):
    result = run_flow(
        """
        id: typed
        namespace: tests.inputs
        inputs:
          - id: count
            type: INT
            defaults: "5"
          - id: label
            type: STRING
            defaults: 5
          - id: ratio
            type: FLOAT
            defaults: 1
          - id: flag
            type: BOOL
            defaults: true
          - id: config
            type: YAML
            defaults:
              retries: 2
              modes: [fast, on]
          - id: payload
            type: JSON
            defaults: '{"k": [1, 2]}'
          - id: sizes
            type: ARRAY
            itemType: INT
            defaults: [1, 2]
          - id: colours
            type: MULTISELECT
            values: [red, green, blue]
            defaults: [red, blue]
          - id: when
            type: DATETIME
            defaults: "2024-01-31T10:00:00+01:00"
          - id: day
            type: DATE
            defaults: "2024-01-31"
          - id: at
            type: TIME
            defaults: "10:30:00"
          - id: wait
            type: DURATION
            defaults: P1D
          - id: mail
            type: EMAIL
            defaults: team@example.com
          - id: nested.key
            type: STRING
            defaults: deep
        tasks:
          - id: ret
            type: io.kestra.plugin.core.debug.Return
            format: >-
              {{ inputs.count + 1 }}|{{ inputs.label ~ '!' }}|{{ inputs.ratio }}|{{ inputs.flag }}|
              {{ inputs.config.retries * 2 }}|{{ inputs.config.modes[1] }}|{{ inputs.payload.k[1] }}|
              {{ inputs.sizes[0] + inputs.sizes[1] }}|{{ inputs.colours }}|{{ inputs.when }}|
              {{ inputs.when | date('yyyy-MM-dd HH:mm', timeZone='UTC') }}|{{ inputs.day }}|{{ inputs.at }}|
              {{ inputs.wait }}|{{ inputs.mail }}|{{ inputs.nested.key }}
        """
    )
    assert states(result) == {"ret": "success"}
    assert [part.strip() for part in result.tasks["ret"].outputs["value"].split("|")] == [
        "6",
        "5!",
        "1.0",
        "true",
        "4",
        "on",
        "2",
        "3",
        '["red","blue"]',
        "2024-01-31T09:00:00Z",
        "2024-01-31 09:00",
        "2024-01-31",
        "10:30",
        "PT24H",
        "team@example.com",
        "deep",
    ]


@pytest.mark.airflow
def test_secret_input_is_masked_in_task_logs(run_flow):
    result = run_flow(
        """
        id: secret
        namespace: tests.inputs
        inputs:
          - id: token
            type: SECRET
            validator: "s3cr[a-z0-9]+"
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "token is {{ inputs.token }}, length {{ inputs.token | length }}"
        """,
        inputs={"token": "s3crethunter2"},
    )
    assert states(result) == {"log": "success"}
    text = result.tasks["log"].log_text()
    assert "token is ***, length 13" in text
    assert "s3crethunter2" not in text


@pytest.mark.airflow
def test_secret_input_is_a_password_field_on_the_trigger_form():
    from yaml2dag.compiler import compile_flow

    text = HEADER + "inputs:\n  - id: token\n    type: SECRET\n  - id: doc\n    type: YAML\n" + LOG
    dag = compile_flow(parse_flow_text(text))
    assert dag.params.get_param("token").schema == {"type": "string", "format": "password", "x-yaml2dag-secret": True}
    assert dag.params.get_param("doc").schema == {"type": "string", "format": "multiline"}


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("inputs_yaml", "given", "message"),
    [
        ("    type: JSON\n", {"x": "{not json"}, "inputs.x: must be JSON"),
        ("    type: YAML\n", {"x": "a: [1"}, "inputs.x: must be YAML"),
        ("    type: DATE\n", {"x": "31/01/2024"}, "is not a 'date'"),
        ("    type: STRING\n    validator: '[a-z]+'\n", {"x": "ABC"}, "'ABC' does not match"),
        ("    type: SELECT\n    values: [a, b]\n", {"x": "c"}, "inputs.x"),
        ("    type: INT\n", {"x": "five"}, "inputs.x"),
        ("    type: STRING\n", {}, "inputs.x: missing required input"),
    ],
)
def test_a_bad_or_missing_value_is_refused_before_any_task_runs(run_flow, inputs_yaml, given, message):
    flow = HEADER + "inputs:\n  - id: x\n" + inputs_yaml + LOG
    with pytest.raises(FlowValidationError, match="inputs.x") as caught:
        run_flow(flow, inputs=given)
    assert message in str(caught.value)


def test_cli_input_text_is_typed_per_input():
    from yaml2dag.runner import coerce_inputs

    flow = parse_flow_text(
        HEADER
        + "inputs:\n  - id: n\n    type: INT\n  - id: f\n    type: FLOAT\n  - id: b\n    type: BOOLEAN\n"
        + "  - id: a\n    type: ARRAY\n    itemType: INT\n  - id: s\n    type: STRING\n"
        + "  - id: j\n    type: JSON\n"
        + LOG
    )
    raw = {"n": "5", "f": "2.5", "b": "true", "a": "[1, 2]", "s": "5", "j": '{"a": 1}'}
    assert coerce_inputs(flow, raw) == {"n": 5, "f": 2.5, "b": True, "a": [1, 2], "s": "5", "j": '{"a": 1}'}
    with pytest.raises(FlowValidationError, match="inputs.n: must be a whole number, got `five`"):
        coerce_inputs(flow, {"n": "five"})


@pytest.mark.parametrize(
    ("inputs_yaml", "path", "message"),
    [
        (
            "    type: FILE\n    defaults: /etc/passwd\n",
            "inputs[0].defaults",
            "`defaults` of a FILE input must be a file URI",
        ),
        ("    type: INT\n    defaults: 1.5\n", "inputs[0].defaults", "`defaults` of a INT input must be a whole"),
        (
            "    type: SELECT\n    values: [a]\n    defaults: b\n",
            "inputs[0].defaults",
            "`defaults` of a SELECT input must be one of a",
        ),
        (
            "    type: STRING\n    required: false\n    defaults: a\n    prefill: b\n",
            "inputs[0].prefill",
            "`prefill` and `defaults` cannot be used on the same input",
        ),
        ("    type: INT\n    required: false\n    prefill: many\n", "inputs[0].prefill", "`prefill` of a INT input"),
        ("    type: ARRAY\n", "inputs[0]", "an ARRAY input needs `itemType`"),
        ("    type: ENUM\n", "inputs[0]", "a ENUM input needs `values`"),
        ("    type: JSON\n    defaults: '{a'\n", "inputs[0].defaults", "`defaults` of a JSON input must be JSON"),
        (
            "    type: STRING\n    dependsOn:\n      inputs: [nope]\n",
            "inputs[0].dependsOn.inputs[0]",
            "input `x` depends on unknown input `nope`",
        ),
    ],
)
def test_input_definitions_are_checked_with_a_location(inputs_yaml, path, message):
    error = only_error(HEADER + "inputs:\n  - id: x\n" + inputs_yaml + LOG)
    assert error.path == path
    assert error.message.startswith(message), error.message
    assert error.line is not None


def test_inputs_depending_on_each_other_in_a_circle_are_refused():
    text = (
        HEADER
        + "inputs:\n  - id: a\n    type: STRING\n    dependsOn:\n      inputs: [b]\n"
        + "  - id: b\n    type: STRING\n    dependsOn:\n      inputs: [a]\n"
        + LOG
    )
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text)
    assert {error.path for error in caught.value.errors} == {"inputs[0].dependsOn", "inputs[1].dependsOn"}
    assert all("(a cycle)" in error.message for error in caught.value.errors)


DEPENDS = """
    id: depends
    namespace: tests.inputs
    inputs:
      - id: cloud
        type: SELECT
        values: [aws, gcp]
        defaults: aws
      - id: region
        type: STRING
        dependsOn:
          inputs: [cloud]
          condition: "{{ inputs.cloud == 'aws' }}"
    tasks:
      - id: ret
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.cloud }}:{{ inputs.region ?? 'none' }}"
    """


@pytest.mark.airflow
def test_depends_on_leaves_a_hidden_input_null_and_requires_a_shown_one(run_flow):
    hidden = run_flow(DEPENDS, inputs={"cloud": "gcp"})
    assert hidden.tasks["ret"].outputs == {"value": "gcp:none"}
    shown = run_flow(DEPENDS, inputs={"region": "eu-west-1"})
    assert shown.tasks["ret"].outputs == {"value": "aws:eu-west-1"}
    with pytest.raises(FlowValidationError, match="inputs.region: missing required input"):
        run_flow(DEPENDS)


PREFILLED = (
    HEADER
    + "inputs:\n  - id: role\n    type: STRING\n    prefill: Data Engineer\n    required: false\n"
    + "tasks:\n  - id: ret\n    type: io.kestra.plugin.core.debug.Return\n"
    + "    format: \"{{ inputs.role ?? 'none' }}\"\n"
)


def test_a_prefill_fills_the_form_but_a_run_without_the_value_has_none(run_flow):
    from yaml2dag.compiler import compile_flow

    # Kestra 1.1 `prefill`: the trigger form starts with it (the Param's default) and sends it in
    # the run's conf; the user may clear it, and a run started without the value (API, schedule) has none.
    assert compile_flow(parse_flow_text(PREFILLED)).params["role"] == "Data Engineer"
    assert run_flow(PREFILLED, inputs={"role": "Data Engineer"}).tasks["ret"].outputs == {"value": "Data Engineer"}
    assert run_flow(PREFILLED, inputs={"role": "Analyst"}).tasks["ret"].outputs == {"value": "Analyst"}
    assert run_flow(PREFILLED).tasks["ret"].outputs == {"value": "none"}


@pytest.mark.parametrize(
    ("trigger_inputs", "path", "message"),
    [
        ("      nope: 1\n", "triggers[0].inputs.nope", "unknown input `nope`"),
        ("      size: many\n", "triggers[0].inputs.size", "input `size`: must be a whole number"),
        ("      size: '{{ 1 + }}'\n", "triggers[0].inputs.size", "invalid expression"),
    ],
)
def test_schedule_inputs_name_flow_inputs_and_have_their_types(trigger_inputs, path, message):
    text = HEADER + "inputs:\n  - id: size\n    type: INT\n    defaults: 1\n" + LOG + SCHEDULE + "    inputs:\n"
    error = only_error(text + trigger_inputs)
    assert error.path == path
    assert error.message.startswith(message), error.message


@pytest.mark.airflow
def test_a_scheduled_run_reads_its_trigger_inputs(airflow_db):
    """The timetable starts runs without conf: the run's schedule gives its `inputs` to every task."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    from yaml2dag.compiler import compile_flow
    from yaml2dag.operators.context import build_context

    text = (
        HEADER
        + "inputs:\n  - id: size\n    type: INT\n  - id: who\n    type: STRING\n    defaults: manual\n"
        + "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        + SCHEDULE
        + "    inputs:\n      size: 3\n      who: \"scheduled at {{ trigger.date | date('HH:mm') }}\"\n"
    )
    dag = compile_flow(parse_flow_text(text))
    assert dag.params.get_param("size").value == 3  # Airflow needs a default to schedule the flow
    operator = dag.get_task("log")
    when = dt.datetime(2024, 1, 31, 9, 0, tzinfo=dt.UTC)
    runs = {
        kind: DagRun(dag_id=dag.dag_id, run_id=f"{kind}__x", run_type=kind, logical_date=when)
        for kind in (DagRunType.SCHEDULED, DagRunType.MANUAL)
    }
    params = {"size": 3, "who": "manual"}

    def inputs(run: DagRun) -> dict:
        context = {"dag_run": run, "ti": None, "params": params, "dag": dag}
        return build_context(operator.flow, "log", operator.kestra_type, context)["inputs"]

    assert inputs(runs[DagRunType.SCHEDULED]) == {"size": 3, "who": "scheduled at 09:00"}
    assert inputs(runs[DagRunType.MANUAL]) == {"size": 3, "who": "manual"}


REQUIRED_AND_SCHEDULED = (
    HEADER
    + "inputs:\n  - id: name\n    type: STRING\n"
    + "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi {{ inputs.name }}\n"
    + SCHEDULE
)


def test_a_required_input_without_default_loads_with_a_schedule_trigger():
    """Kestra loads such a flow (FlowValidator has no such rule); its scheduled runs fail at start
    (TriggerService.generateScheduledExecution → readExecutionInputs: `missing required input`)."""
    from yaml2dag.compiler import compile_flow

    dag = compile_flow(parse_flow_text(REQUIRED_AND_SCHEDULED))
    assert "0 9 * * *" in str(dag.timetable)
    param = dag.params.get_param("name")
    assert (param.value, param.schema["type"]) == (None, ["string", "null"])


def test_a_required_input_without_default_loads_with_a_flow_trigger_only():
    text = (
        HEADER
        + "inputs:\n  - id: name\n    type: STRING\n"
        + LOG
        + "triggers:\n  - id: up\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n"
        + "      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: tests\n"
        + "        flowId: other\n"
    )
    assert parse_flow_text(text).inputs[0].checked_at_start


@pytest.mark.airflow
def test_a_manual_run_of_a_scheduled_flow_passes_the_required_input(run_flow):
    result = run_flow(REQUIRED_AND_SCHEDULED, inputs={"name": "kestra"})
    assert (result.state, states(result)) == ("success", {"log": "success"})
    assert "hi kestra" in result.tasks["log"].log_text()
    with pytest.raises(FlowValidationError, match=r"inputs\.name: missing required input"):
        run_flow(REQUIRED_AND_SCHEDULED)


@pytest.mark.airflow
def test_a_run_without_the_required_input_fails_at_start_on_airflow(airflow_db, tmp_path):
    """Past `yaml2dag run`'s own check (a run created through the API or the UI form without it)."""
    from yaml2dag.runner import run_flow as run

    path = tmp_path / "flow.yaml"
    path.write_text(REQUIRED_AND_SCHEDULED)
    import yaml2dag.runner as runner

    checks = runner._check_params, runner._check_input_values
    runner._check_params = runner._check_input_values = lambda *args: None  # what Airflow's form lets through
    try:
        result = run(path)
    finally:
        runner._check_params, runner._check_input_values = checks
    assert (result.state, states(result)) == ("failed", {"log": "failed"})
    assert result.tasks["log"].error == "input `name`: missing required input: give it when triggering the run"


@pytest.mark.airflow
def test_a_scheduled_run_without_the_required_input_fails_at_start_with_a_clear_message(airflow_db):
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    from yaml2dag.compiler import compile_flow
    from yaml2dag.errors import TaskFailure
    from yaml2dag.operators.context import build_context

    dag = compile_flow(parse_flow_text(REQUIRED_AND_SCHEDULED))
    operator = dag.get_task("log")
    when = dt.datetime(2024, 1, 31, 9, 0, tzinfo=dt.UTC)
    run = DagRun(dag_id=dag.dag_id, run_id="scheduled__x", run_type=DagRunType.SCHEDULED, logical_date=when)
    context = {"dag_run": run, "ti": None, "params": {"name": None}, "dag": dag}
    with pytest.raises(TaskFailure) as caught:
        build_context(operator.flow, "log", operator.kestra_type, context)
    assert str(caught.value).startswith(
        "input `name`: missing required input: this run was started by the Schedule trigger"
    )
