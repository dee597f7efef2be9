"""JSON ↔ Ion, as Kestra's `JsonToIon` and `IonToJson` convert them (Python's `json`, streamed)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO

from yaml2dag.serdes import SerdesError
from yaml2dag.serdes.ion import IonWriter, read_values
from yaml2dag.serdes.textvalues import TextFormats, check_charset


@dataclass(frozen=True)
class JsonOptions:
    """Kestra's JsonToIon / IonToJson properties, rendered."""

    charset: str = "UTF-8"
    new_line: bool = True
    time_zone: str | None = None


def json_to_ion(source: BinaryIO, target: BinaryIO, options: JsonOptions) -> int:
    """Convert JSON to Ion rows; returns the row count.

    `new_line: true` (JSON Lines): one value per line, streamed; blank lines are skipped.
    `new_line: false`: one JSON document, read whole as Kestra does; a top-level array gives one
    row per item, any other value one row. Integers stay integers, other numbers are floats.
    """
    writer = IonWriter(target)
    text = io.TextIOWrapper(source, encoding=check_charset(options.charset), errors="strict", newline=None)
    line = 0
    try:
        if options.new_line:
            for line, raw in enumerate(text, 1):  # noqa: B007 - `line` locates a decoding error
                if raw.strip():
                    writer.write(_load(raw, line))
        else:
            document = _load(text.read(), 0)
            for row in document if isinstance(document, list) else [document]:
                writer.write(row)
    except UnicodeDecodeError as exc:
        raise SerdesError(
            f"the file is not valid {options.charset} text after line {line} ({exc.reason}); "
            "set `charset` to the file's encoding"
        ) from None
    finally:
        text.detach()
    writer.flush()
    return writer.count


def _load(text: str, line: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {line}, column {exc.colno}" if line else f"line {exc.lineno}, column {exc.colno}"
        raise SerdesError(f"{where}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise SerdesError(f"line {line}: JSON nested too deeply") from None


#: Types Python's C JSON encoder writes exactly as Jackson does.
_PLAIN = frozenset({str, int, bool, type(None)})
_DUMP_PLAIN = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


class _JsonEncoder:
    """Jackson's JSON for Kestra's row values: java.time values as ISO text, doubles as Java prints them."""

    def __init__(self, zone: dt.tzinfo | None) -> None:
        self._zone = zone

    def __call__(self, value: Any) -> str:
        if type(value) is dict and all(type(item) in _PLAIN for item in value.values()):
            return _DUMP_PLAIN(value)
        if value is None:
            return "null"
        kind = type(value)
        if kind is str:
            return json.dumps(value, ensure_ascii=False)
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return str(value)
        if kind is float:
            from yaml2dag.expressions.values import java_double

            text = java_double(value)
            return text if math.isfinite(value) else f'"{text}"'
        return self._other(value)

    def _other(self, value: Any) -> str:
        """JSON of a value that is not None, str, bool, int or float (nor a dict of those)."""
        if isinstance(value, dict):
            return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{self(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ",".join(self(item) for item in value) + "]"
        if isinstance(value, Decimal):
            return str(value) if value.is_finite() else f'"{value}"'
        if isinstance(value, dt.datetime):
            return f'"{self._datetime(value)}"'
        if isinstance(value, dt.date | dt.time):
            return f'"{value.isoformat()}"'
        if isinstance(value, bytes):
            return f'"{base64.b64encode(value).decode("ascii")}"'
        raise SerdesError(f"cannot write a value of type {type(value).__name__} to JSON")

    def _datetime(self, value: dt.datetime) -> str:
        offset = value.utcoffset()
        if offset is None:
            return value.isoformat()
        if offset == dt.timedelta(0):
            from yaml2dag.expressions.values import format_instant

            return format_instant(value)
        text = value.astimezone(self._zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


def ion_to_json(source: BinaryIO, target: BinaryIO, options: JsonOptions) -> int:
    """Convert Ion rows to JSON Lines (`new_line: true`) or one JSON array; returns the row count.

    The array is written as it is read, so memory stays bounded either way.
    """
    encode = _JsonEncoder(TextFormats(time_zone=options.time_zone).zone())
    out = io.TextIOWrapper(target, encoding=check_charset(options.charset), errors="strict", newline="")
    count = 0
    try:
        if options.new_line:
            batch: list[str] = []
            for row in read_values(source):
                count += 1
                batch.append(encode(row))
                if len(batch) >= 2000:
                    batch.append("")
                    out.write("\n".join(batch))
                    batch = []
            if batch:
                batch.append("")
                out.write("\n".join(batch))
        else:
            out.write("[")
            for row in read_values(source):
                out.write(("," if count else "") + encode(row))
                count += 1
            out.write("]")
        out.flush()
    except UnicodeEncodeError as exc:
        raise SerdesError(
            f"row {count}: `{exc.object[exc.start : exc.end]}` cannot be written in charset {options.charset}"
        ) from None
    finally:
        out.detach()
    return count
