"""Kestra's serdes tasks on real Airflow: files cross tasks through the internal storage (kestra://)."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from conftest import states

from yaml2dag import storage
from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.serdes import ion

pytestmark = pytest.mark.airflow


def put(data: bytes, name: str) -> str:
    """Store `data` as a file of the internal storage; returns its kestra:// URI."""
    uri = storage.make_uri("tests", "serdes", uuid.uuid4().hex, name)
    with storage.open_uri_write(uri) as target:
        target.write(data)
    return uri


def read(uri: str) -> bytes:
    with storage.open_read(uri) as source:
        return source.read()


def rows(uri: str) -> list[Any]:
    return ion.loads(read(uri).decode())


def failure(result: Any, task_id: str) -> str:
    assert result.tasks[task_id].state == "failed"
    return result.tasks[task_id].log_text()


CSV = 'id,name,price,day\n1,Widget A,12.50,2024-01-31\n2,"Gadget, B",\\N,2024-02-01\n3,Thing é,3,2024-02-02\n'


def test_csv_to_ion_to_json(run_flow):
    """A `Write` task makes the CSV; serdes tasks chain on its URI."""
    result = run_flow(
        """
        id: csv_json
        namespace: tests.serdes
        tasks:
          - id: write
            type: io.kestra.plugin.core.storage.Write
            extension: .csv
            content: |
              id,name,price,day
              1,Widget A,12.50,2024-01-31
              2,"Gadget, B",\\N,2024-02-01
              3,Thing é,3,2024-02-02
          - id: to_ion
            type: io.kestra.plugin.serdes.csv.CsvToIon
            from: "{{ outputs.write.uri }}"
          - id: to_json
            type: io.kestra.plugin.serdes.json.IonToJson
            from: "{{ outputs.to_ion.uri }}"
          - id: to_csv
            type: io.kestra.plugin.serdes.csv.IonToCsv
            from: "{{ outputs.to_ion.uri }}"
            fieldSeparator: ";"
            quoteMode: NON_NUMERIC
          - id: no_header
            type: io.kestra.plugin.serdes.csv.CsvToIon
            from: "{{ outputs.write.uri }}"
            header: "{{ 1 > 2 }}"
            skipRows: "{{ 1 + 1 }}"
        """
    )
    assert set(states(result).values()) == {"success"} and len(result.tasks) == 5
    assert rows(result.tasks["no_header"].outputs["uri"]) == [["2", "Gadget, B", None, "2024-02-01"],
                                                              ["3", "Thing é", "3", "2024-02-02"]]  # fmt: skip
    ion_uri = result.tasks["to_ion"].outputs["uri"]
    assert ion_uri.startswith("kestra:///tests/serdes/csv_json/executions/") and ion_uri.endswith(".ion")
    assert rows(ion_uri)[1] == {"id": "2", "name": "Gadget, B", "price": None, "day": "2024-02-01"}
    json_uri = result.tasks["to_json"].outputs["uri"]
    assert json_uri.endswith(".jsonl")
    lines = [json.loads(line) for line in read(json_uri).decode().splitlines()]
    assert len(lines) == 3
    assert lines[2] == {"id": "3", "name": "Thing é", "price": "3", "day": "2024-02-02"}
    assert read(result.tasks["to_csv"].outputs["uri"]).decode().splitlines()[:2] == [
        '"id";"name";"price";"day"',
        '1;"Widget A";12.50;"2024-01-31"',
    ]
    assert "Converted 3 rows" in result.tasks["to_ion"].log_text()


AVRO_SCHEMA = {
    "type": "record",
    "name": "Product",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": "string"},
        {"name": "price", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}]},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    ],
}
TYPED = [
    {"id": 1, "name": "Widget A", "price": Decimal("12.50"), "day": dt.date(2024, 1, 31)},
    {"id": 2, "name": "Gadget, B", "price": None, "day": dt.date(2024, 2, 1)},
    {"id": 3, "name": "Thing é", "price": Decimal("3.00"), "day": dt.date(2024, 2, 2)},
]


