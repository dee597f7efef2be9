"""Collection and number filters of Pebble and Kestra (`length`, `first`, `join`, `keys`, `chunk`, `abs`, ...)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions.values import (
    MISSING,
    JavaFloat,
    MapEntry,
    is_number,
    java_equals,
    java_hash_order,
    java_string,
    type_name,
)


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise RenderError(f"the `{name}` filter needs a list, got {type_name(value)}")
    return list(value)


def is_empty(value: Any) -> bool:
    """Pebble's `empty` test: null, a blank string, an empty list or map."""
    if value is None or value is MISSING:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, Mapping | list | tuple):
        return len(value) == 0
    return False


def default(value: Any, fallback: Any = None) -> Any:
    """Pebble `default`: replaces missing, null, blank strings and empty collections (not `false`/`0`)."""
    return fallback if is_empty(value) else value


def length(value: Any) -> int:
    """Characters of a string, items of a list or map; 0 for null and anything else."""
    if isinstance(value, str | Mapping | list | tuple):
        return len(value)
    return 0


def _edge(last: bool) -> Callable[[Any], Any]:
    def edge(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            if not value:
                raise RenderError(f"`{'last' if last else 'first'}` of an empty string")
            return value[-1] if last else value[0]
        items = _list(value, "last" if last else "first")
        return (items[-1] if last else items[0]) if items else None

    edge.__doc__ = "The last item (or character)." if last else "The first item (or character)."
    return edge


def join(value: Any, separator: Any = None) -> str | None:
    """Join items with Java's `toString` (`null` prints as `null`); no separator concatenates."""
    if value is None:
        return None
    items = _list(value, "join")
    return ("" if separator is None else java_string(separator)).join(java_string(item) for item in items)


def slice_(value: Any, start: Any = None, end: Any = None) -> Any:
    """Pebble `slice(fromIndex, toIndex)` on strings and lists; indexes must be in range."""
    if value is None:
        return None
    if not isinstance(value, str | list | tuple):
        raise RenderError(f"Slice filter can only be applied to String, List and array inputs, got {type_name(value)}")
    low = 0 if start is None else start
    if not is_number(low) or (end is not None and not is_number(end)):
        raise RenderError("`slice` indexes must be numbers")
    low = int(low)
    if low < 0:
        raise RenderError("fromIndex must be greater than 0")
    high = len(value) if end is None else int(end)
    if high > len(value):
        raise RenderError(f"toIndex must be smaller than input size: {len(value)}")
    if end is not None and low >= high:
        raise RenderError("toIndex must be greater than fromIndex")
    return value[low:high] if isinstance(value, str) else list(value[low:high])


def _sort_key(value: Any) -> Any:
    if is_number(value):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, dt.datetime):
        return (2, value)
    raise RenderError(f"cannot sort a list holding a {type_name(value)}")


def _sorted(reverse: bool) -> Callable[[Any], Any]:
    def sort(value: Any) -> Any:
        if value is None:
            return None
        items = _list(value, "rsort" if reverse else "sort")
        keys = [_sort_key(item) for item in items]
        if len({key[0] for key in keys}) > 1:
            raise RenderError("cannot sort a list mixing numbers, strings and dates")
        return [item for _, item in sorted(zip(keys, items, strict=True), key=lambda pair: pair[0], reverse=reverse)]

    sort.__doc__ = "Sort in descending order." if reverse else "Sort in ascending order."
    return sort


def reverse(value: Any) -> Any:
    """Reverse a list (strings cannot be reversed in Pebble)."""
    return None if value is None else _list(value, "reverse")[::-1]


def merge(value: Any, items: Any = None) -> Any:
    """Pebble `merge`: list + list, or map + map (the result iterates in Java HashMap order)."""
    if value is None:
        if items is None:
            raise RenderError("The two arguments to be merged are null")
        return items
    if items is None:
        return value
    if isinstance(value, Mapping):
        if isinstance(items, Mapping):
            merged = {**value, **items}
        elif isinstance(items, list | tuple):
            merged = {**value, **{item: item for item in items}}
        else:
            raise RenderError("Currently, only Maps and Lists can be merged with a Map")
        return {key: merged[key] for key in java_hash_order(list(merged), len(value) + len(items) + 16)}
    if isinstance(value, list | tuple):
        if isinstance(items, Mapping):
            return [*value, *(MapEntry(key, item) for key, item in items.items())]
        if isinstance(items, list | tuple):
            return [*value, *items]
        raise RenderError("Currently, only Maps and Lists can be merged with a List")
    raise RenderError("The object being filtered is not a Map/List/Array")


def keys(value: Any) -> Any:
    """Kestra `keys`: a map's keys, or a list's indexes."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, list | tuple):
        return list(range(len(value)))
    raise RenderError(f"'keys' filter can only be applied to List, Map, Array. Actual type was: {type_name(value)}")


def values(value: Any) -> Any:
    """Kestra `values`: a map's values."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.values())
    raise RenderError(f"'values' filter can only be applied to Map. Actual type was: {type_name(value)}")


def distinct(value: Any) -> Any:
    """Kestra `distinct`: drop repeated items, keeping the first (null input prints `null`)."""
    if value is None:
        return "null"
    result: list[Any] = []
    for item in _list(value, "distinct"):
        if not any(java_equals(item, seen) for seen in result):
            result.append(item)
    return result


