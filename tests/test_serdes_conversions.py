"""The pure serdes conversions (yaml2dag.serdes): Ion mapping, CSV, JSON, Avro, Parquet, Excel, bad input."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from yaml2dag.serdes import SerdesError, ion
from yaml2dag.serdes.avro import AvroOptions, avro_to_ion, ion_to_avro
from yaml2dag.serdes.csvfile import CsvOptions, csv_to_ion, ion_to_csv
from yaml2dag.serdes.excel import ExcelOptions, excel_to_ion, ion_to_excel
from yaml2dag.serdes.javatime import format_value, parse
from yaml2dag.serdes.jsonfile import JsonOptions, ion_to_json, json_to_ion
from yaml2dag.serdes.parquet import ParquetOptions, ion_to_parquet, parquet_to_ion
from yaml2dag.serdes.textvalues import TextFormats

UTC = dt.UTC
ROW: dict[str, Any] = {
    "id": 1,
    "name": 'quote " and\nnewline, é 😀',
    "price": Decimal("12.50"),
    "ratio": 0.25,
    "ok": True,
    "none": None,
    "day": dt.date(2024, 1, 31),
    "at": dt.datetime(2024, 1, 31, 10, 30, 5, 123000, tzinfo=UTC),
    "paris": dt.datetime(2024, 1, 31, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    "local": dt.datetime(2024, 1, 31, 10, 30),
    "time": dt.time(10, 30),
    "raw": b"\x00\x01bytes",
    "nested": {"list": [1, "two", {"three": 3.0}], "with space": None, "null": False},
}


def ion_bytes(*rows: Any) -> bytes:
    out = io.BytesIO()
    ion.write_rows(rows, out)
    return out.getvalue()


def ion_rows(data: bytes) -> list[Any]:
    return list(ion.read_values(io.BytesIO(data)))


def convert(function: Any, data: bytes, *options: Any) -> tuple[int, bytes]:
    out = io.BytesIO()
    count = function(io.BytesIO(data), out, *options)
    return count, out.getvalue()


# ------------------------------------------------------------------------------------------ Ion


def test_ion_round_trip_keeps_kestra_types() -> None:
    text = ion.dumps(ROW)
    assert "day:2024-01-31," in text
    assert 'local:LocalDateTime::"2024-01-31T10:30:00"' in text
    assert 'time:LocalTime::"10:30:00"' in text
    assert "price:12.50," in text and "ratio:0.25e0" in text
    assert ion.loads(text) == [ROW]


def test_json_like_lines_and_the_others_read_alike() -> None:
    text = '{a:1.50,b:"x\\u00e9",c:null,d:true,"e f":[1,{g:-2}]}\n{a:2.5e0,b:x}\n{a:1}\n'
    expected = [{"a": Decimal("1.50"), "b": "xé", "c": None, "d": True, "e f": [1, {"g": -2}]}, {"a": 2.5, "b": "x"}]
    assert ion.loads(text) == [*expected, {"a": 1}]
    assert [value for line in text.splitlines() for value in ion._Parser(line).values()] == [*expected, {"a": 1}]


def test_ion_text_from_amazon_ion_reads_the_same() -> None:
    from amazon.ion import simpleion

    assert [ion._from_amazon(value) for value in simpleion.loads(ion.dumps(ROW), single_value=False)] == [ROW]


def test_ion_kestra_readings_of_timestamps_and_annotations() -> None:
    values = ion.loads(
        "2024-01-31T00:00:00Z 2024-01-31T10:00:00-00:00 2024-01-31T10:00+02:00 2024-01-31T\n"
        'ZonedDateTime::"2024-01-31T10:00:00+01:00[Europe/Paris]" OffsetTime::"10:00:00+02:00" Other::"x"\n'
    )
    assert values[0] == dt.date(2024, 1, 31)
    assert values[1] == dt.datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert values[2].utcoffset() == dt.timedelta(hours=2)
    assert values[3] == dt.date(2024, 1, 31)
    assert values[4] == dt.datetime(2024, 1, 31, 10, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert values[5] == dt.time(10, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert values[6] == "x"


def test_ion_outside_the_fast_subset_goes_through_amazon_ion() -> None:
    text = "// comment\n{a:1, /* inline */ b:'sym'}\n(x y)\n{a:\n  [1,\n   2]}\nnull.int 0x10 '''long'''\n"
    assert ion.loads(text) == [{"a": 1, "b": "sym"}, ["x", "y"], {"a": [1, 2]}, None, 16, "long"]


@pytest.mark.parametrize(
    ("text", "line"),
    [("{a:1}\n{a:1,,}\n{a:2}\n", 2), ("{a:1}\n{b:\n", 2), ('"open\n', 1), ("{a:1}\n\xff\n", 2)],
)
def test_corrupt_ion_names_its_line(text: str, line: int) -> None:
    data = text.encode("latin-1") if "\xff" in text else text.encode()
    with pytest.raises(SerdesError, match=rf"^line {line}: not "):
        ion_rows(data)


def test_ion_refuses_values_it_cannot_hold() -> None:
    with pytest.raises(SerdesError, match="cannot write a value of type object"):
        ion.dumps(object())


# ------------------------------------------------------------------------------------------ CSV


def test_csv_to_ion_with_header_nulls_and_quotes() -> None:
    count, out = convert(csv_to_ion, b'id,name,note\n1,"a, ""b""",\\N\n2,x,\n', CsvOptions())
    assert count == 2
    assert ion_rows(out) == [{"id": "1", "name": 'a, "b"', "note": None}, {"id": "2", "name": "x", "note": ""}]