@pytest.mark.parametrize(
    ("writer", "reader", "extra"),
    [
        ("parquet.IonToParquet", "parquet.ParquetToIon", "compressionCodec: ZSTD"),
        ("avro.IonToAvro", "avro.AvroToIon", "onBadLines: ERROR"),
    ],
)
def test_round_trip_through_parquet_and_avro(run_flow, writer: str, reader: str, extra: str):
    source = put(CSV.encode(), "products.csv")
    result = run_flow(
        f"""
        id: round_trip
        namespace: tests.serdes
        tasks:
          - id: to_ion
            type: io.kestra.plugin.serdes.csv.CsvToIon
            from: "{source}"
          - id: write
            type: io.kestra.plugin.serdes.{writer}
            from: "{{{{ outputs.to_ion.uri }}}}"
            {extra}
            schema: '{json.dumps(AVRO_SCHEMA)}'
          - id: read
            type: io.kestra.plugin.serdes.{reader}
            from: "{{{{ outputs.write.uri }}}}"
        """
    )
    assert states(result) == {"to_ion": "success", "write": "success", "read": "success"}
    written = read(result.tasks["write"].outputs["uri"])
    assert written.startswith(b"PAR1" if "parquet" in writer else b"Obj\x01")
    assert rows(result.tasks["read"].outputs["uri"]) == TYPED


def test_ion_to_excel_and_back(run_flow):
    first = io.BytesIO()
    ion.write_rows(TYPED, first)
    second = io.BytesIO()
    ion.write_rows([{"city": "Paris"}, {"city": "Lyon"}], second)
    products, cities = put(first.getvalue(), "products.ion"), put(second.getvalue(), "cities.ion")
    result = run_flow(
        f"""
        id: excel
        namespace: tests.serdes
        tasks:
          - id: to_excel
            type: io.kestra.plugin.serdes.excel.IonToExcel
            from:
              Products: "{products}"
              Cities: "{cities}"
          - id: to_ion
            type: io.kestra.plugin.serdes.excel.ExcelToIon
            from: "{{{{ outputs.to_excel.uri }}}}"
          - id: only_cities
            type: io.kestra.plugin.serdes.excel.ExcelToIon
            from: "{{{{ outputs.to_excel.uri }}}}"
            sheetsTitle: [Cities]
            header: false
        """
    )
    assert states(result) == {"to_excel": "success", "to_ion": "success", "only_cities": "success"}
    assert result.tasks["to_excel"].outputs["size"] == 5
    assert result.tasks["to_excel"].outputs["uri"].endswith(".xlsx")
    outputs = result.tasks["to_ion"].outputs
    assert sorted(outputs["uris"]) == ["Cities", "Products"] and outputs["size"] == 7
    products_back = rows(outputs["uris"]["Products"])
    assert products_back[0] == {"id": 1.0, "name": "Widget A", "price": 12.5, "day": dt.date(2024, 1, 31)}
    assert products_back[1]["price"] == "null"  # Kestra's IonToExcel writes a null as the text "null"
    assert rows(result.tasks["only_cities"].outputs["uris"]["Cities"]) == [["city"], ["Paris"], ["Lyon"]]


def test_json_to_ion_array_then_avro_with_inferred_schema(run_flow):
    source = put(b'[{"id": 1, "tags": ["a"], "score": 1.5}, {"id": 2, "tags": [], "score": null}]', "data.json")
    result = run_flow(
        f"""
        id: json_avro
        namespace: tests.serdes
        tasks:
          - id: to_ion
            type: io.kestra.plugin.serdes.json.JsonToIon
            from: "{source}"
            newLine: false
          - id: to_avro
            type: io.kestra.plugin.serdes.avro.IonToAvro
            from: "{{{{ outputs.to_ion.uri }}}}"
          - id: back
            type: io.kestra.plugin.serdes.avro.AvroToIon
            from: "{{{{ outputs.to_avro.uri }}}}"
          - id: as_array
            type: io.kestra.plugin.serdes.json.IonToJson
            from: "{{{{ outputs.back.uri }}}}"
            newLine: false
        """
    )
    assert states(result) == {"to_ion": "success", "to_avro": "success", "back": "success", "as_array": "success"}
    assert rows(result.tasks["back"].outputs["uri"]) == [
        {"id": 1, "tags": ["a"], "score": 1.5},
        {"id": 2, "tags": [], "score": None},
    ]
    assert result.tasks["as_array"].outputs["uri"].endswith(".json")
    assert json.loads(read(result.tasks["as_array"].outputs["uri"])) == [
        {"id": 1, "tags": ["a"], "score": 1.5},
        {"id": 2, "tags": [], "score": None},
    ]


