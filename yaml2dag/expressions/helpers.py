"""The `__k_*` helpers that generated Jinja calls: lookups, operators and coercions with Pebble semantics."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2 import pass_context
from jinja2.runtime import Context

from yaml2dag.errors import RenderError
from yaml2dag.expressions.sequences import number_range
from yaml2dag.expressions.values import (
    MISSING,
    MapEntry,
    arithmetic,
    compare,
    equals,
    is_number,
    java_equals,
    java_hash_order,
    java_string,
    to_boolean,
    type_name,
)


class MissingValue(RenderError):
    """A strict lookup failed: Kestra's "Unable to find `x`" (an AttributeNotFoundException)."""


def _is_missing(value: Any) -> bool:
    return value is MISSING or isinstance(value, jinja2.Undefined)


def var(value: Any, name: str) -> Any:
    """A root variable; an undefined one fails."""
    if _is_missing(value):
        raise MissingValue(f"Unable to find `{name}`")
    return value


def var_safe(value: Any) -> Any:
    """A root variable in safe mode: undefined gives MISSING."""
    return MISSING if _is_missing(value) else value


def _lookup(obj: Any, key: Any) -> Any:
    """`obj.key` / `obj[key]` with Pebble's resolvers; MISSING when absent."""
    if isinstance(obj, Mapping):
        if is_number(key) and obj:
            first = next(iter(obj))
            if isinstance(first, str):
                raise RenderError(f"cannot look up the number {java_string(key)} in a map whose keys are strings")
            return next((obj[k] for k in obj if is_number(k) and float(k) == float(key)), MISSING)
        try:
            return obj.get(key, MISSING)
        except TypeError:  # unhashable key
            return MISSING
    if isinstance(obj, list | tuple):
        text = java_string(key)
        if text.lstrip("-").isdigit():
            index = int(text)
            return obj[index] if 0 <= index < len(obj) else MISSING
        return MISSING
    if isinstance(obj, MapEntry):
        return obj.key if key == "key" else obj.value if key == "value" else MISSING
    return MISSING


def attr(obj: Any, key: Any, path: str) -> Any:
    """A strict lookup: a missing key, an index out of range or an attribute of null fails."""
    if _is_missing(obj):
        raise MissingValue(f"Unable to find `{path}`")
    if obj is None:
        raise MissingValue(f"Unable to find `{path}`: attempt to get an attribute of a null value")
    value = _lookup(obj, key)
    if value is MISSING:
        raise MissingValue(f"Unable to find `{path}`")
    return value


def attr_safe(obj: Any, key: Any) -> Any:
    """A lookup in safe mode: anything missing gives MISSING."""
    if obj is None or _is_missing(obj) or key is MISSING:
        return MISSING
    return _lookup(obj, key)


@pass_context
def propagate(context: Context, function: Callable[..., Any], *args: Any) -> Any:
    """Call `function` unless an argument is MISSING (then the result is MISSING too)."""
    if any(arg is MISSING for arg in args):
        return MISSING
    return context.call(function, *args)


class Box:
    """Carries a value through Jinja's `or` so that `??` evaluates its right side only when needed."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def keep(value: Any) -> Any:
    """`??`: keep the left side unless it is missing or null."""
    return Box(value) if value is not MISSING and value is not None else False


def keep_defined(value: Any) -> Any:
    """`???`: keep the left side unless it is missing (null is kept)."""
    return Box(value) if value is not MISSING else False


def contains(container: Any, item: Any) -> bool:
    """Pebble `contains`: list item (or all items of a list), map key, substring; null contains nothing."""
    if container is None:
        return False
    if isinstance(container, list | tuple):
        if isinstance(item, list | tuple):
            return all(any(java_equals(x, y) for y in container) for x in item)
        return any(java_equals(item, y) for y in container)
    if isinstance(container, Mapping):
        if isinstance(item, str):
            return item in container
        return any(java_equals(item, key) for key in container)
    if isinstance(container, str):
        return java_string(item) in container
    raise RenderError(
        f"Contains operator can only be used on Collections, Maps and arrays. Actual type was: {type_name(container)}"
    )


def concat(*parts: Any) -> str:
    """`~` and string interpolation: Java `toString` of each part, null prints nothing."""
    return "".join(java_string(part) for part in parts if part is not None)


def dot_range(start: Any, end: Any) -> list[Any]:
    """`a..b`: Pebble's `range(a, b)` (end included)."""
    return number_range(start, end)


def _not_equals(left: Any, right: Any) -> bool:
    return not equals(left, right)


