"""Operators for Kestra's serdes tasks: read `from` from the internal storage, convert, write a new file.

The conversions are the streaming functions of `yaml2dag.serdes` (one row or one batch in memory
at a time); the files are read and written through `yaml2dag.storage` (Airflow Object Storage),
so the same flow works on a local folder, a shared volume or S3. A conversion problem (corrupt
CSV, JSON or Ion, wrong charset, a row that does not fit the Avro schema, …) fails the task with
a message naming the source URI and the line or row; nothing is left behind in the storage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.base import as_flag
from yaml2dag.tasktypes.serdes import (
    AvroToIon,
    CsvToIon,
    ExcelToIon,
    IonToAvro,
    IonToCsv,
    IonToExcel,
    IonToJson,
    IonToParquet,
    JsonToIon,
    ParquetToIon,
)


class _SerdesOperator(KestraOperator):
    """Shared by the serdes operators: rendered-value checks and the read → convert → write frame."""

    ui_color = "#e8f4ea"

    def flag(self, name: str) -> bool:
        """A rendered boolean property, checked."""
        try:
            return as_flag(getattr(self, name), name)
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None

    def number(self, name: str) -> int:
        """A rendered whole-number property, checked."""
        value = getattr(self, name)
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise TaskFailure(f"`{name}` rendered `{value}`: it must be a whole number") from None
        if number < 0:
            raise TaskFailure(f"`{name}` rendered `{value}`: it must be 0 or more")
        return number

    def text(self, name: str) -> str:
        """A rendered text property."""
        return str(getattr(self, name))

    def choice(self, name: str, *values: str) -> str:
        """A rendered property limited to `values`."""
        value = str(getattr(self, name)).strip()
        if value not in values:
            raise TaskFailure(f"`{name}` rendered `{value}`: it must be one of {', '.join(values)}")
        return value

    def texts(self, name: str) -> tuple[str, ...] | None:
        """A rendered list-of-text property (a JSON list rendered as text is read as a list)."""
        value = getattr(self, name)
        if value is None:
            return None
        if isinstance(value, str):
            import json

            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = [value]
            value = parsed if isinstance(parsed, list) else [value]
        return tuple(str(item) for item in value)

    def formats(self, datetime_name: str = "dateTimeFormat") -> Any:
        """The text formats of Kestra's `AbstractTextWriter`."""
        from yaml2dag.serdes.textvalues import TextFormats

        return TextFormats(
            date_format=self.text("dateFormat"),
            time_format=self.text("timeFormat"),
            datetime_format=self.text(datetime_name),
            time_zone=None if self.timeZoneId is None else self.text("timeZoneId"),
        )

    def convert(self, context: Any, extension: str, conversion: Callable[[BinaryIO, BinaryIO], int]) -> tuple[str, int]:
        """Read `from`, run `conversion(source, target)` into a new file; returns (new URI, rows)."""
        from yaml2dag import storage
        from yaml2dag.serdes import SerdesError

        uri = self.source_uri(self.from_)
        name = PurePosixPath(uri).stem or self.task_id
        try:
            with storage.open_read(uri) as source, storage.open_write(context, f"{name}{extension}") as (new, target):
                count = conversion(source, target)
        except SerdesError as exc:
            raise TaskFailure(f"`{uri}`: {exc}") from None
        self.log.info("Converted %d rows of %s into %s", count, uri, new)
        return new, count

    def source_uri(self, value: Any) -> str:
        """A rendered `from`, checked to be a kestra:// URI."""
        uri = str(value).strip()
        if not uri.startswith("kestra://"):
            raise TaskFailure(f"`from` rendered `{uri}`: it must be a kestra:// internal-storage URI")
        return uri


class CsvToIonOperator(_SerdesOperator, task_type=CsvToIon):
    """`io.kestra.plugin.serdes.csv.CsvToIon` (alias `csv.CsvReader`): CSV → Ion rows; output `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri`."""
        from yaml2dag.serdes.csvfile import CsvOptions, csv_to_ion

        bad_lines = self.choice("onBadLines", "ERROR", "WARN", "SKIP")
        if self.errorOnDifferentFieldCount is not None:
            bad_lines = "ERROR" if self.flag("errorOnDifferentFieldCount") else "KEEP"
        options = CsvOptions(
            header=self.flag("header"),
            field_separator=self.text("fieldSeparator"),
            text_delimiter=self.text("textDelimiter"),
            charset=self.text("charset"),
            skip_empty_rows=self.flag("skipEmptyRows"),
            skip_rows=self.number("skipRows"),
            on_bad_lines=bad_lines,
            allow_extra_chars_after_closing_quote=self.flag("allowExtraCharsAfterClosingQuote"),
            max_field_size=self.number("maxFieldSize"),
            warn=self.log.warning,
        )
        uri, _ = self.convert(context, ".ion", lambda source, target: csv_to_ion(source, target, options))
        return {"uri": uri}


