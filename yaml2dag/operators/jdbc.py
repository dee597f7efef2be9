"""Operators for Kestra's JDBC `Query` / `Queries` (SQLite, DuckDB, PostgreSQL, MySQL/MariaDB).

The connection comes from `jdbc_connections` (provider hooks for server databases). Statements run
through the DB-API cursor; `:name` placeholders are rewritten to the driver's style and bound to
`parameters` (never pasted into the SQL). Rows become maps of JSON-friendly values (`row`, `rows`)
or lines of Amazon Ion in Kestra's internal storage (`uri`, fetchType STORE). The password (the
property, or one inside the url) is registered with Airflow's secrets masker before anything is
rendered or logged.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
import uuid
from collections.abc import Iterator
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.jdbc_connections import Database, open_conn_id, open_url, url_password
from yaml2dag.tasktypes.base import as_flag
from yaml2dag.tasktypes.jdbc import CopyIn, CopyOut, JdbcQueries, JdbcQuery

#: Quoted text and comments (kept as they are) or a `:name` placeholder (not `::cast`).
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|::|(?<![\w:]):([A-Za-z_]\w*)", re.S)
_FETCH_TYPES = ("NONE", "FETCH_ONE", "FETCH", "STORE")
#: Statements that change data or schema (their DuckDB `Count` result is not a query result).
_CHANGES = re.compile(r"\s*(?:--[^\n]*\n\s*)*(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|MERGE)\b", re.I)


def bind_placeholders(sql: str, parameters: dict[str, Any], dialect: str) -> str:
    """`sql` with each `:name` of `parameters` in the driver's placeholder style (`%(name)s`, `:name`, `$name`)."""
    if dialect in ("postgres", "mysql"):
        sql = sql.replace("%", "%%")

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None or name not in parameters:
            return match.group(0)
        if dialect in ("postgres", "mysql"):
            return f"%({name})s"
        return f"${name}" if dialect == "duckdb" else f":{name}"

    return _PLACEHOLDER.sub(placeholder, sql)


