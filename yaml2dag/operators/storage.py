"""Operators of Kestra's core storage tasks: files in, files out, streamed through `yaml2dag.storage`.

Every task reads and writes by chunks or lines, so a file of any size runs in bounded memory;
Reverse spools its input to a local temporary file and reads it backwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from yaml2dag import storage
from yaml2dag.errors import RenderError, TaskFailure
from yaml2dag.expressions import is_truthy_text, render
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.base import as_flag
from yaml2dag.tasktypes.storage import (
    Concat,
    DeduplicateItems,
    Delete,
    FilterItems,
    LocalFiles,
    PurgeCurrentExecutionFiles,
    Reverse,
    Size,
    Split,
    Write,
    parse_bytes,
)


def new_name(extension: str | None) -> str:
    """A fresh file name with `extension` (Kestra names its temporary files at random too)."""
    suffix = str(extension or "")
    if suffix and not suffix.startswith("."):
        suffix = "." + suffix
    if "/" in suffix or "\\" in suffix:
        raise TaskFailure(f"`extension` {extension!r} must not hold a path separator")
    return uuid.uuid4().hex[:16] + suffix


def extension_of(uri: str) -> str:
    """The extension of a URI's file name (`.tmp` when it has none), as Kestra's Split keeps it."""
    name = uri.rsplit("/", 1)[-1]
    return name[name.rindex(".") :] if "." in name else ".tmp"


def lines_of(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of a binary stream without their line ending (LF or CR LF), one at a time."""
    for line in stream:
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        yield line


