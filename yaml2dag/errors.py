"""The one exception type for problems in a flow file, carrying where and what to change."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FlowError:
    """One problem in a flow file: where it is, what is wrong and what to write instead."""

    message: str
    file: str = "<string>"
    line: int | None = None
    column: int | None = None
    path: str = ""
    hint: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: "
        if self.path:
            text += f"{self.path}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, object]:
        """The error as a JSON-friendly dict (for `--json` output)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class FlowValidationError(Exception):
    """Raised when a flow file cannot be compiled; holds every problem found."""

    errors: list[FlowError] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class ExpressionError(Exception):
    """An expression that cannot be parsed; `offset` is the character index inside the source."""

    def __init__(self, message: str, source: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.message} in expression `{self.source}` at character {self.offset + 1}"


class RenderError(Exception):
    """An expression failed while a task rendered it (undefined variable, wrong type...)."""


class TaskFailure(RuntimeError):
    """A task failed the way its Kestra counterpart does (Fail, Assert, non-zero exit code...)."""