class IonToCsvOperator(_SerdesOperator, task_type=IonToCsv):
    """`io.kestra.plugin.serdes.csv.IonToCsv` (alias `csv.CsvWriter`): Ion rows → CSV; output `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri`."""
        from yaml2dag.serdes.csvfile import CsvOptions, ion_to_csv

        if self.quoteMode is not None:
            quote_mode = self.choice("quoteMode", "ALWAYS", "REQUIRED", "NON_NUMERIC")
        else:
            quote_mode = "ALWAYS" if self.flag("alwaysDelimitText") else "REQUIRED"
        options = CsvOptions(
            header=self.flag("header"),
            field_separator=self.text("fieldSeparator"),
            text_delimiter=self.text("textDelimiter"),
            charset=self.text("charset"),
            line_delimiter=self.text("lineDelimiter"),
            quote_mode=quote_mode,
            formats=self.formats(),
        )
        uri, _ = self.convert(context, ".csv", lambda source, target: ion_to_csv(source, target, options))
        return {"uri": uri}


class JsonToIonOperator(_SerdesOperator, task_type=JsonToIon):
    """`io.kestra.plugin.serdes.json.JsonToIon` (alias `json.JsonReader`): JSON → Ion rows; output `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri`."""
        from yaml2dag.serdes.jsonfile import JsonOptions, json_to_ion

        options = JsonOptions(charset=self.text("charset"), new_line=self.flag("newLine"))
        uri, _ = self.convert(context, ".ion", lambda source, target: json_to_ion(source, target, options))
        return {"uri": uri}


class IonToJsonOperator(_SerdesOperator, task_type=IonToJson):
    """`io.kestra.plugin.serdes.json.IonToJson` (alias `json.JsonWriter`): Ion rows → JSON; output `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri` (a .jsonl file, or .json with `newLine: false`)."""
        from yaml2dag.serdes.jsonfile import JsonOptions, ion_to_json

        new_line = self.flag("newLine")
        options = JsonOptions(
            charset=self.text("charset"),
            new_line=new_line,
            time_zone=None if self.timeZoneId is None else self.text("timeZoneId"),
        )
        extension = ".jsonl" if new_line else ".json"
        uri, _ = self.convert(context, extension, lambda source, target: ion_to_json(source, target, options))
        return {"uri": uri}


class IonToExcelOperator(_SerdesOperator, task_type=IonToExcel):
    """`io.kestra.plugin.serdes.excel.IonToExcel`: Ion rows → .xlsx; outputs `uri` and `size` (rows)."""

    def run(self, context: Any) -> dict[str, Any]:
        """Write one sheet per source (`from` a URI, or a map of sheet title → URI)."""
        from yaml2dag import storage
        from yaml2dag.serdes import SerdesError
        from yaml2dag.serdes.excel import ExcelOptions, ion_to_excel

        sources = self.from_ if isinstance(self.from_, dict) else {self.sheetsTitle: self.from_}
        sheets = {str(title): self.source_uri(uri) for title, uri in sources.items()}
        options = ExcelOptions(header=bool(self.header), styles=bool(self.styles), formats=self.formats())
        with contextlib.ExitStack() as stack:
            streams = [(title, stack.enter_context(storage.open_read(uri))) for title, uri in sheets.items()]
            try:
                with storage.open_write(context, f"{self.task_id}.xlsx") as (uri, target):
                    size = ion_to_excel(streams, target, options)
            except SerdesError as exc:
                raise TaskFailure(f"{', '.join(f'`{uri}`' for uri in sheets.values())}: {exc}") from None
        self.log.info("Wrote %d rows to %s", size, uri)
        return {"uri": uri, "size": size}


