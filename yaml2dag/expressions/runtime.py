"""Render Pebble templates: translation cache, the sandboxed Jinja environment and its helpers."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from yaml2dag.errors import ExpressionError, RenderError
from yaml2dag.expressions.jinja import generate
from yaml2dag.expressions.library import FILTERS, FUNCTIONS, TESTS
from yaml2dag.expressions.parser import parse_template
from yaml2dag.expressions.values import (
    MISSING,
    arithmetic,
    equals,
    is_number,
    is_truthy,
    to_text,
    type_name,
)


def _strict(value: Any, path: str) -> Any:
    if isinstance(value, jinja2.Undefined) or value is MISSING:
        raise RenderError(f"Unable to find `{path}`")
    return value


def _var(value: Any, name: str) -> Any:
    return _strict(value, name)


def _var_safe(value: Any) -> Any:
    return MISSING if isinstance(value, jinja2.Undefined) else value


def _lookup(obj: Any, key: Any) -> Any:
    """`obj.key` / `obj[key]` on Kestra data; MISSING when absent."""
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
        if isinstance(key, int) and not isinstance(key, bool) and str(key) in obj:
            return obj[str(key)]
        return MISSING
    if isinstance(obj, list | tuple | str):
        index = key if isinstance(key, int) and not isinstance(key, bool) else None
        if index is None and isinstance(key, str) and key.isdigit():
            index = int(key)
        if index is not None and 0 <= index < len(obj):
            return obj[index]
    return MISSING


def _attr(obj: Any, key: Any, path: str) -> Any:
    if isinstance(obj, jinja2.Undefined) or obj is MISSING:
        raise RenderError(f"Unable to find `{path}`")
    if obj is None:
        raise RenderError(f"Unable to find `{path}`: its parent is null")
    value = _lookup(obj, key)
    if value is MISSING:
        raise RenderError(f"Unable to find `{path}`")
    return value


def _attr_safe(obj: Any, key: Any) -> Any:
    if obj is MISSING or obj is None or isinstance(obj, jinja2.Undefined):
        return MISSING
    return _lookup(obj, key)


def _contains(container: Any, item: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, Mapping):
        return item in container
    if isinstance(container, str):
        return to_text(item) in container
    if isinstance(container, list | tuple):
        if isinstance(item, list | tuple):
            return all(any(equals(x, y) for y in container) for x in item)
        return any(equals(item, y) for y in container)
    raise RenderError(f"`contains` needs a list, map or string, got {type_name(container)}")


def _compare(op: str, left: Any, right: Any) -> bool:
    if not (is_number(left) and is_number(right)):
        raise RenderError(f"operator `{op}` needs numbers, got {type_name(left)} and {type_name(right)}")
    if op == "<":
        return left < right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    return left >= right


def _unary(op: str, value: Any) -> Any:
    if not is_number(value):
        raise RenderError(f"unary `{op}` needs a number, got {type_name(value)}")
    return -value if op == "-" else value


def _concat(*parts: Any) -> str:
    return "".join(to_text(part) for part in parts)


def _range(start: Any, end: Any) -> list[Any]:
    if isinstance(start, str) and isinstance(end, str) and len(start) == len(end) == 1:
        return [chr(code) for code in range(ord(start), ord(end) + 1)]
    if not (is_number(start) and is_number(end)):
        raise RenderError("`..` needs two numbers")
    return list(range(int(start), int(end) + 1))


def _is_in(item: Any, container: Any) -> bool:
    if isinstance(container, Mapping):
        values = [*container.keys(), *container.values()]
    elif isinstance(container, list | tuple):
        values = list(container)
    else:
        raise RenderError("`isIn` needs a list or a map")
    return any(to_text(item) == to_text(value) for value in values)


def _present(value: Any) -> bool:
    return value is not MISSING and value is not None


def _exists(value: Any) -> bool:
    return value is not MISSING


def _coalesce(value: Any, fallback: Any, null_falls_back: bool) -> Any:
    if value is MISSING or (null_falls_back and value is None):
        return fallback
    return value


def _iterate(value: Any) -> list[Any]:
    if value is None:
        raise RenderError("cannot loop over null")
    if isinstance(value, Mapping):
        return [{"key": key, "value": item} for key, item in value.items()]
    if isinstance(value, list | tuple | str):
        return list(value)
    raise RenderError(f"cannot loop over a {type_name(value)}")


def _loop(loop: Any) -> dict[str, Any]:
    return {
        "index": loop.index0,
        "first": loop.first,
        "last": loop.last,
        "length": loop.length,
        "revindex": loop.revindex0,
    }


def _finalize(value: Any) -> str:
    return to_text(value)


HELPERS: dict[str, Any] = {
    "__k_MISSING": MISSING,
    "__k_var": _var,
    "__k_var_safe": _var_safe,
    "__k_attr": _attr,
    "__k_attr_safe": _attr_safe,
    "__k_bool": is_truthy,
    "__k_eq": equals,
    "__k_compare": _compare,
    "__k_arith": arithmetic,
    "__k_unary": _unary,
    "__k_contains": _contains,
    "__k_concat": _concat,
    "__k_range": _range,
    "__k_is_in": _is_in,
    "__k_present": _present,
    "__k_exists": _exists,
    "__k_coalesce": _coalesce,
    "__k_iter": _iterate,
    "__k_loop": _loop,
}


class KestraEnvironment(SandboxedEnvironment):
    """Sandboxed Jinja environment that runs templates generated from Pebble."""

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            finalize=_finalize,
            keep_trailing_newline=True,
            autoescape=False,
            cache_size=0,
        )
        self.globals.clear()
        self.filters.clear()
        self.tests.clear()
        self.globals.update(HELPERS)
        self.globals.update({f"__kf_{name}": function for name, function in FILTERS.items()})
        self.globals.update({f"__kfn_{name}": function for name, function in FUNCTIONS.items()})
        self.globals.update({f"__kt_{name}": function for name, function in TESTS.items()})


_ENVIRONMENT = KestraEnvironment()


def needs_rendering(text: str) -> bool:
    """Kestra never renders a string that has no `{`."""
    return "{" in text


@functools.lru_cache(maxsize=16384)
def translate(source: str) -> str:
    """Jinja source for a Pebble template; raises `ExpressionError` with the offset of the problem."""
    return generate(parse_template(source), source)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> jinja2.Template:
    return _ENVIRONMENT.from_string(translate(source))


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render one Pebble template string with Kestra's semantics."""
    if not needs_rendering(source):
        return source
    try:
        template = _compiled(source)
    except ExpressionError as exc:
        raise RenderError(str(exc)) from None
    try:
        return template.render(context)
    except RenderError as exc:
        raise RenderError(f"{exc} used in the expression `{source}`") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{exc} in the expression `{source}`") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"forbidden operation in the expression `{source}`: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise RenderError(f"{exc} in the expression `{source}`") from None


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string leaf of a property value (strings, lists and maps)."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
    return value
