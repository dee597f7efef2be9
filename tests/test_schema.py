"""`yaml2dag schema`: a draft-07 JSON Schema of flow files, generated from the models the compiler uses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jsonschema
import pytest
from conftest import EXAMPLES, FLOWS

from yaml2dag.flowfile import parse_flow_text
from yaml2dag.loader import load_yaml
from yaml2dag.model import SCHEDULE_TYPES, SUPPORTED_INPUT_TYPES, TRIGGER_TYPES, Flow
from yaml2dag.polling import POLLING_TYPES
from yaml2dag.schema import DRAFT, flow_schema
from yaml2dag.tasktypes import TASK_TYPES, core
from yaml2dag.tasktypes.base import Retry, TaskBase

SCHEMA = flow_schema()
DEFINITIONS = SCHEMA["definitions"]
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
HEADER = "id: checks\nnamespace: tests.schema\n"
LOG = "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def schema_errors(text: str) -> list[str]:
    """Messages of the schema's complaints about a flow (empty when it validates)."""
    return [error.message for error in VALIDATOR.iter_errors(load_yaml(textwrap.dedent(text)))]


def definition_of(task_class: type[TaskBase]) -> dict:
    """The schema definition that applies when `type` is one of the class's names."""
    for branch in DEFINITIONS["Task"]["allOf"]:
        if branch["if"]["properties"]["type"]["enum"] == list(task_class.TYPES):
            return DEFINITIONS[branch["then"]["$ref"].rsplit("/", 1)[-1]]
    raise AssertionError(f"no branch for {task_class.__name__}")


def test_schema_is_valid_draft_07_and_every_reference_resolves():
    assert SCHEMA["$schema"] == DRAFT == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    references = []
    stack = [SCHEMA]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            references += [node["$ref"]] if "$ref" in node else []
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert references
    for reference in references:
        assert reference.startswith("#/definitions/")
        assert reference.removeprefix("#/definitions/") in DEFINITIONS, reference


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.name)
def test_every_example_flow_validates(path):
    VALIDATOR.validate(load_yaml(path.read_text()))


def test_every_registered_task_type_and_legacy_name_is_offered():
    offered = DEFINITIONS["Task"]["properties"]["type"]["enum"]
    assert sorted(offered) == sorted(TASK_TYPES)
    assert len(offered) == len(set(offered))
    descriptions = DEFINITIONS["Task"]["properties"]["type"]["enumDescriptions"]
    assert len(descriptions) == len(offered)
    assert descriptions[offered.index("io.kestra.core.tasks.log.Log")].startswith(
        "Legacy name of `io.kestra.plugin.core.log.Log`."
    )
    for task_class in set(TASK_TYPES.values()):
        assert definition_of(task_class)["properties"]["type"]["enum"] == list(task_class.TYPES)


def test_each_type_lists_exactly_its_model_fields():
    for task_class in set(TASK_TYPES.values()):
        definition = definition_of(task_class)
        fields = {field.alias or name for name, field in task_class.model_fields.items()}
        assert set(definition["properties"]) == fields, task_class.__name__
        required = {field.alias or name for name, field in task_class.model_fields.items() if field.is_required()}
        assert set(definition["required"]) == required, task_class.__name__
        assert definition["additionalProperties"] is False


