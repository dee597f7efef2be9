"""Flow inputs: validated, turned into Airflow Params (the trigger form), and read by tasks as Kestra does.

A value travels in two forms. The *Param form* is what Airflow stores and validates against the
Param's JSON Schema: JSON-friendly (JSON and YAML inputs are text, dates are ISO text). The *run
form* is what an expression reads: JSON and YAML parsed, a DATETIME an aware datetime (a Java
Instant), TIME and DURATION printed as Java prints them, SECRET values masked in task logs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yaml2dag.model import SCHEDULE_TYPES, SUPPORTED_INPUT_TYPES, Flow, FlowInput
from yaml2dag.sealing import SECRET_MARK, VALIDATOR_KEY, matches_validator

if TYPE_CHECKING:
    from yaml2dag.diagnostics import Collector

#: Input types whose value is one line of text.
TEXT_TYPES = frozenset({"STRING", "SECRET", "ENUM", "SELECT", "URI", "EMAIL", "FILE"})
#: What a FILE input's value may be: the trigger form has no upload, so a URI the run copies into storage.
FILE_SCHEMES = ("kestra:///", "file:///", "s3://", "gs://", "http://", "https://")
#: Types an ARRAY's `itemType` may name (Kestra refuses nested arrays and files as items).
ITEM_TYPES = frozenset(SUPPORTED_INPUT_TYPES - {"ARRAY", "MULTISELECT", "ENUM", "SELECT", "SECRET", "FILE"})
_EMAIL = re.compile(r"^[a-zA-Z0-9_!#$%&'*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$")
_INTEGER = re.compile(r"^[-+]?\d+$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys into nested maps, as Kestra does for inputs and labels (`a.b` → `a: {b}`)."""
    result: dict[str, Any] = {}
    for key, value in flat.items():
        target = result
        *parents, last = key.split(".")
        for part in parents:
            existing = target.get(part)
            if not isinstance(existing, dict):
                existing = target[part] = {}
            target = existing
        target[last] = value
    return result


#: The reason of an `InputValueError` for a required input that a run did not get.
MISSING_INPUT = "missing required input"


class InputValueError(ValueError):
    """A value an input cannot take, naming the input: `input `x`: must be a whole number`."""

    def __init__(self, input_id: str, reason: str) -> None:
        super().__init__(f"input `{input_id}`: {reason}")
        self.input_id = input_id
        self.reason = reason


@dataclass(frozen=True)
class InputSpec:
    """What a run needs to know about one input to turn its Param value into Kestra's value."""

    id: str
    type: str
    item_type: str | None = None
    required: bool = True
    depends_on: tuple[str, ...] = ()
    condition: str | None = None
    #: The input has a `prefill`: the trigger form shows it, but a run started without a value has none.
    prefilled: bool = False


@dataclass(frozen=True)
class ScheduledInputs:
    """The `inputs` of one Schedule trigger: applied to the scheduled runs whose date matches its cron."""

    cron: str
    timezone: str | None
    values: Mapping[str, Any] = field(default_factory=dict)


# --- values: given value → Param form ------------------------------------------------------------


def param_value(flow_input: FlowInput | InputSpec, value: Any, item_type: str | None = None) -> Any:
    """A value given for an input (a YAML default, a trigger's value, `--input` text) in its Param form.

    Converted as Kestra converts it (`defaults: 5` on a STRING is "5"); raises ValueError with a
    reason that reads after "input `x` ..." ("must be a whole number").
    """
    kind = item_type or flow_input.type
    if kind in TEXT_TYPES:
        text = _scalar_text(value)
        if kind == "EMAIL" and not _EMAIL.match(text):
            raise ValueError(f"must be an e-mail address, got `{text}`")
        if kind == "URI" and (not text or any(char.isspace() for char in text)):
            raise ValueError(f"must be a URI, got `{text}`")
        if kind == "FILE" and not text.lower().startswith(FILE_SCHEMES):
            raise ValueError(f"must be a file URI ({', '.join(FILE_SCHEMES)}…), got `{text}`")
        if isinstance(flow_input, FlowInput) and item_type is None:
            _check_text(flow_input, text)
        return text
    converter = _CONVERTERS.get(kind)
    if converter is None:
        raise ValueError(f"has type {kind}, which yaml2dag does not support")
    converted = converter(value)
    if isinstance(flow_input, FlowInput) and item_type is None:
        converted = _check_lists(flow_input, converted)
        _check_range(flow_input, converted)
    return converted