def flatten(value: Any) -> Any:
    """Kestra `flatten`: one level of nested lists."""
    if value is None:
        return None
    result: list[Any] = []
    for item in _list(value, "flatten"):
        result.extend(item if isinstance(item, list | tuple) else [item])
    return result


def chunk(value: Any, size: Any = None) -> Any:
    """Kestra `chunk(size)`: split a list into lists of `size` items."""
    if value is None:
        return None
    items = _list(value, "chunk")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise RenderError("'chunk' filter expects a positive integer argument 'size'.")
    return [items[index : index + size] for index in range(0, len(items), size)]


def absolute(value: Any) -> Any:
    """`abs` of a number."""
    if value is None:
        return None
    if not is_number(value):
        raise RenderError(f"the `abs` filter needs a number, got {type_name(value)}")
    return abs(value)


def class_name(value: Any) -> str | None:
    """Kestra `className`: the Java class the value would have in Kestra."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer" if -(2**31) <= value < 2**31 else "java.lang.Long"
    names = {
        JavaFloat: "java.lang.Float",
        float: "java.lang.Double",
        str: "java.lang.String",
        dict: "java.util.LinkedHashMap",
        list: "java.util.ArrayList",
    }
    if isinstance(value, dt.datetime):
        return "java.time.Instant"
    return names.get(type(value), "java.lang.Object")


def _decimal_pattern(pattern: str) -> tuple[str, str, str, int, int, int, int]:
    """Split a Java `DecimalFormat` pattern into prefix, suffix and digit counts."""
    body_chars = "#0,."
    start = next((i for i, c in enumerate(pattern) if c in body_chars), len(pattern))
    end = start
    while end < len(pattern) and pattern[end] in body_chars:
        end += 1
    prefix, body, suffix = pattern[:start].replace("'", ""), pattern[start:end], pattern[end:].replace("'", "")
    integer, _, fraction = body.partition(".")
    grouping = len(integer) - integer.rfind(",") - 1 if "," in integer else 0
    integer = integer.replace(",", "")
    return prefix, suffix, "." if "." in body else "", integer.count("0"), fraction.count("0"), len(fraction), grouping


def number_format(value: Any, pattern: Any = None) -> Any:
    """Kestra `numberFormat(pattern)`: Java `DecimalFormat` (`#.##`, `#,##0.00`, `0.0%`), rounding half-even."""
    if value is None:
        return None
    if not is_number(value):
        raise RenderError(f"the `numberFormat` filter needs a number, got {type_name(value)}")
    prefix, suffix, point, min_int, min_frac, max_frac, grouping = _decimal_pattern(java_string(pattern))
    try:
        number = Decimal(repr(value)) * (100 if "%" in suffix + prefix else 1)
        rounded = number.quantize(Decimal(1).scaleb(-max_frac), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        return java_string(value)
    sign = "-" if rounded < 0 else ""
    integer_part, _, fraction_part = f"{abs(rounded):f}".partition(".")
    integer_part = integer_part.lstrip("0").rjust(max(min_int, 1 if not (point and max_frac) else min_int), "0")
    if grouping:
        groups: list[str] = []
        while len(integer_part) > grouping:
            groups.insert(0, integer_part[-grouping:])
            integer_part = integer_part[:-grouping]
        integer_part = ",".join([integer_part, *groups]) if integer_part else ",".join(groups)
    fraction_part = fraction_part[:max_frac].rstrip("0").ljust(min_frac, "0")
    body = integer_part + ("." + fraction_part if fraction_part else "")
    return sign + prefix + (body or "0") + suffix


def number_range(start: Any = None, end: Any = None, step: Any = None) -> list[Any]:
    """Pebble `range(start, end, step=1)`: the end is **included**; single characters work too."""
    increment = 1 if step is None else step
    if not is_number(increment):
        raise RenderError(f"The increment of the range function must be a number {java_string(increment)}")
    increment = int(increment)
    if increment == 0:
        raise RenderError("The increment of the range function must be different than 0")
    if is_number(start) and is_number(end):
        low, high = int(start), int(end)
        if abs(high - low) // abs(increment) > 1_000_000:
            raise RenderError("range too large (more than 1,000,000 items)")
        return list(range(low, high + (1 if increment > 0 else -1), increment))
    if isinstance(start, str) and isinstance(end, str) and len(start) == len(end) == 1:
        codes = range(ord(start), ord(end) + (1 if increment > 0 else -1), increment)
        return [chr(code) for code in codes]
    raise RenderError("Arguments of range function must be of type Number or String with a length of 1")


#: name → (function, Pebble argument names, number of required arguments)
COLLECTION_FILTERS: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]] = {
    "abs": (absolute, (), 0),
    "chunk": (chunk, ("size",), 1),
    "className": (class_name, (), 0),
    "default": (default, ("default",), 0),
    "distinct": (distinct, (), 0),
    "first": (_edge(last=False), (), 0),
    "flatten": (flatten, (), 0),
    "join": (join, ("separator",), 0),
    "keys": (keys, (), 0),
    "last": (_edge(last=True), (), 0),
    "length": (length, (), 0),
    "merge": (merge, ("items",), 1),
    "numberFormat": (number_format, ("format",), 1),
    "reverse": (reverse, (), 0),
    "rsort": (_sorted(reverse=True), (), 0),
    "slice": (slice_, ("fromIndex", "toIndex"), 0),
    "sort": (_sorted(reverse=False), (), 0),
    "values": (values, (), 0),
}
