"""Property-based robustness: any flow document ends in a Flow (and a DAG), or in located errors.

Documents come in four kinds: valid flows built from the registered task types and their required
properties; flows generated from the JSON Schema (every optional property, random values);
mutations of valid flows (keys removed or renamed, values of the wrong type, random unicode, deep
nesting, text cut or scrambled); and garbage (random text, YAML-ish soup, random bytes). Whatever
comes in, `parse_flow_text` returns a `Flow` or raises `FlowValidationError` whose every error has
the file and a message, and a line and column unless it is about the whole document; a valid flow
compiles to a DAG; and the schema accepts every flow the compiler accepts.

Hypothesis profiles, chosen with YAML2DAG_FUZZ_PROFILE: `fuzz-ci` (the default: 14,000 cases,
about a minute on 2 cores), `fuzz-quick` (a tenth, for editing this file) and `fuzz-long` (ten times).
"""

from __future__ import annotations

import json
import operator
import os
import re
import string
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yaml2dag.errors import FlowError, FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.loader import _FlowLoader, decode_flow_bytes, load_yaml
from yaml2dag.model import (
    FLOW_ID_PATTERN,
    INPUT_ID_PATTERN,
    NAMESPACE_PATTERN,
    SCHEDULE_TYPES,
    SUPPORTED_INPUT_TYPES,
    TRIGGER_ID_PATTERN,
    Flow,
)
from yaml2dag.schema import flow_schema
from yaml2dag.tasktypes import KNOWN_UNSUPPORTED, TASK_TYPES
from yaml2dag.tasktypes.base import DURATION_JSON_SCHEMA, EXPRESSION_JSON_SCHEMA, TASK_ID_PATTERN
from yaml2dag.tasktypes.flowable import FlowableBase, end_task_id

