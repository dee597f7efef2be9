"""Throughput (rows/s) and peak memory of yaml2dag's serdes conversions vs plain Python doing the same.

    python benchmarks/bench_serdes.py                      # 1,000,000 rows; baselines on 100,000
    python benchmarks/bench_serdes.py --rows 200000 --baseline-rows 200000 --only csv json

Input: a generated CSV of `--rows` products (id, name, city, price, quantity, day), converted
along the chain CSV → Ion → CSV / JSON / Parquet / Avro / Excel and back, with `yaml2dag.serdes`.
Each conversion runs in a fresh Python process, which reports its rows/s and its own peak RSS
(`ru_maxrss`), so memory is that conversion's alone. The baseline is the straightforward plain
Python a user would write for the same conversion: `csv`/`json`/`fastavro`/`pyarrow`/`openpyxl`
with the `amazon-ion` package's `simpleion` for the Ion side (pyarrow/Avro baselines convert the
text fields to the same types). It runs on `--baseline-rows` (the first rows of the same files)
because it is much slower; the ratio compares rates. Parquet baselines load the whole table, as
`pq.read_table` / `pa.Table.from_pylist` do, which shows in their memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCHEMA = {
    "type": "record",
    "name": "Product",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "city", "type": ["null", "string"]},
        {"name": "price", "type": "double"},
        {"name": "quantity", "type": "int"},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    ],
}
#: name → (source file, target file, family): the chain, in order (each source made by an earlier step).
STEPS: dict[str, tuple[str, str, str]] = {
    "csv_to_ion": ("data.csv", "data.ion", "csv"),
    "ion_to_csv": ("data.ion", "out.csv", "csv"),
    "ion_to_json": ("data.ion", "data.jsonl", "json"),
    "json_to_ion": ("data.jsonl", "json.ion", "json"),
    "ion_to_parquet": ("data.ion", "data.parquet", "parquet"),
    "parquet_to_ion": ("data.parquet", "parquet.ion", "parquet"),
    "ion_to_avro": ("data.ion", "data.avro", "avro"),
    "avro_to_ion": ("data.avro", "avro.ion", "avro"),
    "ion_to_excel": ("data.ion", "data.xlsx", "excel"),
    "excel_to_ion": ("data.xlsx", "excel.ion", "excel"),
}
CITIES = ["Paris", "Lyon", "Berlin", "Zürich", "New York", "São Paulo", ""]


def make_csv(path: Path, rows: int) -> None:
    """A CSV of `rows` products."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "city", "price", "quantity", "day"])
        for i in range(rows):
            writer.writerow([i, f"Product {i}, \"special\"", CITIES[i % 7], f"{i % 1000}.{i % 100:02d}", i % 50,
                             f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"])  # fmt: skip


# ------------------------------------------------------------------------------------- yaml2dag


def run_yaml2dag(step: str, source: Path, target: Path) -> int:
    """One conversion with yaml2dag.serdes; returns the rows converted."""
    import contextlib

    from yaml2dag.serdes.avro import AvroOptions, avro_to_ion, ion_to_avro
    from yaml2dag.serdes.csvfile import CsvOptions, csv_to_ion, ion_to_csv
    from yaml2dag.serdes.excel import ExcelOptions, excel_to_ion, ion_to_excel
    from yaml2dag.serdes.jsonfile import JsonOptions, ion_to_json, json_to_ion
    from yaml2dag.serdes.parquet import ParquetOptions, ion_to_parquet, parquet_to_ion

    avro = AvroOptions(schema=json.dumps(SCHEMA))
    with source.open("rb") as src, target.open("wb") as dst:
        if step == "csv_to_ion":
            return csv_to_ion(src, dst, CsvOptions())
        if step == "ion_to_csv":
            return ion_to_csv(src, dst, CsvOptions())
        if step == "ion_to_json":
            return ion_to_json(src, dst, JsonOptions())
        if step == "json_to_ion":
            return json_to_ion(src, dst, JsonOptions())
        if step == "ion_to_parquet":
            return ion_to_parquet(src, dst, avro, ParquetOptions())
        if step == "parquet_to_ion":
            return parquet_to_ion(src, dst)
        if step == "ion_to_avro":
            return ion_to_avro(src, dst, avro)
        if step == "avro_to_ion":
            return avro_to_ion(src, dst)
        if step == "ion_to_excel":
            return ion_to_excel([("Sheet", src)], dst, ExcelOptions())

        @contextlib.contextmanager
        def open_target(title: str) -> Any:
            yield dst

        return sum(excel_to_ion(src, open_target, ExcelOptions()).values())


# ------------------------------------------------------------------------------------- baseline


def _ion_rows(path: Path, limit: int) -> Any:
    from amazon.ion import simpleion

    with path.open("rb") as handle:
        for index, value in enumerate(simpleion.load(handle, single_value=False, parse_eagerly=False)):
            if index >= limit:
                return
            yield {str(key): (None if item is None or type(item).__name__ == "IonPyNull" else item)
                   for key, item in value.items()}  # fmt: skip


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    import datetime as dt

    return {"id": int(row["id"]), "name": str(row["name"]), "city": str(row["city"]) if row["city"] else None,
            "price": float(row["price"]), "quantity": int(row["quantity"]),
            "day": dt.date.fromisoformat(str(row["day"]))}  # fmt: skip


def _dump_ion(rows: Any, target: Path) -> int:
    import datetime as dt

    from amazon.ion import simpleion

    def ion_ready(value: Any) -> Any:  # simpleion writes datetimes, not dates
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime(value.year, value.month, value.day)
        return value

    count = 0
    with target.open("wb") as handle:
        for row in rows:
            row = {key: ion_ready(value) for key, value in row.items()}
            handle.write(simpleion.dumps(row, binary=False).encode() + b"\n")
            count += 1
    return count


def run_baseline(step: str, source: Path, target: Path, limit: int) -> int:
    """The same conversion in plain Python; returns the rows converted."""
    import itertools

    if step == "csv_to_ion":
        with source.open(newline="", encoding="utf-8") as handle:
            return _dump_ion(itertools.islice(csv.DictReader(handle), limit), target)
    if step == "json_to_ion":
        with source.open(encoding="utf-8") as handle:
            return _dump_ion((json.loads(line) for line in itertools.islice(handle, limit)), target)
    if step in ("parquet_to_ion", "avro_to_ion", "excel_to_ion"):
        return _dump_ion(itertools.islice(_read_other(step, source), limit), target)
    rows = _ion_rows(source, limit)
    count = 0
    if step == "ion_to_csv":
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for row in rows:
                if not count:
                    writer.writerow(row.keys())
                writer.writerow(row.values())
                count += 1
    elif step == "ion_to_json":
        with target.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                count += 1
    elif step == "ion_to_parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([_typed(row) for row in rows])
        pq.write_table(table, target, compression="GZIP")
        count = table.num_rows
    elif step == "ion_to_avro":
        import fastavro

        typed = [_typed(row) for row in rows]
        with target.open("wb") as handle:
            fastavro.writer(handle, fastavro.parse_schema(SCHEMA), typed)
        count = len(typed)
    elif step == "ion_to_excel":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Sheet")
        for row in rows:
            if not count:
                sheet.append(list(row))
            sheet.append([str(value) if value is not None else None for value in row.values()])
            count += 1
        workbook.save(target)
    return count


def _read_other(step: str, source: Path) -> Any:
    if step == "parquet_to_ion":
        import pyarrow.parquet as pq

        yield from pq.read_table(source).to_pylist()
    elif step == "avro_to_ion":
        import fastavro

        with source.open("rb") as handle:
            yield from fastavro.reader(handle)
    else:
        from openpyxl import load_workbook

        workbook = load_workbook(source, read_only=True)
        rows = workbook.active.iter_rows(values_only=True)
        header = next(rows)
        for values in rows:
            yield dict(zip(header, values, strict=False))


# ------------------------------------------------------------------------------------- driver


def measure(step: str, mode: str, folder: Path, limit: int) -> dict[str, float]:
    """Run one conversion in a fresh process: rows, seconds, rows/s, peak RSS (MiB)."""
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    command = [sys.executable, __file__, "--child", step, mode, str(folder), str(limit)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{step} ({mode}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(step: str, mode: str, folder: Path, limit: int) -> None:
    """Body of the measuring process (prints one JSON line)."""
    source_name, target_name, _ = STEPS[step]
    source = folder / source_name
    target = folder / (target_name if mode == "yaml2dag" else f"baseline-{target_name}")
    start = time.perf_counter()
    rows = run_yaml2dag(step, source, target) if mode == "yaml2dag" else run_baseline(step, source, target, limit)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "rate": rows / seconds, "rss_mib": peak}))


def main() -> None:
    """Make the input, run every step both ways, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", choices=sorted({family for *_, family in STEPS.values()}))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, mode, folder, limit = args.child
        child(step, mode, Path(folder), int(limit))
        return
    with tempfile.TemporaryDirectory(prefix="yaml2dag-bench-serdes-") as tmp:
        folder = Path(tmp)
        make_csv(folder / "data.csv", args.rows)
        size = (folder / "data.csv").stat().st_size / 1e6
        print(f"{args.rows:,} rows ({size:.0f} MB of CSV); baseline on {min(args.baseline_rows, args.rows):,} rows\n")
        header = (
            f"{'conversion':<16}{'yaml2dag rows/s':>16}{'peak RSS':>10}"
            f"{'baseline rows/s':>17}{'peak RSS':>10}{'ratio':>8}"
        )
        print(header)
        print("-" * len(header))
        for step, (_, _, family) in STEPS.items():
            if args.only and family not in args.only and step not in ("csv_to_ion",):
                continue
            ours = measure(step, "yaml2dag", folder, args.rows)
            if ours["rows"] != args.rows + (step == "excel_to_ion"):  # ExcelToIon counts the header row
                raise SystemExit(f"{step}: converted {ours['rows']} rows, expected {args.rows}")
            base = measure(step, "baseline", folder, args.baseline_rows)
            print(
                f"{step:<16}{ours['rate']:>16,.0f}{ours['rss_mib']:>8.0f}Mi"
                f"{base['rate']:>17,.0f}{base['rss_mib']:>8.0f}Mi{ours['rate'] / base['rate']:>7.1f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
