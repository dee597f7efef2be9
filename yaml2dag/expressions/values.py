"""Kestra's value semantics in Python: printing, truthiness, equality and arithmetic as Java does them."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from jinja2 import Undefined

from yaml2dag.errors import RenderError


class _Missing:
    """Sentinel for a value that does not exist (safe lookups in `??`, `is defined`, `default`)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

#: Rendered strings that Kestra treats as false in conditions (`runIf`, `Fail`, `Assert`, `If`).
FALSY_STRINGS = frozenset({"false", "0", "-0", ""})


def is_number(value: Any) -> bool:
    """True for ints and floats, but not for booleans (Java keeps them apart)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def java_double(value: float) -> str:
    """Format a float as Java's `Double.toString` does (`2.5`, `100.0`, `1.0E10`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    digits = Decimal(repr(value)).normalize()
    sign, numerals, exponent = digits.as_tuple()
    numbers = "".join(str(d) for d in numerals)
    exponent_value = int(exponent) + len(numbers) - 1
    mantissa = numbers[0] + "." + (numbers[1:] or "0")
    return ("-" if sign else "") + f"{mantissa}E{exponent_value}"


def format_instant(value: dt.datetime) -> str:
    """Format a datetime as Java's `Instant.toString` (UTC, `Z`, trailing zero groups dropped)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    micros = value.microsecond
    if micros:
        fraction = f"{micros:06d}"
        text += "." + (fraction[:3] if fraction.endswith("000") else fraction)
    return text + "Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_instant(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot print a {type(value).__name__} value")


def to_json(value: Any) -> str:
    """Compact JSON as Jackson writes it (`{"a":1}`, `["x"]`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def to_text(value: Any) -> str:
    """How Pebble prints a value: JSON for maps/lists, lowercase booleans, nothing for null."""
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dt.datetime):
        return format_instant(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return to_json(value)
    return str(value)


def is_truthy(value: Any) -> bool:
    """Truthiness of a value inside an expression (`and`, `or`, `not`, `if`, ternary)."""
    if isinstance(value, bool):
        return value
    if value is None or value is MISSING:
        return False
    if is_number(value):
        return value != 0
    if isinstance(value, str | Mapping | list | tuple):
        return len(value) > 0
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return True


def is_truthy_text(text: str) -> bool:
    """Kestra's rule for rendered conditions: false only for `false`, `0`, `-0` and ``."""
    return text.strip() not in FALSY_STRINGS


def equals(left: Any, right: Any) -> bool:
    """Pebble `==`: numbers compare by value, other types never equal each other (`"1" == 1` is false)."""
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if left is None or right is None:
        return left is right
    if isinstance(left, str) != isinstance(right, str):
        return False
    return bool(left == right)


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """`+ - * / %` with Java semantics: int division truncates, `+` with a string concatenates."""
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        return to_text(left) + to_text(right)
    if not (is_number(left) and is_number(right)):
        raise RenderError(f"operator `{op}` needs numbers, got {type_name(left)} and {type_name(right)}")
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    both_int = isinstance(left, int) and isinstance(right, int)
    if right == 0:
        if both_int:
            raise RenderError("division by zero")
        if op == "%":
            return math.nan
        return math.nan if left == 0 else math.copysign(math.inf, left) * math.copysign(1, right)
    if op == "/":
        if both_int:
            quotient = abs(left) // abs(right)
            return quotient if (left >= 0) == (right > 0) else -quotient
        return left / right
    if both_int:
        remainder = abs(left) % abs(right)
        return remainder if left >= 0 else -remainder
    return math.fmod(left, right)


def type_name(value: Any) -> str:
    """A user-facing name for a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__
