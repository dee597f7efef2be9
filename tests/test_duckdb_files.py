"""DuckDB's working directory: `inputFiles`, `{{ workingDir }}`, `outputFiles`, `outputDbFile`, `databaseUri`."""

from __future__ import annotations

import textwrap

import duckdb
import pytest

from yaml2dag import storage

pytestmark = pytest.mark.airflow


def test_input_files_output_files_and_database_files(run_flow, tmp_path):
    result = run_flow(
        """
        id: duck_files
        namespace: tests.duckdb
        tasks:
          - id: csv
            type: io.kestra.plugin.core.storage.Write
            content: "brand,price\\nacme,10\\nacme,20\\nglobex,5\\n"
            extension: .csv
          - id: average
            type: io.kestra.plugin.jdbc.duckdb.Query
            inputFiles:
              in.csv: "{{ outputs.csv.uri }}"
            sql: |
              SELECT brand, round(avg(price), 2) AS avg_price
              FROM read_csv_auto('{{ workingDir }}/in.csv', header=True)
              GROUP BY brand ORDER BY avg_price DESC;
            fetchType: FETCH
          - id: transform
            type: io.kestra.plugin.jdbc.duckdb.Queries
            inputFiles: '{"nested/products.csv": "{{ outputs.csv.uri }}", "note.txt": "inline text"}'
            outputFiles:
              - result.csv
            outputDbFile: true
            sql: |
              CREATE TABLE products AS SELECT * FROM read_csv_auto('nested/products.csv');
              COPY (SELECT brand, sum(price) AS total FROM products GROUP BY brand ORDER BY brand)
                TO '{{ outputFiles['result.csv'] }}' (HEADER, DELIMITER ',');
              SELECT content FROM read_text('note.txt');
            fetchType: FETCH_ONE
          - id: reopen
            type: io.kestra.plugin.jdbc.duckdb.Query
            databaseUri: "{{ outputs.transform.databaseUri }}"
            sql: SELECT count(*) AS n FROM products
            fetchType: FETCH_ONE
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{ read(outputs.transform.outputFiles['result.csv']) }}"
        """
    )
    assert result.state == "success", {task: r.error for task, r in result.tasks.items() if r.error}
    assert result.tasks["average"].outputs["rows"] == [
        {"brand": "acme", "avg_price": 15.0},
        {"brand": "globex", "avg_price": 5.0},
    ]
    transform = result.tasks["transform"].outputs
    assert transform["outputs"] == [{"row": {"content": "inline text"}, "size": 1}]
    with storage.open_read(transform["outputFiles"]["result.csv"]) as handle:
        assert handle.read() == b"brand,total\nacme,30\nglobex,5\n"
    local = storage.download_local(transform["databaseUri"], tmp_path / "copy.db")
    with duckdb.connect(str(local), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM products").fetchone() == (3,)
    assert result.tasks["reopen"].outputs["row"] == {"n": 3}
    assert "brand,total\nacme,30" in result.tasks["log"].log_text()


def test_a_missing_output_file_fails_and_unsupported_properties_are_located(run_flow):
    result = run_flow(
        """
        id: duck_missing
        namespace: tests.duckdb
        tasks:
          - id: nothing
            type: io.kestra.plugin.jdbc.duckdb.Query
            outputFiles: [never.csv]
            sql: SELECT 1
        """
    )
    assert result.tasks["nothing"].state == "failed"
    assert "outputFiles `never.csv`: the SQL did not write" in result.tasks["nothing"].error

    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import parse_flow_text

    flow = """
        id: duck_invalid
        namespace: tests.duckdb
        tasks:
          - id: ext
            type: io.kestra.plugin.jdbc.duckdb.Query
            sql: SELECT 1
            communityExtensions: [ion]
        """
    with pytest.raises(FlowValidationError) as raised:
        parse_flow_text(textwrap.dedent(flow), "flow.yaml")
    (error,) = raised.value.errors
    assert error.path == "tasks[0].communityExtensions" and "not supported by yaml2dag yet" in error.message
