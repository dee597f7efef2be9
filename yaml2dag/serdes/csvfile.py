"""CSV ↔ Ion, as Kestra's `CsvToIon` and `IonToCsv` convert them (Python's `csv` module, streamed)."""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from yaml2dag.serdes import SerdesError
from yaml2dag.serdes.ion import IonWriter, read_values
from yaml2dag.serdes.textvalues import TextConverter, TextFormats, check_charset

#: Kestra's null marker in CSV fields.
_NULL = "\\N"
#: What to do with a bad line: fail, log and skip, skip quietly, or keep it (missing fields null).
BAD_LINE_MODES = ("ERROR", "WARN", "SKIP", "KEEP")


def _no_warning(message: str) -> None:
    """Default warning sink: drop the message."""


@dataclass(frozen=True)
class CsvOptions:
    """Kestra's CsvToIon / IonToCsv properties, rendered."""

    header: bool = True
    field_separator: str = ","
    text_delimiter: str = '"'
    charset: str = "UTF-8"
    # CsvToIon
    skip_empty_rows: bool = False
    skip_rows: int = 0
    on_bad_lines: str = "ERROR"
    allow_extra_chars_after_closing_quote: bool = False
    max_field_size: int = 16 * 1024 * 1024
    warn: Callable[[str], None] = field(default=_no_warning, compare=False)
    # IonToCsv
    line_delimiter: str = "\n"
    quote_mode: str = "REQUIRED"
    formats: TextFormats = field(default_factory=TextFormats)

    def check(self) -> None:
        """Refuse options Kestra refuses, before reading anything."""
        for name, value in (("fieldSeparator", self.field_separator), ("textDelimiter", self.text_delimiter)):
            if len(value) != 1:
                raise SerdesError(f"`{name}` must be one character, got `{value}`")
        if self.field_separator == self.text_delimiter:
            raise SerdesError("`fieldSeparator` and `textDelimiter` must differ")
        if self.skip_rows < 0:
            raise SerdesError("`skipRows` must be 0 or more")
        if self.on_bad_lines not in BAD_LINE_MODES[:3] + ("KEEP",):
            raise SerdesError(f"`onBadLines` must be ERROR, WARN or SKIP, got `{self.on_bad_lines}`")
        if self.line_delimiter not in ("\n", "\r\n", "\r"):
            raise SerdesError("`lineDelimiter` must be \\n, \\r\\n or \\r")
        if self.quote_mode not in ("ALWAYS", "REQUIRED", "NON_NUMERIC"):
            raise SerdesError(f"`quoteMode` must be ALWAYS, REQUIRED or NON_NUMERIC, got `{self.quote_mode}`")
        check_charset(self.charset)


def _records(text: io.TextIOBase, options: CsvOptions) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line, fields or None for a line the parser refused, the parser's complaint)."""
    csv.field_size_limit(min(options.max_field_size, sys.maxsize))
    reader = csv.reader(
        text,
        delimiter=options.field_separator,
        quotechar=options.text_delimiter,
        strict=not options.allow_extra_chars_after_closing_quote,
    )
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, None, str(exc)
            continue
        yield line, record, ""


def csv_to_ion(source: BinaryIO, target: BinaryIO, options: CsvOptions) -> int:
    r"""Convert CSV bytes to Ion rows (maps with `header`, else lists of strings); returns the row count.

    As Kestra: the first record is the header; `skipRows` skips that many records after it; `\N`
    is null; a record whose field count differs from the header's is a bad line (`onBadLines`).
    """
    options.check()
    writer = IonWriter(target)
    text = io.TextIOWrapper(source, encoding=check_charset(options.charset), errors="strict", newline="")
    headers: list[str] | None = None
    skipped = 0
    line = 0
    try:
        for line, record, problem in _records(text, options):
            if record is None:
                _bad_line(options, f"line {line}: {problem}")
                continue
            if not record:
                if options.skip_empty_rows:
                    continue
                record = [""]
            if options.header and headers is None:
                headers = record
                continue
            if skipped < options.skip_rows:
                skipped += 1
                continue
            values = [None if value == _NULL else value for value in record]
            if headers is None:
                writer.write(values)
                continue
            if len(values) != len(headers):
                message = (
                    f"line {line}: bad line (field count mismatch): expected {len(headers)} fields "
                    f"as in the header, got {len(values)}"
                )
                if options.on_bad_lines != "KEEP":
                    _bad_line(options, message)
                    continue
            row = {name: (values[index] if index < len(values) else None) for index, name in enumerate(headers)}
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


def _bad_line(options: CsvOptions, message: str) -> None:
    if options.on_bad_lines == "ERROR":
        raise SerdesError(message)
    if options.on_bad_lines == "WARN":
        options.warn(f"Bad line encountered (skipped): {message}")


def _is_numeric(value: str) -> bool:
    body = value[1:] if value[:1] in "+-" else value
    return bool(body) and body.count(".") <= 1 and body.replace(".", "").isdigit() and body.isascii()


def ion_to_csv(source: BinaryIO, target: BinaryIO, options: CsvOptions) -> int:
    """Convert Ion rows to CSV; returns the row count.

    Map rows: with `header`, the first row's keys are the header; each row writes its values in
    its own key order, as Kestra does. List rows are refused with `header: true`, as in Kestra.
    """
    options.check()
    convert = TextConverter(options.formats)
    quote, separator, newline = options.text_delimiter, options.field_separator, options.line_delimiter
    doubled = quote + quote
    needs_quotes = re.compile("[" + re.escape(separator + quote) + "\r\n]").search
    always, non_numeric = options.quote_mode == "ALWAYS", options.quote_mode == "NON_NUMERIC"

    def field_text(value: Any) -> str:
        text = value if type(value) is str else convert(value)
        if text is None:
            return ""
        if always or needs_quotes(text) or (non_numeric and not _is_numeric(text)):
            return quote + text.replace(quote, doubled) + quote
        return text

    encoding = check_charset(options.charset)
    out = io.TextIOWrapper(target, encoding=encoding, errors="strict", newline="", write_through=False)
    count = 0
    first = True
    try:
        for row in read_values(source):
            count += 1
            if isinstance(row, list):
                if options.header:
                    raise SerdesError(f"row {count}: a list row cannot be written with `header: true`")
                out.write(separator.join(map(field_text, row)) + newline)
            elif isinstance(row, dict):
                if first and options.header:
                    out.write(separator.join(map(field_text, row)) + newline)
                out.write(separator.join(map(field_text, row.values())) + newline)
            first = False
        out.flush()
    except UnicodeEncodeError as exc:
        raise SerdesError(
            f"row {count}: `{exc.object[exc.start : exc.end]}` cannot be written in charset {options.charset}"
        ) from None
    finally:
        out.detach()
    return count
