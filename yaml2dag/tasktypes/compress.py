"""Kestra's compression tasks (`io.kestra.plugin.compress.*`): archives (ZIP, JAR, TAR) and single files.

Python's standard library does the work (zipfile, tarfile, gzip, bz2, lzma, zlib). The formats
Kestra reads through Apache Commons Compress that it has no module for (AR, ARJ, CPIO, DUMP
archives; Brotli, Deflate64, LZ4, Snappy, Z, Zstandard compression) are located "not supported
by yaml2dag yet" errors.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from yaml2dag.tasktypes.base import TaskBase, Text, is_expression, literal_or_expression, rendered

_OPS = "yaml2dag.operators.compress"
_P = "io.kestra.plugin.compress."

#: Archive formats yaml2dag reads and writes.
ARCHIVES = ("ZIP", "JAR", "TAR")
#: Archive formats Kestra knows and yaml2dag does not.
OTHER_ARCHIVES = ("AR", "ARJ", "CPIO", "DUMP")
#: Compressions yaml2dag reads and writes (file extension of a compressed file).
COMPRESSIONS = {"GZIP": "gz", "BZIP2": "bz2", "XZ": "xz", "LZMA": "lzma", "DEFLATE": "deflate"}
#: Compressions Kestra knows and yaml2dag does not.
OTHER_COMPRESSIONS = ("BROTLI", "DEFLATE64", "LZ4BLOCK", "LZ4FRAME", "SNAPPY", "SNAPPYFRAME", "Z", "ZSTD")


def _one_of(supported: tuple[str, ...], others: tuple[str, ...], what: str) -> Any:
    def check(value: Any) -> Any:
        if is_expression(value):
            return value
        if value in others:
            raise ValueError(f"{what} `{value}` is not supported by yaml2dag yet (use {', '.join(supported)})")
        if value not in supported:
            raise ValueError(f"must be one of {', '.join(supported + others)}")
        return value

    return check


Archive = Annotated[
    str,
    AfterValidator(_one_of(ARCHIVES, OTHER_ARCHIVES, "archive format")),
    literal_or_expression({"enum": list(ARCHIVES)}),
]
Compression = Annotated[
    str,
    AfterValidator(_one_of(tuple(COMPRESSIONS), OTHER_COMPRESSIONS, "compression")),
    literal_or_expression({"enum": list(COMPRESSIONS)}),
]


class ArchiveDecompress(TaskBase):
    """Extract every file of an archive into the storage; outputs `files` (entry name → kestra:// URI)."""

    TYPES: ClassVar = (_P + "ArchiveDecompress",)
    OPERATOR: ClassVar = f"{_OPS}:ArchiveDecompressOperator"

    from_: Text = rendered(alias="from", description="kestra:// URI of the archive.")
    algorithm: Archive = rendered(description="Archive format: ZIP, JAR or TAR.")
    compression: Compression | None = rendered(None, description="Compression around the archive (GZIP for .tar.gz…).")


class ArchiveCompress(TaskBase):
    """Write an archive of storage files; outputs `uri`."""

    TYPES: ClassVar = (_P + "ArchiveCompress",)
    OPERATOR: ClassVar = f"{_OPS}:ArchiveCompressOperator"

    from_: dict[str, Any] | list[dict[str, Any]] | Text = rendered(
        alias="from",
        description="Entry path → kestra:// URI: a map, a list of maps, or the kestra:// URI of an Ion file of maps.",
    )
    algorithm: Archive = rendered(description="Archive format: ZIP, JAR or TAR.")
    compression: Compression | None = rendered(None, description="Compression around the archive (GZIP for .tar.gz…).")


class FileCompress(TaskBase):
    """Compress one storage file; outputs `uri`."""

    TYPES: ClassVar = (_P + "FileCompress",)
    OPERATOR: ClassVar = f"{_OPS}:FileCompressOperator"

    from_: Text = rendered(alias="from", description="kestra:// URI of the file.")
    compression: Compression = rendered(description="GZIP, BZIP2, XZ, LZMA or DEFLATE.")


class FileDecompress(TaskBase):
    """Decompress one storage file; outputs `uri`."""

    TYPES: ClassVar = (_P + "FileDecompress",)
    OPERATOR: ClassVar = f"{_OPS}:FileDecompressOperator"

    from_: Text = rendered(alias="from", description="kestra:// URI of the compressed file.")
    compression: Compression = rendered(description="GZIP, BZIP2, XZ, LZMA or DEFLATE.")


TASK_TYPES: tuple[type[TaskBase], ...] = (ArchiveDecompress, ArchiveCompress, FileCompress, FileDecompress)
