"""Kestra's value semantics in Python: printing, truthiness, equality and arithmetic as Java does them.

Python values stand for Java ones: `int` is a Long, `float` a Double (`JavaFloat` a Float), `str` a
String, `dict` a Map, `list` a List, an aware `datetime` an Instant.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions.limits import OutputBudget, check_text


class _Missing:
    """Sentinel for a value that does not exist (safe lookups in `??`, `is defined`, `default`)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

#: Rendered strings that Kestra treats as false in conditions (`runIf`, `Fail`, `Assert`, `If`).
FALSY_STRINGS = frozenset({"false", "0", "-0", ""})

_LONG_MIN, _LONG_SPAN = -(2**63), 2**64


class MapEntry:
    """One entry of a map being looped over (`{% for e in map %}{{ e.key }}`); prints as `key=value`."""

    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any) -> None:
        self.key = key
        self.value = value

    def __repr__(self) -> str:
        return f"{java_string(self.key)}={java_string(self.value)}"


class JavaFloat(float):
    """A Java `Float`: a double holding a 32-bit value, printed with Float's shortest digits (`12.3`).

    `number` parses `"12.3"` to a Float as Kestra does; arithmetic between Floats (and integers)
    stays in 32 bits, a Double operand makes it a Double, as in Pebble.
    """

    __slots__ = ()

    def __new__(cls, value: float) -> JavaFloat:  # noqa: D102
        return super().__new__(cls, float32(value))

    def __repr__(self) -> str:
        return java_float(self)