def _scalar_text(value: Any) -> str:
    from yaml2dag.expressions.values import java_string

    if isinstance(value, dict | list):
        raise ValueError("must be text, not a list or a map")
    if value is None:
        raise ValueError("must be text")
    return java_string(value)


def _check_text(flow_input: FlowInput, text: str) -> None:
    mismatch = bool(flow_input.validator) and not matches_validator(flow_input.validator or "", text)
    if mismatch:
        shown = "the value" if flow_input.type == "SECRET" else f"`{text}`"
        raise ValueError(f"must match the validator `{flow_input.validator}`: {shown} does not")
    choices = flow_input.values or flow_input.options
    listed = [_scalar_text(choice) for choice in choices or []]
    if flow_input.type in ("ENUM", "SELECT") and listed and not flow_input.allowCustomValue and text not in listed:
        raise ValueError(f"must be one of {', '.join(listed)}; got `{text}`")


def _check_lists(flow_input: FlowInput, value: Any) -> Any:
    if flow_input.type == "ARRAY":
        return [param_value(flow_input, item, flow_input.itemType or "STRING") for item in value]
    choices = flow_input.values or flow_input.options
    if flow_input.type == "MULTISELECT":
        value = [_scalar_text(item) for item in value]
        allowed = [_scalar_text(choice) for choice in choices or []]
        unknown = [item for item in value if item not in allowed]
        if allowed and unknown and not flow_input.allowCustomValue:
            raise ValueError(f"must list only {', '.join(allowed)}; got `{unknown[0]}`")
    return value


def _check_range(flow_input: FlowInput, value: Any) -> None:
    if flow_input.type not in ("INT", "FLOAT"):
        return
    if isinstance(flow_input.min, int | float) and value < flow_input.min:
        raise ValueError(f"must be at least {flow_input.min}, got {value}")
    if isinstance(flow_input.max, int | float) and value > flow_input.max:
        raise ValueError(f"must be at most {flow_input.max}, got {value}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value)
    raise ValueError(f"must be a whole number, got `{value}`")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"must be a number, got `{value}`")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):  # Java's Boolean.valueOf: anything but "true" is false
        return value.strip().lower() == "true"
    raise ValueError(f"must be true or false, got `{value}`")


def _checked_text(parse: Callable[[str], Any], what: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be {what} written as text, got `{value}`")
        try:
            parse(value)
        except (ValueError, OverflowError):
            raise ValueError(f"must be {what}, got `{value}`") from None
        return value

    return convert


def _to_json_text(value: Any) -> str:
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(f"must be JSON: {exc}") from None
        return value
    return json.dumps(value, ensure_ascii=False)


def _to_yaml_text(value: Any) -> str:
    import yaml

    if isinstance(value, str):
        parse_yaml(value)
        return value
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def _to_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f'must be a JSON list such as ["a", "b"], got `{value}`') from None
    if not isinstance(value, list):
        raise ValueError(f"must be a list, got `{value}`")
    return value


def parse_datetime(text: str) -> dt.datetime:
    """A DATETIME value as an aware datetime (an ISO instant; no offset means UTC)."""
    value = dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_time(text: str) -> dt.time:
    """A TIME value (`HH:mm`, `HH:mm:ss`, fractions of a second), as Java's `LocalTime.parse` reads it."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(text)
    hour, minute, second, fraction = match.groups()
    micros = int((fraction or "0").ljust(9, "0")[:6])
    return dt.time(int(hour), int(minute), int(second or 0), micros)


def parse_yaml(text: str) -> Any:
    """A YAML input's text as data, read the way Kestra reads YAML (`on`, dates stay text)."""
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.loader import load_yaml

    try:
        return load_yaml(text, "input")
    except FlowValidationError as exc:
        reason = exc.errors[0].message if exc.errors else "invalid YAML"
        raise ValueError(f"must be YAML: {reason}") from None


def _parse_duration(text: str) -> dt.timedelta:
    from yaml2dag.tasktypes.base import parse_duration

    return parse_duration(text)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "INT": _to_int,
    "FLOAT": _to_float,
    "BOOLEAN": _to_bool,
    "BOOL": _to_bool,
    "DATETIME": _checked_text(parse_datetime, "an ISO date-time such as 2024-01-31T10:00:00Z"),
    "DATE": _checked_text(dt.date.fromisoformat, "a date such as 2024-01-31"),
    "TIME": _checked_text(parse_time, "a time such as 10:30:00"),
    "DURATION": _checked_text(_parse_duration, "an ISO-8601 duration such as PT5M"),
    "JSON": _to_json_text,
    "YAML": _to_yaml_text,
    "MULTISELECT": _to_list,
    "ARRAY": _to_list,
}


