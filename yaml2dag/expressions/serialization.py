"""JSON and YAML filters and functions (`toJson`, `json()`/`fromJson()`, `yaml`, `jq`, `number`).

Note the naming trap Kestra kept for compatibility: the `json` *filter* serialises (like
`toJson`), the `json()` *function* parses (like `fromJson()`). PyYAML is imported only
when an expression uses it; jq runs in the isolated worker process.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions.isolation import IsolationError, run_jq
from yaml2dag.expressions.jqprograms import refused_use
from yaml2dag.expressions.limits import check_text
from yaml2dag.expressions.values import JavaFloat, float32, java_double, java_float, to_json, type_name


def to_json_filter(value: Any) -> str:
    """`toJson` / `json` filter: compact JSON; null gives the string `null`."""
    return "null" if value is None else to_json(value)


def from_json(text: Any = None) -> Any:
    """`fromJson(str)` / `json(str)` function: parse JSON (null stays null)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise RenderError(f"The 'fromJson' function expects an argument 'json' with type string, got {type_name(text)}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RenderError(f"Invalid json: {exc}") from None


def _plain(value: Any) -> Any:
    """Values as PyYAML/jq should see them (dates as ISO strings, entries as one-key maps)."""
    return json.loads(to_json(value))


def to_yaml(value: Any) -> str:
    """Kestra `yaml` filter: block-style YAML as Jackson writes it with `INDENT_ARRAYS`.

    Jackson's SnakeYAML emitter then puts one space before each `-` (indicator indent 1, indent 2):
    ` - a` at the top and under a key, and a map inside a list starts on the line after its `-`.
    """
    import yaml

    class _Dumper(yaml.SafeDumper):
        def expect_block_sequence_item(self, first: bool = False) -> None:
            if not first and isinstance(self.event, yaml.SequenceEndEvent):
                super().expect_block_sequence_item(first)
                return
            self.write_indent()
            # SnakeYAML's `writeWhitespace(indicatorIndent)`: the one thing PyYAML's emitter lacks.
            self.whitespace = True
            self.column += 1
            self.stream.write(" ")
            self.write_indicator("-", True, indention=True)
            self.states.append(self.expect_block_sequence_item)
            self.expect_node(sequence=True)

    if value is None:
        return "null"
    text = yaml.dump(_plain(value), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text[: -len("...\n")] if text.endswith("\n...\n") else text


def from_yaml(text: Any = None) -> Any:
    """`yaml(str)` function: parse YAML (dates stay strings, as with Jackson)."""
    import yaml

    if not isinstance(text, str):
        raise RenderError(f"The 'yaml' function expects an argument 'yaml' with type string, got {type_name(text)}")

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.yaml_implicit_resolvers = {
        key: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise RenderError(f"Invalid yaml: {exc}") from None


def jq_filter(value: Any, expression: Any = None) -> Any:
    """Kestra `jq(expression)`: run a jq program; always a **list** of results (use `| first`).

    The program runs in the isolated worker (`isolation`) with a time budget; programs that
    would read the environment, files or other inputs are refused (`jqprograms`).
    """
    if value is None:
        return None
    if expression is None:
        raise RenderError("The 'jq' filter expects an argument 'expression'.")
    program = str(expression)
    refused = refused_use(program)
    if refused is not None:
        raise RenderError(f"the jq program '{program}' uses {refused}, which is not allowed")
    text = check_text(value if isinstance(value, str) else to_json(value), "the jq input")
    try:
        return run_jq(program, text)
    except IsolationError:
        raise
    except RenderError as exc:
        raise RenderError(f"Failed to resolve JQ expression '{expression}': {exc}") from None


_INTEGER = re.compile(r"[+-]?\d+[lL]?")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?")
_HEX = re.compile(r"[+-]?(0[xX]|#)[0-9a-fA-F]+")


def to_number(value: Any, kind: Any = None) -> Any:
    """Kestra `number(type?)`: parse a string as INT, LONG, FLOAT, DOUBLE, BIGDECIMAL, BIGINTEGER or inferred."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RenderError(f"'number' filter can only be applied to String. Actual type was: {type_name(value)}")
    text = value
    try:
        if kind in ("INT", "LONG", "BIGINTEGER"):
            return int(text)
        if kind == "FLOAT":
            return JavaFloat(float(text.rstrip("fFdD")))
        if kind in ("DOUBLE", "BIGDECIMAL"):
            return float(text.rstrip("fFdD"))
        if kind in (None, ""):
            return _create_number(text)
    except ValueError:
        pass
    raise RenderError(f"{text} is not a valid number.")


def _create_number(text: str) -> int | float:
    """Commons Lang's `NumberUtils.createNumber`, which Kestra's `number` uses without a type.

    Whole numbers are Integer, Long or BigInteger; a decimal is a Float when Float prints it as
    Double does (`12.3`), else a Double (`3.14159265358979`); suffixes `f`, `d`, `L` force the type.
    """
    if _INTEGER.fullmatch(text):
        return int(text.rstrip("lL"))
    if _HEX.fullmatch(text):
        sign = -1 if text.startswith("-") else 1
        return sign * int(text.lstrip("+-").lstrip("0xX#"), 16)
    if not _DECIMAL.fullmatch(text):
        raise ValueError(text)
    if text[-1] in "fF":
        return JavaFloat(float(text[:-1]))
    double = float(text.rstrip("dD"))
    if text[-1] in "dD":
        return double
    single = float32(double)
    if math.isfinite(single) and (single != 0 or double == 0) and java_float(single) == java_double(double):
        return JavaFloat(double)
    return double


#: name → (function, Pebble argument names, number of required arguments)
DATA_FILTERS: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]] = {
    "jq": (jq_filter, ("expression",), 1),
    "json": (to_json_filter, (), 0),
    "number": (to_number, ("type",), 0),
    "toJson": (to_json_filter, (), 0),
    "yaml": (to_yaml, (), 0),
}

DATA_FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]] = {
    "fromJson": (from_json, ("json",), 1),
    "json": (from_json, ("json",), 1),
    "yaml": (from_yaml, ("yaml",), 1),
}
