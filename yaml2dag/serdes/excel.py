"""Excel (.xlsx) ↔ Ion, as Kestra's `IonToExcel` and `ExcelToIon` convert them (`openpyxl`, streaming modes).

openpyxl's write-only workbook streams rows to disk and its read-only workbook reads rows one at a
time, so memory stays bounded. Only the OOXML format (.xlsx) is read and written; legacy .xls
files are refused with a clear error.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO

from yaml2dag.serdes import SerdesError
from yaml2dag.serdes.ion import IonWriter, read_values
from yaml2dag.serdes.textvalues import TextFormats

_LONG_RANGE = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True)
class ExcelOptions:
    """Kestra's IonToExcel / ExcelToIon properties, rendered."""

    header: bool = True
    # IonToExcel
    styles: bool = True
    formats: TextFormats = field(default_factory=TextFormats)
    # ExcelToIon
    sheets_title: tuple[str, ...] = ()
    value_render: str = "UNFORMATTED_VALUE"
    date_time_render: str = "UNFORMATTED_VALUE"
    skip_empty_rows: bool = False
    skip_rows: int = 0


def ion_to_excel(sheets: list[tuple[str, BinaryIO]], target: BinaryIO, options: ExcelOptions) -> int:
    """Write each (title, Ion source) as one sheet of a new .xlsx; returns the rows written (all sheets).

    Map rows: with `header`, the first row's keys are the header row. List rows are refused with
    `header: true`, as in Kestra. Text starting with `Formula:` becomes a formula.
    """
    from openpyxl import Workbook

    options.formats.check()
    workbook = Workbook(write_only=True)
    total = 0
    for title, source in sheets:
        try:
            sheet = workbook.create_sheet(title)
        except ValueError as exc:
            raise SerdesError(f"invalid sheet title `{title}`: {exc}") from None
        total += _write_sheet(workbook, sheet, read_values(source), options)
    with tempfile.TemporaryFile() as spool:
        workbook.save(spool)
        spool.seek(0)
        shutil.copyfileobj(spool, target, 1 << 20)
    return total


class _CellValue:
    """Converts a row value to what openpyxl writes in a cell of `sheet`, as Kestra's IonToExcel does."""

    def __init__(self, sheet: Any, options: ExcelOptions) -> None:
        from openpyxl.cell import WriteOnlyCell

        self._cell = WriteOnlyCell
        self._sheet = sheet
        self._zone = options.formats.zone()
        self._number_format = options.formats.date_format if options.styles else "General"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if _LONG_RANGE[0] <= value <= _LONG_RANGE[1] else str(value)
        if isinstance(value, float):
            return value
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, dt.datetime | dt.date):
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(self._zone).date()
            written = self._cell(self._sheet, value=value)
            written.number_format = self._number_format
            return written
        if isinstance(value, str):
            return "=" + value[len("Formula:") :] if value.startswith("Formula:") else value
        from yaml2dag.expressions.values import java_string

        return java_string(value) if not isinstance(value, dt.time) else value.isoformat()


def _write_sheet(workbook: Any, sheet: Any, rows: Iterator[Any], options: ExcelOptions) -> int:
    cell = _CellValue(sheet, options)
    count = 0

    first = True
    for row in rows:
        count += 1
        if isinstance(row, list):
            if options.header:
                raise SerdesError(f"row {count}: a list row cannot be written with `header: true`")
            sheet.append([cell(value) for value in row])
        elif isinstance(row, dict):
            if first and options.header:
                sheet.append([str(key) for key in row])
            sheet.append([cell(value) for value in row.values()])
        first = False
    return count


def excel_to_ion(
    source: BinaryIO,
    open_target: Callable[[str], AbstractContextManager[BinaryIO]],
    options: ExcelOptions,
) -> dict[str, int]:
    """Write each selected sheet of an .xlsx to its own Ion file (`open_target(sheet title)`).

    Returns the rows read per sheet, the header row included (Kestra's `size` counts it).
    Numbers are doubles and date cells timestamps, as Apache POI reads them for Kestra.
    """
    from openpyxl import load_workbook
    from openpyxl.cell.read_only import EmptyCell

    if options.value_render == "FORMULA" or options.date_time_render == "FORMATTED_STRING":
        chosen = "valueRender: FORMULA" if options.value_render == "FORMULA" else "dateTimeRender: FORMATTED_STRING"
        raise SerdesError(f"`{chosen}` is not supported by yaml2dag yet")
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(source, spool, 1 << 20)
        spool.seek(0)
        if not zipfile.is_zipfile(spool):
            raise SerdesError("not an .xlsx file (legacy .xls and other formats are not supported by yaml2dag yet)")
        spool.seek(0)
        try:
            workbook = load_workbook(spool, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise SerdesError(f"not a valid .xlsx file: {exc}") from None
        try:
            titles = workbook.sheetnames
            missing = [title for title in options.sheets_title if title not in titles]
            if missing:
                raise SerdesError(f"sheets {missing} are not in the workbook (it has {titles})")
            selected = [title for title in titles if not options.sheets_title or title in options.sheets_title]
            counts: dict[str, int] = {}
            skipped = [0]
            for title in selected:
                rows = (
                    _row_values(row, options, EmptyCell)
                    for row in workbook[title].iter_rows()
                    if not _skip(skipped, options.skip_rows)
                )
                with open_target(title) as target:
                    counts[title] = _sheet_to_ion(rows, target, options.header)
            return counts
        finally:
            workbook.close()


def _skip(skipped: list[int], limit: int) -> bool:
    """Kestra's `skipRows`: one counter for the whole workbook, as in Kestra."""
    if skipped[0] < limit:
        skipped[0] += 1
        return True
    return False


def _row_values(row: tuple[Any, ...], options: ExcelOptions, empty: type) -> list[Any]:
    from openpyxl.utils.datetime import to_excel

    values: list[Any] = []
    for cell in row:
        if isinstance(cell, empty):
            continue
        value = cell.value
        if value is None:
            if not options.skip_empty_rows:
                values.append("")
        elif isinstance(value, bool | str):
            values.append(value)
        elif isinstance(value, int | float):
            values.append(float(value))
        elif isinstance(value, dt.datetime | dt.date | dt.time):
            if options.date_time_render == "SERIAL_NUMBER":
                values.append(float(to_excel(value)))
            elif isinstance(value, dt.datetime):
                values.append(value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value)
            elif isinstance(value, dt.date):
                values.append(value)
            else:
                values.append(value)
        else:
            values.append(str(value))
    return values


def _sheet_to_ion(rows: Iterator[list[Any]], target: BinaryIO, header: bool) -> int:
    from yaml2dag.expressions.values import java_string

    writer = IonWriter(target)
    count = 0
    names: list[str] | None = None
    for values in rows:
        count += 1
        if header and names is None:
            names = [java_string(value) for value in values]
            continue
        if names is None:
            writer.write(values)
        else:
            writer.write({name: (values[index] if index < len(values) else None) for index, name in enumerate(names)})
    writer.flush()
    return count
