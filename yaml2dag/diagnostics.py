"""Located errors collected while a flow is checked: every check of every part of a flow adds to one `Collector`."""

from __future__ import annotations

from yaml2dag.errors import FlowError
from yaml2dag.loader import DocPath, PositionIndex, format_path


class Collector:
    """Accumulates located errors for one file; the checks of every part of a flow add to it."""

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.positions = PositionIndex(text)
        self.errors: list[FlowError] = []

    def add(self, path: DocPath, message: str, hint: str = "", prefer_key: bool = True) -> None:
        line, column = self.positions.locate(path, prefer_key=prefer_key)
        self.errors.append(FlowError(message, self.filename, line, column, format_path(path), hint))

    def add_at(self, path: DocPath, message: str, column_offset: int, hint: str = "") -> None:
        line, column = self.positions.value_mark(path)
        if column is not None:
            column += column_offset
        self.errors.append(FlowError(message, self.filename, line, column, format_path(path), hint))
