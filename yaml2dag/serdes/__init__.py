"""Streaming conversions between Kestra's row files (Amazon Ion text) and CSV, JSON, Excel, Parquet, Avro.

Every conversion reads one binary stream and writes another, row by row (or in bounded batches),
and returns the number of rows it converted. Nothing here knows about Airflow or storage: the
operators in `yaml2dag.operators.serdes` open the streams. Heavy libraries (pyarrow, openpyxl,
fastavro, amazon-ion) are imported inside the functions that need them.
"""

from __future__ import annotations


class SerdesError(Exception):
    """Input that cannot be converted: the message says what and where (row, line, column)."""


__all__ = ["SerdesError"]
