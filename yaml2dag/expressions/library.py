"""The tables of Kestra filters, functions and tests that yaml2dag supports, and those it refuses.

Each entry names the Pebble arguments in order, so named arguments (`date(timeZone='UTC')`) are
bound to positions at compile time, and a wrong or missing argument is a compile error. The
generator refuses any name that is not in these tables, so an unsupported filter never reaches
a running task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from yaml2dag.expressions.dates import DATE_FILTERS
from yaml2dag.expressions.files import FILE_FILTERS
from yaml2dag.expressions.functions import FUNCTIONS as _FUNCTIONS
from yaml2dag.expressions.functions import UNSUPPORTED_FUNCTIONS
from yaml2dag.expressions.predicates import TESTS
from yaml2dag.expressions.sequences import COLLECTION_FILTERS
from yaml2dag.expressions.serialization import DATA_FILTERS
from yaml2dag.expressions.strings import STRING_FILTERS


@dataclass(frozen=True)
class Spec:
    """A filter or function: its implementation, Pebble argument names (None: any positional), required count."""

    function: Callable[..., Any]
    params: tuple[str, ...] | None
    required: int = 0


def _specs(*tables: Mapping[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]]) -> dict[str, Spec]:
    return {name: Spec(*entry) for table in tables for name, entry in table.items()}


FILTERS: dict[str, Spec] = _specs(STRING_FILTERS, COLLECTION_FILTERS, DATA_FILTERS, DATE_FILTERS, FILE_FILTERS)
FUNCTIONS: dict[str, Spec] = _specs(_FUNCTIONS)

#: Filters whose input may be missing without an error (Pebble special-cases `default`).
SAFE_FILTERS = frozenset({"default"})

UNSUPPORTED_FILTERS = {
    "escape": "Kestra removes the `escape` filter (there is no auto-escaping)",
    "raw": "Kestra removes the `raw` filter; use `{% raw %}...{% endraw %}`",
    "numberformat": "Kestra renamed it `numberFormat`",
    "i18n": "Kestra removes the `i18n` filter",
}

__all__ = ["FILTERS", "FUNCTIONS", "SAFE_FILTERS", "TESTS", "UNSUPPORTED_FILTERS", "UNSUPPORTED_FUNCTIONS", "Spec"]
