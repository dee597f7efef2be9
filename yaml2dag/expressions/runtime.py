"""Render Pebble templates: the translation cache, the sandboxed Jinja environment, `render` and `evaluate`."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from yaml2dag.errors import ExpressionError, RenderError
from yaml2dag.expressions.helpers import HELPERS, iterate
from yaml2dag.expressions.jinja import generate
from yaml2dag.expressions.library import FILTERS, FUNCTIONS, TESTS
from yaml2dag.expressions.limits import (
    MAX_TEXT,
    check_deadline,
    check_value,
    end_budget,
    spend_loop_items,
    start_budget,
    text_too_long,
)
from yaml2dag.expressions.parser import parse_template
from yaml2dag.expressions.values import to_text

#: Helpers that build strings or collections from their operands (the others return booleans or lookups).
_BUILDING_HELPERS = ("__k_concat", "__k_arith", "__k_fold", "__k_neg", "__k_pos", "__k_map", "__k_list", "__k_range")


def _bounded(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with its result checked against the size caps (`limits.check_value`)."""

    @functools.wraps(function)  # keeps `pass_context`
    def bounded(*args: Any) -> Any:
        return check_value(function(*args))

    return bounded


def _counted_iteration(value: Any) -> Any:
    """`__k_iter` counting the items against the rendering's loop budget."""
    items = iterate(value)
    spend_loop_items(len(items))
    return items


def _bounded_concat(chunks: Iterable[str]) -> str:
    """Join the output of a template (or a `{% set %}` block), failing as soon as it passes `MAX_TEXT`."""
    parts: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_TEXT:
            raise text_too_long("the rendered text", total)
        parts.append(chunk)
        if len(parts) % 4096 == 0:
            check_deadline()
    return "".join(parts)


class KestraEnvironment(SandboxedEnvironment):
    """Sandboxed Jinja environment that runs templates generated from Pebble.

    Jinja's own globals (`range`, `cycler`, `joiner`, `namespace`, `lipsum`, `dict`), filters and
    tests are removed: generated code only calls the `__k*` helpers, and flow authors can only
    write Pebble (names starting with `__` are refused by the parser).
    """

    #: Every template's output, and every `{% set %}` block, is joined within the size cap.
    concat = staticmethod(_bounded_concat)

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            finalize=to_text,
            keep_trailing_newline=True,
            autoescape=False,
            cache_size=0,
        )
        self.globals.clear()
        self.filters.clear()
        self.tests.clear()
        self.globals.update(HELPERS)
        self.globals.update({name: _bounded(HELPERS[name]) for name in _BUILDING_HELPERS})
        self.globals["__k_iter"] = _counted_iteration
        self.globals.update({f"__kf_{name}": _bounded(spec.function) for name, spec in FILTERS.items()})
        self.globals.update({f"__kfn_{name}": _bounded(spec.function) for name, spec in FUNCTIONS.items()})
        self.globals.update({f"__kt_{name}": function for name, function in TESTS.items()})

    def make_globals(self, d: Mapping[str, Any] | None) -> Any:
        """A plain dict instead of Jinja's ChainMap: each render copies the globals, and a dict copies fast."""
        return {**self.globals, **(d or {})}

    def render_nested(self, value: Any, values: Mapping[str, Any]) -> Any:
        """What `render()` inside an expression gives (see `functions.NestedRenderer`)."""
        return render_value(value, values)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Generated code never reads a Python attribute: every lookup goes through `__k_attr`."""
        return False


_ENVIRONMENT = KestraEnvironment()


def needs_rendering(text: str) -> bool:
    """Kestra never renders a string that has no `{`."""
    return "{" in text


@functools.lru_cache(maxsize=16384)
def translate(source: str) -> str:
    """Jinja source for a Pebble template; raises `ExpressionError` with the offset of the problem."""
    return generate(parse_template(source), source)


#: Extra Python frames allowed while Jinja compiles: its compiler takes about 15 frames per nested
#: call, so an expression at `MAX_NESTING` needs more than a deep caller (an Airflow task) has left.
COMPILE_HEADROOM = 3000
_RECURSION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> jinja2.Template:
    jinja_source = translate(source)  # refuses anything nested deeper than MAX_NESTING
    with _RECURSION_LOCK:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + COMPILE_HEADROOM)
        try:
            return _ENVIRONMENT.from_string(jinja_source)
        finally:
            sys.setrecursionlimit(limit)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render one Pebble template string with Kestra's semantics; any failure is a `RenderError`."""
    if not needs_rendering(source):
        return source
    try:
        template = _compiled(source)
    except ExpressionError as exc:
        raise RenderError(str(exc)) from None
    except jinja2.TemplateError as exc:  # a generator bug: report it as a rendering failure
        raise RenderError(f"cannot compile the expression `{source}`: {exc}") from None
    budget = start_budget()
    try:
        return template.render(context)
    except RenderError as exc:
        raise RenderError(f"{exc} used in the expression `{source}`") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"forbidden operation in the expression `{source}`: {exc}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{exc} in the expression `{source}`") from None
    except RecursionError:
        raise RenderError(f"the expression `{source}` nests too deeply") from None
    except MemoryError:
        raise RenderError(f"the expression `{source}` ran out of memory") from None
    except Exception as exc:  # noqa: BLE001 - a task must see one error type, whatever a filter raised
        raise RenderError(f"{type(exc).__name__}: {exc} in the expression `{source}`") from None
    finally:
        end_budget(budget)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string leaf of a property value (strings, lists and maps)."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, dict):
        return {
            render(key, context) if isinstance(key, str) else key: render_value(item, context)
            for key, item in value.items()
        }
    return value


def evaluate(expression: str, context: Mapping[str, Any] | None = None) -> str:
    """What a task would see for `expression` with these variables (`yaml2dag eval`); raises `RenderError`.

    Unlike `render`, a compile-time problem is reported with its position in the expression.
    """
    if needs_rendering(expression):
        try:
            translate(expression)
        except ExpressionError as exc:
            raise RenderError(f"invalid expression: {exc}") from None
    return render(expression, context or {})