settings.register_profile(
    "fuzz-ci",
    max_examples=1000,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("fuzz-quick", settings.get_profile("fuzz-ci"), max_examples=100)
settings.register_profile("fuzz-long", settings.get_profile("fuzz-ci"), max_examples=10_000)
FUZZ = settings.get_profile(os.environ.get("YAML2DAG_FUZZ_PROFILE", "fuzz-ci"))


def cases(weight: float, deadline_seconds: float = 2) -> settings:
    """Settings for one property: `weight` times the profile's base number of examples."""
    return settings(
        FUZZ,
        max_examples=max(1, round(FUZZ.max_examples * weight)),
        deadline=timedelta(seconds=deadline_seconds),
    )


#: A hang fails the test (hypothesis deadlines only measure examples that finish).
pytestmark = pytest.mark.timeout(max(300, FUZZ.max_examples // 3))

FILE = "fuzz.yaml"
SCHEMA = flow_schema()
DEFINITIONS = SCHEMA["definitions"]
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
TYPE_NAMES = sorted(TASK_TYPES)
#: Errors about the whole document, which has no single place to point at.
UNLOCATED = ("document expands to", "file is larger than")

# --- what every outcome must look like ------------------------------------------------------------


def check_errors(errors: list[FlowError], text: str) -> None:
    """Each error names the file, says what is wrong, and where (unless it is about the whole file)."""
    assert errors
    lines = sum(text.count(brk) for brk in ("\n", "\r", "\x85", "\u2028", "\u2029")) + 2  # YAML's line breaks
    for error in errors:
        assert error.file == FILE, error
        assert error.message.strip(), error
        assert not error.message.startswith("YAML error:"), f"unlocated catch-all: {error}"
        if not error.message.startswith(UNLOCATED):
            assert error.line is not None and error.column is not None, f"not located: {error}"
            assert 1 <= error.line <= lines and error.column >= 1, error
        json.dumps(error.to_dict())
        str(error)


def outcome(text: str) -> Flow | None:
    """Parse `text`: a Flow, or None after checking the errors."""
    try:
        return parse_flow_text(text, FILE)
    except FlowValidationError as exc:
        check_errors(exc.errors, text)
        return None


def compiles(flow: Flow) -> Any:
    """Compile a flow the validator accepted, and serialize the DAG as Airflow's DAG processor does."""
    from airflow.serialization.serialized_objects import DagSerialization

    from yaml2dag.compiler import compile_flow

    dag = compile_flow(flow, FILE)
    assert dag.dag_id == flow.dag_id
    main = [_airflow_id(task) for task in flow.tasks if not task.disabled]
    handlers = [*flow.errors, *flow.finally_] if main else flow.finally_  # errors only follow main tasks
    assert {*main, *(_airflow_id(task) for task in handlers if not task.disabled)} <= set(dag.task_ids)
    DagSerialization.to_dict(dag)  # what the DAG processor does next with it
    return dag


def _airflow_id(task: Any) -> str:
    """The Airflow task holding a task's state: its own id, or a flowable's `<id>.end`."""
    return end_task_id(task.id) if isinstance(task, FlowableBase) else task.id


class _CoreSchemaDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Quotes the strings yaml2dag would read as numbers or booleans (`0E0`), as PyYAML does for YAML 1.1."""

    yaml_implicit_resolvers = _FlowLoader.yaml_implicit_resolvers


#: Characters YAML does not take as they are (or reads as line breaks): JSON text escapes them.
_NOT_PRINTABLE = re.compile(r"[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")


def dump(document: Any, style: str = "block") -> str:
    """YAML text for `document`: block style, flow style, or JSON (which is YAML too)."""
    if style == "json":
        return _NOT_PRINTABLE.sub(
            lambda match: f"\\u{ord(match.group()):04x}", json.dumps(document, ensure_ascii=False)
        )
    return yaml.dump(
        document,
        Dumper=_CoreSchemaDumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=style == "flow",
        width=80,
    )


def loaded(text: str) -> Any:
    """The document as an editor checks it: yaml2dag's scalars, mapping keys as text."""
    return _keys_as_text(load_yaml(text, FILE))


def _keys_as_text(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _keys_as_text(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_keys_as_text(item) for item in node]
    return node


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """Import Airflow and build one DAG before the timed examples (the first import takes seconds)."""
    compiles(
        parse_flow_text(
            "id: warm\nnamespace: up\ntasks:\n  - id: a\n    type: io.kestra.core.tasks.log.Log\n    message: hi\n"
        )
    )


# --- building blocks ----------------------------------------------------------------------------

#: Text without `{`, so that no expression is involved, and without lone surrogates (not Unicode).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="{"), max_size=12)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
EXPRESSIONS = st.sampled_from(
    [
        "{{ flow.id }}",
        "{{ inputs.x ?? 'a' }}",
        "{{ vars.v | default('x') }}",
        "{% if true %}yes{% endif %}",
        "{{ flow.namespace | upper }}",
        "{{ execution.id }}-{{ task.id }}",
        "{{ 1 + 2 }}",
    ]
)
DURATIONS = st.sampled_from(["PT1S", "PT30S", "PT5M", "PT1H", "P1D", "P1DT2H30M", "PT0.5S", "pt10m", "PT0S", "-PT5S"])
#: What a task `timeout` and a retry `interval` take: a zero or negative one is a located error.
POSITIVE_DURATIONS = st.sampled_from(["PT1S", "PT30S", "PT5M", "PT1H", "P1D", "P1DT2H30M", "PT0.5S", "pt10m"])
CRONS = st.sampled_from(["0 9 * * 1-5", "*/5 * * * *", "@daily", "@hourly", "0 0 1 * *", "15 14 1 * *", "0 0 * * 0"])
ZONES = st.sampled_from([None, "UTC", "Europe/Paris", "America/New_York", "Etc/GMT-2"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), TEXT)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8
)
NON_NULL_JSON = JSON_VALUES.filter(lambda value: value is not None)
_ALNUM = string.ascii_letters + string.digits


def _ids(first: str, rest: str, longest: int) -> st.SearchStrategy[str]:
    """Ids matching `^[first][rest]*$` (much cheaper to draw than `st.from_regex`)."""
    return st.builds(operator.add, st.sampled_from(first), st.text(st.sampled_from(rest), max_size=longest))


TASK_IDS = _ids(_ALNUM, _ALNUM + "_-", 12)
INPUT_IDS = _ids(_ALNUM, _ALNUM + "._-", 8)
FLOW_IDS = _ids(_ALNUM, _ALNUM + "._-", 20)
NAMESPACES = _ids(string.ascii_lowercase + string.digits, string.ascii_lowercase + string.digits + "._-", 20)
#: The id patterns of the models, drawn the cheap way.
ID_PATTERNS = {
    TASK_ID_PATTERN: TASK_IDS,
    TRIGGER_ID_PATTERN: TASK_IDS,
    INPUT_ID_PATTERN: INPUT_IDS,
    FLOW_ID_PATTERN: FLOW_IDS,
    NAMESPACE_PATTERN: NAMESPACES,
}
LABELS = st.dictionaries(TEXT.filter(lambda key: not key.startswith("system.")), SCALARS, max_size=3)
VARIABLES = st.dictionaries(TEXT, JSON_VALUES, max_size=3)

# --- values from the JSON Schema ------------------------------------------------------------------

#: Strategies per schema node (the node is kept alive with its strategy, so its id stays its own).
_STRATEGIES: dict[tuple[int, bool], tuple[Any, st.SearchStrategy[Any]]] = {}


def from_schema(node: dict[str, Any], valid: bool) -> st.SearchStrategy[Any]:
    """Values for a JSON Schema node; with `valid`, the plainest alternative, as yaml2dag wants it."""
    key = (id(node), valid)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = (node, _build(node, valid))
    return _STRATEGIES[key][1]


def _build(node: dict[str, Any], valid: bool) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        return from_schema(DEFINITIONS[node["$ref"].rsplit("/", 1)[-1]], valid)
    if "not" in node:
        return st.nothing()
    if node == DURATION_JSON_SCHEMA:
        return DURATIONS if valid else DURATIONS | st.from_regex(node["pattern"])
    if node == EXPRESSION_JSON_SCHEMA:
        return EXPRESSIONS if valid else EXPRESSIONS | ANY_TEXT.map(lambda text: "{{" + text)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "anyOf" in node:
        if valid:
            return from_schema(next(b for b in node["anyOf"] if b.get("type") != "null"), valid)
        return st.one_of([from_schema(branch, valid) for branch in node["anyOf"]])
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([_build({**node, "type": one}, valid) for one in kind])
    if kind == "string":
        low, high = node.get("minLength", 0), node.get("maxLength", 10**9)
        pattern = node.get("pattern")
        if pattern is None:
            strings = TEXT
        else:
            strings = ID_PATTERNS[pattern] if pattern in ID_PATTERNS else st.from_regex(pattern, fullmatch=True)
        return strings.filter(lambda text: low <= len(text) <= high)
    if kind == "integer":
        return st.integers(min_value=node.get("minimum"), max_value=1000 if valid else 10**30)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        low = node.get("minItems", 0)
        return st.lists(from_schema(node.get("items", {}), valid), min_size=low, max_size=max(3, low))
    if kind == "object" and "properties" in node:
        return objects(node, valid)
    if kind == "object":
        values = node.get("additionalProperties", True)
        return st.dictionaries(TEXT, JSON_VALUES if values is True else from_schema(values, valid), max_size=3)
    return JSON_VALUES if not valid else NON_NULL_JSON


def objects(node: dict[str, Any], valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the node's required properties and, unless `valid`, any of its supported others."""
    properties = node["properties"]
    required = {name: from_schema(properties[name], valid) for name in node.get("required", [])}
    optional = {
        name: from_schema(schema, valid)
        for name, schema in properties.items()
        if name not in required and "not" not in schema
    }
    return st.fixed_dictionaries(required, optional={} if valid else optional)


# --- whole flows ------------------------------------------------------------------------------------

#: Task model → its definition in the schema, read from the `if type … then $ref` branches.
SCHEMA_NAMES = {
    TASK_TYPES[branch["if"]["properties"]["type"]["enum"][0]]: branch["then"]["$ref"].rsplit("/", 1)[-1]
    for branch in DEFINITIONS["Task"]["allOf"]
}
#: Tasks drawn from their schema alone: flowables nest tasks, drawn by `nested_flowables` instead.
LEAF_SCHEMA_NAMES = {model: name for model, name in SCHEMA_NAMES.items() if not issubclass(model, FlowableBase)}


def _model_rules(model: Any) -> dict[str, Any]:
    """Properties model validators need beyond the schema's `required` (one of two must be set)."""
    extra: dict[str, Any] = {}
    if "url" in model.model_fields and "connId" in model.model_fields:
        from yaml2dag.tasktypes.jdbc import URL_SCHEMES

        database = getattr(model, "DATABASE", None)
        extra["url"] = f"{URL_SCHEMES[database][0]}//localhost/db" if database else "redis://localhost:6379/0"
    if "maxRecords" in model.model_fields:
        extra["maxRecords"] = 10
    if "messageText" in model.model_fields:  # webhooks: `payload` or `messageText`
        extra["messageText"] = "hello"
    extra.update(ONE_OF_RULES.get(model.__name__, {}))
    return extra


#: Task models whose validators need one of several properties (beyond what the schema says).
ONE_OF_RULES: dict[str, dict[str, Any]] = {
    "Split": {"rows": 10},
    "OpenAiChatCompletion": {"prompt": "hello"},
    "UploadFiles": {"filesMap": {"a.txt": "kestra:///a/b.txt"}},
    "CopyOut": {"table": "t"},
}


COMMON_PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "description": TEXT,
        "disabled": st.sampled_from([True, False, False, False]),
        "timeout": POSITIVE_DURATIONS,
        "retry": st.fixed_dictionaries(
            {"type": st.just("constant"), "maxAttempts": st.integers(1, 5), "interval": POSITIVE_DURATIONS}
        ),
        "runIf": EXPRESSIONS,
    },
)
#: One task of every registered type: its required properties (plus common ones), or any of its properties.
VALID_TASKS = st.one_of(
    [
        st.tuples(from_schema(DEFINITIONS[name], True), COMMON_PROPERTIES).map(
            lambda pair, model=model: {**pair[0], **_model_rules(model), **pair[1]}
        )
        for model, name in LEAF_SCHEMA_NAMES.items()
    ]
)
ANY_TASKS = st.one_of([from_schema(DEFINITIONS[name], False) for name in LEAF_SCHEMA_NAMES.values()])

_FIXED_DEFAULTS = {
    "DATETIME": "2024-01-01T10:00:00Z",
    "DATE": "2024-01-01",
    "TIME": "10:00:00",
    "DURATION": "PT5M",
    "URI": "https://example.com/a",
    "EMAIL": "team@example.com",
    "FILE": "kestra:///tests/fuzz/data.csv",
}
_DEFAULTS = {
    "STRING": TEXT,
    "INT": st.integers(-(10**12), 10**12),
    "FLOAT": st.floats(-1e9, 1e9),
    "BOOLEAN": st.booleans(),
    "BOOL": st.booleans(),
    "ARRAY": st.lists(TEXT, max_size=3),
    # A JSON or YAML default written as text must parse: draw data, which yaml2dag writes as text.
    "JSON": NON_NULL_JSON.filter(lambda value: not isinstance(value, str)),
    "YAML": NON_NULL_JSON.filter(lambda value: not isinstance(value, str)),
    "SECRET": TEXT,
    **{kind: st.just(value) for kind, value in _FIXED_DEFAULTS.items()},
}


@st.composite
def flow_input(draw: st.DrawFn, input_id: str, scheduled: bool) -> dict[str, Any]:
    """A typed input; a scheduled flow gives it a default of its type (scheduled runs need one)."""
    kind = draw(st.sampled_from(sorted(SUPPORTED_INPUT_TYPES)))
    item: dict[str, Any] = {"id": input_id, "type": kind, "required": draw(st.booleans())}
    if kind in ("ENUM", "SELECT", "MULTISELECT"):
        item["values"] = draw(st.lists(TEXT, min_size=1, max_size=3, unique=True))
    if kind == "ARRAY":
        item["itemType"] = "STRING"
    if draw(st.booleans()):
        item["description"] = draw(TEXT)
    if scheduled or draw(st.booleans()):
        if kind in ("ENUM", "SELECT"):
            item["defaults"] = draw(st.sampled_from(item["values"]))
        elif kind == "MULTISELECT":
            item["defaults"] = draw(st.lists(st.sampled_from(item["values"]), unique=True))
        else:
            item["defaults"] = draw(_DEFAULTS[kind])
    return item


@st.composite
def valid_flows(draw: st.DrawFn) -> dict[str, Any]:
    """A flow yaml2dag must accept and compile: registered task types with their required properties."""
    ids = draw(st.lists(TASK_IDS, min_size=1, max_size=7, unique=True))
    first, second = sorted(draw(st.tuples(st.integers(1, len(ids)), st.integers(1, len(ids)))))
    zone = draw(ZONES)
    triggers = [
        {"id": f"schedule{index}", "type": draw(st.sampled_from(SCHEDULE_TYPES)), "cron": draw(CRONS)}
        | ({"timezone": zone} if zone else {})
        for index in range(draw(st.integers(0, 2)))
    ]
    flow: dict[str, Any] = {"id": draw(FLOW_IDS), "namespace": draw(NAMESPACES)}
    flow.update(
        draw(st.fixed_dictionaries({}, optional={"description": TEXT, "labels": LABELS, "variables": VARIABLES}))
    )
    input_ids = draw(st.lists(INPUT_IDS, unique=True, max_size=3))
    flow["inputs"] = [draw(flow_input(input_id, bool(triggers))) for input_id in input_ids]
    if triggers:
        flow["triggers"] = triggers
    if draw(st.booleans()):
        flow["concurrency"] = {"limit": draw(st.integers(1, 10))}
    for block, block_ids in (("tasks", ids[:first]), ("errors", ids[first:second]), ("finally", ids[second:])):
        if block_ids:
            flow[block] = [{**draw(VALID_TASKS), "id": task_id} for task_id in block_ids]
    return flow


TOP_LEVEL = objects(
    {
        "properties": {
            name: node for name, node in SCHEMA["properties"].items() if name not in ("tasks", "errors", "finally")
        },
        "required": ["id", "namespace"],
    },
    valid=False,
)


@st.composite
def schema_flows(draw: st.DrawFn) -> dict[str, Any]:
    """A flow drawn from the JSON Schema: any optional property, values of the schema's types."""
    flow = draw(TOP_LEVEL)
    for block in ("tasks", "errors", "finally"):
        if block == "tasks" or draw(st.booleans()):
            ids = draw(st.lists(TASK_IDS, min_size=1 if block == "tasks" else 0, max_size=3))
            flow[block] = [{**draw(ANY_TASKS), "id": task_id} for task_id in ids]
    return flow


# --- mutations ----------------------------------------------------------------------------------------


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every mapping and list in a document."""
    found = []
    if isinstance(node, dict | list):
        found.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            found.extend(_containers(value, (*path, key)))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _nest(value: Any, depth: int, as_map: bool) -> Any:
    for _ in range(depth):
        value = {"a": value} if as_map else [value]
    return value


WRONG_VALUES = JSON_VALUES | ANY_TEXT | st.sampled_from(["", "{{", "{{ x", "!!", "*a", "&a"])
OPERATIONS = st.sampled_from(["remove", "rename", "replace", "insert", "nest", "type", "duplicate"])
TYPES_OR_TEXT = st.sampled_from([*TYPE_NAMES, *sorted(KNOWN_UNSUPPORTED)]) | ANY_TEXT


@st.composite
def mutated_flows(draw: st.DrawFn) -> dict[str, Any] | list[Any]:
    """A valid flow with a few things broken: keys removed or renamed, wrong values, deep nesting."""
    flow = draw(valid_flows())
    for _ in range(draw(st.integers(1, 3))):
        target = _at(flow, draw(st.sampled_from(_containers(flow))))
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        operation = draw(OPERATIONS)
        key = draw(st.sampled_from(keys)) if keys else None
        if operation == "remove" and key is not None:
            del target[key]
        elif operation == "rename" and isinstance(target, dict) and key is not None:
            target[draw(ANY_TEXT | st.just(str(key) + "s") | st.just(str(key)[1:]))] = target.pop(key)
        elif operation == "replace" and key is not None:
            target[key] = draw(WRONG_VALUES)
        elif operation == "insert" and isinstance(target, dict):
            target[draw(ANY_TEXT)] = draw(JSON_VALUES)
        elif operation == "insert" and isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(JSON_VALUES))
        elif operation == "nest" and key is not None:
            target[key] = _nest(target[key], draw(st.integers(1, 130)), draw(st.booleans()))
        elif operation == "type" and isinstance(target, dict) and "type" in target:
            target["type"] = draw(TYPES_OR_TEXT)
        elif operation == "duplicate" and isinstance(target, list) and target:
            target.append(json.loads(json.dumps(target[0])))
    return flow


TEXT_NOISE = (
    st.sampled_from(
        [
            "\t",
            "\n",
            "\r",
            ":",
            ": ",
            "- ",
            "-",
            "{",
            "}",
            "[",
            "]",
            ",",
            "&a ",
            "*a",
            "!!str ",
            "!!int ",
            "!x ",
            "? ",
            "|",
            ">",
            "#",
            "%YAML 1.2\n",
            "---\n",
            "...\n",
            "'",
            '"',
            "\\",
            "\x00",
            "\x07",
            "\ufeff",
            "\u2028",
            "<<: *a\n",
            "  ",
            "\x85",
        ]
    )
    | ANY_TEXT
)


@st.composite
def scrambled_texts(draw: st.DrawFn) -> str:
    """The YAML text of a valid flow, then cut, spliced with YAML punctuation or random text."""
    text = dump(draw(valid_flows()), draw(st.sampled_from(["block", "flow", "json"])))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["insert", "delete", "cut", "duplicate-line"]))
        if operation == "insert":
            text = text[:position] + draw(TEXT_NOISE) + text[position:]
        elif operation == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 20)) :]
        elif operation == "cut":
            text = text[:position]
        else:
            lines = text.splitlines(keepends=True) or [""]
            index = draw(st.integers(0, len(lines) - 1))
            text = "".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
    return text


YAML_SOUP = st.lists(
    st.sampled_from(
        [
            "id: ",
            "namespace: ",
            "tasks:",
            "\n",
            "  ",
            "- ",
            "type: ",
            "io.kestra.plugin.core.log.Log",
            "message: ",
            "{",
            "}",
            "[",
            "]",
            ", ",
            "&a",
            "*a",
            "!!",
            "'",
            '"',
            ": ",
            "errors:",
            "finally:",
            "x",
            "1",
            "variables:",
            "triggers:",
            "inputs:",
            "- id: a\n",
            "? ",
            "|\n",
            ">-\n",
            "#",
            "\t",
        ]
    )
    | ANY_TEXT,
    max_size=40,
).map("".join)


# --- the properties ---------------------------------------------------------------------------------


@cases(1.0, deadline_seconds=5)
@given(valid_flows(), st.sampled_from(["block", "flow", "json"]))
def test_valid_flows_parse_compile_and_match_the_schema(document, style):
    text = dump(document, style)
    try:
        flow = parse_flow_text(text, FILE)
    except FlowValidationError as exc:
        pytest.fail(f"a valid flow was refused:\n{exc}\n---\n{text}")
    compiles(flow)
    VALIDATOR.validate(loaded(text))


@st.composite
def nested_flowables(draw: st.DrawFn) -> dict[str, Any]:
    """A flow of flowables nested up to three deep around Log tasks, each id unique."""
    counter = iter(range(10_000))

    def leaf() -> dict[str, Any]:
        return {"id": f"t{next(counter)}", "type": "io.kestra.plugin.core.log.Log", "message": "hi"}

    def block(depth: int) -> list[dict[str, Any]]:
        return [node(depth) for _ in range(draw(st.integers(1, 3)))]

    def node(depth: int) -> dict[str, Any]:
        kind = draw(st.sampled_from(["leaf", "Sequential", "Parallel", "If", "Switch", "Dag", "AllowFailure"]))
        if depth >= 3 or kind == "leaf":
            return leaf()
        task: dict[str, Any] = {"id": f"f{next(counter)}", "type": f"io.kestra.plugin.core.flow.{kind}"}
        if kind == "If":
            task |= {"condition": "{{ true }}", "then": block(depth + 1)}
            if draw(st.booleans()):
                task["else"] = block(depth + 1)
        elif kind == "Switch":
            task |= {"value": "a", "cases": {"a": block(depth + 1), "b": block(depth + 1)}}
        elif kind == "Dag":
            nodes = block(depth + 1)
            task["tasks"] = [
                {"task": child, "dependsOn": [nodes[index - 1]["id"]] if index else []}
                for index, child in enumerate(nodes)
            ]
        else:
            task["tasks"] = block(depth + 1)
        if draw(st.booleans()):
            task["errors"] = [leaf()]
        if draw(st.booleans()):
            task["finally"] = [leaf()]
        return task

    return {"id": "nested", "namespace": "fuzz", "tasks": block(0)}


@cases(1.0, deadline_seconds=5)
@given(nested_flowables(), st.sampled_from(["block", "flow"]))
def test_nested_flowables_parse_compile_and_match_the_schema(document, style):
    text = dump(document, style)
    dag = compiles(parse_flow_text(text, FILE))
    groups = {task.task_group.group_id for task in dag.tasks if task.task_group is not None}
    flowables = {task["id"] for task in _walk_nested(document["tasks"]) if "message" not in task}
    assert flowables <= groups, "every flowable is a TaskGroup named after it"
    VALIDATOR.validate(loaded(text))


def _walk_nested(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        task = task.get("task", task)
        yield task
        for key in ("tasks", "then", "else", "errors", "finally"):
            yield from _walk_nested(task.get(key, []))
        for children in task.get("cases", {}).values():
            yield from _walk_nested(children)


@cases(2.0, deadline_seconds=5)
@given(schema_flows(), st.sampled_from(["block", "flow"]))
def test_flows_from_the_schema_end_in_a_dag_or_located_errors(document, style):
    text = dump(document, style)
    flow = outcome(text)
    if flow is not None:
        compiles(flow)
        # The schema never refuses what the compiler accepts.
        VALIDATOR.validate(loaded(text))


@cases(3.0)
@given(mutated_flows(), st.sampled_from(["block", "flow", "json"]))
def test_mutated_flows_end_in_a_flow_or_located_errors(document, style):
    outcome(dump(document, style))


@cases(2.0)
@given(scrambled_texts())
def test_scrambled_flow_text_ends_in_a_flow_or_located_errors(text):
    outcome(text)


@cases(4.0)
@given(ANY_TEXT | st.text(st.characters(blacklist_categories=("Cs",)), max_size=300) | YAML_SOUP)
def test_random_text_ends_in_a_flow_or_located_errors(text):
    outcome(text)


@cases(2.0)
@given(st.binary(max_size=300) | st.tuples(YAML_SOUP, st.binary(max_size=4)).map(lambda p: p[0].encode() + p[1]))
def test_random_bytes_end_in_a_flow_or_located_errors(data):
    try:
        text = decode_flow_bytes(data, FILE)
    except FlowValidationError as exc:
        check_errors(exc.errors, data.decode("utf-8", "replace"))
        return
    outcome(text)


def test_every_registered_task_type_is_generated():
    assert set(SCHEMA_NAMES) == set(TASK_TYPES.values())
    for type_name in TASK_TYPES:
        assert DEFINITIONS["Task"]["properties"]["type"]["enum"].count(type_name) == 1