def cell(value: Any) -> Any:
    """A database value as a JSON-friendly output value (Kestra's JSON rendering of JDBC values)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [cell(item) for item in value]
    if isinstance(value, dict):
        return {str(key): cell(item) for key, item in value.items()}
    return str(value)


def _decimal(value: decimal.Decimal) -> int | float:
    """A whole decimal as an (exact) integer, any other as a float."""
    number = float(value)
    return int(value) if number.is_integer() else number


#: The common database types → their JSON conversion (one dict lookup instead of an isinstance chain).
_JSON_CONVERTERS: dict[type, Any] = {
    decimal.Decimal: _decimal,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    uuid.UUID: str,
}


def json_cell(value: Any) -> Any:
    """`cell`, faster for the common database types."""
    converter = _JSON_CONVERTERS.get(type(value))
    return converter(value) if converter is not None else cell(value)


def ion_cell(value: Any) -> Any:
    """A database value as written to Ion (dates, decimals and bytes keep their Ion types)."""
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [ion_cell(item) for item in value]
    return value


def _duckdb_count(database: Database, cursor: Any) -> bool:
    """Whether DuckDB answered a data-changing statement (INSERT, CREATE TABLE AS…) with its `Count` row.

    Other databases return no result set for those statements, nor does Kestra: the row is dropped.
    """
    if database.dialect != "duckdb" or [column[0] for column in cursor.description] != ["Count"]:
        return False
    return str(cursor.description[0][1]) == "BIGINT" and database.last_statement_changes


#: Value types written as they are: to outputs (JSON) and to Ion files.
_JSON_TYPES = frozenset({type(None), bool, int, float, str})
_ION_TYPES = _JSON_TYPES | {decimal.Decimal, dt.datetime, dt.date, dt.time, bytes, dict}


def row_maps(columns: list[str], batch: list[Any], convert: Any, kept: frozenset[type]) -> list[dict[str, Any]]:
    """A batch of row tuples as maps, converting column by column only the columns holding other types."""
    if not batch:
        return []
    by_column = list(zip(*batch, strict=True))
    for index, values in enumerate(by_column):
        if not set(map(type, values)) <= kept:
            by_column[index] = tuple(map(convert, values))
    return [dict(zip(columns, values, strict=True)) for values in zip(*by_column, strict=True)]


class _JdbcOperator(KestraOperator):
    """Shared by `Query` and `Queries`: connecting, masking, running one statement and fetching its rows."""

    ui_color = "#e8f0fe"

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Mask the password (property or url) before rendering (errors quote templates) and after."""
        self._mask_password()
        super().render_template_fields(context, jinja_env)
        self._mask_password()

    def _mask_password(self) -> None:
        from airflow.sdk.log import mask_secret

        for secret in (self.password, url_password(str(self.url)) if self.url else None):
            if secret and "{{" not in str(secret) and "{%" not in str(secret):
                mask_secret(str(secret))

    def connect(self) -> Database:
        """The database named by `url` or `connId`."""
        if self.connId:
            return open_conn_id(self.connId)
        username = str(self.username) if self.username else None
        password = str(self.password) if self.password else None
        return open_url(str(self.url), username, password)

    def fetch_type(self) -> str:
        """The rendered `fetchType`, or the one the deprecated flags name (fetchOne, then store, then fetch)."""
        for flag, kind in ((self.fetchOne, "FETCH_ONE"), (self.store, "STORE"), (self.fetch, "FETCH")):
            if as_flag(flag, kind):
                return kind
        kind = str(self.fetchType).strip().upper()
        if kind not in _FETCH_TYPES:
            raise TaskFailure(f"invalid fetchType `{self.fetchType}`: use {', '.join(_FETCH_TYPES)}")
        return kind

    def parameters_map(self) -> dict[str, Any]:
        """The rendered `parameters`, checked."""
        if self.parameters is None:
            return {}
        if not isinstance(self.parameters, dict):
            raise TaskFailure("`parameters` must be a map of placeholder name → value")
        return dict(self.parameters)

    def execute_statement(self, database: Database, cursor: Any, sql: str, parameters: dict[str, Any]) -> None:
        """Run one statement; a database error fails the task with the database's own message."""
        self.log.info("Running on %s: %s", database.where, sql.strip()[:2000])
        database.last_statement_changes = _CHANGES.match(sql) is not None
        try:
            if parameters:
                cursor.execute(bind_placeholders(sql, parameters, database.dialect), parameters)
            else:
                cursor.execute(sql)
        except Exception as exc:  # noqa: BLE001 - each driver has its own DB-API Error class
            raise TaskFailure(f"{database.where} rejected the statement: {str(exc).strip()}") from None

    def result(self, context: Any, database: Database, cursor: Any, kind: str) -> dict[str, Any] | None:
        """The outputs of the statement just run: None when it returned no result set (or fetchType NONE)."""
        if cursor.description is None or kind == "NONE" or _duckdb_count(database, cursor):
            return None
        columns = [str(column[0]) for column in cursor.description]
        if kind == "FETCH_ONE":
            first = cursor.fetchone()
            row = None if first is None else {name: cell(value) for name, value in zip(columns, first, strict=True)}
            return {"row": row, "size": 0 if row is None else 1}
        if kind == "FETCH":
            rows = [row for batch in self._batches(cursor) for row in row_maps(columns, batch, json_cell, _JSON_TYPES)]
            return {"rows": rows, "size": len(rows)}
        return self._store(context, cursor, columns)

    def _batches(self, cursor: Any) -> Iterator[list[Any]]:
        size = int(self.fetchSize) or 10000
        while True:
            batch = cursor.fetchmany(size)
            if not batch:
                return
            yield batch

    def _store(self, context: Any, cursor: Any, columns: list[str]) -> dict[str, Any]:
        from yaml2dag import storage
        from yaml2dag.serdes.ion import IonWriter

        with storage.open_write(context, f"{self.task_id}.ion") as (uri, stream):
            writer = IonWriter(stream)
            for batch in self._batches(cursor):
                for row in row_maps(columns, batch, ion_cell, _ION_TYPES):
                    writer.write(row)
            writer.flush()
        self.log.info("Stored %d rows in %s", writer.count, uri)
        return {"uri": uri, "size": writer.count}