def test_bad_input_fails_the_task_with_a_located_error(run_flow):
    uneven = put(b"a,b\n1,2\n3,4,5\n", "uneven.csv")
    latin = put("name\nJosé\n".encode("iso-8859-1"), "latin.csv")
    corrupt = put(b'{a:1}\n{a:"open}\n', "corrupt.ion")
    missing = storage.make_uri("tests", "serdes", "missing.csv")
    result = run_flow(
        f"""
        id: bad_input
        namespace: tests.serdes
        tasks:
          - id: parallel
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - id: uneven
                type: io.kestra.plugin.serdes.csv.CsvToIon
                from: "{uneven}"
              - id: uneven_skipped
                type: io.kestra.plugin.serdes.csv.CsvToIon
                from: "{uneven}"
                onBadLines: WARN
              - id: legacy_keep
                type: io.kestra.plugin.serdes.csv.CsvToIon
                from: "{uneven}"
                errorOnDifferentFieldCount: false
              - id: latin
                type: io.kestra.plugin.serdes.csv.CsvToIon
                from: "{latin}"
              - id: latin_ok
                type: io.kestra.plugin.serdes.csv.CsvToIon
                from: "{latin}"
                charset: ISO-8859-1
              - id: corrupt
                type: io.kestra.plugin.serdes.json.IonToJson
                from: "{corrupt}"
              - id: missing
                type: io.kestra.plugin.serdes.csv.CsvToIon
                from: "{missing}"
              - id: outside
                type: io.kestra.plugin.serdes.csv.CsvToIon
                from: "kestra:///tests/../../etc/passwd"
        """
    )
    assert result.state == "failed"
    assert f"`{uneven}`: line 3: bad line (field count mismatch): expected 2" in failure(result, "uneven")
    assert result.tasks["uneven_skipped"].state == "success"
    assert rows(result.tasks["uneven_skipped"].outputs["uri"]) == [{"a": "1", "b": "2"}]
    assert "Bad line encountered (skipped): line 3" in result.tasks["uneven_skipped"].log_text()
    assert rows(result.tasks["legacy_keep"].outputs["uri"]) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    assert "not valid UTF-8 text" in failure(result, "latin") and "set `charset`" in failure(result, "latin")
    assert rows(result.tasks["latin_ok"].outputs["uri"]) == [{"name": "José"}]
    assert f"`{corrupt}`: line 2: not valid Ion" in failure(result, "corrupt")
    assert "no such file in the storage" in failure(result, "missing")
    assert "`kestra:///tests/../../etc/passwd` is not a valid storage path" in failure(result, "outside")
    assert "Traceback" not in failure(result, "uneven")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            "type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: /etc/passwd",
            "must be a kestra:// internal-storage URI",
        ),
        (
            "type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: kestra:///a\n    fieldSeparator: ';;'",
            "one character",
        ),
        ("type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: kestra:///a\n    maxBufferSize: 10", "not supported"),
        ("type: io.kestra.plugin.serdes.excel.ExcelToIon\n    from: kestra:///a\n    valueRender: FORMULA", "FORMULA"),
        ("type: io.kestra.plugin.serdes.avro.IonToAvro\n    from: kestra:///a\n    inferAllFields: true", "inferAllF"),
        ("type: io.kestra.plugin.serdes.csv.IonToCsv\n    from: kestra:///a\n    quoteMode: SOMETIMES", "ALWAYS"),
        ("type: io.kestra.plugin.serdes.xml.XmlToIon\n    from: kestra:///a", "not supported by yaml2dag yet"),
    ],
)
def test_invalid_properties_are_located_compile_errors(task: str, message: str):
    text = f"id: bad\nnamespace: tests.serdes\ntasks:\n  - id: t\n    {task}\n"
    with pytest.raises(FlowValidationError, match=message) as caught:
        parse_flow_text(text, "bad.yaml")
    assert caught.value.errors[0].line is not None
