"""Kestra's row files: Amazon Ion text, one value per line, read and written as Kestra's `FileSerde` does.

Python values map to Ion as Kestra's `IonModule` maps Java values:

| Python | Ion | Kestra (Java) |
|---|---|---|
| `None` | `null` (any typed null reads as `None`) | `null` |
| `bool`, `int`, `float` | `true`, `1`, `1.5e0` | Boolean, Integer/Long, Double |
| `Decimal` | `1.50` (Ion decimal) | BigDecimal |
| `str` | `"text"` (symbols read as `str`) | String |
| `bytes` | `{{base64}}` (clobs read as `bytes`) | byte[] |
| `date` | `2024-01-31` (timestamp, day precision) | LocalDate |
| aware `datetime` | `2024-01-31T10:00:00Z` (timestamp with offset) | Instant (UTC) / ZonedDateTime |
| naive `datetime` | `LocalDateTime::"2024-01-31T10:00:00"` | LocalDateTime |
| naive / aware `time` | `LocalTime::"10:00:00"` / `OffsetTime::"10:00:00+02:00"` | LocalTime / OffsetTime |
| `dict` / `list` | struct `{a:1}` / list `[1,2]` (s-expressions read as lists) | Map / List |

As in Kestra's `IonParser`, a UTC (or unknown-offset) timestamp at midnight reads as a `date`, and
`OffsetDateTime::` / `ZonedDateTime::` / `Instant::` strings read as aware datetimes.

Reading is streaming: lines Kestra writes (one value per line, the common Ion subset) go through a
small parser written for speed; anything else (comments, s-expressions, long strings, values
spread over lines, …) goes to the `amazon-ion` package, one value at a time.
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, BinaryIO, cast

from yaml2dag.serdes import SerdesError

try:  # the C encoder of the json module: a JSON string literal is a valid Ion string literal
    from json.encoder import c_encode_basestring as _quote  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - CPython always has it
    from json.encoder import py_encode_basestring as _quote
if _quote is None:  # pragma: no cover
    from json.encoder import py_encode_basestring as _quote

#: Rows buffered before one write to the target stream.
_WRITE_BATCH = 2000
#: Longest text of one value spread over several lines before the file is declared corrupt.
_MAX_PENDING_CHARS = 1 << 20
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
_KEYWORDS = frozenset({"null", "true", "false", "nan"})
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:T(?:(\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?(Z|[+-]\d\d:\d\d))?)?(?=[\s,\]}]|\Z)"
)
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d*)?([eEdD][+-]?\d+)?(?=[\s,\]}]|\Z)")
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_SYMBOL = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_QUOTED_SYMBOL = re.compile(r"'((?:[^'\\\n]|\\.)*)'")
_SPACE = re.compile(r"[ \t\r\n]*")
#: `_SPACE.match`, typed as it behaves: the pattern matches the empty string, so the match is never None.
_space_match = cast(Callable[[str, int], re.Match[str]], _SPACE.match)
#: A bare struct field name (after `{` or `,`): quoted, it makes a Kestra row line JSON. A match inside a
#: string literal can only make the JSON invalid (the inserted quote ends the string before a letter).
_BARE_FIELD = re.compile(r"(?<=[{,])([A-Za-z_$][\w$]*)(?=:(?!:))")
#: Annotations Kestra writes on strings holding java.time values → how to read them back.
_TYPED_STRINGS: dict[str, Callable[[str], Any]] = {
    "LocalDateTime": dt.datetime.fromisoformat,
    "LocalTime": dt.time.fromisoformat,
    "OffsetTime": dt.time.fromisoformat,
    "LocalDate": dt.date.fromisoformat,
    "OffsetDateTime": lambda text: dt.datetime.fromisoformat(text.split("[", 1)[0]),
    "ZonedDateTime": lambda text: dt.datetime.fromisoformat(text.split("[", 1)[0]),
    "Instant": dt.datetime.fromisoformat,
}
#: Ion keywords read as Python values.
_WORDS: dict[str, Any] = {"null": None, "true": True, "false": False, "nan": math.nan}


# --------------------------------------------------------------------------------------------- writing


_FIELD_NAMES: dict[Any, str] = {}


def _field_name(name: Any) -> str:
    """A struct field name as Ion text: bare when it is an identifier, else a string (cached: rows repeat them)."""
    known = _FIELD_NAMES.get(name)
    if known is not None:
        return known
    text = name if isinstance(name, str) else str(name)
    known = text if _IDENTIFIER.match(text) and text not in _KEYWORDS else _quote(text)
    if len(_FIELD_NAMES) < 10_000:
        _FIELD_NAMES[name] = known
    return known


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    text = repr(value)
    return text if "e" in text else text + "e0"


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        return _float(float(value))
    text = str(value)
    if "E" not in text and "." in text:
        return text
    sign, digits, exponent = value.as_tuple()
    return ("-" if sign else "") + "".join(map(str, digits)) + f"d{exponent}"


def _datetime(value: dt.datetime) -> str:
    offset = value.utcoffset()
    if offset is None:
        return f'LocalDateTime::"{value.isoformat()}"'
    if offset.seconds % 60 or offset.microseconds:
        value, offset = value.astimezone(dt.UTC), dt.timedelta(0)
    text = value.replace(tzinfo=None).isoformat()
    if not offset:
        return text + "Z"
    return text + value.isoformat()[-6:]


def _dump_dict(value: dict[Any, Any]) -> str:
    """A dict as an Ion struct (rows: cached field names, text and null values written inline)."""
    parts = []
    for key, item in value.items():
        name = _FIELD_NAMES.get(key) or _field_name(key)
        if item is None:
            parts.append(name + ":null")
        elif type(item) is str:
            parts.append(name + ":" + _quote(item))
        else:
            parts.append(name + ":" + dumps(item))
    return "{" + ",".join(parts) + "}"


def _dump_mapping(value: dict[Any, Any]) -> str:
    """A dict subclass as an Ion struct."""
    return "{" + ",".join(f"{_field_name(key)}:{dumps(item)}" for key, item in value.items()) + "}"


def _dump_sequence(value: list[Any] | tuple[Any, ...]) -> str:
    """A list or tuple as an Ion list."""
    return "[" + ",".join(dumps(item) for item in value) + "]"


def _dump_time(value: dt.time) -> str:
    """A time as Kestra writes a LocalTime / OffsetTime: an annotated string."""
    return f'{"LocalTime" if value.utcoffset() is None else "OffsetTime"}::"{value.isoformat()}"'


def _dump_bytes(value: bytes | bytearray | memoryview) -> str:
    """Bytes as an Ion blob."""
    return "{{" + base64.b64encode(bytes(value)).decode("ascii") + "}}"


def _dump_date(value: dt.date) -> str:
    """A date as an Ion timestamp of day precision."""
    return value.isoformat()


#: Ion text of a value by its exact type (the hot path: one dict lookup per value).
_DUMPERS: dict[type, Callable[[Any], str]] = {
    type(None): lambda value: "null",
    str: _quote,
    int: str,
    bool: lambda value: "true" if value else "false",
    float: _float,
    dict: _dump_dict,
    list: _dump_sequence,
    tuple: _dump_sequence,
    Decimal: _decimal,
    dt.datetime: _datetime,
    dt.date: _dump_date,
    dt.time: _dump_time,
    bytes: _dump_bytes,
    bytearray: _dump_bytes,
    memoryview: _dump_bytes,
}
#: Ion text of an instance of a subclass, by the first base class it is an instance of (order matters).
_SUBCLASS_DUMPERS: tuple[tuple[type | tuple[type, ...], Callable[[Any], str]], ...] = (
    (dict, _dump_mapping),
    ((list, tuple), _dump_sequence),
    (Decimal, _decimal),
    (dt.datetime, _datetime),
    (dt.date, _dump_date),
    (dt.time, _dump_time),
    ((bytes, bytearray, memoryview), _dump_bytes),
    (str, lambda value: _quote(str(value))),
    (int, lambda value: str(int(value))),
    (float, lambda value: _float(float(value))),
)


def dumps(value: Any) -> str:
    """One Python value as Ion text (no newline); raises `SerdesError` for a type Ion cannot hold."""
    dump = _DUMPERS.get(type(value))
    if dump is not None:
        return dump(value)
    for base, dump in _SUBCLASS_DUMPERS:
        if isinstance(value, base):
            return dump(value)
    raise SerdesError(f"cannot write a value of type {type(value).__name__} to Ion: {value!r}")


class IonWriter:
    """Writes values to a binary stream, one Ion value per line, in batches; `count` is the rows written."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._pending: list[str] = []
        self.count = 0

    def write(self, value: Any) -> None:
        """Append one value (a row)."""
        self._pending.append(dumps(value))
        self.count += 1
        if len(self._pending) >= _WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows to the stream."""
        if self._pending:
            self._pending.append("")
            try:
                data = "\n".join(self._pending).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise SerdesError(f"a text value holds a character UTF-8 cannot encode ({exc.reason})") from None
            self._target.write(data)
            self._pending = []


def write_rows(rows: Iterable[Any], target: BinaryIO) -> int:
    """Write every value of `rows` to `target` as Ion text, one per line; returns how many."""
    writer = IonWriter(target)
    for row in rows:
        writer.write(row)
    writer.flush()
    return writer.count


# --------------------------------------------------------------------------------------------- reading


class _Fallback(Exception):
    """The fast parser met Ion it does not handle: the line goes to amazon-ion."""


def _json_number(text: str) -> Decimal:
    """A JSON number with a fraction: an Ion decimal, unless it has an exponent (an Ion float)."""
    if "e" in text or "E" in text:
        raise _Fallback
    return Decimal(text)


_DECIMAL_JSON = json.JSONDecoder(parse_float=_json_number)


def _quoted_field(match: re.Match[str]) -> str:
    return '"' + match.group(1) + '"'


def _json_line(line: str) -> Any:
    """The value of a line of Ion that is JSON once its field names are quoted (Kestra's usual rows).

    Ion decimals read as `Decimal`; anything else (timestamps, floats, annotations, symbols,
    several values, comments) raises `_Fallback` or `ValueError`.
    """
    return _DECIMAL_JSON.decode(_BARE_FIELD.sub(_quoted_field, line))


def _timestamp(match: re.Match[str]) -> Any:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if hour is None:
        return dt.date(int(year), int(month), int(day))
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if offset == "Z" or offset == "-00:00":
        zone: dt.tzinfo = dt.UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        zone = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    value = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone)
    return _kestra_timestamp(value)


def _kestra_timestamp(value: dt.datetime) -> Any:
    """Kestra's reading of an Ion timestamp: UTC midnight is a LocalDate, UTC an Instant, else zoned."""
    if value.utcoffset() == dt.timedelta(0) and value.time() == dt.time(0):
        return value.date()
    return value


def _typed_string(annotation: str, text: str) -> Any:
    convert = _TYPED_STRINGS.get(annotation)
    if convert is None:
        return text
    try:
        return convert(text)
    except ValueError:
        raise SerdesError(f"`{annotation}::` value `{text}` is not a valid {annotation}") from None


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body
    try:
        return json.loads(f'"{body}"')
    except json.JSONDecodeError:
        raise _Fallback from None


class _Parser:
    """Recursive-descent reader of the Ion subset Kestra writes, over one line of text."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def values(self) -> list[Any]:
        out = []
        text = self.text
        self.pos = _space_match(text, 0).end()
        while self.pos < len(text):
            out.append(self.value())
            self.pos = _space_match(text, self.pos).end()
        return out

    def value(self) -> Any:
        """The value at `pos`, moving `pos` past it."""
        text, pos = self.text, self.pos
        char = text[pos]
        if char == "{":
            return self.blob() if text.startswith("{{", pos) else self.struct()
        if char == '"':
            return self.string()
        if char == "[":
            return self.sequence()
        if char.isdigit() or char == "-":
            return self.number(char)
        return self.word()

    def string(self) -> str:
        """A short string literal."""
        match = _STRING.match(self.text, self.pos)
        if match is None:
            raise _Fallback
        self.pos = match.end()
        return _unescape(match.group(1))

    def number(self, char: str) -> Any:
        """A timestamp, an int, a decimal or a float (`char` is the first character)."""
        text, pos = self.text, self.pos
        match = _TIMESTAMP.match(text, pos) if char != "-" else None
        if match is not None:
            self.pos = match.end()
            return _timestamp(match)
        match = _NUMBER.match(text, pos)
        if match is None:
            raise _Fallback
        self.pos = match.end()
        number = match.group(0)
        fraction, exponent = match.groups()
        if exponent is None:
            return Decimal(number) if fraction is not None else int(number)
        if exponent[0] in "eE":
            return float(number)
        return Decimal(number.replace("d", "e").replace("D", "e"))

    def word(self) -> Any:
        """A symbol: an annotation on the next value, a (typed) null, a bool, nan, +inf or a symbol as text."""
        text, pos = self.text, self.pos
        match = _SYMBOL.match(text, pos)
        if match is None:
            if text.startswith("+inf", pos):
                self.pos = pos + 4
                return math.inf
            raise _Fallback
        word = match.group(0)
        end = match.end()
        if text.startswith("::", end):
            self.pos = _space_match(text, end + 2).end()
            annotated = self.value()
            return _typed_string(word, annotated) if isinstance(annotated, str) else annotated
        if word == "null" and text.startswith(".", end):
            null_type = _SYMBOL.match(text, end + 1)
            self.pos = null_type.end() if null_type else end
            return None
        self.pos = end
        return _WORDS.get(word, word)

    def blob(self) -> bytes:
        end = self.text.find("}}", self.pos)
        if end < 0:
            raise _Fallback
        body = self.text[self.pos + 2 : end]
        if '"' in body or "'" in body:
            raise _Fallback
        self.pos = end + 2
        try:
            return base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            raise _Fallback from None

    def struct(self) -> dict[str, Any]:
        text = self.text
        out: dict[str, Any] = {}
        self.pos = _space_match(text, self.pos + 1).end()
        if text.startswith("}", self.pos):
            self.pos += 1
            return out
        while True:
            key = self.field_name()
            self.pos = _space_match(text, self.pos).end()
            if not text.startswith(":", self.pos) or text.startswith("::", self.pos):
                raise _Fallback
            self.pos = _space_match(text, self.pos + 1).end()
            if self.pos >= len(text):
                raise _Fallback
            out[key] = self.value()
            self.pos = _space_match(text, self.pos).end()
            if text.startswith(",", self.pos):
                self.pos = _space_match(text, self.pos + 1).end()
                if text.startswith("}", self.pos):
                    self.pos += 1
                    return out
                continue
            if text.startswith("}", self.pos):
                self.pos += 1
                return out
            raise _Fallback

    def field_name(self) -> str:
        text, pos = self.text, self.pos
        match = _SYMBOL.match(text, pos)
        if match is not None:
            self.pos = match.end()
            return match.group(0)
        match = _STRING.match(text, pos)
        if match is not None:
            self.pos = match.end()
            return _unescape(match.group(1))
        raise _Fallback

    def sequence(self) -> list[Any]:
        text = self.text
        out: list[Any] = []
        self.pos = _space_match(text, self.pos + 1).end()
        if text.startswith("]", self.pos):
            self.pos += 1
            return out
        while True:
            if self.pos >= len(text):
                raise _Fallback
            out.append(self.value())
            self.pos = _space_match(text, self.pos).end()
            if text.startswith(",", self.pos):
                self.pos = _space_match(text, self.pos + 1).end()
                if text.startswith("]", self.pos):
                    self.pos += 1
                    return out
                continue
            if text.startswith("]", self.pos):
                self.pos += 1
                return out
            raise _Fallback


def _from_amazon(value: Any) -> Any:
    """A value of amazon-ion's `simpleion` as plain Python, with Kestra's mapping."""
    from amazon.ion.core import IonType

    kind = value.ion_type
    if kind is IonType.NULL or getattr(value, "is_null", False) or type(value).__name__ == "IonPyNull":
        return None
    annotations = [getattr(token, "text", token) for token in getattr(value, "ion_annotations", ())]
    if kind is IonType.BOOL:
        return bool(value)
    if kind is IonType.INT:
        return int(value)
    if kind is IonType.FLOAT:
        return float(value)
    if kind is IonType.DECIMAL:
        return Decimal(value)
    if kind in (IonType.STRING, IonType.SYMBOL):
        text = str(getattr(value, "text", value)) if kind is IonType.SYMBOL else str(value)
        return _typed_string(annotations[0], text) if annotations else text
    if kind is IonType.TIMESTAMP:
        from amazon.ion.core import TimestampPrecision

        precision = getattr(value, "precision", None)
        if precision is not None and precision.value <= TimestampPrecision.DAY.value:
            return dt.date(value.year, value.month if precision.value > 0 else 1, value.day)
        stamp = dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond,
            value.tzinfo or dt.UTC,
        )  # fmt: skip
        return _kestra_timestamp(stamp)
    if kind in (IonType.BLOB, IonType.CLOB):
        return bytes(value)
    if kind is IonType.STRUCT:
        return {str(key): _from_amazon(item) for key, item in value.items()}
    return [_from_amazon(item) for item in value]


def _amazon_values(text: str) -> list[Any]:
    from amazon.ion import simpleion

    return [_from_amazon(value) for value in simpleion.loads(text, single_value=False)]


def read_values(source: BinaryIO) -> Iterator[Any]:
    """Every top-level value of an Ion text stream, in order, with Kestra's type mapping.

    Raises `SerdesError` naming the line of a value that is not valid Ion (or not UTF-8 text).
    Binary Ion (which Kestra never writes to storage) is refused.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line_number = 0
    pending: list[str] = []
    pending_start = 0
    pending_size = 0
    last_error: BaseException = SerdesError("the value is not complete")
    # Rows of one file look alike: stop trying the JSON reading when it fails on most lines.
    json_tries = json_failures = 0
    for raw in _lines(source):
        line_number += 1
        line = _decode_line(decoder, raw, line_number)
        if not pending:
            if json_failures < 16 or json_failures * 4 < json_tries:
                json_tries += 1
                try:
                    yield _json_line(line)
                    continue
                except (_Fallback, ValueError, RecursionError):
                    json_failures += 1
            try:
                yield from _Parser(line).values()
                continue
            except _Fallback:
                pass
            except (ValueError, IndexError) as exc:
                raise SerdesError(f"line {line_number}: not valid Ion: {exc}") from None
            if not line.strip():
                continue
            pending_start = line_number
        pending.append(line)
        pending_size += len(line)
        try:
            values = _amazon_values("".join(pending))
        except SerdesError as exc:
            raise SerdesError(f"line {pending_start}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - amazon-ion raises many types for bad text
            if pending_size > _MAX_PENDING_CHARS:
                raise SerdesError(f"line {pending_start}: not valid Ion ({_reason(exc)})") from None
            last_error = exc
            continue
        pending, pending_size = [], 0
        yield from values
    if pending:
        raise SerdesError(f"line {pending_start}: not valid Ion ({_reason(last_error)})")


def _decode_line(decoder: codecs.IncrementalDecoder, raw: bytes, line_number: int) -> str:
    """The text of one line (without the first line's BOM); `SerdesError` for bad UTF-8 or binary Ion."""
    try:
        line = decoder.decode(raw)
    except UnicodeDecodeError as exc:
        raise SerdesError(f"line {line_number}: not UTF-8 Ion text ({exc.reason} at byte {exc.start})") from None
    if line_number == 1:
        if line.startswith("\ufeff"):
            line = line[1:]
        if raw.startswith(b"\xe0\x01\x00\xea"):
            raise SerdesError("binary Ion is not supported: Kestra's row files are Ion text")
    return line


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _lines(source: BinaryIO) -> Iterator[bytes]:
    """Lines of a binary stream (newline kept), without loading it whole."""
    readline = getattr(source, "readline", None)
    if readline is not None:
        yield from iter(readline, b"")
        return
    rest = b""
    while chunk := source.read(1 << 16):
        rest += chunk
        *full, rest = rest.split(b"\n")
        for line in full:
            yield line + b"\n"
    if rest:
        yield rest


def loads(text: str) -> list[Any]:
    """Every value of an Ion text, with Kestra's mapping (for tests and small inputs)."""
    import io

    return list(read_values(io.BytesIO(text.encode("utf-8"))))