# --- values: Param form → what tasks read ---------------------------------------------------------


def run_value(spec: InputSpec, value: Any, item_type: str | None = None) -> Any:
    """The Kestra value of an input from its Param form: JSON/YAML parsed, dates typed; null stays null."""
    kind = item_type or spec.type
    if value is None:
        return None
    if kind == "JSON" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"must be JSON: {exc}") from None
    if kind == "YAML" and isinstance(value, str):
        return parse_yaml(value)
    if kind == "DATETIME" and isinstance(value, str):
        return parse_datetime(value)
    if kind == "DATE" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if kind == "TIME" and isinstance(value, str):
        return java_time_text(parse_time(value))
    if kind == "DURATION" and isinstance(value, str):
        return java_duration_text(_parse_duration(value))
    if kind == "ARRAY" and isinstance(value, list):
        return [run_value(spec, item, spec.item_type or "STRING") for item in value]
    return value


def java_time_text(value: dt.time) -> str:
    """Java's `LocalTime.toString`: `10:00`, `10:00:30`, `10:00:30.500`."""
    text = f"{value.hour:02d}:{value.minute:02d}"
    if value.second or value.microsecond:
        text += f":{value.second:02d}"
    if value.microsecond:
        micros = f"{value.microsecond:06d}"
        text += "." + (micros[:3] if micros.endswith("000") else micros)
    return text


def java_duration_text(value: dt.timedelta) -> str:
    """Java's `Duration.toString`: `PT5M`, `PT24H` for P1D, `PT0.5S`, `PT0S`."""
    total = round(value.total_seconds() * 1_000_000)
    if total == 0:
        return "PT0S"
    sign = "-" if total < 0 else ""
    hours, rest = divmod(abs(total), 3_600_000_000)
    minutes, micros = divmod(rest, 60_000_000)
    text = "PT" + (f"{sign}{hours}H" if hours else "") + (f"{sign}{minutes}M" if minutes else "")
    if micros:
        seconds, fraction = divmod(micros, 1_000_000)
        text += f"{sign}{seconds}" + (f".{fraction:06d}".rstrip("0") if fraction else "") + "S"
    return text


def run_inputs(
    specs: Iterable[InputSpec], values: Mapping[str, Any], render: Callable[[str, dict[str, Any]], Any]
) -> dict[str, Any]:
    """Every input's Kestra value (flat ids), applying `dependsOn`; raises `InputValueError`.

    An input whose dependencies are not met (a dependency without value, or the condition not
    true) is null, as in Kestra, and its `required` is not enforced. `render(template, inputs)`
    renders a `dependsOn.condition` with the inputs resolved so far.
    """
    resolved: dict[str, Any] = {}
    for spec in _dependency_order(list(specs)):
        try:
            value = run_value(spec, values.get(spec.id))
        except ValueError as exc:
            raise InputValueError(spec.id, str(exc)) from None
        if not _enabled(spec, resolved, render):
            value = None
        elif value is None and spec.required and spec.depends_on:
            raise InputValueError(spec.id, "missing required input (the inputs it depends on are set)")
        elif value is None and spec.required:
            raise InputValueError(spec.id, MISSING_INPUT)
        resolved[spec.id] = value
    return {spec_id: resolved[spec_id] for spec_id in [spec.id for spec in specs] if spec_id in resolved}


def _enabled(spec: InputSpec, resolved: Mapping[str, Any], render: Callable[[str, dict[str, Any]], Any]) -> bool:
    if any(resolved.get(name) is None for name in spec.depends_on):
        return False
    if spec.condition is None:
        return True
    try:
        rendered = render(spec.condition, dict(resolved))
    except Exception as exc:  # noqa: BLE001 - any render problem is this input's problem
        raise InputValueError(spec.id, f"cannot render `dependsOn.condition`: {exc}") from None
    return str(rendered).strip() == "true"


