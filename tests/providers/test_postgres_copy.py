"""PostgreSQL `CopyIn` / `CopyOut` (Kestra's `io.kestra.plugin.jdbc.postgresql`) on a real PostgreSQL server."""

from __future__ import annotations

import pytest
from conftest import states

from providers.servers import PASSWORD, Server
from yaml2dag import storage
from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text

pytestmark = pytest.mark.airflow


def _flow(text: str, server: Server) -> str:
    return text.replace("@PG_URL@", server.jdbc_url("postgresql")).replace("@PASSWORD@", PASSWORD)


def test_csv_copied_in_then_a_query_and_a_table_copied_out(run_flow, postgres_server: Server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_PG_SECRET", PASSWORD)
    result = run_flow(
        _flow(
            """
            id: pg_copy
            namespace: tests.sql
            pluginDefaults:
              - type: io.kestra.plugin.jdbc.postgresql
                values:
                  url: @PG_URL@
                  username: app
                  password: "{{ secret('PG_SECRET') }}"
            tasks:
              - id: setup
                type: io.kestra.plugin.jdbc.postgresql.Queries
                sql: |
                  DROP TABLE IF EXISTS products;
                  CREATE TABLE products (id int, name text, note text);
              - id: csv
                type: io.kestra.plugin.core.storage.Write
                extension: .csv
                content: |
                  id;name;note
                  1;Widget;"semi;colon"
                  2;Gadget;
                  3;Gizmo;"it's"
              - id: copy_in
                type: io.kestra.plugin.jdbc.postgresql.CopyIn
                from: "{{ outputs.csv.uri }}"
                table: products
                format: CSV
                header: true
                delimiter: ";"
              - id: check
                type: io.kestra.plugin.jdbc.postgresql.Query
                sql: SELECT count(*) AS n, count(note) AS notes FROM products
                fetchType: FETCH_ONE
              - id: copy_query
                type: io.kestra.plugin.jdbc.postgresql.CopyOut
                sql: SELECT id, upper(name) AS name FROM products WHERE id > 1 ORDER BY id
                format: CSV
                header: true
                forceQuote: ["*"]
              - id: copy_table
                type: io.kestra.plugin.jdbc.postgresql.CopyOut
                table: products
                columns: [id, note]
                delimiter: "|"
                nullString: "-"
            """,
            postgres_server,
        )
    )
    assert result.state == "success", {task_id: task.error for task_id, task in result.tasks.items()}
    assert result.tasks["copy_in"].outputs == {"rowCount": 3}
    assert result.tasks["check"].outputs["row"] == {"n": 3, "notes": 2}, "an empty CSV field is NULL"
    query = result.tasks["copy_query"].outputs
    assert query["rowCount"] == 2
    assert storage.read_text(query["uri"]) == 'id,name\n"2","GADGET"\n"3","GIZMO"\n'
    assert query["uri"].endswith("/copy_query.csv")
    table = result.tasks["copy_table"].outputs
    assert table["rowCount"] == 3
    assert sorted(storage.read_text(table["uri"]).splitlines()) == ["1|semi;colon", "2|-", "3|it's"]
    logged = result.tasks["copy_in"].log_text()
    assert "COPY products FROM STDIN WITH (FORMAT CSV, DELIMITER ';', HEADER TRUE)" in logged
    assert "Copied 3 rows from kestra:///" in logged
    everything = " ".join(task.log_text() for task in result.tasks.values()) + repr(
        {task_id: task.outputs for task_id, task in result.tasks.items()}
    )
    assert PASSWORD not in everything


def test_a_bad_copy_fails_with_the_database_message_and_nothing_is_loaded(run_flow, postgres_server: Server):
    result = run_flow(
        _flow(
            """
            id: pg_copy_bad
            namespace: tests.sql
            tasks:
              - id: setup
                type: io.kestra.plugin.jdbc.postgresql.Query
                url: @PG_URL@
                username: app
                password: @PASSWORD@
                sql: DROP TABLE IF EXISTS typed; CREATE TABLE typed (id int)
              - id: csv
                type: io.kestra.plugin.core.storage.Write
                extension: .csv
                content: "1\\nnot a number\\n"
              - id: copy_in
                type: io.kestra.plugin.jdbc.postgresql.CopyIn
                url: @PG_URL@
                username: app
                password: @PASSWORD@
                from: "{{ outputs.csv.uri }}"
                table: typed
            errors:
              - id: count
                type: io.kestra.plugin.jdbc.postgresql.Query
                url: @PG_URL@
                username: app
                password: @PASSWORD@
                sql: SELECT count(*) AS n FROM typed
                fetchType: FETCH_ONE
            """,
            postgres_server,
        )
    )
    assert result.state == "failed"
    assert states(result) == {"setup": "success", "csv": "success", "copy_in": "failed", "count": "success"}
    assert 'invalid input syntax for type integer: "not a number"' in (result.tasks["copy_in"].error or "")
    assert result.tasks["count"].outputs["row"] == {"n": 0}, "the COPY was rolled back"
    assert PASSWORD not in result.tasks["copy_in"].log_text()


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ("  table: t\n", "tasks[0].from", "missing required property `from`"),
        ("  from: kestra:///x\n", "tasks[0].table", "missing required property `table`"),
        ("  from: kestra:///x\n  table: t\n  delimiter: ';;'\n", "tasks[0].delimiter", "single character"),
        ("  from: kestra:///x\n  table: t\n  format: XML\n", "tasks[0].format", "must be one of TEXT, CSV, BINARY"),
        ("  from: kestra:///x\n  table: t\n  sslMode: REQUIRE\n", "tasks[0].sslMode", "not supported by yaml2dag yet"),
    ],
)
def test_copy_in_mistakes_are_located_errors(body: str, path: str, message: str):
    text = f"id: f\nnamespace: n\ntasks:\n- id: c\n  type: io.kestra.plugin.jdbc.postgresql.CopyIn\n  url: jdbc:postgresql://h/db\n{body}"
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    assert any(error.path == path and message in error.message for error in caught.value.errors), [
        str(error) for error in caught.value.errors
    ]


def test_copy_out_needs_a_table_or_sql():
    text = "id: f\nnamespace: n\ntasks:\n- id: c\n  type: io.kestra.plugin.jdbc.postgresql.CopyOut\n  connId: pg\n"
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    assert "set `table` or `sql`" in str(caught.value)