def test_csv_to_ion_options_as_kestra() -> None:
    data = "h1;h2\nskipped;row\n'a;b';é\n\n3;4\n".encode("iso-8859-1")
    options = CsvOptions(
        field_separator=";", text_delimiter="'", skip_rows=1, charset="ISO-8859-1", skip_empty_rows=True
    )
    count, out = convert(csv_to_ion, data, options)
    assert count == 2
    assert ion_rows(out) == [{"h1": "a;b", "h2": "é"}, {"h1": "3", "h2": "4"}]
    count, out = convert(csv_to_ion, b"a,b\n1\n", CsvOptions(header=False))
    assert ion_rows(out) == [["a", "b"], ["1"]]


def test_csv_bad_lines() -> None:
    data = b"a,b\n1,2\n1,2,3\n4,5\n"
    with pytest.raises(SerdesError, match=r"line 3: bad line \(field count mismatch\): expected 2 .* got 3"):
        convert(csv_to_ion, data, CsvOptions())
    warnings: list[str] = []
    count, out = convert(csv_to_ion, data, CsvOptions(on_bad_lines="WARN", warn=warnings.append))
    assert count == 2 and len(warnings) == 1 and "line 3" in warnings[0]
    assert convert(csv_to_ion, data, CsvOptions(on_bad_lines="SKIP"))[0] == 2
    count, out = convert(csv_to_ion, b"a,b\n1\n", CsvOptions(on_bad_lines="KEEP"))
    assert ion_rows(out) == [{"a": "1", "b": None}]
    with pytest.raises(SerdesError, match="line 2: .*expected after"):
        convert(csv_to_ion, b'a,b\n"x"y,2\n', CsvOptions())
    count, out = convert(csv_to_ion, b'a,b\n"x"y,2\n', CsvOptions(allow_extra_chars_after_closing_quote=True))
    assert ion_rows(out) == [{"a": "xy", "b": "2"}]


def test_csv_wrong_charset_and_bad_options() -> None:
    with pytest.raises(SerdesError, match=r"not valid UTF-8 text .*set `charset`"):
        convert(csv_to_ion, "a\né\n".encode("iso-8859-1"), CsvOptions())
    with pytest.raises(SerdesError, match="unknown charset `klingon`"):
        convert(csv_to_ion, b"a\n", CsvOptions(charset="klingon"))
    with pytest.raises(SerdesError, match="`fieldSeparator` must be one character"):
        convert(csv_to_ion, b"a\n", CsvOptions(field_separator=";;"))