def _dependency_order(specs: list[InputSpec]) -> list[InputSpec]:
    """Inputs ordered so each comes after those it depends on (validation refuses cycles)."""
    by_id = {spec.id: spec for spec in specs}
    ordered: list[InputSpec] = []
    seen: set[str] = set()

    def visit(spec: InputSpec) -> None:
        if spec.id in seen:
            return
        seen.add(spec.id)
        for name in spec.depends_on:
            if name in by_id:
                visit(by_id[name])
        ordered.append(spec)

    for spec in specs:
        visit(spec)
    return ordered


# --- validation ---------------------------------------------------------------------------------


def check_inputs(flow: Flow, scheduled: bool, collector: Collector) -> None:
    """Add a located error for every input yaml2dag cannot turn into a valid Param, or a run cannot fill.

    Also checks the `inputs` of Schedule triggers, and records on each input the value a scheduled
    run gives it when it has no `defaults` (the Param's default: Airflow needs one to schedule).
    """
    check_input_list(flow.inputs, ("inputs",), collector)
    _check_cycles(flow, collector)
    schedule_values = _check_schedule_inputs(flow, collector)
    if scheduled:
        from yaml2dag.triggers import trigger_kind

        # Runs started by a Flow trigger get no values: the Schedule triggers cannot stand in for defaults.
        kinds = {str(trigger_kind(item)) for item in flow.triggers if not item.disabled} & {"Schedule", "Flow"}
        if "Flow" in kinds:
            schedule_values = [*schedule_values, {}]
        for index, flow_input in enumerate(flow.inputs):
            _check_scheduled_input(flow_input, schedule_values, ("inputs", index), collector)


def check_input_list(inputs: Sequence[FlowInput], path: tuple[str | int, ...], collector: Collector) -> None:
    """Add a located error for every input of `inputs` (at `path`) that cannot become a valid Param.

    Flow `inputs` and a Pause's `onResume` inputs are checked alike.
    """
    known = {item.id for item in inputs}
    for index, flow_input in enumerate(inputs):
        where = (*path, index)
        if flow_input.type not in SUPPORTED_INPUT_TYPES:
            collector.add(
                (*where, "type"),
                f"input type `{flow_input.type}` is not supported by yaml2dag",
                "use one of " + ", ".join(SUPPORTED_INPUT_TYPES),
                prefer_key=False,
            )
            continue
        _check_input_schema(flow_input, where, collector)
        _check_choices(flow_input, where, collector)
        _check_initial_values(flow_input, where, collector)
        if flow_input.dependsOn is not None:
            _check_depends_on(flow_input, known, where, collector)


def _check_initial_values(flow_input: FlowInput, path: tuple[str | int, ...], collector: Collector) -> None:
    """`defaults` and `prefill` are values of the input's type, and not both given (Kestra refuses that)."""
    if flow_input.defaults is not None and flow_input.prefill is not None:
        collector.add(
            (*path, "prefill"),
            "`prefill` and `defaults` cannot be used on the same input",
            "keep `defaults` for a value always used, `prefill` for one the user may clear",
            prefer_key=False,
        )
    for name in ("defaults", "prefill"):
        value = getattr(flow_input, name)
        if value is None:
            continue
        try:
            param_value(flow_input, value)
        except ValueError as exc:
            collector.add(
                (*path, name),
                f"`{name}` of a {flow_input.type} input {exc}",
                f"write the {name} as a value of the input's type",
                prefer_key=False,
            )


def _check_input_schema(flow_input: FlowInput, path: tuple[str | int, ...], collector: Collector) -> None:
    """Settings that become the input's Param schema must make a valid JSON Schema (else Airflow drops the DAG)."""
    if flow_input.validator is not None:
        try:
            re.compile(f"^(?:{flow_input.validator})$")
        except re.error as exc:
            collector.add((*path, "validator"), f"invalid regular expression: {exc}", prefer_key=False)
    for name in ("min", "max"):
        value = getattr(flow_input, name)
        if value is None:
            continue
        if flow_input.type not in ("INT", "FLOAT"):
            collector.add((*path, name), f"`{name}` on a {flow_input.type} input is not supported by yaml2dag yet")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            collector.add((*path, name), f"`{name}` must be a number", prefer_key=False)


def _check_choices(flow_input: FlowInput, path: tuple[str | int, ...], collector: Collector) -> None:
    """ENUM, SELECT and MULTISELECT list their `values`; an ARRAY names the type of its items."""
    kind = flow_input.type
    if kind in ("ENUM", "SELECT", "MULTISELECT") and not (flow_input.values or flow_input.options):
        collector.add(path, f"a {kind} input needs `values`, the list of allowed values")
    if kind == "ARRAY":
        if flow_input.itemType is None:
            collector.add(path, "an ARRAY input needs `itemType`", "for example `itemType: STRING`")
        elif flow_input.itemType.upper() not in ITEM_TYPES:
            collector.add(
                (*path, "itemType"),
                f"`itemType` `{flow_input.itemType}` is not an item type yaml2dag supports",
                f"one of {', '.join(sorted(ITEM_TYPES))}",
                prefer_key=False,
            )


