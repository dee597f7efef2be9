"""Rows per second of the JDBC Query task against the Postgres provider hook's own fetch, one run each.

    python benchmarks/bench_sql.py --rows 1000000

Starts a PostgreSQL server (tests/providers/servers.py: Debian package, loopback, free port), fills
a table of `--rows` rows (int, text, numeric, timestamp) and times, in this process:

- `hook.get_records`: `PostgresHook.get_records(sql)` — tuples, nothing converted (the baseline);
- `Query FETCH`: the task's FETCH path — every row as a map of JSON-friendly values;
- `Query STORE`: the task's STORE path — every row written as Ion to Kestra's internal storage
  (local storage base in a temporary AIRFLOW_HOME).

The operators run outside Airflow's scheduler (`run()` with a Kestra-style context), so the figures
are the task's own work, not Airflow's start-up. Rows/s are wall-clock: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-sql-"))
sys.path[:0] = [str(REPO), str(REPO / "tests")]

SQL = "SELECT id, name, score, created FROM big"


def _timed(label: str, rows: int, work) -> float:
    started = time.perf_counter()
    count = work()
    elapsed = time.perf_counter() - started
    assert count == rows, (label, count)
    print(f"{label:<22} {elapsed:8.2f} s {rows / elapsed:12,.0f} rows/s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows

    from airflow.models.connection import Connection
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from providers import servers

    from yaml2dag.operators.context import FlowInfo
    from yaml2dag.operators.jdbc import JdbcQueryOperator

    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    starting = servers.postgres(base)
    server = next(starting)
    try:
        connection = Connection(conn_type="postgres", host=server.host, port=server.port, login=server.user,
                                password=server.password, schema=server.database)  # fmt: skip
        hook = PostgresHook(connection=connection)
        hook.run(
            "CREATE TABLE big AS SELECT g AS id, 'name ' || g AS name, (g % 1000) / 7.0 AS score,"
            f" timestamp '2024-01-01' + g * interval '1 second' AS created FROM generate_series(1, {rows}) AS g"
        )
        print(f"PostgreSQL {server.port}, {rows:,} rows of {SQL}")
        baseline = _timed("hook.get_records", rows, lambda: len(hook.get_records(SQL)))
        context = {"flow": {"namespace": "bench", "id": "sql"}, "execution": {"id": "run1"}, "task": {"id": "q"}}

        def task(kind: str) -> int:
            operator = JdbcQueryOperator(
                task_id=f"q_{kind.lower()}", flow=FlowInfo("sql", "bench", frozenset({"q"})),
                kestra_type="io.kestra.plugin.jdbc.postgresql.Query", url=server.jdbc_url("postgresql"),
                username=server.user, password=server.password, sql=SQL, fetchType=kind,
            )  # fmt: skip
            outputs = operator.run(context)
            return int(outputs["size"])

        fetch = _timed("Query FETCH", rows, lambda: task("FETCH"))
        store = _timed("Query STORE (Ion)", rows, lambda: task("STORE"))
        print(f"FETCH / hook: {fetch / baseline:.2f}x the time; STORE / hook: {store / baseline:.2f}x the time")
    finally:
        next(starting, None)


if __name__ == "__main__":
    main()
