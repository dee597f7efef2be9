"""Kestra's serdes tasks: convert internal-storage files between Ion rows and CSV, JSON, Excel, Parquet, Avro.

Each task reads the `kestra://` file of `from` and writes a new one (output `uri`; ExcelToIon:
`uris` per sheet). The conversions themselves are `yaml2dag.serdes`; docs/serdes.md lists every
property, what it does and what differs from Kestra.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from yaml2dag.tasktypes.base import (
    EXPRESSION_JSON_SCHEMA,
    Flag,
    TaskBase,
    Text,
    choice,
    is_expression,
    literal_or_expression,
    rendered,
)

_SERDES = "yaml2dag.operators.serdes"
_PLUGIN = "io.kestra.plugin.serdes"


def _storage_uri(value: str) -> str:
    if not is_expression(value) and not value.startswith("kestra://"):
        raise ValueError("must be a kestra:// internal-storage URI, e.g. `{{ outputs.download.uri }}`")
    return value


def _character(value: Any) -> Any:
    if isinstance(value, str) and (len(value) == 1 or is_expression(value)):
        return value
    raise ValueError("must be exactly one character")


def _count(value: Any) -> Any:
    if is_expression(value) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError("must be a whole number, 0 or more (or an expression rendering to one)")


#: A `kestra://` URI, or an expression rendering to one.
StorageUri = Annotated[
    str, AfterValidator(_storage_uri), literal_or_expression({"type": "string", "pattern": "^kestra://"})
]
#: One character (`fieldSeparator`, `textDelimiter`, `decimalSeparator`).
Character = Annotated[
    str, AfterValidator(_character), literal_or_expression({"type": "string", "minLength": 1, "maxLength": 1})
]
#: A whole number ≥ 0, or an expression.
Count = Annotated[
    int | str,
    AfterValidator(_count),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION_JSON_SCHEMA]}),
]
OnBadLines = choice("ERROR", "WARN", "SKIP")


class _Conversion(TaskBase):
    """What every serdes task has: the source file."""

    from_: StorageUri = rendered(alias="from", description="The kestra:// URI of the file to convert.")


class _TextWriter(_Conversion):
    """Kestra's `AbstractTextWriter`: how dates and times are printed."""

    dateFormat: Text = rendered("yyyy-MM-dd", description="Java pattern of dates.")
    timeFormat: Text = rendered("HH:mm:ss[XXX]", description="Java pattern of times.")
    dateTimeFormat: Text = rendered("yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]", description="Java pattern of date-times.")
    timeZoneId: Text | None = rendered(None, description="Zone of zoned date-times (default: the worker's zone).")


class CsvToIon(_Conversion):
    """Convert a CSV file to Ion rows (maps keyed by the header, or lists): output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.csv.CsvToIon", f"{_PLUGIN}.csv.CsvReader")
    OPERATOR: ClassVar = f"{_SERDES}:CsvToIonOperator"

    header: Flag = rendered(True, description="The first line is the header.")
    fieldSeparator: Character = rendered(",", description="Field separator.")
    textDelimiter: Character = rendered('"', description="Quote character.")
    skipEmptyRows: Flag = rendered(False, description="Skip empty lines.")
    skipRows: Count = rendered(0, description="Records to skip after the header.")
    charset: Text = rendered("UTF-8", description="Encoding of the file.")
    onBadLines: OnBadLines = rendered("ERROR", description="A line with another field count: ERROR, WARN or SKIP.")  # type: ignore[valid-type]
    errorOnDifferentFieldCount: Flag | None = rendered(
        None, description="Deprecated: true is `onBadLines: ERROR`; false keeps such lines (missing fields null)."
    )
    allowExtraCharsAfterClosingQuote: Flag = rendered(False, description='Accept `"a"b` (read as `ab`).')
    maxFieldSize: Count = rendered(16 * 1024 * 1024, description="Longest field, in characters.")
    maxBufferSize: Count | None = rendered(None, description="Not supported by yaml2dag (the parser streams).")

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"maxBufferSize"}


class IonToCsv(_TextWriter):
    """Convert Ion rows to a CSV file: output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.csv.IonToCsv", f"{_PLUGIN}.csv.CsvWriter")
    OPERATOR: ClassVar = f"{_SERDES}:IonToCsvOperator"

    header: Flag = rendered(True, description="Write the first row's keys as a header line.")
    fieldSeparator: Character = rendered(",", description="Field separator.")
    textDelimiter: Character = rendered('"', description="Quote character.")
    lineDelimiter: choice("\n", "\r\n", "\r") = rendered("\n", description="End of line.")  # type: ignore[valid-type]
    alwaysDelimitText: Flag = rendered(False, description="Deprecated: quote every field (`quoteMode: ALWAYS`).")
    quoteMode: choice("ALWAYS", "REQUIRED", "NON_NUMERIC") | None = rendered(  # type: ignore[valid-type]
        None, description="When fields are quoted; wins over `alwaysDelimitText`."
    )
    charset: Text = rendered("UTF-8", description="Encoding of the file written.")