class JdbcQueryOperator(_JdbcOperator, task_type=JdbcQuery):
    """`io.kestra.plugin.jdbc.<database>.Query`: one statement, committed; outputs per `fetchType`."""

    def run(self, context: Any) -> dict[str, Any] | None:
        kind = self.fetch_type()
        parameters = self.parameters_map()
        database = self.connect()
        try:
            cursor = database.cursor()
            self.execute_statement(database, cursor, str(self.sql), parameters)
            outputs = self.result(context, database, cursor, kind)
            database.connection.commit()
            return outputs
        finally:
            database.connection.close()


class JdbcQueriesOperator(_JdbcOperator, task_type=JdbcQueries):
    """`io.kestra.plugin.jdbc.<database>.Queries`: `;`-separated statements, by default in one transaction.

    Output `outputs`: one entry (`row`/`rows`/`uri` + `size`) per statement that returned a result set.
    """

    def run(self, context: Any) -> dict[str, Any] | None:
        import sqlparse

        kind = self.fetch_type()
        parameters = self.parameters_map()
        in_transaction = as_flag(self.transaction, "transaction")
        statements = [text for text in (part.strip().rstrip(";") for part in sqlparse.split(str(self.sql))) if text]
        database = self.connect()
        outputs: list[dict[str, Any]] = []
        try:
            cursor = database.cursor()
            if in_transaction:
                database.begin()
            for statement in statements:
                used = {name: value for name, value in parameters.items() if f":{name}" in statement}
                self.execute_statement(database, cursor, statement, used)
                produced = self.result(context, database, cursor, kind)
                if produced is not None:
                    outputs.append(produced)
                if not in_transaction:
                    database.connection.commit()
            database.connection.commit()
        except BaseException:
            if in_transaction:
                database.connection.rollback()
            raise
        finally:
            database.connection.close()
        return {"outputs": outputs}


def _sql_text(value: Any) -> str:
    """A COPY option value as an SQL string literal (quotes doubled: the value cannot end the literal)."""
    text = str(value)
    if text == "\\t":
        text = "\t"
    return "'" + text.replace("'", "''") + "'"


