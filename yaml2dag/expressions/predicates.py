"""Pebble's and Kestra's tests (`x is defined`, `is null`, `is empty`, `is even`, `is json`, ...)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions.sequences import is_empty
from yaml2dag.expressions.values import MISSING, type_name


def is_defined(value: Any) -> bool:
    """`defined`: Pebble's is "not null", with a missing value counted as null (so null is not defined)."""
    return value is not None and value is not MISSING


def _parity(even: bool) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        if value is None:
            raise RenderError(f'Can not pass null value to "{"even" if even else "odd"}" test.')
        if not isinstance(value, int) or isinstance(value, bool):
            raise RenderError(f"the `{'even' if even else 'odd'}` test needs an integer, got {type_name(value)}")
        return (value % 2 == 0) == even

    test.__doc__ = "An even integer." if even else "An odd integer."
    return test


def is_json(value: Any) -> bool:
    """Kestra `json`: a string that parses as JSON (Jackson also accepts a blank string)."""
    if not isinstance(value, str):
        raise RenderError(f"the `json` test needs a string, got {type_name(value)}")
    if not value.strip():
        return True
    try:
        json.loads(value)
    except json.JSONDecodeError:
        return False
    return True


#: name → test function (the value comes first; tests take no further arguments)
TESTS: dict[str, Callable[..., bool]] = {
    "defined": is_defined,
    "empty": is_empty,
    "even": _parity(even=True),
    "iterable": lambda value: isinstance(value, list | tuple),
    "json": is_json,
    "map": lambda value: isinstance(value, Mapping),
    "null": lambda value: value is None,
    "odd": _parity(even=False),
}