class JsonToIon(_Conversion):
    """Convert JSON Lines (or one JSON document with `newLine: false`) to Ion rows: output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.json.JsonToIon", f"{_PLUGIN}.json.JsonReader")
    OPERATOR: ClassVar = f"{_SERDES}:JsonToIonOperator"

    charset: Text = rendered("UTF-8", description="Encoding of the file.")
    newLine: Flag = rendered(True, description="One JSON value per line; false: one document (an array is rows).")


class IonToJson(_Conversion):
    """Convert Ion rows to JSON Lines (or one JSON array with `newLine: false`): output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.json.IonToJson", f"{_PLUGIN}.json.JsonWriter")
    OPERATOR: ClassVar = f"{_SERDES}:IonToJsonOperator"

    charset: Text = rendered("UTF-8", description="Encoding of the file written.")
    newLine: Flag = rendered(True, description="One JSON value per line (.jsonl); false: one array (.json).")
    timeZoneId: Text | None = rendered(None, description="Zone of zoned date-times (default: the worker's zone).")


class IonToExcel(_TextWriter):
    """Convert Ion rows to an .xlsx file, one sheet per source: outputs `uri`, `size` (rows written)."""

    TYPES: ClassVar = (f"{_PLUGIN}.excel.IonToExcel",)
    OPERATOR: ClassVar = f"{_SERDES}:IonToExcelOperator"

    from_: StorageUri | dict[str, StorageUri] = rendered(  # type: ignore[assignment]
        alias="from", description="A kestra:// URI, or a map of sheet title → kestra:// URI."
    )
    charset: Text = Field("UTF-8", description="Encoding of the Ion source (always UTF-8 text).")
    sheetsTitle: Text = Field("Sheet", description="Title of the sheet when `from` is one URI.")
    header: bool = Field(True, description="Write the first row's keys as a header row.")
    styles: bool = Field(True, description="Format date cells with `dateFormat`.")


class ExcelToIon(_Conversion):
    """Convert each sheet of an .xlsx file to Ion rows: outputs `uris` (sheet title → URI), `size`."""

    TYPES: ClassVar = (f"{_PLUGIN}.excel.ExcelToIon",)
    OPERATOR: ClassVar = f"{_SERDES}:ExcelToIonOperator"

    sheetsTitle: list[Text] | Text | None = rendered(None, description="Sheets to convert (default: all).")
    charset: Text = rendered("UTF-8", description="Unused: .xlsx files carry their encoding.")
    valueRender: choice("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA") = rendered(  # type: ignore[valid-type]
        "UNFORMATTED_VALUE", description="Cell values; FORMULA is not supported by yaml2dag yet."
    )
    dateTimeRender: choice("SERIAL_NUMBER", "FORMATTED_STRING", "UNFORMATTED_VALUE") = rendered(  # type: ignore[valid-type]
        "UNFORMATTED_VALUE", description="Date cells: timestamps, or SERIAL_NUMBER (FORMATTED_STRING: not yet)."
    )
    header: Flag = rendered(True, description="The first row is the header.")
    skipEmptyRows: Flag = rendered(False, description="Drop blank cells.")
    skipRows: int = Field(0, ge=0, description="Rows to skip before the header (one counter for the workbook).")

    @model_validator(mode="after")
    def _supported_renders(self) -> ExcelToIon:
        if self.valueRender == "FORMULA":
            raise ValueError("`valueRender: FORMULA` is not supported by yaml2dag yet")
        if self.dateTimeRender == "FORMATTED_STRING":
            raise ValueError("`dateTimeRender: FORMATTED_STRING` is not supported by yaml2dag yet")
        return self