def test_descriptions_and_defaults_come_from_the_models():
    log = definition_of(core.Log)["properties"]
    assert log["message"]["description"] == core.Log.model_fields["message"].description
    assert log["level"]["default"] == "INFO"
    assert {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"} <= set(log["level"]["anyOf"][0]["enum"])
    assert definition_of(core.Fail)["properties"]["errorMessage"]["default"] == "Task failure"
    assert SCHEMA["properties"]["tasks"]["description"] == Flow.model_fields["tasks"].description
    assert DEFINITIONS["Retry"]["properties"]["interval"]["description"] == Retry.model_fields["interval"].description


@pytest.mark.parametrize("model", [Flow, TaskBase, Retry, *core.TASK_TYPES], ids=lambda model: model.__name__)
def test_every_property_of_the_core_models_has_a_description(model):
    missing = [name for name, field in model.model_fields.items() if not field.description]
    assert missing == []


def test_not_yet_supported_properties_are_flagged_not_offered():
    assert TaskBase.UNSUPPORTED and Flow.UNSUPPORTED
    for name in TaskBase.UNSUPPORTED:
        marked = definition_of(core.Log)["properties"][name]
        assert marked["not"] == {}
        assert marked["doNotSuggest"] is True
        assert marked["deprecationMessage"] == f"`{name}` is not supported by yaml2dag yet: remove it."
    for name in Flow.UNSUPPORTED:
        assert SCHEMA["properties"][name]["not"] == {}
    supported = set(TaskBase.model_fields) - TaskBase.UNSUPPORTED
    assert all("not" not in definition_of(core.Log)["properties"][name] for name in supported)


# (case id, flow text, fragment of a schema error)
INVALID = [
    ("unknown task property", HEADER + "tasks:\n" + LOG + "    mesage: typo\n", "'mesage' was unexpected"),
    ("unknown top-level property", HEADER + "tsks: []\ntasks:\n" + LOG, "'tsks' was unexpected"),
    (
        "unknown task type",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Logg\n    message: hi\n",
        "is not one of",
    ),
    (
        "type not compiled yet",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.flow.ForEachItem\n    tasks: []\n",
        "is not one of",
    ),
    (
        "missing required property",
        HEADER + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.flow.Sleep\n",
        "'duration' is a required property",
    ),
    (
        "property of another type",
        HEADER + "tasks:\n" + LOG + "    duration: PT1S\n",
        "'duration' was unexpected",
    ),
    ("unsupported property", HEADER + "tasks:\n" + LOG + "    workerGroup: {key: gpu}\n", "should not be valid"),
    ("wrong value type", HEADER + "tasks:\n" + LOG + "    disabled: [1]\n", "is not of type 'boolean'"),
    ("bad level", HEADER + "tasks:\n" + LOG + "    level: LOUD\n", "is not valid under any of the given schemas"),
    ("bad duration", HEADER + "tasks:\n" + LOG + "    timeout: 5 seconds\n", "is not valid under any"),
    ("no tasks", HEADER + "tasks: []\n", "should be non-empty"),
    ("upper-case namespace", "id: a\nnamespace: Team\ntasks:\n" + LOG, "is not valid under any"),
    (
        "cron on a webhook trigger",
        HEADER + "tasks:\n" + LOG + "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Webhook\n"
        "    key: k\n    cron: '* * * * *'\n",
        "False schema does not allow",
    ),
    (
        "realtime trigger",
        HEADER + "tasks:\n" + LOG + "triggers:\n  - id: t\n    type: io.kestra.plugin.redis.list.RealtimeTrigger\n",
        "is not one of",
    ),
    ("flow output without type", HEADER + "tasks:\n" + LOG + "outputs:\n  - id: o\n    value: x\n", "'type'"),
]


@pytest.mark.parametrize(("text", "fragment"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_mistakes_fail_the_schema(text, fragment):
    errors = schema_errors(text)
    assert any(fragment in error for error in errors), errors


def test_seed_flow_with_error_message_on_a_log_task_fails_the_schema():
    errors = schema_errors((FLOWS / "invalid" / "finally_example_success_seed.yaml").read_text())
    assert any("'errorMessage' was unexpected" in error for error in errors)
    assert any("'message' is a required property" in error for error in errors)


def test_what_yaml2dag_reads_as_text_validates():
    text = HEADER + textwrap.dedent(
        """\
        labels:
          - key: team
            value: 7
        variables:
          go: true
          level: INFO
        tasks:
          - id: 7
            type: io.kestra.core.tasks.executions.Fail
            errorMessage: 42
            condition: true
            runIf: "{{ vars.go }}"
          - id: b
            type: io.kestra.plugin.core.log.Log
            message: [a, b]
            level: "{{ vars.level }}"
        """
    )
    assert schema_errors(text) == []
    parse_flow_text(text)  # and yaml2dag does accept it


def test_only_supported_input_and_trigger_types_are_offered():
    assert set(DEFINITIONS["FlowInput"]["properties"]["type"]["enum"]) == SUPPORTED_INPUT_TYPES
    assert DEFINITIONS["Trigger"]["properties"]["type"]["enum"] == [*TRIGGER_TYPES, *POLLING_TYPES]
    http = next(rule for rule in DEFINITIONS["Trigger"]["allOf"] if "core.http.Trigger" in str(rule["if"]))
    assert http["then"]["required"] == ["uri"]
    assert {"interval", "responseCondition", "options"} <= set(http["then"]["properties"])
    assert http["then"]["properties"]["bucket"] is False, "an S3 property on an HTTP trigger is flagged"
    schedule = next(rule for rule in DEFINITIONS["Trigger"]["allOf"] if SCHEDULE_TYPES[0] in str(rule["if"]))
    assert schedule["then"]["required"] == ["cron"]


def test_schema_command_prints_the_schema():
    process = subprocess.run(
        [sys.executable, "-m", "yaml2dag.cli", "schema"], capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == SCHEMA


def test_dag_parsing_never_imports_the_schema_module():
    code = (
        "import sys, yaml2dag.dagfolder, yaml2dag.bundle, yaml2dag.compiler, yaml2dag.flowfile, yaml2dag.validation\n"
        "print('yaml2dag.schema' in sys.modules)"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert process.stdout.strip() == "False", process.stderr
