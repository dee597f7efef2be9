"""Kestra's row files: Amazon Ion text, one value per line (read and written as streams).

Kestra's storage tasks (`FilterItems`, `DeduplicateItems`, `Split` by rows, …) and serdes tasks
exchange rows as `.ion` files. This module reads and writes them with the `amazon-ion` package,
one row at a time, and turns Ion values into plain Python values (Ion null → None, decimal →
int or float, timestamp → `datetime`, symbols → str) so that expressions and XCom can use them.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, BinaryIO


class IonError(ValueError):
    """An Ion text that cannot be parsed, or a value that cannot be written as Ion."""


def to_plain(value: Any) -> Any:
    """A plain Python value (dict, list, str, int, float, bool, None, datetime) of an Ion value."""
    from amazon.ion.simple_types import IonPyNull

    if value is None or isinstance(value, IonPyNull):
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent  # a letter for NaN and infinities
        whole = isinstance(exponent, int) and exponent >= 0 and value == value.to_integral_value()
        return int(value) if whole else float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dt.datetime):
        return dt.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
        )
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return str(value)
    return value


def parse_values(text: str) -> list[Any]:
    """Every top-level value of an Ion text, as plain Python values."""
    from amazon.ion import simpleion

    try:
        return [to_plain(value) for value in simpleion.loads(text, single_value=False)]
    except Exception as exc:  # noqa: BLE001 - the Ion parser raises many types
        raise IonError(str(exc) or type(exc).__name__) from None


def read_rows(stream: BinaryIO) -> Iterator[Any]:
    """The rows of an Ion row file, one at a time (a value may span lines)."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    pending = ""
    line_number = 0
    for line in text:
        line_number += 1
        pending += line
        if not pending.strip():
            pending = ""
            continue
        try:
            values = parse_values(pending)
        except IonError as exc:
            if len(pending) > 16 * 1024 * 1024:
                raise IonError(f"line {line_number}: {exc}") from None
            continue  # an incomplete value: read the next line too
        pending = ""
        yield from values
    if pending.strip():
        try:
            yield from parse_values(pending)
        except IonError as exc:
            raise IonError(f"line {line_number}: {exc}") from None
    text.detach()


def dumps_row(value: Any) -> str:
    """One row as a line of Ion text (no version marker, no newline)."""
    from amazon.ion import simpleion

    try:
        return simpleion.dumps(_ion_ready(value), binary=False, omit_version_marker=True)
    except Exception as exc:  # noqa: BLE001 - the Ion writer raises many types
        raise IonError(f"cannot write {type(value).__name__} as Ion: {exc}") from None


def write_row(stream: BinaryIO, value: Any) -> None:
    """Append one row (and a newline) to an Ion row file."""
    stream.write(dumps_row(value).encode("utf-8") + b"\n")


def _ion_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _ion_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_ion_ready(item) for item in value]
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value
