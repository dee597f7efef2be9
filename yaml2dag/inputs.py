"""Flow inputs: checked when the flow is validated, and turned into Airflow Params (the trigger form)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from yaml2dag.model import SUPPORTED_INPUT_TYPES, Flow, FlowInput

if TYPE_CHECKING:
    from yaml2dag.validation import Collector


def check_inputs(flow: Flow, scheduled: bool, collector: Collector) -> None:
    """Add an error for every input yaml2dag cannot turn into a valid Param (or a scheduled run cannot fill)."""
    for index, flow_input in enumerate(flow.inputs):
        if flow_input.type not in SUPPORTED_INPUT_TYPES:
            collector.add(
                ("inputs", index, "type"),
                f"input type `{flow_input.type}` is not supported by yaml2dag yet",
                prefer_key=False,
            )
        _check_input_schema(flow_input, ("inputs", index), collector)
        if scheduled:
            _check_scheduled_input(flow_input, ("inputs", index), collector)


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


#: JSON types of the Param values the compiler builds per input type (Airflow checks scheduled defaults).
_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("STRING", "ENUM", "SELECT", "DATETIME", "DATE", "TIME", "DURATION", "URI", "EMAIL"), (str,)),
    "INT": (int,),
    "FLOAT": (int, float),
    "BOOLEAN": (bool,),
    "BOOL": (bool,),
    "MULTISELECT": (list,),
    "ARRAY": (list,),
}
_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false", list: "a list"}


def _check_scheduled_input(flow_input: FlowInput, path: tuple[str | int, ...], collector: Collector) -> None:
    """A scheduled run gets only defaults: Airflow refuses the DAG when one is missing or of the wrong type."""
    default = flow_input.defaults
    if default is None:
        first_value = flow_input.type == "SELECT" and flow_input.autoSelectFirst and (flow_input.values or [])
        if flow_input.required and not first_value:
            collector.add(
                path,
                f"required input `{flow_input.id}` has no `defaults`: the Schedule trigger cannot start a run",
                "add `defaults`, or `required: false`",
            )
        return
    expected = _DEFAULT_TYPES.get(flow_input.type)
    wrong_bool = isinstance(default, bool) and bool not in (expected or ())
    if expected and (wrong_bool or not isinstance(default, expected)):
        collector.add(
            (*path, "defaults"),
            f"`defaults` of a {flow_input.type} input must be {_TYPE_NAMES[expected[-1]]} (scheduled runs use it)",
            "write the default as a value of the input's type (quote text)",
            prefer_key=False,
        )


_PARAM_TYPES: dict[str, dict[str, Any]] = {
    "STRING": {"type": "string"},
    "ENUM": {"type": "string"},
    "SELECT": {"type": "string"},
    "MULTISELECT": {"type": "array", "items": {"type": "string"}},
    "INT": {"type": "integer"},
    "FLOAT": {"type": "number"},
    "BOOLEAN": {"type": "boolean"},
    "BOOL": {"type": "boolean"},
    "DATETIME": {"type": "string", "format": "date-time"},
    "DATE": {"type": "string", "format": "date"},
    "TIME": {"type": "string", "format": "time"},
    "DURATION": {"type": "string", "pattern": r"^[-+]?P.*$"},
    "JSON": {},
    "URI": {"type": "string", "format": "uri"},
    "EMAIL": {"type": "string", "format": "email"},
    "ARRAY": {"type": "array"},
}
_ITEM_TYPES = {"STRING": "string", "INT": "integer", "FLOAT": "number", "BOOLEAN": "boolean", "BOOL": "boolean"}


def build_params(inputs: list[FlowInput]) -> dict[str, Any]:
    """Flow inputs as Airflow Params: the trigger form shows them, typed and validated."""
    from airflow.sdk import Param

    params: dict[str, Any] = {}
    for flow_input in inputs:
        schema = dict(_PARAM_TYPES[flow_input.type])
        values = flow_input.values or flow_input.options
        if values and flow_input.type in ("ENUM", "SELECT"):
            schema["enum"] = values
        if values and flow_input.type == "MULTISELECT":
            schema["items"] = {"type": "string", "enum": values}
        if flow_input.type == "ARRAY" and flow_input.itemType in _ITEM_TYPES:
            schema["items"] = {"type": _ITEM_TYPES[flow_input.itemType]}
        if flow_input.validator and flow_input.type == "STRING":
            schema["pattern"] = f"^(?:{flow_input.validator})$"
        if flow_input.min is not None:
            schema["minimum"] = flow_input.min
        if flow_input.max is not None:
            schema["maximum"] = flow_input.max
        if not flow_input.required and "type" in schema:
            schema["type"] = [schema["type"], "null"]
        if flow_input.displayName:
            schema["title"] = flow_input.displayName
        default = flow_input.defaults
        if default is None and flow_input.type == "SELECT" and flow_input.autoSelectFirst and values:
            default = values[0]
        if default is None and flow_input.required:
            params[flow_input.id] = Param(description=flow_input.description, schema=schema)
        else:
            params[flow_input.id] = Param(default, description=flow_input.description, schema=schema)
    return params