def _whole_number(value: Any, name: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise TaskFailure(f"`{name}` must be a whole number, got `{value}`") from None
    if number < 1:
        raise TaskFailure(f"`{name}` must be at least 1, got {number}")
    return number


class WriteOperator(KestraOperator, task_type=Write):
    """`io.kestra.plugin.core.storage.Write`: `content` to a new file; output `uri`."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        with storage.open_write(context, new_name(self.extension)) as (uri, target):
            target.write(str(self.content).encode("utf-8"))
        return {"uri": uri}


class ConcatOperator(KestraOperator, task_type=Concat):
    """`io.kestra.plugin.core.storage.Concat`: files one after the other (each followed by `separator`)."""

    ui_color = "#f1f8e9"

    def _files(self) -> list[str]:
        files = self.files
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except json.JSONDecodeError:
                raise TaskFailure(f"`files` must be a list of kestra:// URIs or a JSON list, got `{files}`") from None
        if not isinstance(files, list) or not all(isinstance(item, str) for item in files):
            raise TaskFailure(f"`files` must be a list of kestra:// URIs, got `{files}`")
        return files

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        separator = None if self.separator is None else str(self.separator).encode("utf-8")
        with storage.open_write(context, new_name(self.extension)) as (uri, target):
            for source_uri in self._files():
                with storage.open_read(source_uri) as source:
                    storage.copy_stream(source, target)
                if separator is not None:
                    target.write(separator)
        return {"uri": uri}


class SplitOperator(KestraOperator, task_type=Split):
    """`io.kestra.plugin.core.storage.Split`: a file's lines into parts by `bytes`, `rows` or `partitions`."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        source_uri = str(self.from_)
        extension = extension_of(source_uri)
        separator = str(self.separator).encode("utf-8")
        with storage.open_read(source_uri) as source:
            if self.partitions is not None:
                parts = _whole_number(self.partitions, "partitions")
                uris = self._partition(context, source, parts, extension, separator)
            else:
                if self.bytes_ is not None:
                    try:
                        limit = parse_bytes(str(self.bytes_))
                    except ValueError as exc:
                        raise TaskFailure(f"`bytes`: {exc}") from None
                    full = lambda size, count: size >= limit  # noqa: E731
                else:
                    rows = _whole_number(self.rows, "rows")
                    full = lambda size, count: count >= rows  # noqa: E731
                uris = self._split(context, source, full, extension, separator)
        self.log.info("Split %s into %d file(s)", source_uri, len(uris))
        return {"uris": uris}

    @staticmethod
    def _split(context: Any, source: BinaryIO, full: Any, extension: str, separator: bytes) -> list[str]:
        uris: list[str] = []
        with contextlib.ExitStack() as stack:
            target: BinaryIO | None = None
            size = count = 0
            for line in lines_of(source):
                if target is None or full(size, count):
                    stack.close()
                    uri, target = stack.enter_context(storage.open_write(context, new_name(extension)))
                    uris.append(uri)
                    size = count = 0
                data = line + separator
                target.write(data)
                size += len(data)
                count += 1
        return uris

    @staticmethod
    def _partition(context: Any, source: BinaryIO, partitions: int, extension: str, separator: bytes) -> list[str]:
        uris: list[str] = []
        with contextlib.ExitStack() as stack:
            targets = []
            for _ in range(partitions):
                uri, target = stack.enter_context(storage.open_write(context, new_name(extension)))
                uris.append(uri)
                targets.append(target)
            for index, line in enumerate(lines_of(source)):
                targets[index % partitions].write(line + separator)
        return uris


class DeleteOperator(KestraOperator, task_type=Delete):
    """`io.kestra.plugin.core.storage.Delete`: delete a file; outputs `uri`, `deleted`."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        uri = str(self.uri)
        deleted = storage.delete(uri)
        if not deleted and as_flag(self.errorOnMissing, "errorOnMissing"):
            raise TaskFailure(f"Unable to find file '{uri}'")
        return {"uri": uri, "deleted": deleted}


class SizeOperator(KestraOperator, task_type=Size):
    """`io.kestra.plugin.core.storage.Size`: output `size`, the file's size in bytes."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        return {"size": storage.file_size(str(self.uri))}


class ReverseOperator(KestraOperator, task_type=Reverse):
    """`io.kestra.plugin.core.storage.Reverse`: the file's lines, last first (each followed by `separator`)."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        source_uri = str(self.from_)
        charset = str(self.charset)
        try:
            "".encode(charset)
        except LookupError:
            raise TaskFailure(f"`charset`: unknown encoding `{charset}`") from None
        separator = str(self.separator).encode(charset)
        with tempfile.TemporaryDirectory(prefix="yaml2dag-reverse-") as folder:
            local = storage.download_local(source_uri, Path(folder, "input"))
            with (
                open(local, "rb") as source,
                storage.open_write(context, new_name(extension_of(source_uri))) as (
                    uri,
                    target,
                ),
            ):
                for line in reversed_lines(source):
                    target.write(line + separator)
        return {"uri": uri}


def reversed_lines(source: BinaryIO, chunk_size: int = storage.CHUNK_SIZE) -> Iterator[bytes]:
    """The lines of a seekable binary file, last first, reading it backwards by chunks."""
    source.seek(0, os.SEEK_END)
    position = source.tell()
    pending = b""
    first = True
    while position > 0:
        step = min(chunk_size, position)
        position -= step
        source.seek(position)
        pending = source.read(step) + pending
        parts = pending.split(b"\n")
        pending = parts[0]
        for part in reversed(parts[1:]):
            if first and part == b"":
                first = False
                continue  # the file's final newline ends the last line, it starts no empty line
            first = False
            yield part[:-1] if part.endswith(b"\r") else part
    if pending or not first:
        yield pending[:-1] if pending.endswith(b"\r") else pending


class _ItemsOperator(KestraOperator):
    """Reads an Ion row file line by line, rendering an expression with each item's fields."""

    def _items(self, source_uri: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
        from yaml2dag.serdes import SerdesError
        from yaml2dag.serdes.ion import loads

        with storage.open_read(source_uri) as source:
            for number, line in enumerate(lines_of(source), start=1):
                if not line.strip():
                    continue
                try:
                    values = loads(line.decode("utf-8"))
                except (SerdesError, UnicodeDecodeError) as exc:
                    raise TaskFailure(f"`{source_uri}` line {number} is not an Ion item: {exc}") from None
                item = values[0] if values else None
                yield line, item if isinstance(item, dict) else {}

    def _render_item(self, context: Any, expression: str, item: dict[str, Any]) -> str:
        return render(expression, {**self.kestra_context(context), **item})


class DeduplicateItemsOperator(_ItemsOperator, task_type=DeduplicateItems):
    """`io.kestra.plugin.core.storage.DeduplicateItems`: keep the last item of each `expr` key."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        source_uri = str(self.from_)
        last: dict[str, int] = {}
        for offset, (_, item) in enumerate(self._items(source_uri)):
            last[self._key(context, item)] = offset
        processed = dropped = 0
        with storage.open_write(context, new_name(".ion")) as (uri, target):
            for offset, (line, item) in enumerate(self._items(source_uri)):
                if last.get(self._key(context, item)) == offset:
                    target.write(line + b"\n")
                else:
                    dropped += 1
                processed += 1
        return {"uri": uri, "numKeys": len(last), "processedItemsTotal": processed, "droppedItemsTotal": dropped}

    def _key(self, context: Any, item: dict[str, Any]) -> str:
        try:
            return self._render_item(context, str(self.expr), item)
        except RenderError as exc:
            raise TaskFailure(f"`expr` cannot be rendered for the item {item}: {exc}") from None


class FilterItemsOperator(_ItemsOperator, task_type=FilterItems):
    """`io.kestra.plugin.core.storage.FilterItems`: keep (INCLUDE) or drop (EXCLUDE) the matching items."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        processed = dropped = 0
        with storage.open_write(context, new_name(".ion")) as (uri, target):
            for line, item in self._items(str(self.from_)):
                keep = self._keep(context, item)
                if keep:
                    target.write(line + b"\n")
                else:
                    dropped += 1
                processed += 1
        return {"uri": uri, "processedItemsTotal": processed, "droppedItemsTotal": dropped}

    def _keep(self, context: Any, item: dict[str, Any]) -> bool:
        try:
            rendered = self._render_item(context, str(self.filterCondition), item)
        except RenderError as exc:
            if self.errorOrNullBehavior == "FAIL":
                raise TaskFailure(f"`filterCondition` cannot be evaluated for the item {item}: {exc}") from None
            return self.errorOrNullBehavior == "INCLUDE"
        match = is_truthy_text(rendered)
        return match if self.filterType == "INCLUDE" else not match


class PurgeCurrentExecutionFilesOperator(KestraOperator, task_type=PurgeCurrentExecutionFiles):
    """`io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles`: delete this run's files; output `uris`."""

    ui_color = "#f1f8e9"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        namespace, flow_id, run_id, _, _ = storage.run_location(context)
        deleted = storage.delete_tree(storage.execution_uri(namespace, flow_id, run_id))
        self.log.info("Deleted %d file(s) of this execution", len(deleted))
        return {"uris": deleted}


class LocalFilesOperator(KestraOperator, task_type=LocalFiles):
    """`io.kestra.plugin.core.storage.LocalFiles`: write `inputs` into the working directory, send `outputs`.

    Inside a WorkingDirectory the task restores the shared folder, writes and collects there, and
    stores the folder again for the next task (as the script tasks do); elsewhere it works in a
    folder of its own. Output `uris`: each collected file's relative path → its `kestra://` URI.
    """

    ui_color = "#f1f8e9"
    #: The WorkingDirectory whose shared folder this task works in (set by the plan), or None.
    working_directory: str | None = None

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        from yaml2dag.operators.scripts import restore_directory, save_directory
        from yaml2dag.operators.working_files import upload_output_files, write_input_files

        with tempfile.TemporaryDirectory(prefix="yaml2dag-localfiles-") as folder:
            workdir = Path(folder)
            if self.working_directory:
                restore_directory(context, self.working_directory, workdir)
            write_input_files(self.inputs, workdir)
            uris = upload_output_files(context, [str(glob) for glob in self.outputs or []], workdir)
            if self.working_directory:
                save_directory(context, self.working_directory, workdir)
        self.log.info("Sent %d output file(s) to the storage", len(uris))
        return {"uris": uris}
