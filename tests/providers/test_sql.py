"""Kestra's JDBC Query / Queries on real databases: PostgreSQL and MariaDB servers, SQLite and DuckDB files."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import states

from providers.servers import PASSWORD, Server
from yaml2dag.operators.jdbc import bind_placeholders

pytestmark = pytest.mark.airflow


def _flow(text: str, **values: str) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def test_postgres_fetch_one_feeds_an_if_and_the_password_is_never_logged(
    run_flow, postgres_server: Server, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_VAR_PG_SECRET", PASSWORD)
    result = run_flow(
        _flow(
            """
            id: pg_if
            namespace: tests.sql
            tasks:
              - id: setup
                type: io.kestra.plugin.jdbc.postgresql.Queries
                url: @PG_URL@
                username: app
                password: "{{ secret('PG_SECRET') }}"
                sql: |
                  DROP TABLE IF EXISTS runs;
                  CREATE TABLE runs (pipeline text, run_date date, rows_loaded int, amount numeric(10,2));
                  INSERT INTO runs VALUES ('orders', '2024-01-31', 42, 12.50), ('orders', '2024-02-01', 0, 0);
                  SELECT count(*) AS n FROM runs;
                fetchType: FETCH_ONE
              - id: last_run
                type: io.kestra.plugin.jdbc.postgresql.Query
                url: @PG_URL@
                username: app
                password: "{{ secret('PG_SECRET') }}"
                sql: |
                  SELECT pipeline, run_date, rows_loaded, amount, '50%' AS pct, 1::int AS one
                  FROM runs WHERE pipeline = :pipeline AND run_date = CAST(:run_date AS date)
                parameters:
                  pipeline: orders
                  run_date: "{{ '2024-01-31' }}"
                fetchType: FETCH_ONE
              - id: loaded
                type: io.kestra.plugin.core.flow.If
                condition: "{{ outputs.last_run.row.rows_loaded > 0 }}"
                then:
                  - id: yes
                    type: io.kestra.plugin.core.log.Log
                    message: "loaded {{ outputs.last_run.row.rows_loaded }} on {{ outputs.last_run.row.run_date }}"
                else:
                  - id: no
                    type: io.kestra.plugin.core.log.Log
                    message: nothing loaded
              - id: all_runs
                type: io.kestra.plugin.jdbc.postgresql.Query
                url: @PG_URL@?user=app&password=@PASSWORD@
                sql: SELECT rows_loaded FROM runs ORDER BY run_date
                fetchType: FETCH
            """,
            PG_URL=postgres_server.jdbc_url("postgresql"),
            PASSWORD=PASSWORD,
        )
    )
    assert states(result)["yes"] == "success"
    assert states(result)["no"] == "skipped"
    assert result.tasks["setup"].outputs == {"outputs": [{"row": {"n": 2}, "size": 1}]}
    assert result.tasks["last_run"].outputs == {
        "row": {"pipeline": "orders", "run_date": "2024-01-31", "rows_loaded": 42, "amount": 12.5, "pct": "50%",
                "one": 1},
        "size": 1,
    }  # fmt: skip
    assert "loaded 42 on 2024-01-31" in result.tasks["yes"].log_text()
    assert result.tasks["all_runs"].outputs == {"rows": [{"rows_loaded": 42}, {"rows_loaded": 0}], "size": 2}
    everything = " ".join(task.log_text() for task in result.tasks.values()) + repr(
        {task_id: task.outputs for task_id, task in result.tasks.items()}
    )
    assert PASSWORD not in everything
    assert "Running on PostgreSQL at 127.0.0.1" in result.tasks["last_run"].log_text()


def test_bad_sql_fails_the_task_with_the_database_message_and_runs_errors(run_flow, postgres_server: Server):
    result = run_flow(
        _flow(
            """
            id: pg_bad
            namespace: tests.sql
            tasks:
              - id: bad
                type: io.kestra.plugin.jdbc.postgresql.Query
                url: @PG_URL@
                username: app
                password: @PASSWORD@
                sql: SELEC 1
            errors:
              - id: report
                type: io.kestra.plugin.core.output.OutputValues
                values:
                  error: "{{ errorLogs()[0].message }}"
            """,
            PG_URL=postgres_server.jdbc_url("postgresql"),
            PASSWORD=PASSWORD,
        )
    )
    assert result.state == "failed"
    assert states(result) == {"bad": "failed", "report": "success"}
    message = result.tasks["report"].outputs["values"]["error"]
    assert 'syntax error at or near "SELEC"' in message
    assert "PostgreSQL at 127.0.0.1" in message
    assert PASSWORD not in result.tasks["bad"].log_text()


def test_queries_roll_back_the_transaction_when_a_statement_fails(run_flow, postgres_server: Server, monkeypatch):
    server = postgres_server
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG_CONN",
        f"postgres://{server.user}:{server.password}@{server.host}:{server.port}/{server.database}",
    )
    result = run_flow(
        _flow(
            """
            id: pg_tx
            namespace: tests.sql
            tasks:
              - id: setup
                type: io.kestra.plugin.jdbc.postgresql.Queries
                url: @PG_URL@
                username: app
                password: @PASSWORD@
                sql: DROP TABLE IF EXISTS tx; CREATE TABLE tx (a int primary key);
              - id: broken
                type: io.kestra.plugin.jdbc.postgresql.Queries
                url: @PG_URL@
                username: app
                password: @PASSWORD@
                allowFailure: true
                sql: INSERT INTO tx VALUES (1); INSERT INTO tx VALUES (1);
              - id: count
                type: io.kestra.plugin.jdbc.postgresql.Query
                connId: pg_conn
                sql: SELECT count(*) AS n FROM tx
                fetchType: FETCH_ONE
            """,
            PG_URL=postgres_server.jdbc_url("postgresql"),
            PASSWORD=PASSWORD,
        )
    )
    assert "duplicate key value violates unique constraint" in result.tasks["broken"].log_text()
    assert result.tasks["count"].outputs == {"row": {"n": 0}, "size": 1}


def test_mariadb_queries_and_fetch(run_flow, mariadb_server: Server):
    result = run_flow(
        _flow(
            """
            id: maria
            namespace: tests.sql
            tasks:
              - id: setup
                type: io.kestra.plugin.jdbc.mysql.Queries
                url: @MY_URL@
                username: app
                password: @PASSWORD@
                sql: |
                  DROP TABLE IF EXISTS items;
                  CREATE TABLE items (id int, name varchar(20), price decimal(6,2), seen datetime);
                  INSERT INTO items VALUES (1, 'zürich', 9.99, '2024-01-31 10:00:00'), (2, 'b;c', 1, NULL);
              - id: read
                type: io.kestra.plugin.jdbc.mysql.Query
                url: @MY_URL@
                username: app
                password: @PASSWORD@
                sql: SELECT id, name, price, seen FROM items WHERE id >= :low ORDER BY id
                parameters:
                  low: 1
                fetchType: FETCH
            """,
            MY_URL=mariadb_server.jdbc_url("mysql"),
            PASSWORD=PASSWORD,
        )
    )
    assert states(result) == {"setup": "success", "read": "success"}
    assert result.tasks["read"].outputs == {
        "rows": [
            {"id": 1, "name": "zürich", "price": 9.99, "seen": "2024-01-31T10:00:00"},
            {"id": 2, "name": "b;c", "price": 1, "seen": None},
        ],
        "size": 2,
    }
    assert PASSWORD not in result.tasks["read"].log_text()


def test_sqlite_and_duckdb_files(run_flow, tmp_path: Path):
    sqlite_file, duck_file = tmp_path / "data.sqlite", tmp_path / "data.duckdb"
    result = run_flow(
        _flow(
            """
            id: files
            namespace: tests.sql
            tasks:
              - id: lite
                type: io.kestra.plugin.jdbc.sqlite.Queries
                url: jdbc:sqlite:@SQLITE_FILE@
                sql: |
                  CREATE TABLE t (k text, v real);
                  INSERT INTO t VALUES ('a', 1.5), ('b', 2);
                  SELECT k, v FROM t WHERE k = :key;
                parameters:
                  key: b
                fetchType: FETCH
              - id: duck
                type: io.kestra.plugin.jdbc.duckdb.Queries
                url: jdbc:duckdb:@DUCK_FILE@
                sql: |
                  CREATE TABLE t AS SELECT range AS i FROM range(5);
                  SELECT sum(i) AS total, :label AS label FROM t;
                parameters:
                  label: "{{ 'sum' | upper }}"
                fetchType: FETCH_ONE
              - id: none
                type: io.kestra.plugin.jdbc.duckdb.Query
                url: jdbc:duckdb:@DUCK_FILE@
                sql: SELECT * FROM t
            """,
            SQLITE_FILE=str(sqlite_file),
            DUCK_FILE=str(duck_file),
        )
    )
    assert states(result) == {"lite": "success", "duck": "success", "none": "success"}
    assert result.tasks["lite"].outputs == {"outputs": [{"rows": [{"k": "b", "v": 2.0}], "size": 1}]}
    assert result.tasks["duck"].outputs == {"outputs": [{"row": {"total": 10, "label": "SUM"}, "size": 1}]}
    assert not result.tasks["none"].outputs
    assert sqlite_file.exists() and duck_file.exists()


def test_placeholders_skip_quotes_comments_and_casts():
    sql = "SELECT ':a', x::int, :a, \":a\" -- :a\nFROM t WHERE b = :b AND c LIKE '5%' AND d = :unknown"
    assert bind_placeholders(sql, {"a": 1, "b": 2}, "postgres") == (
        "SELECT ':a', x::int, %(a)s, \":a\" -- :a\nFROM t WHERE b = %(b)s AND c LIKE '5%%' AND d = :unknown"
    )
    assert bind_placeholders("SELECT :a", {"a": 1}, "duckdb") == "SELECT $a"
    assert bind_placeholders("SELECT :a", {"a": 1}, "sqlite") == "SELECT :a"


def test_bad_declarations_are_located_errors(flow_file):
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import read_flow

    path = flow_file(
        """
        id: bad_sql
        namespace: tests.sql
        tasks:
          - id: wrong_scheme
            type: io.kestra.plugin.jdbc.postgresql.Query
            url: jdbc:mysql://127.0.0.1/db
            sql: SELECT 1
          - id: both
            type: io.kestra.plugin.jdbc.mysql.Query
            url: jdbc:mysql://127.0.0.1/db
            connId: my_db
            sql: SELECT 1
          - id: duck_conn
            type: io.kestra.plugin.jdbc.duckdb.Query
            connId: my_duck
            sql: SELECT 1
          - id: bad_fetch
            type: io.kestra.plugin.jdbc.sqlite.Query
            url: "jdbc:sqlite:"
            sql: SELECT 1
            fetchType: ALL
        """
    )
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    text = str(caught.value)
    assert "flow.yaml:7:" in text and "needs a url starting with jdbc:postgresql:" in text
    assert "set `url` (e.g. jdbc:postgresql://host:5432/db) or `connId`" in text
    assert "`connId` is not available for DuckDB" in text
    assert "flow.yaml:22:16: tasks[3].fetchType: must be one of NONE, FETCH_ONE, FETCH, STORE" in text