#: What each operator of a `__k_fold` chain computes.
_FOLDED: dict[str, Callable[[Any, Any], Any]] = {
    **{op: functools.partial(arithmetic, op) for op in "+-*/%"},
    **{op: functools.partial(compare, op) for op in ("<", ">", "<=", ">=")},
    "==": equals,
    "equals": equals,
    "!=": _not_equals,
    "contains": lambda left, right: contains(left, right),
    "~": lambda left, right: concat(left, right),
    "..": lambda left, right: dot_range(left, right),
    "isIn": lambda left, right: is_in(left, right),
}


def fold(first: Any, *rest: Any) -> Any:
    """A left-leaning chain `first op1 b op2 c ...` (operators and operands alternate in `rest`), left to right."""
    value = first
    for index in range(0, len(rest), 2):
        value = _FOLDED[rest[index]](value, rest[index + 1])
    return value


def is_in(item: Any, container: Any) -> bool:
    """Kestra `isIn`: compares as strings; on a map it matches keys or values."""
    if item is None or container is None:
        return False
    text = java_string(item)
    if isinstance(container, Mapping):
        return any(java_string(k) == text or java_string(v) == text for k, v in container.items())
    if isinstance(container, list | tuple):
        return any(java_string(value) == text for value in container)
    return False


class _NullIterable(tuple):  # type: ignore[type-arg]
    """What a `for` over null iterates: nothing, and the loop's `else` is skipped too."""

    __slots__ = ()


_NULL_ITERABLE = _NullIterable()


def iterate(value: Any) -> Any:
    """What `{% for %}` iterates: list items, map entries (`.key`/`.value`); null renders nothing."""
    if value is None:
        return _NULL_ITERABLE
    if isinstance(value, Mapping):
        return [MapEntry(key, item) for key, item in value.items()]
    if isinstance(value, list | tuple):
        return value
    raise RenderError(f"Not an iterable object. Value = [{java_string(value)}]")


def loop_variables(loop: Any) -> dict[str, Any]:
    """Pebble's `loop` (0-based `index`, `revindex`, `first`, `last`, `length`)."""
    return {
        "index": loop.index0,
        "revindex": loop.revindex0,
        "first": loop.first,
        "last": loop.last,
        "length": loop.length,
    }


def map_literal(*pairs: Any) -> dict[Any, Any]:
    """`{k: v, ...}`: a map in Java HashMap iteration order, as Pebble builds it."""
    items: dict[Any, Any] = {}
    for index in range(0, len(pairs), 2):
        key = pairs[index]
        try:
            items[key] = pairs[index + 1]
        except TypeError:
            raise RenderError(f"a {type_name(key)} cannot be a map key") from None
    return {key: items[key] for key in java_hash_order(list(items))}


def _boolean(where: str, null_is_false: bool = False) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return to_boolean(value, where, null_is_false)

    return check


def _safe(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        return MISSING if value is MISSING else function(value)

    return check


def negate(value: Any) -> bool:
    """`not x`: x must be a boolean, number or string."""
    return not to_boolean(value, "not operator")


HELPERS: dict[str, Any] = {
    "__k_MISSING": MISSING,
    "__k_var": var,
    "__k_var_safe": var_safe,
    "__k_attr": attr,
    "__k_attr_safe": attr_safe,
    "__k_p": propagate,
    "__k_nomiss": lambda value: None if value is MISSING else value,
    "__k_is_missing": lambda value: value is MISSING,
    "__k_box": Box,
    "__k_unbox": lambda box: box.value,
    "__k_keep": keep,
    "__k_keep_defined": keep_defined,
    "__k_if": _boolean("if statement"),
    "__k_cond": _boolean("ternary operator", null_is_false=True),
    "__k_and": _boolean("and operator"),
    "__k_or": _boolean("or operator"),
    "__k_and_s": _safe(_boolean("and operator")),
    "__k_nor_s": _safe(lambda value: not to_boolean(value, "or operator")),
    "__k_not": negate,
    "__k_not_s": _safe(negate),
    "__k_flip": _safe(lambda value: not value),
    "__k_eq": equals,
    "__k_ne": _not_equals,
    "__k_fold": fold,
    "__k_cmp": compare,
    "__k_arith": arithmetic,
    "__k_neg": lambda value: arithmetic("*", -1, value),
    "__k_pos": lambda value: arithmetic("*", 1, value),
    "__k_contains": contains,
    "__k_concat": concat,
    "__k_range": dot_range,
    "__k_is_in": is_in,
    "__k_iter": iterate,
    "__k_is_null_iter": lambda value: value is _NULL_ITERABLE,
    "__k_loop": loop_variables,
    "__k_list": lambda *items: list(items),
    "__k_map": map_literal,
    "__k_float": float,
}