def _check_depends_on(
    flow_input: FlowInput, known: set[str], path: tuple[str | int, ...], collector: Collector
) -> None:
    from yaml2dag.errors import ExpressionError
    from yaml2dag.expressions import needs_rendering, translate

    assert flow_input.dependsOn is not None
    for position, name in enumerate(flow_input.dependsOn.inputs):
        if name == flow_input.id or name not in known:
            problem = "itself" if name == flow_input.id else f"unknown input `{name}`"
            collector.add(
                (*path, "dependsOn", "inputs", position),
                f"input `{flow_input.id}` depends on {problem}",
                f"flow inputs: {', '.join(sorted(known - {flow_input.id})) or 'none'}",
                prefer_key=False,
            )
    condition = flow_input.dependsOn.condition
    if condition and needs_rendering(condition):
        try:
            translate(condition)
        except ExpressionError as exc:
            collector.add((*path, "dependsOn", "condition"), f"invalid expression: {exc}", prefer_key=False)


def _check_cycles(flow: Flow, collector: Collector) -> None:
    """Kestra refuses inputs that depend on each other in a circle."""
    edges = {item.id: set(item.dependsOn.inputs) if item.dependsOn else set() for item in flow.inputs}
    for index, flow_input in enumerate(flow.inputs):
        pending, seen = list(edges.get(flow_input.id, ())), set()
        while pending:
            name = pending.pop()
            if name == flow_input.id:
                collector.add(
                    ("inputs", index, "dependsOn"),
                    f"input `{flow_input.id}` depends on itself through other inputs (a cycle)",
                    "remove one of the dependencies",
                )
                break
            if name not in seen:
                seen.add(name)
                pending.extend(edges.get(name, ()))


def _schedules(flow: Flow) -> list[tuple[int, Any]]:
    return [(index, trigger) for index, trigger in enumerate(flow.triggers) if trigger.type in SCHEDULE_TYPES]


def _check_schedule_inputs(flow: Flow, collector: Collector) -> list[dict[str, Any]]:
    """Each Schedule trigger's `inputs` name flow inputs and hold values of their types (or expressions).

    Returns the values of the enabled schedules, in Param form (expressions kept as text).
    """
    from yaml2dag.errors import ExpressionError
    from yaml2dag.expressions import needs_rendering, translate

    by_id = {item.id: item for item in flow.inputs}
    for index, trigger in enumerate(flow.triggers):
        if trigger.inputs and trigger.type not in SCHEDULE_TYPES:
            collector.add(
                ("triggers", index, "inputs"),
                "`inputs` are supported on Schedule triggers only by yaml2dag",
                "remove them: the runs this trigger starts use the inputs' defaults",
            )
    enabled: list[dict[str, Any]] = []
    for index, trigger in _schedules(flow):
        values: dict[str, Any] = {}
        for name, value in (trigger.inputs or {}).items():
            path = ("triggers", index, "inputs", name)
            flow_input = by_id.get(name)
            if flow_input is None:
                collector.add(path, f"unknown input `{name}`", f"flow inputs: {', '.join(by_id) or 'none'}")
                continue
            if isinstance(value, str) and needs_rendering(value):
                try:
                    translate(value)
                except ExpressionError as exc:
                    collector.add(path, f"invalid expression: {exc}", prefer_key=False)
                values[name] = value
                continue
            try:
                values[name] = param_value(flow_input, value)
            except ValueError as exc:
                collector.add(path, f"input `{name}`: {exc}", "write a value of the input's type", prefer_key=False)
        if not trigger.disabled:
            enabled.append(values)
    return enabled


