"""Kestra's filters, functions and tests: one table each, name → Python implementation.

The generator refuses any name that is not in these tables, so an unsupported filter is a
compile error rather than a surprise at run time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import unicodedata
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from yaml2dag.errors import RenderError
from yaml2dag.expressions.values import MISSING, is_number, to_json, to_text


def _text(value: Any) -> str:
    return to_text(value)


def _default(value: Any, fallback: Any = None) -> Any:
    """Pebble `default`: replaces missing, null, blank strings and empty collections."""
    if value is MISSING or value is None:
        return fallback
    if isinstance(value, str) and not value.strip():
        return fallback
    if isinstance(value, Mapping | list | tuple) and len(value) == 0:
        return fallback
    return value


def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | Mapping | list | tuple):
        return len(value)
    raise RenderError(f"`length` needs a string, list or map, got {type(value).__name__}")


def _first(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        return value[0] if value else None
    raise RenderError("`first` needs a string or a list")


def _last(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        return value[-1] if value else None
    raise RenderError("`last` needs a string or a list")


def _join(value: Any, separator: str = "") -> str:
    return separator.join(_text(item) for item in value)


def _keys(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, list | tuple):
        return list(range(len(value)))
    raise RenderError("`keys` needs a map or a list")


def _values(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    raise RenderError("`values` needs a map")


def _replace(value: Any, replacements: Any, regexp: bool = False) -> str:
    if not isinstance(replacements, Mapping):
        raise RenderError("`replace` takes a map of {old: new} pairs")
    text = _text(value)
    for old, new in replacements.items():
        text = re.sub(str(old), _text(new), text) if regexp else text.replace(str(old), _text(new))
    return text


def _split(value: Any, delimiter: str, limit: int | None = None) -> list[str]:
    parts = re.split(delimiter, _text(value), maxsplit=max(limit - 1, 0) if limit else 0)
    if not limit:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


def _slugify(value: Any) -> str:
    text = unicodedata.normalize("NFD", _text(value))
    text = re.sub(r"\s+", "-", text)
    text = re.sub(r"[^\w-]", "", text.encode("ascii", "ignore").decode()).replace("_", "-")
    return re.sub(r"-{2,}", "-", text).strip("-").lower()


def _number(value: Any, kind: str | None = None) -> Any:
    if is_number(value):
        return value
    text = _text(value).strip()
    try:
        if kind in ("INT", "LONG", "BIGINTEGER") or (kind is None and re.fullmatch(r"[+-]?\d+", text)):
            return int(text)
        return float(text)
    except ValueError:
        raise RenderError(f"`{text}` is not a number") from None


def _abbreviate(value: Any, length: int) -> str:
    text = _text(value)
    return text if len(text) <= length else text[: max(length - 3, 0)] + "..."


def _sort(value: Any) -> list[Any]:
    return sorted(value)


def _from_json(value: Any) -> Any:
    if value is None:
        return None
    try:
        return json.loads(_text(value))
    except json.JSONDecodeError as exc:
        raise RenderError(f"invalid JSON: {exc}") from None


def _random_int(lower: int, upper: int) -> int:
    return random.randrange(int(lower), int(upper))


def _range(start: int, end: int, step: int = 1) -> list[int]:
    if step == 0:
        raise RenderError("`range` step cannot be 0")
    return list(range(start, end + (1 if step > 0 else -1), step))


def _escape_char(value: Any, kind: str) -> str:
    text = _text(value)
    if kind == "single":
        return text.replace("\\", "\\\\").replace("'", "\\'")
    if kind == "double":
        return text.replace("\\", "\\\\").replace('"', '\\"')
    if kind == "shell":
        return text.replace("'", "'\\''")
    raise RenderError("`escapeChar` takes 'single', 'double' or 'shell'")


def _distinct(value: Any) -> list[Any]:
    result: list[Any] = []
    for item in value:
        if item not in result:
            result.append(item)
    return result


def _flatten(value: Any) -> list[Any]:
    result: list[Any] = []
    for item in value:
        result.extend(item if isinstance(item, list | tuple) else [item])
    return result


FILTERS: dict[str, Callable[..., Any]] = {
    "abbreviate": _abbreviate,
    "abs": lambda value: abs(value),
    "base64decode": lambda value: base64.b64decode(_text(value)).decode(),
    "base64encode": lambda value: base64.b64encode(_text(value).encode()).decode(),
    "capitalize": lambda value: _text(value)[:1].upper() + _text(value)[1:],
    "default": _default,
    "distinct": _distinct,
    "endsWith": lambda value, suffix: _text(value).endswith(_text(suffix)),
    "escapeChar": _escape_char,
    "first": _first,
    "flatten": _flatten,
    "join": _join,
    "json": lambda value: "null" if value is None else to_json(value),
    "keys": _keys,
    "last": _last,
    "length": _length,
    "lower": lambda value: _text(value).lower(),
    "md5": lambda value: hashlib.md5(_text(value).encode()).hexdigest(),
    "number": _number,
    "replace": _replace,
    "reverse": lambda value: value[::-1],
    "rsort": lambda value: sorted(value, reverse=True),
    "sha1": lambda value: hashlib.sha1(_text(value).encode()).hexdigest(),
    "sha256": lambda value: hashlib.sha256(_text(value).encode()).hexdigest(),
    "sha512": lambda value: hashlib.sha512(_text(value).encode()).hexdigest(),
    "slugify": _slugify,
    "sort": _sort,
    "split": _split,
    "startsWith": lambda value, prefix: _text(value).startswith(_text(prefix)),
    "string": _text,
    "substringAfter": lambda value, sep: _text(value).partition(sep)[2] if sep in _text(value) else "",
    "substringAfterLast": lambda value, sep: _text(value).rpartition(sep)[2] if sep in _text(value) else "",
    "substringBefore": lambda value, sep: _text(value).partition(sep)[0],
    "substringBeforeLast": lambda value, sep: _text(value).rpartition(sep)[0] if sep in _text(value) else _text(value),
    "title": lambda value: _text(value).title(),
    "toJson": lambda value: "null" if value is None else to_json(value),
    "trim": lambda value: _text(value).strip(),
    "upper": lambda value: _text(value).upper(),
    "urldecode": lambda value: urllib.parse.unquote_plus(_text(value)),
    "urlencode": lambda value: urllib.parse.quote_plus(_text(value)),
    "values": _values,
}

#: Filters whose input may be missing without an error.
SAFE_FILTERS = frozenset({"default"})

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "fromJson": _from_json,
    "json": _from_json,
    "max": lambda *values: max(values),
    "min": lambda *values: min(values),
    "randomInt": _random_int,
    "range": _range,
    "uuid": lambda: str(uuid.uuid4()),
}


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping | list | tuple):
        return len(value) == 0
    return False


def _is_json(value: Any) -> bool:
    try:
        json.loads(_text(value))
    except (json.JSONDecodeError, TypeError):
        return False
    return True


TESTS: dict[str, Callable[..., bool]] = {
    "defined": lambda value: value is not MISSING and value is not None,
    "empty": _empty,
    "even": lambda value: value % 2 == 0,
    "iterable": lambda value: isinstance(value, list | tuple | Mapping),
    "json": _is_json,
    "map": lambda value: isinstance(value, Mapping),
    "null": lambda value: value is None,
    "odd": lambda value: value % 2 == 1,
}