class ExcelToIonOperator(_SerdesOperator, task_type=ExcelToIon):
    """`io.kestra.plugin.serdes.excel.ExcelToIon`: each sheet → Ion rows; outputs `uris` and `size`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert every selected sheet to its own file."""
        from yaml2dag import storage
        from yaml2dag.serdes import SerdesError
        from yaml2dag.serdes.excel import ExcelOptions, excel_to_ion

        options = ExcelOptions(
            header=self.flag("header"),
            sheets_title=self.texts("sheetsTitle") or (),
            value_render=self.choice("valueRender", "FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"),
            date_time_render=self.choice("dateTimeRender", "SERIAL_NUMBER", "FORMATTED_STRING", "UNFORMATTED_VALUE"),
            skip_empty_rows=self.flag("skipEmptyRows"),
            skip_rows=int(self.skipRows),
        )
        uri = self.source_uri(self.from_)
        uris: dict[str, str] = {}
        written: list[str] = []

        @contextlib.contextmanager
        def open_target(title: str) -> Iterator[BinaryIO]:
            with storage.open_write(context, f"{title}.ion") as (new, target):
                written.append(new)
                yield target
            uris[title] = new

        try:
            with storage.open_read(uri) as source:
                counts = excel_to_ion(source, open_target, options)
        except (SerdesError, TaskFailure) as exc:
            for new in written:
                with contextlib.suppress(Exception):
                    storage.delete(new)
            message = f"`{uri}`: {exc}" if isinstance(exc, SerdesError) else str(exc)
            raise TaskFailure(message) from None
        return {"uris": uris, "size": sum(counts.values())}


def _avro_options(operator: _SerdesOperator) -> Any:
    from yaml2dag.serdes.avro import AvroOptions

    defaults = AvroOptions()
    true_values = operator.texts("trueValues")
    false_values = operator.texts("falseValues")
    null_values = operator.texts("nullValues")
    if as_flag(operator.inferAllFields, "inferAllFields"):
        raise TaskFailure("`inferAllFields: true` is not supported by yaml2dag yet")
    return AvroOptions(
        schema=None if operator.schema_ is None else operator.text("schema_"),
        number_of_rows_to_scan=operator.number("numberOfRowsToScan"),
        date_format=operator.text("dateFormat"),
        time_format=operator.text("timeFormat"),
        datetime_format=operator.text("datetimeFormat"),
        decimal_separator=operator.text("decimalSeparator"),
        strict_schema=operator.flag("strictSchema"),
        time_zone=None if operator.timeZoneId is None else operator.text("timeZoneId"),
        on_bad_lines=operator.choice("onBadLines", "ERROR", "WARN", "SKIP"),
        warn=operator.log.warning,
        true_values=defaults.true_values if true_values is None else true_values,
        false_values=defaults.false_values if false_values is None else false_values,
        null_values=defaults.null_values if null_values is None else null_values,
    )


class IonToAvroOperator(_SerdesOperator, task_type=IonToAvro):
    """`io.kestra.plugin.serdes.avro.IonToAvro` (alias `avro.AvroWriter`): Ion rows → Avro; output `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri`."""
        from yaml2dag.serdes.avro import ion_to_avro

        options = _avro_options(self)
        uri, _ = self.convert(context, ".avro", lambda source, target: ion_to_avro(source, target, options))
        return {"uri": uri}


class AvroToIonOperator(_SerdesOperator, task_type=AvroToIon):
    """`io.kestra.plugin.serdes.avro.AvroToIon`: Avro → Ion rows; output `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri`."""
        from yaml2dag.serdes.avro import avro_to_ion

        uri, _ = self.convert(context, ".ion", avro_to_ion)
        return {"uri": uri}


class IonToParquetOperator(_SerdesOperator, task_type=IonToParquet):
    """`io.kestra.plugin.serdes.parquet.IonToParquet` (alias `parquet.ParquetWriter`): Ion → Parquet; `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri`."""
        from yaml2dag.serdes.parquet import ParquetOptions, ion_to_parquet

        avro = _avro_options(self)
        options = ParquetOptions(
            compression_codec=self.choice("compressionCodec", "UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"),
            parquet_version=self.choice("parquetVersion", "V1", "V2"),
            page_size=self.number("pageSize"),
            dictionary_page_size=self.number("dictionaryPageSize"),
        )
        uri, _ = self.convert(context, ".parquet", lambda source, target: ion_to_parquet(source, target, avro, options))
        return {"uri": uri}


class ParquetToIonOperator(_SerdesOperator, task_type=ParquetToIon):
    """`io.kestra.plugin.serdes.parquet.ParquetToIon`: Parquet → Ion rows; output `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Convert, then return `uri`."""
        from yaml2dag.serdes.parquet import parquet_to_ion

        uri, _ = self.convert(context, ".ion", parquet_to_ion)
        return {"uri": uri}