def test_ion_to_csv_quote_modes_and_formats() -> None:
    data = ion_bytes(
        {"n": 1, "t": "a,b", "f": 1e10, "d": dt.date(2024, 1, 2), "at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)},
        {"n": 2, "t": None, "f": 0.5, "d": None, "at": None},
    )
    count, out = convert(ion_to_csv, data, CsvOptions())
    assert count == 2
    assert out == b'n,t,f,d,at\n1,"a,b",1.0E10,2024-01-02,2024-01-02T03:04:05.000Z\n2,,0.5,,\n'
    formats = TextFormats(date_format="dd/MM/yyyy", datetime_format="yyyy-MM-dd HH:mm", time_zone="UTC")
    options = CsvOptions(quote_mode="NON_NUMERIC", field_separator=";", line_delimiter="\r\n", formats=formats)
    assert (
        convert(ion_to_csv, data, options)[1].split(b"\r\n")[1] == b'1;"a,b";"1.0E10";"02/01/2024";"2024-01-02 03:04"'
    )
    assert convert(ion_to_csv, data, CsvOptions(quote_mode="ALWAYS", header=False))[1].startswith(b'"1","a,b"')
    with pytest.raises(SerdesError, match="a list row cannot be written with `header: true`"):
        convert(ion_to_csv, ion_bytes([1, 2]), CsvOptions())
    assert convert(ion_to_csv, ion_bytes([1, "x"]), CsvOptions(header=False))[1] == b"1,x\n"
    with pytest.raises(SerdesError, match="cannot be written in charset ascii"):
        convert(ion_to_csv, ion_bytes({"a": "é"}), CsvOptions(charset="ascii"))


def test_csv_round_trip() -> None:
    data = b"id,name\n1,alpha\n2,\xc3\xa9\n"
    _, rows = convert(csv_to_ion, data, CsvOptions())
    assert convert(ion_to_csv, rows, CsvOptions())[1] == data


# ------------------------------------------------------------------------------------------ JSON


def test_json_lines_and_arrays() -> None:
    count, out = convert(json_to_ion, b'{"a":1,"b":1.5,"c":[true,null]}\n\n{"a":2}\n', JsonOptions())
    assert count == 2 and ion_rows(out) == [{"a": 1, "b": 1.5, "c": [True, None]}, {"a": 2}]
    count, out = convert(json_to_ion, b'[{"a":1},\n {"a":2}]', JsonOptions(new_line=False))
    assert count == 2
    assert convert(json_to_ion, b'{"a":1}', JsonOptions(new_line=False))[0] == 1
    with pytest.raises(SerdesError, match=r"line 2, column 6: not valid JSON"):
        convert(json_to_ion, b'{"a":1}\n{"a":}\n', JsonOptions())


def test_ion_to_json_as_jackson_writes_it() -> None:
    count, out = convert(ion_to_json, ion_bytes(ROW), JsonOptions(time_zone="Europe/Paris"))
    assert count == 1
    text = out.decode()
    assert text.endswith("}\n")
    for part in (
        '"price":12.50', '"ratio":0.25', '"day":"2024-01-31"', '"at":"2024-01-31T10:30:05.123Z"',
        '"paris":"2024-01-31T10:30:00+01:00"', '"local":"2024-01-31T10:30:00"', '"time":"10:30:00"',
        '"raw":"AAFieXRlcw=="', '"nested":{"list":[1,"two",{"three":3.0}]',
    ):  # fmt: skip
        assert part in text
    count, out = convert(ion_to_json, ion_bytes({"a": 1}, {"a": 2}), JsonOptions(new_line=False))
    assert out == b'[{"a":1},{"a":2}]'
    assert convert(ion_to_json, b"", JsonOptions(new_line=False))[1] == b"[]"


# ------------------------------------------------------------------------------------------ Avro

SCHEMA = """{"type": "record", "name": "Row", "fields": [
  {"name": "id", "type": "int"},
  {"name": "name", "type": ["null", "string"]},
  {"name": "active", "type": "boolean"},
  {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
  {"name": "ratio", "type": "double"},
  {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
  {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}
]}"""
TEXT_ROW = {"id": "7", "name": "NA", "active": "yes", "amount": "3,5", "ratio": "0,25", "day": "2024-01-31",
            "at": "2024-01-31T10:30:00Z", "kind": "B"}  # fmt: skip
EXPECTED = {"id": 7, "name": None, "active": True, "amount": Decimal("3.50"), "ratio": 0.25,
            "day": dt.date(2024, 1, 31), "at": dt.datetime(2024, 1, 31, 10, 30, tzinfo=UTC), "kind": "B",
            "tags": []}  # fmt: skip


def test_avro_converts_text_rows_to_the_schema() -> None:
    options = AvroOptions(schema=SCHEMA, decimal_separator=",")
    count, avro = convert(ion_to_avro, ion_bytes(TEXT_ROW), options)
    assert count == 1
    assert convert(avro_to_ion, avro)[0] == 1
    assert ion_rows(convert(avro_to_ion, avro)[1]) == [EXPECTED]


def test_avro_bad_rows_and_strict_schema() -> None:
    bad = dict(TEXT_ROW, id="x")
    with pytest.raises(SerdesError, match=r"row 2: field `id`: cannot convert 'x' to int"):
        convert(ion_to_avro, ion_bytes(TEXT_ROW, bad), AvroOptions(schema=SCHEMA, decimal_separator=","))
    warnings: list[str] = []
    options = AvroOptions(schema=SCHEMA, decimal_separator=",", on_bad_lines="WARN", warn=warnings.append)
    assert convert(ion_to_avro, ion_bytes(TEXT_ROW, bad), options)[0] == 1 and "row 2" in warnings[0]
    strict = AvroOptions(schema=SCHEMA, decimal_separator=",", strict_schema=True)
    with pytest.raises(SerdesError, match=r"fields \['extra'\] are not in the schema"):
        convert(ion_to_avro, ion_bytes(dict(TEXT_ROW, extra=1)), strict)
    with pytest.raises(SerdesError, match="`schema` is not valid JSON"):
        convert(ion_to_avro, ion_bytes(TEXT_ROW), AvroOptions(schema="{nope"))
    with pytest.raises(SerdesError, match="not a valid Avro schema"):
        convert(
            ion_to_avro, ion_bytes(TEXT_ROW), AvroOptions(schema='{"type":"record","name":"r","fields":[{"name":"a"}]}')
        )
    with pytest.raises(SerdesError, match="not a valid Avro file"):
        convert(avro_to_ion, b"Obj\x01garbage")


def test_avro_inferred_schema_renames_invalid_field_names() -> None:
    rows = [{"first name": "a", "n": 1, "x": 1.5, "when": dt.date(2024, 1, 2), "sub": {"k": True}},
            {"first name": None, "n": 2, "x": 2, "when": None, "sub": None}]  # fmt: skip
    count, avro = convert(ion_to_avro, ion_bytes(*rows), AvroOptions())
    assert count == 2
    read = ion_rows(convert(avro_to_ion, avro)[1])
    assert read[0] == {"first_name": "a", "n": 1, "x": 1.5, "when": dt.date(2024, 1, 2), "sub": {"k": True}}
    assert read[1]["x"] == 2.0 and read[1]["sub"] is None
    with pytest.raises(SerdesError, match="cannot infer a schema from rows that are not maps"):
        convert(ion_to_avro, ion_bytes([1, 2]), AvroOptions())


# ------------------------------------------------------------------------------------------ Parquet


@pytest.mark.parametrize("codec", ["GZIP", "SNAPPY", "ZSTD", "UNCOMPRESSED"])
def test_parquet_round_trip(codec: str) -> None:
    options = AvroOptions(schema=SCHEMA, decimal_separator=",")
    count, data = convert(
        ion_to_parquet, ion_bytes(TEXT_ROW, TEXT_ROW), options, ParquetOptions(compression_codec=codec)
    )
    assert count == 2 and data.startswith(b"PAR1")
    assert ion_rows(convert(parquet_to_ion, data)[1]) == [EXPECTED, EXPECTED]


def test_parquet_keeps_the_avro_schema_and_refuses_bad_input() -> None:
    import pyarrow.parquet as pq

    _, data = convert(ion_to_parquet, ion_bytes({"a": 1}), AvroOptions(), ParquetOptions(parquet_version="V1"))
    metadata = pq.ParquetFile(io.BytesIO(data)).schema_arrow.metadata
    assert b"parquet.avro.schema" in metadata
    with pytest.raises(SerdesError, match="not a valid Parquet file"):
        convert(parquet_to_ion, b"PAR1 not really")
    with pytest.raises(SerdesError, match="`compressionCodec` must be one of"):
        convert(ion_to_parquet, ion_bytes({"a": 1}), AvroOptions(), ParquetOptions(compression_codec="LZ4"))
    union = '{"type":"record","name":"r","fields":[{"name":"a","type":["int","string"]}]}'
    with pytest.raises(SerdesError, match="cannot be written to Parquet"):
        convert(ion_to_parquet, ion_bytes({"a": 1}), AvroOptions(schema=union), ParquetOptions())


# ------------------------------------------------------------------------------------------ Excel


def excel_sheets(data: bytes, options: ExcelOptions) -> tuple[dict[str, int], dict[str, list[Any]]]:
    written: dict[str, list[Any]] = {}

    @contextlib.contextmanager
    def open_target(title: str) -> Iterator[io.BytesIO]:
        buffer = io.BytesIO()
        yield buffer
        written[title] = ion_rows(buffer.getvalue())

    counts = excel_to_ion(io.BytesIO(data), open_target, options)
    return counts, written


def test_excel_round_trip_with_two_sheets() -> None:
    first = ion_bytes({"id": 1, "name": "a", "day": dt.date(2024, 1, 2), "f": "Formula:1+1"}, {"id": 2, "name": "b"})
    out = io.BytesIO()
    assert (
        ion_to_excel([("One", io.BytesIO(first)), ("Two", io.BytesIO(ion_bytes({"x": True})))], out, ExcelOptions())
        == 3
    )
    from openpyxl import load_workbook

    assert load_workbook(io.BytesIO(out.getvalue()))["One"]["D2"].value == "=1+1"
    counts, sheets = excel_sheets(out.getvalue(), ExcelOptions())
    assert counts == {"One": 3, "Two": 2}
    # A formula reads as its cached result: none until a spreadsheet program computes it.
    assert sheets["One"][0] == {"id": 1.0, "name": "a", "day": dt.date(2024, 1, 2), "f": ""}
    assert sheets["One"][1] == {"id": 2.0, "name": "b", "day": None, "f": None}
    assert sheets["Two"] == [{"x": True}]
    counts, sheets = excel_sheets(out.getvalue(), ExcelOptions(sheets_title=("Two",), header=False))
    assert sheets == {"Two": [["x"], [True]]}


def test_excel_bad_input() -> None:
    with pytest.raises(SerdesError, match=r"not an \.xlsx file"):
        excel_sheets(b"id,name\n1,a\n", ExcelOptions())
    out = io.BytesIO()
    ion_to_excel([("S", io.BytesIO(ion_bytes({"a": 1})))], out, ExcelOptions())
    with pytest.raises(SerdesError, match=r"sheets \['Nope'\] are not in the workbook"):
        excel_sheets(out.getvalue(), ExcelOptions(sheets_title=("Nope",)))
    with pytest.raises(SerdesError, match="`valueRender: FORMULA` is not supported by yaml2dag yet"):
        excel_sheets(out.getvalue(), ExcelOptions(value_render="FORMULA"))
    with pytest.raises(SerdesError, match="invalid sheet title"):
        ion_to_excel([("bad/title?", io.BytesIO(b""))], io.BytesIO(), ExcelOptions())


# ------------------------------------------------------------------------------------------ Java patterns


def test_java_patterns_format_and_parse() -> None:
    at = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert format_value("yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]", at) == "2024-01-02T03:04:05.123+02:00"
    assert format_value("yyyy-MM-dd'T'HH:mm:ss[XXX]", at.replace(tzinfo=None)) == "2024-01-02T03:04:05"
    assert format_value("dd MMM yyyy, hh a", at) == "02 Jan 2024, 03 AM"
    parsed = parse("yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]", "2024-01-02T03:04:05.5+02:00")
    assert parsed is not None and parsed.time == dt.time(3, 4, 5, 500000)
    assert parsed.offset == dt.timezone(dt.timedelta(hours=2))
    assert parse("yyyy-MM-dd", "02/01/2024") is None
    with pytest.raises(SerdesError, match="letter `Q` is not supported by yaml2dag yet"):
        format_value("yyyy Q", at)