class _PostgresCopyOperator(_JdbcOperator):
    """Shared by CopyIn and CopyOut: the `COPY` statement Kestra builds, and a PostgreSQL connection.

    psycopg2 (the provider's default driver) streams with `copy_expert`; psycopg 3 with `cursor.copy`.
    """

    def connect(self) -> Database:
        """The PostgreSQL database of `url` or `connId` (another database is refused)."""
        database = super().connect()
        if database.dialect != "postgres":
            database.connection.close()
            raise TaskFailure(f"{self.kestra_type} needs a PostgreSQL database, got {database.where}")
        return database

    def copy_statement(self, source: str | None, direction: str) -> str:
        """`COPY <table> [(columns)] | (<sql>) <direction> [WITH (options)]`, as Kestra's `AbstractCopy.query`."""
        parts = ["COPY"]
        if source is None:
            parts.append(str(self.table))
            if self.columns:
                parts.append("(" + ", ".join(str(column) for column in self.columns) + ")")
        else:
            parts.append(f"({source})")
        parts.append(direction)
        options = self._options()
        if options:
            parts.append("WITH (" + ", ".join(options) + ")")
        return " ".join(parts)

    def _options(self) -> list[str]:
        kind = str(self.format).strip().upper()
        if kind not in ("TEXT", "CSV", "BINARY"):
            raise TaskFailure(f"invalid format `{self.format}`: use TEXT, CSV or BINARY")
        options = [f"FORMAT {kind}"] if kind != "TEXT" else []
        for name, keyword in (("oids", "OIDS"), ("freeze", "FREEZE")):
            if getattr(self, name) is not None and as_flag(getattr(self, name), name):
                options.append(keyword)
        if self.delimiter is not None:
            options.append(f"DELIMITER {_sql_text(self.delimiter)}")
        if self.nullString is not None:
            options.append(f"NULL {_sql_text(self.nullString)}")
        if self.header is not None:
            options.append("HEADER " + ("TRUE" if as_flag(self.header, "header") else "FALSE"))
        options.extend(self._quoting_options())
        if self.encoding is not None:
            options.append(f"ENCODING {_sql_text(self.encoding)}")
        return options

    def _quoting_options(self) -> list[str]:
        """CSV quoting: QUOTE, ESCAPE, FORCE_QUOTE, FORCE_NOT_NULL, FORCE_NULL."""
        options = []
        for name, keyword in (("quote", "QUOTE"), ("escape", "ESCAPE")):
            if getattr(self, name) is not None:
                options.append(f"{keyword} {_sql_text(getattr(self, name))}")
        if self.forceQuote:
            columns = [str(column) for column in self.forceQuote]
            options.append("FORCE_QUOTE " + ("*" if columns == ["*"] else "(" + ", ".join(columns) + ")"))
        for name, keyword in (("forceNotNull", "FORCE_NOT_NULL"), ("forceNull", "FORCE_NULL")):
            if getattr(self, name):
                options.append(f"{keyword} (" + ", ".join(str(column) for column in getattr(self, name)) + ")")
        return options

    def run_copy(self, statement: str, stream: Any, direction: str) -> int:
        """Run `statement`, streaming `stream` in (FROM STDIN) or out (TO STDOUT); the number of rows copied."""
        database = self.connect()
        self.log.info("Running on %s: %s", database.where, statement)
        try:
            cursor = database.cursor()
            try:
                if hasattr(cursor, "copy_expert"):
                    cursor.copy_expert(statement, stream, size=1 << 20)
                else:
                    _copy_psycopg3(cursor, statement, stream, direction)
            except TaskFailure:
                raise
            except Exception as exc:  # noqa: BLE001 - each driver has its own DB-API Error class
                database.connection.rollback()
                raise TaskFailure(f"{database.where} rejected the statement: {str(exc).strip()}") from None
            database.connection.commit()
            return int(cursor.rowcount)
        finally:
            database.connection.close()


def _copy_psycopg3(cursor: Any, statement: str, stream: Any, direction: str) -> None:
    with cursor.copy(statement) as copy:
        if direction == "FROM STDIN":
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
        else:
            for chunk in copy:
                stream.write(chunk)


class PostgresCopyInOperator(_PostgresCopyOperator, task_type=CopyIn):
    """`io.kestra.plugin.jdbc.postgresql.CopyIn`: `COPY <table> FROM STDIN` fed from `from`; output `rowCount`."""

    def run(self, context: Any) -> dict[str, Any]:
        from yaml2dag import storage

        uri = str(self.from_)
        if not storage.is_storage_uri(uri):
            raise TaskFailure(f"`from` must be a file of the internal storage (kestra://…), got `{uri}`")
        statement = self.copy_statement(None, "FROM STDIN")
        with storage.open_read(uri) as stream:
            count = self.run_copy(statement, stream, "FROM STDIN")
        self.log.info("Copied %d rows from %s into %s", count, uri, self.table)
        return {"rowCount": count}


class PostgresCopyOutOperator(_PostgresCopyOperator, task_type=CopyOut):
    """`io.kestra.plugin.jdbc.postgresql.CopyOut`: `COPY <table or (sql)> TO STDOUT` into a new storage file.

    Outputs `uri` (kestra://) and `rowCount`.
    """

    def run(self, context: Any) -> dict[str, Any]:
        from yaml2dag import storage

        statement = self.copy_statement(str(self.sql) if self.sql else None, "TO STDOUT")
        suffix = {"CSV": "csv", "BINARY": "bin"}.get(str(self.format).strip().upper(), "txt")
        with storage.open_write(context, f"{self.task_id}.{suffix}") as (uri, stream):
            count = self.run_copy(statement, stream, "TO STDOUT")
        self.log.info("Copied %d rows into %s", count, uri)
        return {"uri": uri, "rowCount": count}
