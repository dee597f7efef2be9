"""Kestra's core storage tasks (`io.kestra.plugin.core.storage.*`) on yaml2dag's storage.

Write, Concat, Split, Delete, Size, Reverse, DeduplicateItems, FilterItems and
PurgeCurrentExecutionFiles, also under their legacy `io.kestra.core.tasks.storages.` names.
Files are `kestra://` URIs resolved by `yaml2dag.storage`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from yaml2dag.tasktypes.base import Flag, TaskBase, Text, choice, is_expression, literal_or_expression, rendered

_STORAGE = "yaml2dag.operators.storage"
_CORE = "io.kestra.plugin.core.storage."
_LEGACY = "io.kestra.core.tasks.storages."
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*$", re.IGNORECASE)


def _types(name: str) -> tuple[str, ...]:
    return (_CORE + name, _LEGACY + name)


def parse_bytes(text: str) -> int:
    """A readable size (`10MB`, `512KB`, `1024`) in bytes (Micronaut's units: 1 KB = 1024 bytes)."""
    match = _BYTES.match(str(text))
    if not match:
        raise ValueError(f"`{text}` is not a size such as 10MB, 512KB or 1024")
    number, unit = float(match.group(1)), match.group(2).upper().rstrip("B")
    return int(number * 1024 ** ("", "K", "M", "G", "T").index(unit))


def _size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be a size such as 10MB (or an expression rendering to one)")
    if not is_expression(value):
        parse_bytes(value)
    return value


def _count(value: Any) -> Any:
    if isinstance(value, bool) or not (isinstance(value, int) or is_expression(value)):
        raise ValueError("must be a whole number (or an expression rendering to one)")
    if isinstance(value, int) and value < 1:
        raise ValueError("must be at least 1")
    return value


#: A readable size such as `10MB`.
ByteSize = Annotated[
    str | int,
    AfterValidator(_size),
    literal_or_expression(
        {
            "anyOf": [
                {"type": "integer"},
                {"type": "string", "pattern": "^\\s*\\d+(\\.\\d+)?\\s*([KMGTkmgt]?[Bb]?)\\s*$"},
            ]
        }
    ),
]
#: A positive whole number, or an expression.
Count = Annotated[int | str, AfterValidator(_count), literal_or_expression({"type": "integer", "minimum": 1})]


class Write(TaskBase):
    """Write `content` to a new storage file; output `uri`."""

    TYPES: ClassVar = (_CORE + "Write",)
    OPERATOR: ClassVar = f"{_STORAGE}:WriteOperator"

    content: Text = rendered(description="The text to write (UTF-8).")
    extension: Text = rendered(".ion", description="Extension of the file made (with its dot).")


class Concat(TaskBase):
    """Concatenate storage files into one; output `uri`."""

    TYPES: ClassVar = _types("Concat")
    OPERATOR: ClassVar = f"{_STORAGE}:ConcatOperator"

    files: list[Text] | Text = rendered(
        description="kestra:// URIs to concatenate, in order: a list, or a JSON list as text (an expression)."
    )
    separator: Text | None = rendered(None, description="Written after each file (also the last one).")
    extension: Text = rendered(".tmp", description="Extension of the file made (with its dot).")


class Split(TaskBase):
    """Split a storage file by lines into several files; output `uris`."""

    TYPES: ClassVar = _types("Split")
    OPERATOR: ClassVar = f"{_STORAGE}:SplitOperator"

    from_: Text = rendered(alias="from", description="The kestra:// URI of the file to split.")
    bytes_: ByteSize | None = rendered(None, alias="bytes", description="Size of each part, e.g. 10MB.")
    partitions: Count | None = rendered(None, description="Number of parts (lines dealt round-robin).")
    rows: Count | None = rendered(None, description="Lines in each part.")
    separator: Text = rendered("\n", description="Written after each line in the parts.")

    @model_validator(mode="after")
    def _one_way(self) -> Split:
        given = [name for name in ("bytes_", "partitions", "rows") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of `bytes`, `partitions` or `rows`")
        return self


class Delete(TaskBase):
    """Delete a storage file; outputs `uri` and `deleted`."""

    TYPES: ClassVar = _types("Delete")
    OPERATOR: ClassVar = f"{_STORAGE}:DeleteOperator"

    uri: Text = rendered(description="The kestra:// URI of the file to delete.")
    errorOnMissing: Flag = rendered(False, description="Fail when there is no such file.")


class Size(TaskBase):
    """The size of a storage file; output `size` (bytes)."""

    TYPES: ClassVar = _types("Size")
    OPERATOR: ClassVar = f"{_STORAGE}:SizeOperator"

    uri: Text = rendered(description="The kestra:// URI of the file.")


class Reverse(TaskBase):
    """Write the lines of a storage file in reverse order; output `uri`."""

    TYPES: ClassVar = _types("Reverse")
    OPERATOR: ClassVar = f"{_STORAGE}:ReverseOperator"

    from_: Text = rendered(alias="from", description="The kestra:// URI of the file.")
    separator: Text = rendered("\n", description="Written after each line.")
    charset: Text = rendered("UTF-8", description="Encoding of the file.")


class DeduplicateItems(TaskBase):
    """Keep the last item of each key of an Ion row file; outputs `uri`, `numKeys`, counts."""

    TYPES: ClassVar = _types("DeduplicateItems")
    OPERATOR: ClassVar = f"{_STORAGE}:DeduplicateItemsOperator"

    from_: Text = rendered(alias="from", description="The kestra:// URI of an Ion row file.")
    expr: Text = rendered(by_task=True, description="Expression rendered with each item's fields: the item's key.")


class FilterItems(TaskBase):
    """Keep (or drop) the items of an Ion row file matching a condition; outputs `uri` and counts."""

    TYPES: ClassVar = _types("FilterItems")
    OPERATOR: ClassVar = f"{_STORAGE}:FilterItemsOperator"

    from_: Text = rendered(alias="from", description="The kestra:// URI of an Ion row file.")
    filterCondition: Text = rendered(
        by_task=True, description="Expression rendered with each item's fields; truthy means a match."
    )
    filterType: choice("INCLUDE", "EXCLUDE") = Field(  # type: ignore[valid-type]
        "INCLUDE", description="INCLUDE keeps the matching items, EXCLUDE drops them."
    )
    errorOrNullBehavior: choice("FAIL", "INCLUDE", "EXCLUDE") = Field(  # type: ignore[valid-type]
        "FAIL", description="When the condition fails or renders null: FAIL the task, INCLUDE or EXCLUDE the item."
    )


class PurgeCurrentExecutionFiles(TaskBase):
    """Delete every storage file of the current run; output `uris` (those deleted)."""

    TYPES: ClassVar = (_CORE + "PurgeCurrentExecutionFiles", _CORE + "PurgeExecution", _LEGACY + "PurgeExecution")
    OPERATOR: ClassVar = f"{_STORAGE}:PurgeCurrentExecutionFilesOperator"


class LocalFiles(TaskBase):
    """Files into the working directory (`inputs`) and out to the storage (`outputs`): Kestra's legacy task.

    In a WorkingDirectory the files go into (and come from) its shared folder; elsewhere into a
    folder of this task only. Kestra deprecates it for the script tasks' `inputFiles` / `outputFiles`.
    """

    TYPES: ClassVar = (_CORE + "LocalFiles", _LEGACY + "LocalFiles")
    OPERATOR: ClassVar = f"{_STORAGE}:LocalFilesOperator"
    USES_WORKING_DIRECTORY: ClassVar[bool] = True

    inputs: dict[str, Text] | Text | None = rendered(
        None,
        description="File name → content, or a kestra:// URI whose file is copied (or an expression rendering "
        "to such a map).",
    )
    outputs: list[Text] | None = rendered(
        None, description="Globs of the working directory's files sent to the storage; output `uris` (name → URI)."
    )


TASK_TYPES: tuple[type[TaskBase], ...] = (
    LocalFiles,
    Write,
    Concat,
    Split,
    Delete,
    Size,
    Reverse,
    DeduplicateItems,
    FilterItems,
    PurgeCurrentExecutionFiles,
)
