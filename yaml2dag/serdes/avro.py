"""Avro ↔ Ion, as Kestra's `IonToAvro` and `AvroToIon` convert them (`fastavro`, streamed).

Rows are converted to the Avro `schema` the way Kestra's `AvroConverter` does: text is parsed
into numbers, booleans (`trueValues` / `falseValues`), nulls (`nullValues`), dates, times and
timestamps (Java patterns `dateFormat`, `timeFormat`, `datetimeFormat`) and decimals
(`decimalSeparator`). Without a `schema`, one is inferred from the first `numberOfRowsToScan`
rows (every field nullable). The same conversion feeds `IonToParquet`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from yaml2dag.serdes import SerdesError
from yaml2dag.serdes.ion import IonWriter, read_values
from yaml2dag.serdes.javatime import Parsed, parse
from yaml2dag.serdes.textvalues import TextFormats

#: Schema attribute naming the row key of a field whose name had to be changed to be a valid Avro name.
SOURCE_KEY = "sourceKey"
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT_RANGE = (-(1 << 31), (1 << 31) - 1)
_LONG_RANGE = (-(1 << 63), (1 << 63) - 1)
Schema = dict[str, Any] | list[Any] | str


def _no_warning(message: str) -> None:
    """Default warning sink: drop the message."""


@dataclass(frozen=True)
class AvroOptions:
    """Kestra's `AbstractAvroConverter` properties, rendered."""

    schema: str | None = None
    number_of_rows_to_scan: int = 100
    true_values: tuple[str, ...] = ("t", "true", "enabled", "1", "on", "yes")
    false_values: tuple[str, ...] = ("f", "false", "disabled", "0", "off", "no", "")
    null_values: tuple[str, ...] = (
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "1.#IND", "1.#QNAN", "NA", "n/a", "nan", "null",
    )  # fmt: skip
    date_format: str = "yyyy-MM-dd[XXX]"
    time_format: str = "HH:mm[:ss][.SSSSSS][XXX]"
    datetime_format: str = "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]"
    decimal_separator: str = "."
    strict_schema: bool = False
    infer_all_fields: bool = False
    time_zone: str | None = None
    on_bad_lines: str = "ERROR"
    warn: Callable[[str], None] = field(default=_no_warning, compare=False)


class _BadValue(Exception):
    """A value that does not fit its schema type (message: what and where)."""


