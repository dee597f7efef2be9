"""The bounds every expression runs within, and the checks that enforce them.

A flow author controls expressions, so a short one must not be able to take the worker down:
every value an expression builds has a size cap, jq programs and regular expressions run in a
separate process with a time budget (see `isolation`), a whole rendering has a time budget,
and expressions nest at most `MAX_NESTING` levels (checked when the flow is compiled).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any

from yaml2dag.errors import RenderError

#: Longest string (in characters) an expression may build or print: 16 MiB.
MAX_TEXT = 16 * 1024 * 1024
#: Most items a list or map built by an expression may hold (1 Mi, as `range()` allows about 1,000,000).
MAX_ITEMS = 1024 * 1024
#: Deepest nesting of an expression (brackets, operators, filters, lookups); chains of the same
#: left-associative operator (`a or b or c`, `a ~ b ~ c`, `a + b - c`) count as one level.
#: Generated Jinja needs up to three nested calls per level, and Jinja's compiler about 15
#: Python frames per nested call: 24 levels stay well inside Python's default recursion limit.
MAX_NESTING = 24
#: Wall-clock budget of one jq program or one regular-expression operation, in seconds.
ISOLATED_SECONDS = 5.0
#: Wall-clock budget of one rendering (nested `render()` calls included), in seconds.
RENDER_SECONDS = 60.0

#: Loop items one rendering may iterate over in all (`{% for %}` bodies run at most this often).
MAX_LOOP_ITEMS = 10_000_000


class RenderBudget:
    """What one rendering (nested `render()` calls included) has left: time and loop iterations."""

    __slots__ = ("deadline", "loop_items")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + RENDER_SECONDS
        self.loop_items = 0


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("yaml2dag_render_budget", default=None)


def text_too_long(what: str, length: int) -> RenderError:
    """The error for a string that would exceed `MAX_TEXT`."""
    return RenderError(f"{what} would be {length:,} characters long; at most {MAX_TEXT:,} are allowed")


def check_text(text: str, what: str = "the result") -> str:
    """`text` itself, or a `RenderError` when it is longer than `MAX_TEXT`."""
    if len(text) > MAX_TEXT:
        raise text_too_long(what, len(text))
    return text


def check_value(value: Any, what: str = "the result") -> Any:
    """`value` itself, or a `RenderError` when it is a string, list or map over the caps (checked in O(1))."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise text_too_long(what, len(value))
    elif isinstance(value, list | tuple | Mapping) and len(value) > MAX_ITEMS:
        raise RenderError(f"{what} would hold {len(value):,} items; at most {MAX_ITEMS:,} are allowed")
    return value


class OutputBudget:
    """Counts characters as a value is serialised and fails once `MAX_TEXT` is passed.

    Serialising a value shared many times over (`[l, l, l]` of a big `l`, a YAML alias bomb) is
    stopped after at most `MAX_TEXT` characters of work, whatever size the whole would have.
    """

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = 0

    def spend(self, characters: int) -> None:
        """Count `characters` more; `RenderError` when the total passes `MAX_TEXT`."""
        self.used += characters
        if self.used > MAX_TEXT:
            raise RenderError(f"the value is too large to print (more than {MAX_TEXT:,} characters)")


def start_budget() -> Token[RenderBudget | None] | None:
    """Start a rendering's budget unless an enclosing rendering did; pass the result to `end_budget`."""
    if _BUDGET.get() is not None:
        return None
    return _BUDGET.set(RenderBudget())


def end_budget(token: Token[RenderBudget | None] | None) -> None:
    """End the budget started by `start_budget` (nothing when it was an enclosing rendering's)."""
    if token is not None:
        _BUDGET.reset(token)


def check_deadline() -> None:
    """`RenderError` once the current rendering has used up `RENDER_SECONDS`."""
    budget = _BUDGET.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise RenderError(f"rendering took more than {RENDER_SECONDS:g} seconds")


def spend_loop_items(count: int) -> None:
    """Count the items of a loop about to run; `RenderError` past `MAX_LOOP_ITEMS` or the deadline."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.loop_items += count
    if budget.loop_items > MAX_LOOP_ITEMS:
        raise RenderError(f"loops would run more than {MAX_LOOP_ITEMS:,} times in one rendering")
    if time.monotonic() > budget.deadline:
        raise RenderError(f"rendering took more than {RENDER_SECONDS:g} seconds")