def _check_scheduled_input(
    flow_input: FlowInput, schedules: list[dict[str, Any]], path: tuple[str | int, ...], collector: Collector
) -> None:
    """A scheduled run gets only defaults and the trigger's inputs: Airflow needs a default for every Param.

    A required input that some trigger cannot give gets a null default (`checked_at_start`).
    """
    if flow_input.defaults is not None or not flow_input.required or flow_input.dependsOn is not None:
        return
    if flow_input.type == "SELECT" and flow_input.autoSelectFirst and flow_input.values:
        return
    given = [values[flow_input.id] for values in schedules if flow_input.id in values]
    if not given or len(given) < len(schedules):
        # Kestra loads such a flow: manual runs give the input, a triggered run without it fails at start.
        flow_input.set_checked_at_start()
        return
    from yaml2dag.expressions import needs_rendering

    if isinstance(given[0], str) and needs_rendering(given[0]) and flow_input.type not in TEXT_TYPES:
        collector.add(
            path,
            f"required input `{flow_input.id}` has no `defaults` and the schedule gives it as an expression",
            "add `defaults` (Airflow needs a default of the input's type to schedule the flow)",
        )
        return
    flow_input.set_scheduled_default(given[0])


# --- Airflow Params -------------------------------------------------------------------------------

_PARAM_TYPES: dict[str, dict[str, Any]] = {
    "STRING": {"type": "string"},
    "SECRET": {"type": "string", "format": "password", SECRET_MARK: True},
    "ENUM": {"type": "string"},
    "SELECT": {"type": "string"},
    "MULTISELECT": {"type": "array", "items": {"type": "string"}},
    "INT": {"type": "integer"},
    "FLOAT": {"type": "number"},
    "BOOLEAN": {"type": "boolean"},
    "BOOL": {"type": "boolean"},
    "DATETIME": {"type": "string", "format": "date-time"},
    "DATE": {"type": "string", "format": "date"},
    "TIME": {"type": "string", "pattern": _TIME.pattern},
    "DURATION": {"type": "string", "pattern": r"^[-+]?[Pp].*$"},
    "JSON": {"type": "string", "format": "multiline"},
    "YAML": {"type": "string", "format": "multiline"},
    "URI": {"type": "string", "format": "uri"},
    "FILE": {"type": "string", "pattern": "^(kestra|file|s3|gs|https?)://"},
    "EMAIL": {"type": "string", "format": "email"},
    "ARRAY": {"type": "array"},
}


@dataclass(frozen=True)
class ParamSpec:
    """An input as an Airflow Param, as data: the trigger form's field (`build_params` makes the Param)."""

    schema: Mapping[str, Any]
    description: str | None = None
    #: The value when none is given; absent (`has_default` false): the run cannot start without one.
    default: Any = None
    has_default: bool = False


def param_specs(inputs: list[FlowInput]) -> dict[str, ParamSpec]:
    """Flow inputs as Param specs: typed, with the defaults Kestra would use."""
    specs: dict[str, ParamSpec] = {}
    for flow_input in inputs:
        schema = param_schema(flow_input)
        default = flow_input.defaults
        if default is not None:
            default = param_value(flow_input, default)
        values = flow_input.values or flow_input.options
        if default is None and flow_input.prefill is not None:
            default = param_value(flow_input, flow_input.prefill)
        if default is None and flow_input.type == "SELECT" and flow_input.autoSelectFirst and values:
            default = _scalar_text(values[0])
        if default is None:
            default = flow_input.scheduled_default
        required = default is None and flow_input.required and flow_input.dependsOn is None
        if flow_input.checked_at_start:
            required = False  # null default, so Airflow schedules the flow; the run checks the value at start
        specs[flow_input.id] = ParamSpec(schema, flow_input.description, default, has_default=not required)
    return specs


def build_params(inputs: list[FlowInput]) -> dict[str, Any]:
    """Flow inputs as Airflow Params: the trigger form shows them, typed and validated."""
    return build_params_of(param_specs(inputs))


