"""Operators for Kestra's compression tasks, on Python's zipfile, tarfile, gzip, bz2, lzma and zlib.

Archives are read from a local copy (a ZIP needs to seek); every extracted byte is counted as it
is written, so a decompression bomb stops at `YAML2DAG_MAX_DECOMPRESSED_BYTES` (default 16 GiB) —
whatever sizes the archive declares — and an archive of more than `YAML2DAG_MAX_ARCHIVE_ENTRIES`
files (default 100,000) is refused. An entry whose name leaves the archive's folder (`../x`,
`/etc/x`) fails the task, as Kestra's path-traversal check does; links and devices are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO
from urllib.parse import quote

from yaml2dag import storage
from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.compress import (
    ARCHIVES,
    COMPRESSIONS,
    ArchiveCompress,
    ArchiveDecompress,
    FileCompress,
    FileDecompress,
)

#: Default most bytes one task extracts or decompresses.
DEFAULT_MAX_BYTES = 16 << 30
#: Default most files one archive may hold.
DEFAULT_MAX_ENTRIES = 100_000
_CHUNK = 1 << 20


def max_bytes() -> int:
    """Most bytes a task may decompress (`YAML2DAG_MAX_DECOMPRESSED_BYTES`)."""
    return int(os.environ.get("YAML2DAG_MAX_DECOMPRESSED_BYTES") or DEFAULT_MAX_BYTES)


def max_entries() -> int:
    """Most files an archive may hold (`YAML2DAG_MAX_ARCHIVE_ENTRIES`)."""
    return int(os.environ.get("YAML2DAG_MAX_ARCHIVE_ENTRIES") or DEFAULT_MAX_ENTRIES)


class Budget:
    """What is left of the bytes a task may decompress."""

    def __init__(self) -> None:
        self.limit = max_bytes()
        self.left = self.limit

    def copy(self, source: IO[bytes], target: IO[bytes] | BinaryIO) -> int:
        """Copy `source` to `target`, failing the task once the budget is spent."""
        total = 0
        while chunk := source.read(_CHUNK):
            self.left -= len(chunk)
            if self.left < 0:
                raise TaskFailure(
                    f"decompressed data exceeds {self.limit} bytes (YAML2DAG_MAX_DECOMPRESSED_BYTES): "
                    "refused as a possible decompression bomb"
                )
            target.write(chunk)
            total += len(chunk)
        return total


def compression_name(value: Any) -> str:
    """The rendered `compression`, checked."""
    name = str(value).strip().upper()
    if name not in COMPRESSIONS:
        raise TaskFailure(f"compression `{value}` is not supported by yaml2dag yet (use {', '.join(COMPRESSIONS)})")
    return name


def archive_name(value: Any) -> str:
    """The rendered `algorithm`, checked."""
    name = str(value).strip().upper()
    if name not in ARCHIVES:
        raise TaskFailure(f"archive format `{value}` is not supported by yaml2dag yet (use {', '.join(ARCHIVES)})")
    return name


class _Deflate:
    """A zlib (DEFLATE with header, as Commons Compress writes it) stream as a file object."""

    def __init__(self, handle: IO[bytes], mode: str) -> None:
        self.handle = handle
        self.reading = mode == "rb"
        self.engine: Any = zlib.decompressobj() if self.reading else zlib.compressobj()
        self.pending = b""

    def read(self, size: int = -1) -> bytes:
        while not self.engine.eof and (size < 0 or len(self.pending) < size):
            data = self.handle.read(_CHUNK)
            if not data:
                break
            self.pending += self.engine.decompress(data, _CHUNK)
            while self.engine.unconsumed_tail and (size < 0 or len(self.pending) < size):
                self.pending += self.engine.decompress(self.engine.unconsumed_tail, _CHUNK)
        taken = self.pending if size < 0 else self.pending[:size]
        self.pending = self.pending[len(taken) :]
        return taken

    def write(self, data: bytes) -> int:
        self.handle.write(self.engine.compress(data))
        return len(data)

    def close(self) -> None:
        if not self.reading:
            self.handle.write(self.engine.flush())


@contextlib.contextmanager
def compressed(path: Path, compression: str, mode: str) -> Iterator[IO[bytes]]:
    """Open the local file `path` through `compression` (`rb` or `wb`)."""
    import bz2
    import gzip
    import lzma

    if compression == "DEFLATE":
        with path.open(mode) as handle:
            stream = _Deflate(handle, mode)
            yield stream  # type: ignore[misc]
            stream.close()
        return
    openers: dict[str, Any] = {
        "GZIP": gzip.open,
        "BZIP2": bz2.open,
        "XZ": functools.partial(lzma.open, format=lzma.FORMAT_XZ),
        "LZMA": functools.partial(lzma.open, format=lzma.FORMAT_ALONE),
    }
    with openers[compression](path, mode) as opened:
        yield opened


def _corrupt(what: str, exc: BaseException) -> TaskFailure:
    return TaskFailure(f"{what} cannot be read: {type(exc).__name__}: {exc}")


class _CompressOperator(KestraOperator):
    """Shared: a private local folder, and the storage file of `from` copied into it."""

    ui_color = "#fff3e0"

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A temporary local folder, removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="yaml2dag-compress-") as folder:
            yield Path(folder)

    def local_copy(self, folder: Path) -> Path:
        """The `from` file of the storage, copied to `folder`."""
        uri = str(self.from_)
        if not storage.is_storage_uri(uri):
            raise TaskFailure(f"`from` must be a kestra:// URI of the internal storage, got `{uri}`")
        return storage.download_local(uri, folder / "source")


class FileCompressOperator(_CompressOperator, task_type=FileCompress):
    """`io.kestra.plugin.compress.FileCompress`: compress one file; outputs `uri` (`<name>.<gz|bz2|…>`)."""

    def run(self, context: Any) -> dict[str, Any]:
        """Compress `from` into a new storage file."""
        compression = compression_name(self.compression)
        name = PurePosixPath(str(self.from_)).name or "file"
        with self.workspace() as folder:
            source = self.local_copy(folder)
            target = folder / f"{name}.{COMPRESSIONS[compression]}"
            with source.open("rb") as reader, compressed(target, compression, "wb") as writer:
                size = storage.copy_stream(reader, writer)  # type: ignore[arg-type]
            uri = storage.upload_local(context, target)
        self.log.info("Compressed %d bytes with %s into %s", size, compression, uri)
        return {"uri": uri}


class FileDecompressOperator(_CompressOperator, task_type=FileDecompress):
    """`io.kestra.plugin.compress.FileDecompress`: decompress one file (bounded); outputs `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Decompress `from` into a new storage file."""
        compression = compression_name(self.compression)
        name = PurePosixPath(str(self.from_)).name or "file"
        extension = "." + COMPRESSIONS[compression]
        name = name[: -len(extension)] if name.endswith(extension) and len(name) > len(extension) else name
        with self.workspace() as folder:
            source = self.local_copy(folder)
            try:
                with compressed(source, compression, "rb") as reader, storage.open_write(context, name) as (uri, out):
                    size = Budget().copy(reader, out)
            except (OSError, EOFError, ValueError, zlib.error) as exc:
                raise _corrupt(f"`from` as {compression}", exc) from None
        self.log.info("Decompressed %s: %d bytes into %s", compression, size, uri)
        return {"uri": uri}


def _entry_name(name: str) -> str:
    """An archive entry's path, refused when it would leave the archive's folder (zip-slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise TaskFailure(f"Path traversal attempt detected in archive entry: {name}")
    return name


class ArchiveDecompressOperator(_CompressOperator, task_type=ArchiveDecompress):
    """`io.kestra.plugin.compress.ArchiveDecompress`: extract every file; outputs `files` (name → URI)."""

    def run(self, context: Any) -> dict[str, Any]:
        """Extract the archive's files into the task run's storage."""
        algorithm = archive_name(self.algorithm)
        budget = Budget()
        with self.workspace() as folder:
            archive = self.local_copy(folder)
            if self.compression is not None:
                compression = compression_name(self.compression)
                inner = folder / "archive"
                try:
                    with compressed(archive, compression, "rb") as reader, inner.open("wb") as out:
                        budget.copy(reader, out)
                except (OSError, EOFError, ValueError, zlib.error) as exc:
                    raise _corrupt(f"`from` as {compression}", exc) from None
                archive.unlink()
                archive = inner
            files = self.extract(context, archive, algorithm, budget)
        self.log.info(
            "Extracted %d file(s), %d bytes, from the %s archive", len(files), budget.limit - budget.left, algorithm
        )
        return {"files": files}

    def extract(self, context: Any, archive: Path, algorithm: str, budget: Budget) -> dict[str, str]:
        """Store each regular file of `archive`; entry name → kestra:// URI."""
        files: dict[str, str] = {}
        used: set[str] = set()
        try:
            for name, opener in _entries(archive, algorithm):
                if len(files) >= max_entries():
                    raise TaskFailure(
                        f"the archive holds more than {max_entries()} files (YAML2DAG_MAX_ARCHIVE_ENTRIES)"
                    )
                uri = self.entry_uri(context, name, used)
                with opener() as reader, storage.open_uri_write(uri) as out:
                    budget.copy(reader, out)
                files[name] = uri
        except TaskFailure:
            raise
        except (OSError, EOFError, RuntimeError, zlib.error) as exc:
            raise _corrupt(f"`from` as a {algorithm} archive", exc) from None
        return files

    def entry_uri(self, context: Any, name: str, used: set[str]) -> str:
        """The file's URI: its base name (spaces as `_`, as Kestra), in a numbered folder when taken."""
        base = PurePosixPath(name.replace("\\", "/")).name.replace(" ", "_") or "file"
        uri = storage.new_file_uri(context, base)
        if uri in used:
            uri = storage.task_run_uri(context) + f"/{len(used)}/" + quote(base, safe="@+=,;:!$&'()*~")
        used.add(uri)
        return uri


def _entries(archive: Path, algorithm: str) -> Iterator[tuple[str, Any]]:
    """(name, opener) of each regular file of the archive; links, devices and folders are skipped."""
    import tarfile
    import zipfile

    if algorithm == "TAR":
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                if member.isfile():
                    name = _entry_name(member.name)
                    yield name, lambda member=member: _closing(tar.extractfile(member))
        return
    try:
        handle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise TaskFailure(f"`from` is not a {algorithm} archive: {exc}") from None
    with handle:
        for info in handle.infolist():
            if not info.is_dir():
                name = _entry_name(info.filename)
                yield name, lambda info=info: handle.open(info)


def _closing(handle: IO[bytes] | None) -> Any:
    if handle is None:
        raise TaskFailure("an archive entry cannot be read")
    return contextlib.closing(handle)


def _sources(value: Any) -> list[tuple[str, str]]:
    """`from` of ArchiveCompress as (entry path, kestra:// URI) pairs."""
    if isinstance(value, str):
        value = value.strip()
        if not storage.is_storage_uri(value):
            raise TaskFailure("`from` must be a map of entry path → kestra:// URI, a list of maps, or an Ion file URI")
        from yaml2dag.serdes.ion import read_values

        with storage.open_read(value) as reader:
            value = list(read_values(reader))
    maps = value if isinstance(value, list) else [value]
    pairs = []
    for item in maps:
        if not isinstance(item, dict):
            raise TaskFailure("`from` must hold maps of entry path → kestra:// URI")
        pairs += [(_entry_name(str(path)), str(uri)) for path, uri in item.items()]
    return pairs


class ArchiveCompressOperator(_CompressOperator, task_type=ArchiveCompress):
    """`io.kestra.plugin.compress.ArchiveCompress`: write storage files into one archive; outputs `uri`."""

    def run(self, context: Any) -> dict[str, Any]:
        """Build the archive locally, then store it."""
        algorithm = archive_name(self.algorithm)
        compression = compression_name(self.compression) if self.compression is not None else None
        pairs = _sources(self.from_)
        with self.workspace() as folder:
            archive = folder / ("archive." + ("tar" if algorithm == "TAR" else algorithm.lower()))
            self.write(folder, archive, algorithm, pairs)
            if compression is not None:
                target = Path(f"{archive}.{COMPRESSIONS[compression]}")
                with archive.open("rb") as reader, compressed(target, compression, "wb") as writer:
                    storage.copy_stream(reader, writer)  # type: ignore[arg-type]
                archive = target
            uri = storage.upload_local(context, archive)
        self.log.info("Wrote a %s archive of %d file(s) into %s", algorithm, len(pairs), uri)
        return {"uri": uri}

    def write(self, folder: Path, archive: Path, algorithm: str, pairs: list[tuple[str, str]]) -> None:
        """Write each storage file under its entry path."""
        import tarfile
        import zipfile

        local = folder / "entry"
        if algorithm == "TAR":
            with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
                for path, uri in pairs:
                    storage.download_local(uri, local)
                    tar.add(local, arcname=path)
            return
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            for path, uri in pairs:
                storage.download_local(uri, local)
                zipped.write(local, arcname=path)