class _AvroConverter(_Conversion):
    """Kestra's `AbstractAvroConverter`: the Avro schema rows are converted to, and how text is read."""

    schema_: Text | None = rendered(None, alias="schema", description="Avro record schema (JSON); default: inferred.")
    numberOfRowsToScan: Count = rendered(100, description="Rows read to infer the schema when `schema` is not set.")
    trueValues: list[Text] | Text | None = rendered(None, description="Text read as true.")
    falseValues: list[Text] | Text | None = rendered(None, description="Text read as false.")
    nullValues: list[Text] | Text | None = rendered(None, description="Text read as null (nullable fields).")
    dateFormat: Text = rendered("yyyy-MM-dd[XXX]", description="Java pattern of dates in text.")
    timeFormat: Text = rendered("HH:mm[:ss][.SSSSSS][XXX]", description="Java pattern of times in text.")
    datetimeFormat: Text = rendered(
        "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]", description="Java pattern of date-times in text."
    )
    decimalSeparator: Character = rendered(".", description="Decimal point of numbers in text.")
    strictSchema: Flag = rendered(False, description="A field missing from the schema is an error.")
    inferAllFields: Flag = rendered(
        False, description="Only false (booleans and nulls are read where the schema has them) is supported."
    )
    timeZoneId: Text | None = rendered(None, description="Zone of date-times without one (default: the worker's).")
    onBadLines: OnBadLines = rendered("ERROR", description="A row that does not fit the schema: ERROR, WARN, SKIP.")  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _supported(self) -> _AvroConverter:
        if self.inferAllFields is True:
            raise ValueError("`inferAllFields: true` is not supported by yaml2dag yet")
        return self


class IonToAvro(_AvroConverter):
    """Convert Ion rows to an Avro container file: output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.avro.IonToAvro", f"{_PLUGIN}.avro.AvroWriter")
    OPERATOR: ClassVar = f"{_SERDES}:IonToAvroOperator"


class AvroToIon(_Conversion):
    """Convert an Avro container file to Ion rows: output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.avro.AvroToIon",)
    OPERATOR: ClassVar = f"{_SERDES}:AvroToIonOperator"


class IonToParquet(_AvroConverter):
    """Convert Ion rows to a Parquet file (through an Avro schema, as Kestra): output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.parquet.IonToParquet", f"{_PLUGIN}.parquet.ParquetWriter")
    OPERATOR: ClassVar = f"{_SERDES}:IonToParquetOperator"

    compressionCodec: choice("UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD") = rendered(  # type: ignore[valid-type]
        "GZIP", description="Compression of the pages."
    )
    parquetVersion: choice("V1", "V2") = rendered("V2", description="Data page version.")  # type: ignore[valid-type]
    rowGroupSize: Count | None = rendered(None, description="Not supported: yaml2dag writes row groups of 10,000 rows.")
    pageSize: Count = rendered(1_048_576, description="Target data page size, in bytes.")
    dictionaryPageSize: Count = rendered(1_048_576, description="Largest dictionary page, in bytes.")

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"rowGroupSize"}


class ParquetToIon(_Conversion):
    """Convert a Parquet file to Ion rows: output `uri`."""

    TYPES: ClassVar = (f"{_PLUGIN}.parquet.ParquetToIon",)
    OPERATOR: ClassVar = f"{_SERDES}:ParquetToIonOperator"


TASK_TYPES: tuple[type[TaskBase], ...] = (
    CsvToIon, IonToCsv, JsonToIon, IonToJson, IonToExcel, ExcelToIon, IonToAvro, AvroToIon, IonToParquet, ParquetToIon,
)  # fmt: skip