def build_params_of(specs: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Airflow Params from their specs."""
    from airflow.sdk import Param

    return {
        name: Param(spec.default, description=spec.description, schema=dict(spec.schema))
        if spec.has_default
        else Param(description=spec.description, schema=dict(spec.schema))
        for name, spec in specs.items()
    }


def param_schema(flow_input: FlowInput) -> dict[str, Any]:
    """The JSON Schema of an input's Param: what the trigger form shows and Airflow checks."""
    schema = dict(_PARAM_TYPES[flow_input.type])
    values = [_scalar_text(value) for value in flow_input.values or flow_input.options or []]
    choices = "examples" if flow_input.allowCustomValue else "enum"
    if values and flow_input.type in ("ENUM", "SELECT"):
        schema[choices] = values
    if values and flow_input.type == "MULTISELECT":
        schema["items"] = {"type": "string", choices: values} if choices == "enum" else {"type": "string"}
        if choices == "examples":
            schema["examples"] = values
    if flow_input.type == "ARRAY" and flow_input.itemType:
        item_schema = _PARAM_TYPES.get(flow_input.itemType.upper(), {})
        schema["items"] = {key: value for key, value in item_schema.items() if key != "format"}
    if flow_input.validator and flow_input.type in ("STRING", "SECRET"):
        _add_validator(schema, flow_input)
    if flow_input.min is not None:
        schema["minimum"] = flow_input.min
    if flow_input.max is not None:
        schema["maximum"] = flow_input.max
    nullable = not flow_input.required or flow_input.dependsOn is not None or flow_input.checked_at_start
    if nullable and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if flow_input.displayName:
        schema["title"] = flow_input.displayName
    return schema


def _add_validator(schema: dict[str, Any], flow_input: FlowInput) -> None:
    """A `validator` as the Param's `pattern` when Airflow can check it safely, else for yaml2dag to check.

    Airflow checks `pattern` with Python's `re`, unbounded, in the API server and in every task, and
    against the stored value (a SECRET's is sealed): a SECRET's validator and a pattern that may
    backtrack without end are checked by `yaml2dag.sealing` instead, bounded, when the run is created.
    """
    from yaml2dag.expressions.strings import is_linear

    if flow_input.type == "STRING" and is_linear(flow_input.validator or ""):
        schema["pattern"] = f"^(?:{flow_input.validator})$"
    else:
        schema[VALIDATOR_KEY] = flow_input.validator


# --- run time -------------------------------------------------------------------------------------


def input_fields(flow: Flow) -> dict[str, Any]:
    """The input fields of the compiled flow's `FlowInfo`: ids, specs and the schedules' input values."""
    specs = tuple(
        InputSpec(
            id=item.id,
            type=item.type,
            item_type=item.itemType.upper() if item.itemType else None,
            required=item.required,
            depends_on=tuple(item.dependsOn.inputs) if item.dependsOn else (),
            condition=item.dependsOn.condition if item.dependsOn else None,
            prefilled=item.prefill is not None,
        )
        for item in flow.inputs
    )
    by_id = {item.id: item for item in flow.inputs}
    scheduled = tuple(
        ScheduledInputs(
            trigger.cron or "",
            trigger.timezone,
            {name: _schedule_value(by_id[name], value) for name, value in trigger.inputs.items() if name in by_id},
        )
        for _, trigger in _schedules(flow)
        if trigger.inputs and not trigger.disabled
    )
    return {"input_ids": tuple(by_id), "input_specs": specs, "scheduled_inputs": scheduled}


def _schedule_value(flow_input: FlowInput, value: Any) -> Any:
    from yaml2dag.expressions import needs_rendering

    return value if isinstance(value, str) and needs_rendering(value) else param_value(flow_input, value)


def inputs_of_run(
    specs: tuple[InputSpec, ...],
    scheduled: tuple[ScheduledInputs, ...],
    airflow_context: Mapping[str, Any],
    variables: dict[str, Any],
) -> dict[str, Any]:
    """The `inputs` root of a running task: the run's Params (a scheduled run: its trigger's `inputs`).

    SECRET values are registered with Airflow's secrets masker so task logs show `***`. Raises
    `TaskFailure` naming the input when a value cannot be read (invalid JSON or YAML text).
    """
    from yaml2dag.errors import TaskFailure
    from yaml2dag.expressions import render_value

    params = airflow_context.get("params") or {}
    conf = getattr(airflow_context["dag_run"], "conf", None) or {}
    # A prefill only fills the trigger form (which sends it in the conf): without it, no value (Kestra).
    values = {spec.id: None if spec.prefilled and spec.id not in conf else params.get(spec.id) for spec in specs}
    schedule = _schedule_of(scheduled, airflow_context["dag_run"])
    by_id = {spec.id: spec for spec in specs}
    try:
        _open_secrets(specs, values)
        for name, value in (schedule.values if schedule else {}).items():
            values[name] = given_value(by_id[name], render_value(value, variables))
        result = run_inputs(
            specs, values, lambda text, known: render_value(text, {**variables, "inputs": nested(known)})
        )
    except InputValueError as exc:
        raise TaskFailure(str(exc) + _missing_hint(exc, airflow_context["dag_run"])) from None
    except ValueError as exc:
        raise TaskFailure(str(exc)) from None
    _mask_secrets(specs, result)
    for spec in specs:
        if spec.type == "FILE" and isinstance(result.get(spec.id), str):
            from yaml2dag.storage import input_file_uri

            result[spec.id] = input_file_uri(airflow_context, spec.id, result[spec.id])
    return nested(result)


def _missing_hint(error: InputValueError, dag_run: Any) -> str:
    """Why a run lacks a required input: the trigger that started it gives only defaults (Kestra fails it too)."""
    if error.reason != MISSING_INPUT:
        return ""
    run_type = str(getattr(dag_run, "run_type", "")).lower()
    if run_type.endswith("scheduled"):
        return (
            ": this run was started by the Schedule trigger, which gives only the inputs' `defaults` and its "
            "own `inputs`; the run fails at start, as on Kestra (add `defaults` or give it in the trigger's `inputs`)"
        )
    if run_type.endswith("asset_triggered"):
        return (
            ": this run was started by a Flow trigger, which gives only the inputs' `defaults`; the run fails "
            "at start, as on Kestra (add `defaults`)"
        )
    return ": give it when triggering the run"


def given_value(flow_input: FlowInput | InputSpec, value: Any) -> Any:
    """`param_value`, with errors naming the input (`InputValueError`); `--input n=5` on an INT gives 5."""
    try:
        return param_value(flow_input, value)
    except InputValueError:
        raise
    except ValueError as exc:
        raise InputValueError(flow_input.id, str(exc)) from None


def _open_secrets(specs: Iterable[InputSpec], values: dict[str, Any]) -> None:
    """Replace each sealed SECRET value (`yaml2dag.sealing`) by its clear text, in place."""
    import logging

    from yaml2dag.sealing import is_sealed, unseal

    for spec in specs:
        value = values.get(spec.id)
        if spec.type != "SECRET" or not isinstance(value, str) or not value:
            continue
        if is_sealed(value):
            values[spec.id] = unseal(value, spec.id)
        else:
            _mask_secrets([spec], values)
            logging.getLogger(__name__).warning(
                "The SECRET input `%s` is stored in clear in this run's conf: the run was created where the "
                "yaml2dag Airflow plugin is not loaded (it seals SECRET inputs when a run is created)",
                spec.id,
            )


def _mask_secrets(specs: Iterable[InputSpec], values: Mapping[str, Any]) -> None:
    from airflow.sdk.log import mask_secret

    for spec in specs:
        if spec.type == "SECRET" and values.get(spec.id):
            # Whatever the input id: given a name, Airflow masks only names it finds sensitive.
            mask_secret(str(values[spec.id]))


def _schedule_of(scheduled: tuple[ScheduledInputs, ...], dag_run: Any) -> ScheduledInputs | None:
    """The Schedule trigger that started a scheduled run: the first whose cron matches its logical date."""
    if not scheduled or not str(getattr(dag_run, "run_type", "")).lower().endswith("scheduled"):
        return None
    logical_date = getattr(dag_run, "logical_date", None)
    if len(scheduled) == 1 or logical_date is None:
        return scheduled[0]
    import pendulum
    from croniter import croniter

    for schedule in scheduled:
        zone = pendulum.timezone(schedule.timezone or _default_timezone())
        if croniter.match(schedule.cron, logical_date.astimezone(zone)):
            return schedule
    return None


def _default_timezone() -> str:
    from airflow.sdk.configuration import conf

    return conf.get("core", "default_timezone", fallback="utc")


def check_run_values(flow: Flow, conf: Mapping[str, Any]) -> list[InputValueError]:
    """Problems with the values a run is started with, beyond what the Param schema checks.

    Reads each value as a task would (JSON, YAML, dates, validator, allowed values) and applies
    `dependsOn`, so that a bad value is refused before any task runs.
    """
    from yaml2dag.expressions import render

    problems: list[InputValueError] = []
    values: dict[str, Any] = {}
    for flow_input in flow.inputs:
        value = conf.get(flow_input.id)
        if value is None:
            value = flow_input.defaults if flow_input.defaults is not None else flow_input.scheduled_default
        try:
            values[flow_input.id] = None if value is None else given_value(flow_input, value)
        except InputValueError as exc:
            problems.append(exc)
    if not problems:
        specs = input_fields(flow)["input_specs"]
        try:
            run_inputs(specs, values, lambda text, known: render(text, {"inputs": nested(known)}))
        except InputValueError as exc:
            problems.append(exc)
    return problems