class RowConverter:
    """Converts Ion rows to Avro datums of one record schema."""

    def __init__(self, schema: dict[str, Any], options: AvroOptions) -> None:
        self.schema = schema
        self.options = options
        self._zone = TextFormats(time_zone=options.time_zone).zone() or dt.datetime.now().astimezone().tzinfo
        self._true = {value.lower() for value in options.true_values}
        self._false = {value.lower() for value in options.false_values}
        self._nulls = set(options.null_values)
        self._text: Callable[[Any], str | None] | None = None
        self._named: dict[str, Schema] = {}
        _collect_names(schema, self._named)

        self._compiling: set[str] = set()
        self._row = self.compile(schema, "")

    def row(self, value: Any) -> dict[str, Any]:
        """One row as a datum of the record schema; raises `_BadValue`."""
        return self._row(value)

    def compile(self, schema: Schema, path: str) -> Callable[[Any], Any]:
        """A converter for `schema` at `path`, built once: the per-row work is only the conversions."""
        if isinstance(schema, str) and schema in self._named:
            if schema in self._compiling:  # a recursive type: resolved at run time
                return lambda value: self.convert(schema, value, path)
            self._compiling.add(schema)
            try:
                return self.compile(self._named[schema], path)
            finally:
                self._compiling.discard(schema)
        if isinstance(schema, list):
            return self._compile_union(schema, path)
        if isinstance(schema, dict):
            kind = schema["type"]
            if isinstance(kind, dict | list):
                return self.compile(kind, path)
            if kind == "record":
                return self._compile_record(schema, path)
            if kind in ("array", "map"):
                inner = self.compile(schema["items" if kind == "array" else "values"], f"{path}[]")
                return self._compile_container(kind, inner, path)
            if schema.get("logicalType") in _LOGICAL_TYPES:
                logical = schema["logicalType"]
                return lambda value: self._logical(schema, logical, value, path)
        kind = schema if isinstance(schema, str) else schema["type"]
        method = getattr(self, f"_{kind}", None)
        if method is None or kind in ("union", "logical", "record"):
            raise SerdesError(f"field `{path or 'row'}`: Avro type `{kind}` is not supported by yaml2dag yet")
        if kind == "string":
            return lambda value: value if type(value) is str else method(schema, value, path)
        return lambda value: method(schema, value, path)

    def _compile_union(self, branches: list[Any], path: str) -> Callable[[Any], Any]:
        nullable = "null" in branches
        converters = [self.compile(branch, path) for branch in branches if branch != "null"]
        nulls = self._nulls
        schema_text = branches

        def union(value: Any) -> Any:
            if nullable and (value is None or (type(value) is str and value in nulls)):
                return None
            if value is None:
                raise _BadValue(f"field `{path or 'row'}`: null is not allowed (the schema is not nullable)")
            errors = []
            for convert in converters:
                try:
                    return convert(value)
                except _BadValue as exc:
                    errors.append(str(exc))
            if len(errors) == 1:
                raise _BadValue(errors[0])
            raise _BadValue(f"field `{path}`: {value!r} fits no type of {schema_text}")

        return union

    def _compile_container(self, kind: str, inner: Callable[[Any], Any], path: str) -> Callable[[Any], Any]:
        if kind == "array":

            def array(value: Any) -> list[Any]:
                if not isinstance(value, list):
                    raise self._fail(value, "array", path)
                return [inner(item) for item in value]

            return array

        def mapping(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise self._fail(value, "map", path)
            return {str(key): inner(item) for key, item in value.items()}

        return mapping

    def _compile_record(self, schema: dict[str, Any], path: str) -> Callable[[Any], Any]:
        fields = []
        for item in schema["fields"]:
            inner_path = f"{path}.{item['name']}" if path else item["name"]
            fields.append(
                (item["name"], item.get(SOURCE_KEY, item["name"]), self.compile(item["type"], inner_path),
                 "default" in item, item.get("default"))
            )  # fmt: skip
        keys = [key for _, key, *_ in fields]
        known = set(keys)
        strict = self.options.strict_schema

        def record(value: Any) -> dict[str, Any]:
            if isinstance(value, list):
                if strict and len(value) > len(fields):
                    raise _BadValue(f"{path or 'row'}: {len(value)} values for {len(fields)} schema fields")
                value = dict(zip(keys, value, strict=False))
            elif not isinstance(value, dict):
                raise self._fail(value, "record", path)
            if strict and not known.issuperset(value):
                extra = [key for key in value if key not in known]
                raise _BadValue(f"{path or 'row'}: fields {extra} are not in the schema (strictSchema: true)")
            out = {}
            for name, key, convert, has_default, default in fields:
                if key in value:
                    out[name] = convert(value[key])
                elif has_default:
                    out[name] = default
                else:
                    out[name] = convert(None)
            return out

        return record

    # ------------------------------------------------------------------ per type
    def convert(self, schema: Schema, value: Any, path: str) -> Any:
        """`value` as a datum of `schema`."""
        if isinstance(schema, str):
            schema = self._named.get(schema, schema)
        if isinstance(schema, list):
            return self._union(schema, value, path)
        if isinstance(schema, str):
            kind, logical = schema, None
        else:
            kind, logical = schema["type"], schema.get("logicalType")
            if isinstance(kind, dict | list):
                return self.convert(kind, value, path)
        if logical is not None:
            converted = self._logical(schema, logical, value, path)  # type: ignore[arg-type]
            if converted is not _NOT_LOGICAL:
                return converted
        method = getattr(self, f"_{kind}", None)
        if method is None:
            raise _BadValue(f"{path or 'row'}: Avro type `{kind}` is not supported by yaml2dag yet")
        return method(schema, value, path)

    def _fail(self, value: Any, kind: str, path: str) -> _BadValue:
        return _BadValue(f"field `{path or 'row'}`: cannot convert {value!r} to {kind}")

    def _union(self, branches: list[Any], value: Any, path: str) -> Any:
        nullable = "null" in branches
        if nullable and (value is None or (isinstance(value, str) and value in self._nulls)):
            return None
        errors = []
        for branch in branches:
            if branch == "null":
                continue
            try:
                return self.convert(branch, value, path)
            except _BadValue as exc:
                errors.append(str(exc))
        if value is None:
            raise _BadValue(f"field `{path or 'row'}`: null is not allowed (the schema is not nullable)")
        raise _BadValue(errors[0] if len(errors) == 1 else f"field `{path}`: {value!r} fits no type of {branches}")

    def _null(self, schema: Schema, value: Any, path: str) -> None:
        if value is None or (isinstance(value, str) and value in self._nulls):
            return None
        raise self._fail(value, "null", path)

    def _boolean(self, schema: Schema, value: Any, path: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in self._true:
                return True
            if lowered in self._false:
                return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise self._fail(value, "boolean", path)

    def _integer(self, value: Any, path: str, kind: str, bounds: tuple[int, int]) -> int:
        if value is None:
            raise _BadValue(f"field `{path or 'row'}`: null is not allowed (the schema is not nullable)")
        try:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                number = value
            elif isinstance(value, float | Decimal):
                if value != int(value):
                    raise ValueError
                number = int(value)
            elif isinstance(value, str):
                number = int(value.strip())
            else:
                raise ValueError
        except (ValueError, OverflowError):
            raise self._fail(value, kind, path) from None
        if not bounds[0] <= number <= bounds[1]:
            raise _BadValue(f"field `{path}`: {number} is out of range for {kind}")
        return number

    def _int(self, schema: Schema, value: Any, path: str) -> int:
        return self._integer(value, path, "int", _INT_RANGE)

    def _long(self, schema: Schema, value: Any, path: str) -> int:
        return self._integer(value, path, "long", _LONG_RANGE)

    def _number(self, value: Any, path: str, kind: str) -> float:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            text = value.strip()
            if self.options.decimal_separator != ".":
                text = text.replace(self.options.decimal_separator, ".")
            try:
                return float(text)
            except ValueError:
                pass
        raise self._fail(value, kind, path)

    def _float(self, schema: Schema, value: Any, path: str) -> float:
        return self._number(value, path, "float")

    def _double(self, schema: Schema, value: Any, path: str) -> float:
        return self._number(value, path, "double")

    def _string(self, schema: Schema, value: Any, path: str) -> str:
        if isinstance(value, str):
            return value
        if value is None or isinstance(value, dict | list | bytes):
            raise self._fail(value, "string", path)
        if self._text is None:
            from yaml2dag.serdes.textvalues import TextConverter

            self._text = TextConverter(TextFormats(time_zone=self.options.time_zone))
        text = self._text(value)
        return "" if text is None else text

    def _bytes(self, schema: Schema, value: Any, path: str) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        raise self._fail(value, "bytes", path)

    def _fixed(self, schema: dict[str, Any], value: Any, path: str) -> bytes:
        data = self._bytes(schema, value, path)
        if len(data) != schema["size"]:
            raise _BadValue(f"field `{path}`: fixed size {schema['size']} expected, got {len(data)} bytes")
        return data

    def _enum(self, schema: dict[str, Any], value: Any, path: str) -> str:
        if isinstance(value, str) and value in schema["symbols"]:
            return value
        raise _BadValue(f"field `{path}`: {value!r} is not one of the enum symbols {schema['symbols']}")

    def _array(self, schema: dict[str, Any], value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self._fail(value, "array", path)
        return [self.convert(schema["items"], item, f"{path}[{index}]") for index, item in enumerate(value)]

    def _map(self, schema: dict[str, Any], value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self._fail(value, "map", path)
        return {str(key): self.convert(schema["values"], item, f"{path}.{key}") for key, item in value.items()}

    def _record(self, schema: dict[str, Any], value: Any, path: str) -> dict[str, Any]:
        fields = schema["fields"]
        if isinstance(value, list):
            if self.options.strict_schema and len(value) > len(fields):
                raise _BadValue(f"{path or 'row'}: {len(value)} values for {len(fields)} schema fields")
            value = {item.get(SOURCE_KEY, item["name"]): v for item, v in zip(fields, value, strict=False)}
        if not isinstance(value, dict):
            raise self._fail(value, "record", path)
        if self.options.strict_schema:
            known = {item.get(SOURCE_KEY, item["name"]) for item in fields}
            extra = [key for key in value if key not in known]
            if extra:
                raise _BadValue(f"{path or 'row'}: fields {extra} are not in the schema (strictSchema: true)")
        out = {}
        for item in fields:
            key = item.get(SOURCE_KEY, item["name"])
            inner = f"{path}.{item['name']}" if path else item["name"]
            if key in value:
                out[item["name"]] = self.convert(item["type"], value[key], inner)
            elif "default" in item:
                out[item["name"]] = item["default"]
            else:
                out[item["name"]] = self.convert(item["type"], None, inner)
        return out

    # ------------------------------------------------------------------ logical types
    def _parsed(self, pattern: str, value: str, path: str, kind: str) -> Parsed:
        found = parse(pattern, value)
        if found is None:
            raise _BadValue(f"field `{path}`: `{value}` does not match the {kind} format `{pattern}`")
        return found

    def _logical(self, schema: dict[str, Any], logical: str, value: Any, path: str) -> Any:
        """`value` converted for the Avro logical type `logical`, or `_NOT_LOGICAL` for an unknown one."""
        convert = _LOGICAL_CONVERTERS.get(logical)
        if convert is None:
            return _NOT_LOGICAL
        return convert(self, schema, logical, value, path)

    def _logical_date(self, schema: dict[str, Any], logical: str, value: Any, path: str) -> Any:
        """A `date` logical value: a date, a text in the date format, or a number of days."""
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            found = self._parsed(self.options.date_format, value, path, "date")
            if found.date is not None:
                return found.date
        return self._integer(value, path, "date (days)", _INT_RANGE)

    def _logical_time(self, schema: dict[str, Any], logical: str, value: Any, path: str) -> dt.time:
        """A `time-millis` / `time-micros` value: a naive time, from a time, a datetime or a text."""
        if isinstance(value, dt.time):
            return value.replace(tzinfo=None)
        if isinstance(value, dt.datetime):
            return value.time()
        if isinstance(value, str):
            found = self._parsed(self.options.time_format, value, path, "time")
            if found.time is not None:
                return found.time
        raise self._fail(value, logical, path)

    def _logical_timestamp(self, schema: dict[str, Any], logical: str, value: Any, path: str) -> dt.datetime:
        """A `(local-)timestamp-millis/micros` value: naive in the zone for `local-*`, else aware."""
        if isinstance(value, str):
            found = self._parsed(self.options.datetime_format, value, path, "datetime")
            if found.date is None:
                raise self._fail(value, logical, path)
            value = dt.datetime.combine(found.date, found.time or dt.time(0), found.offset)
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(0))
        if not isinstance(value, dt.datetime):
            raise self._fail(value, logical, path)
        if logical.startswith("local"):
            return (
                value.replace(tzinfo=None)
                if value.tzinfo is None
                else value.astimezone(self._zone).replace(tzinfo=None)
            )
        return value if value.tzinfo is not None else value.replace(tzinfo=self._zone)

    def _logical_decimal(self, schema: dict[str, Any], logical: str, value: Any, path: str) -> Decimal:
        """A `decimal` value at the schema's scale, from a text (with the decimal separator) or a number."""
        scale = int(schema.get("scale", 0))
        try:
            if isinstance(value, str):
                number = Decimal(value.strip().replace(self.options.decimal_separator, "."))
            elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
            else:
                raise InvalidOperation
            return number.quantize(Decimal(1).scaleb(-scale))
        except InvalidOperation:
            raise self._fail(value, f"decimal({schema.get('precision')}, {scale})", path) from None

    def _logical_uuid(self, schema: dict[str, Any], logical: str, value: Any, path: str) -> str:
        """A `uuid` value: its text."""
        return str(value)


#: Avro logical type → the `RowConverter` method converting a value to it.
_LOGICAL_CONVERTERS: dict[str, Callable[[RowConverter, dict[str, Any], str, Any, str], Any]] = {
    "date": RowConverter._logical_date,
    "time-millis": RowConverter._logical_time,
    "time-micros": RowConverter._logical_time,
    "timestamp-millis": RowConverter._logical_timestamp,
    "timestamp-micros": RowConverter._logical_timestamp,
    "local-timestamp-millis": RowConverter._logical_timestamp,
    "local-timestamp-micros": RowConverter._logical_timestamp,
    "decimal": RowConverter._logical_decimal,
    "uuid": RowConverter._logical_uuid,
}

_NOT_LOGICAL = object()
_LOGICAL_TYPES = frozenset({
    "date", "time-millis", "time-micros", "timestamp-millis", "timestamp-micros", "local-timestamp-millis",
    "local-timestamp-micros", "decimal", "uuid",
})  # fmt: skip


def _collect_names(schema: Any, named: dict[str, Schema]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, named)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            named[schema["name"]] = schema
            if schema.get("namespace"):
                named[f"{schema['namespace']}.{schema['name']}"] = schema
        for item in schema.get("fields", ()):
            _collect_names(item["type"], named)
        for key in ("items", "values", "type"):
            if isinstance(schema.get(key), dict | list):
                _collect_names(schema[key], named)


def parse_schema(text: str) -> dict[str, Any]:
    """The `schema` property as a checked Avro record schema (fastavro validates it)."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SerdesError(f"`schema` is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise SerdesError('`schema` must be an Avro record schema: {"type": "record", "name": ..., "fields": [...]}')
    import fastavro

    try:
        fastavro.parse_schema(schema)
    except Exception as exc:  # noqa: BLE001 - fastavro raises several types for a bad schema
        raise SerdesError(f"`schema` is not a valid Avro schema: {exc}") from None
    return schema


# ------------------------------------------------------------------------------------ inference


def _infer_type(values: list[Any], name: str) -> Any:
    kinds = {_kind(value) for value in values if value is not None}
    if not kinds:
        return "null"
    if kinds <= {"long", "double"}:
        return "double" if "double" in kinds else "long"
    if len(kinds) > 1:
        return "string"
    kind = kinds.pop()
    if kind == "record":
        return _infer_record([value for value in values if value is not None], name)
    if kind == "array":
        items = [item for value in values if value is not None for item in value]
        return {"type": "array", "items": _nullable(_infer_type(items, name + "_item"))}
    return {
        "date": {"type": "int", "logicalType": "date"},
        "timestamp": {"type": "long", "logicalType": "timestamp-millis"},
        "local-timestamp": {"type": "long", "logicalType": "local-timestamp-millis"},
        "time": {"type": "int", "logicalType": "time-millis"},
    }.get(kind, kind)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float | Decimal):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, dt.datetime):
        return "timestamp" if value.tzinfo is not None else "local-timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, dict):
        return "record"
    return "array"


def _nullable(kind: Any) -> Any:
    return "null" if kind == "null" else ["null", kind]


def _avro_name(key: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", key) or "_"
    if not _AVRO_NAME.match(name):
        name = "_" + name
    base, index = name, 1
    while name in taken:
        index += 1
        name = f"{base}_{index}"
    taken.add(name)
    return name


def _infer_record(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    fields: list[dict[str, Any]] = []
    taken: set[str] = set()
    for key in keys:
        avro_name = _avro_name(str(key), taken)
        item: dict[str, Any] = {
            "name": avro_name,
            "type": _nullable(_infer_type([row.get(key) for row in rows], avro_name)),
            "default": None,
        }
        if avro_name != key:
            item[SOURCE_KEY] = key
        fields.append(item)
    return {"type": "record", "name": _avro_name(name, set()), "fields": fields}


def infer_schema(rows: list[Any]) -> dict[str, Any]:
    """An Avro record schema for map rows (every field nullable); list rows need a given schema."""
    if any(not isinstance(row, dict) for row in rows):
        raise SerdesError("cannot infer a schema from rows that are not maps: set `schema`")
    return _infer_record(rows, "root")


def converted_rows(source: BinaryIO, options: AvroOptions) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The record schema (given or inferred) and the source's rows converted to it, bad rows handled."""
    rows: Iterator[Any] = read_values(source)
    if options.schema is not None:
        schema = parse_schema(options.schema)
    else:
        head = list(itertools.islice(rows, max(options.number_of_rows_to_scan, 1)))
        schema = infer_schema(head)
        rows = itertools.chain(head, rows)
    converter = RowConverter(schema, options)

    def generate() -> Iterator[dict[str, Any]]:
        for number, row in enumerate(rows, 1):
            try:
                yield converter.row(row)
            except _BadValue as exc:
                message = f"row {number}: {exc}"
                if options.on_bad_lines == "ERROR":
                    raise SerdesError(message) from None
                if options.on_bad_lines == "WARN":
                    options.warn(f"Bad record (skipped): {message}")

    return schema, generate()


def ion_to_avro(source: BinaryIO, target: BinaryIO, options: AvroOptions) -> int:
    """Convert Ion rows to an Avro container file; returns the row count."""
    import fastavro

    schema, datums = converted_rows(source, options)
    counted = _Counter(datums)
    try:
        fastavro.writer(target, fastavro.parse_schema(schema), counted, codec="null")
    except (ValueError, TypeError, OverflowError) as exc:
        raise SerdesError(f"row {counted.count}: cannot be written as Avro: {exc}") from None
    return counted.count


class _Counter:
    """Counts the items an iterator yields."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            self.count += 1
            yield item


def plain(value: Any) -> Any:
    """A value read from Avro or Parquet as a row value Ion can hold (UUIDs as text, map pairs as maps)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            return {str(key): plain(item) for key, item in value}
        return [plain(item) for item in value]
    if isinstance(value, str | int | float | Decimal | bytes | dt.date | dt.time) or value is None:
        return value
    return str(value)


def avro_to_ion(source: BinaryIO, target: BinaryIO) -> int:
    """Convert an Avro container file to Ion rows; returns the row count."""
    import fastavro

    writer = IonWriter(target)
    try:
        for record in fastavro.reader(source):
            writer.write(plain(record))
    except (ValueError, EOFError, TypeError, KeyError) as exc:
        raise SerdesError(f"record {writer.count + 1}: not a valid Avro file ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - fastavro raises its own types for corrupt files
        raise SerdesError(f"record {writer.count + 1}: not a valid Avro file ({type(exc).__name__}: {exc})") from None
    writer.flush()
    return writer.count