def float32(value: float) -> float:
    """`value` rounded to the nearest 32-bit float (infinite when out of range), as Java's `(float)` cast."""
    try:
        return float(struct.unpack(">f", struct.pack(">f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def java_float(value: float) -> str:
    """Format a 32-bit float as Java's `Float.toString` does (`12.3`, `100.0`, `1.0E10`)."""
    if not math.isfinite(value) or value == 0:
        return java_double(value)
    digits = next(
        text for text in (f"{value:.{precision}g}" for precision in range(1, 10)) if float32(float(text)) == value
    )
    return java_double(float(digits))


def is_number(value: Any) -> bool:
    """True for ints and floats, but not for booleans (Java keeps them apart)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_long(value: int) -> int:
    """Wrap an int to Java's 64-bit `long` range, as Java arithmetic overflows."""
    return (value - _LONG_MIN) % _LONG_SPAN + _LONG_MIN


def java_double(value: float) -> str:
    """Format a float as Java's `Double.toString` does (`2.5`, `100.0`, `1.0E10`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    sign, numerals, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(str(d) for d in numerals)
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return ("-" if sign else "") + f"{mantissa}E{int(exponent) + len(digits) - 1}"


def format_instant(value: dt.datetime) -> str:
    """Format a datetime as Java's `Instant.toString` (UTC, `Z`, trailing zero groups dropped)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        fraction = f"{value.microsecond:06d}"
        text += "." + (fraction[:3] if fraction.endswith("000") else fraction)
    return text + "Z"


def _json_scalar(value: Any) -> str | None:
    """The JSON text of a null, string, boolean or number; None for anything else."""
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = java_float(value) if isinstance(value, JavaFloat) else java_double(value)
        return text if math.isfinite(value) else f'"{text}"'
    return None


def _json(value: Any, out: list[str], budget: OutputBudget) -> None:
    budget.spend(len(value) + 2 if isinstance(value, str) else 4)
    scalar = _json_scalar(value)
    if scalar is not None:
        out.append(scalar)
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            out.append("," if index else "")
            out.append(json.dumps(_java_string(key, budget), ensure_ascii=False) + ":")
            _json(item, out, budget)
        out.append("}")
    elif isinstance(value, list | tuple | set | frozenset):
        out.append("[")
        for index, item in enumerate(value):
            out.append("," if index else "")
            _json(item, out, budget)
        out.append("]")
    elif isinstance(value, MapEntry):
        _json({value.key: value.value}, out, budget)
    elif isinstance(value, dt.datetime):
        out.append(f'"{format_instant(value)}"')
    elif isinstance(value, dt.date | dt.time):
        out.append(f'"{value.isoformat()}"')
    else:
        out.append(json.dumps(str(value), ensure_ascii=False))


def to_json(value: Any) -> str:
    """Compact JSON as Jackson writes it (`{"a":1}`, `["x"]`, doubles as `1.0E10`).

    `RenderError` once the text would pass `limits.MAX_TEXT`, after that much work at most.
    """
    if isinstance(value, str):
        return check_text(json.dumps(value, ensure_ascii=False), "the JSON text")
    out: list[str] = []
    _json(value, out, OutputBudget())
    return "".join(out)


def java_string(value: Any) -> str:
    """Java's `String.valueOf`: what `~`, `+`, `join` and `isIn` use (`null`, `{a=1, b=2}`, `[1, 2]`).

    `RenderError` once a list's or map's text would pass `limits.MAX_TEXT`, after that much work at most.
    """
    if isinstance(value, str):
        return value
    return _java_string(value, OutputBudget())


def _java_string(value: Any, budget: OutputBudget) -> str:
    budget.spend(len(value) if isinstance(value, str) else 4)
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_float(value) if isinstance(value, JavaFloat) else java_double(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_java_string(k, budget)}={_java_string(v, budget)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_java_string(item, budget) for item in value) + "]"
    if isinstance(value, dt.datetime):
        return format_instant(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, MapEntry):
        return f"{_java_string(value.key, budget)}={_java_string(value.value, budget)}"
    return str(value)


def to_text(value: Any) -> str:
    """How Kestra prints a value: JSON for maps/lists, lowercase booleans, nothing for null."""
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        return ""
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return to_json(value)
    return java_string(value)


def to_boolean(value: Any, where: str, null_is_false: bool = False) -> bool:
    """Pebble's boolean coercion: numbers are true unless 0, strings unless empty (`"false"` is true!).

    Null fails (strict mode) except in a ternary; maps and lists always fail.
    """
    if isinstance(value, bool):
        return value
    if value is None or value is MISSING:
        if null_is_false:
            return False
        raise RenderError(f"null value used in {where}")
    if is_number(value):
        return value != 0
    if isinstance(value, str):
        return value != ""
    raise RenderError(f"{where} expects a boolean, number or string, got {type_name(value)}")


def is_truthy_text(text: str) -> bool:
    """Kestra's rule for rendered conditions: false only for `false`, `0`, `-0` and ``."""
    return text.strip() not in FALSY_STRINGS


def java_equals(left: Any, right: Any) -> bool:
    """Java's `Object.equals`: no numeric widening (`1` ≠ `1.0`), lists and maps compared element-wise."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int) and isinstance(right, int):
        return left == right
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(java_equals(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if len(left) != len(right):
            return False
        return all(key in right and java_equals(item, right[key]) for key, item in left.items())
    if left is None or right is None or is_number(left) or is_number(right):
        return left is right
    return bool(left == right)


def equals(left: Any, right: Any) -> bool:
    """Pebble `==`: numbers compare as doubles (`1 == 1.0`), everything else with Java `equals`."""
    if is_number(left) and is_number(right):
        return float(left) == float(right)
    return java_equals(left, right)


_OPERATION = {"+": "ADD", "-": "SUBTRACT", "*": "MULTIPLICATION", "/": "DIVISION", "%": "MODULUS"}


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """`+ - * / %` as Pebble does: `+` with a string concatenates, int division truncates, longs wrap."""
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        return java_string(left) + java_string(right)
    if op in "+-" and isinstance(left, list):
        return _list_arithmetic(op, left, right)
    if not (is_number(left) and is_number(right)):
        raise RenderError(
            f"invalid operands for mathematical operation [{_OPERATION[op]}]: {type_name(left)} {op} {type_name(right)}"
        )
    if isinstance(left, float) or isinstance(right, float):
        if any(isinstance(side, float) and not isinstance(side, JavaFloat) for side in (left, right)):
            return _double_arithmetic(op, float(left), float(right))
        # Float with Float or an integer: Pebble's float operation (operands and result in 32 bits).
        return JavaFloat(_double_arithmetic(op, float32(float(left)), float32(float(right))))
    if op in "/%" and right == 0:
        raise RenderError("/ by zero")
    if op == "+":
        return to_long(left + right)
    if op == "-":
        return to_long(left - right)
    if op == "*":
        return to_long(left * right)
    quotient = abs(left) // abs(right)
    quotient = quotient if (left >= 0) == (right > 0) else -quotient
    return to_long(quotient) if op == "/" else left - right * quotient


def _double_arithmetic(op: str, left: float, right: float) -> float:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        if op == "%" or left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1, right)
    return left / right if op == "/" else math.fmod(left, right)


def _list_arithmetic(op: str, left: list[Any], right: Any) -> list[Any]:
    if op == "+":
        return [*left, *right] if isinstance(right, list | tuple) else [*left, right]
    removals = list(right) if isinstance(right, list | tuple) else [right]
    if isinstance(right, list | tuple):
        return [item for item in left if not any(java_equals(item, r) for r in removals)]
    result = list(left)
    for index, item in enumerate(result):
        if java_equals(item, right):
            del result[index]
            break
    return result


def compare(op: str, left: Any, right: Any) -> bool:
    """`< > <= >=`: false when either side is null, numbers only (strings cannot be compared)."""
    if left is None or right is None:
        return False
    if not (is_number(left) and is_number(right)):
        raise RenderError(
            f"invalid operands for mathematical comparison `{op}`: {type_name(left)} and {type_name(right)}"
        )
    a, b = float(left), float(right)
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b


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
    if isinstance(value, dt.datetime):
        return "date"
    return type(value).__name__


def java_hash(value: Any) -> int:
    """Java's `hashCode` for the values a map literal can hold (String, Long, Double, Boolean, null)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1231 if value else 1237
    if isinstance(value, int):
        bits = value & 0xFFFFFFFFFFFFFFFF
        return _int32(bits ^ (bits >> 32))
    if isinstance(value, float):
        bits = struct.unpack(">q", struct.pack(">d", value))[0] & 0xFFFFFFFFFFFFFFFF
        return _int32(bits ^ (bits >> 32))
    if isinstance(value, str):
        data = value.encode("utf-16-be", "surrogatepass")
        result = 0
        for index in range(0, len(data), 2):
            result = (31 * result + (data[index] << 8 | data[index + 1])) & 0xFFFFFFFF
        return _int32(result)
    return hash(value) & 0x7FFFFFFF


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def java_hash_order(keys: list[Any], initial_capacity: int | None = None) -> list[Any]:
    """The order in which a `java.util.HashMap` created with `initial_capacity` iterates these keys.

    Pebble builds map literals (and `merge` results) as HashMaps, so Kestra prints their keys in
    this order, not in the order they were written. The default capacity is a map literal's.
    """
    wanted = math.ceil(len(keys) / 0.75) if initial_capacity is None else initial_capacity
    capacity = 1
    while capacity < wanted:
        capacity *= 2
    while len(keys) > capacity * 0.75:
        capacity *= 2

    def bucket(key: Any) -> int:
        hashed = java_hash(key) & 0xFFFFFFFF
        return (hashed ^ (hashed >> 16)) & (capacity - 1)

    return sorted(keys, key=bucket)
