"""Render Pebble templates: the translation cache, the sandboxed Jinja environment, `render` and `evaluate`."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from yaml2dag.errors import ExpressionError, RenderError
from yaml2dag.expressions.helpers import HELPERS
from yaml2dag.expressions.jinja import generate
from yaml2dag.expressions.library import FILTERS, FUNCTIONS, TESTS
from yaml2dag.expressions.parser import parse_template
from yaml2dag.expressions.values import to_text


class KestraEnvironment(SandboxedEnvironment):
    """Sandboxed Jinja environment that runs templates generated from Pebble.

    Jinja's own globals (`range`, `cycler`, `joiner`, `namespace`, `lipsum`, `dict`), filters and
    tests are removed: generated code only calls the `__k*` helpers, and flow authors can only
    write Pebble (names starting with `__` are refused by the parser).
    """

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
        self.globals.update({f"__kf_{name}": spec.function for name, spec in FILTERS.items()})
        self.globals.update({f"__kfn_{name}": spec.function for name, spec in FUNCTIONS.items()})
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
    except Exception as exc:  # noqa: BLE001 - a task must see one error type, whatever a filter raised
        raise RenderError(f"{type(exc).__name__}: {exc} in the expression `{source}`") from None


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
