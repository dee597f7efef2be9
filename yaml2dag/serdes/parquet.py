"""Parquet ↔ Ion, as Kestra's `IonToParquet` and `ParquetToIon` convert them (`pyarrow`, in batches).

Kestra writes Parquet through parquet-avro: rows are converted to an Avro schema (given or
inferred, the same conversion as IonToAvro) and the Avro schema is kept in the file's metadata
(`parquet.avro.schema`). yaml2dag maps the Avro schema to an Arrow schema and writes row groups
of `_BATCH_ROWS` rows, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from yaml2dag.serdes import SerdesError
from yaml2dag.serdes.avro import AvroOptions, converted_rows, plain
from yaml2dag.serdes.ion import IonWriter

#: Rows converted and written per batch (bounded memory).
_BATCH_ROWS = 10_000
_CODECS = {"UNCOMPRESSED": "NONE", "SNAPPY": "SNAPPY", "GZIP": "GZIP", "ZSTD": "ZSTD"}


@dataclass(frozen=True)
class ParquetOptions:
    """Kestra's IonToParquet properties (besides the Avro conversion ones), rendered."""

    compression_codec: str = "GZIP"
    parquet_version: str = "V2"
    row_group_size: int = 134_217_728
    page_size: int = 1_048_576
    dictionary_page_size: int = 1_048_576


def arrow_type(schema: Any, named: dict[str, Any] | None = None) -> Any:
    """The Arrow type of an Avro schema (unions with null are nullable; other unions are refused)."""
    named = {} if named is None else named
    if isinstance(schema, list):
        branches = [branch for branch in schema if branch != "null"]
        if len(branches) != 1:
            raise SerdesError(f"Avro union {schema} cannot be written to Parquet: use one type (and null)")
        return arrow_type(branches[0], named)
    if isinstance(schema, str):
        return _arrow_named(schema, named)
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, dict | list):
        return arrow_type(kind, named)
    logical_type = _arrow_logical(schema, logical)
    if logical_type is not None:
        return logical_type
    return _arrow_complex(schema, kind, named)


def _arrow_named(schema: str, named: dict[str, Any]) -> Any:
    """The Arrow type of an Avro type given by name: a named (record, enum, fixed) type or a primitive."""
    import pyarrow as pa

    if schema in named:
        return arrow_type(named[schema], named)
    simple = {
        "null": pa.null(), "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(),
        "float": pa.float32(), "double": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
    }  # fmt: skip
    if schema not in simple:
        raise SerdesError(f"unknown Avro type `{schema}`")
    return simple[schema]


def _arrow_logical(schema: dict[str, Any], logical: str | None) -> Any:
    """The Arrow type of an Avro logical type, or None when `logical` is not one Arrow maps."""
    import pyarrow as pa

    logical_types = {
        "date": pa.date32(),
        "time-millis": pa.time32("ms"),
        "time-micros": pa.time64("us"),
        "timestamp-millis": pa.timestamp("ms", tz="UTC"),
        "timestamp-micros": pa.timestamp("us", tz="UTC"),
        "local-timestamp-millis": pa.timestamp("ms"),
        "local-timestamp-micros": pa.timestamp("us"),
        "uuid": pa.string(),
    }
    if logical in logical_types:
        return logical_types[logical]
    if logical == "decimal":
        precision = int(schema["precision"])
        return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, int(schema.get("scale", 0)))
    return None


def _arrow_complex(schema: dict[str, Any], kind: str, named: dict[str, Any]) -> Any:
    """The Arrow type of an Avro record, enum, fixed, array or map (else of the type named by `kind`)."""
    import pyarrow as pa

    if kind == "record":
        named[schema["name"]] = schema
        return pa.struct([pa.field(item["name"], arrow_type(item["type"], named), _nullable(item["type"]))
                          for item in schema["fields"]])  # fmt: skip
    if kind == "enum":
        return pa.string()
    if kind == "fixed":
        return pa.binary(int(schema["size"]))
    if kind == "array":
        return pa.list_(arrow_type(schema["items"], named))
    if kind == "map":
        return pa.map_(pa.string(), arrow_type(schema["values"], named))
    return arrow_type(kind, named)


def _nullable(schema: Any) -> bool:
    return (isinstance(schema, list) and "null" in schema) or schema == "null"


def arrow_schema(schema: dict[str, Any]) -> Any:
    """The Arrow schema of an Avro record schema, carrying the Avro schema as parquet-avro does."""
    import pyarrow as pa

    struct = arrow_type(schema)
    fields = [struct.field(index) for index in range(struct.num_fields)]
    return pa.schema(fields, metadata={"parquet.avro.schema": json.dumps(schema)})


def ion_to_parquet(source: BinaryIO, target: BinaryIO, avro: AvroOptions, options: ParquetOptions) -> int:
    """Convert Ion rows to a Parquet file; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if options.compression_codec not in _CODECS:
        raise SerdesError(f"`compressionCodec` must be one of {', '.join(_CODECS)}, got `{options.compression_codec}`")
    if options.parquet_version not in ("V1", "V2"):
        raise SerdesError(f"`parquetVersion` must be V1 or V2, got `{options.parquet_version}`")
    schema, rows = converted_rows(source, avro)
    target_schema = arrow_schema(schema)
    count = 0
    with pq.ParquetWriter(
        pa.PythonFile(target, mode="w"),
        target_schema,
        compression=_CODECS[options.compression_codec],
        data_page_version="2.0" if options.parquet_version == "V2" else "1.0",
        data_page_size=options.page_size,
        dictionary_pagesize_limit=options.dictionary_page_size,
        use_dictionary=True,
    ) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH_ROWS:
                count += _write(writer, batch, target_schema, count)
                batch = []
        if batch:
            count += _write(writer, batch, target_schema, count)
    return count


def _write(writer: Any, batch: list[dict[str, Any]], schema: Any, done: int) -> int:
    import pyarrow as pa

    try:
        table = pa.Table.from_pylist(batch, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise SerdesError(f"rows {done + 1}-{done + len(batch)}: cannot be written as Parquet: {exc}") from None
    writer.write_table(table)
    return len(batch)


def parquet_to_ion(source: BinaryIO, target: BinaryIO) -> int:
    """Convert a Parquet file to Ion rows, one row group batch at a time; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryFile() as spool:
        readable: BinaryIO = source
        if not (hasattr(source, "seekable") and source.seekable()):
            shutil.copyfileobj(source, spool, 1 << 20)
            spool.seek(0)
            readable = spool
        writer = IonWriter(target)
        try:
            parquet = pq.ParquetFile(readable)
            for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
                for row in batch.to_pylist():
                    writer.write(plain(row))
        except (pa.ArrowException, OSError) as exc:
            raise SerdesError(f"not a valid Parquet file: {exc}") from None
        writer.flush()
    return writer.count
