"""A Kestra JDBC url (or an Airflow connection) → an open DB-API connection and its placeholder style.

PostgreSQL and MySQL/MariaDB connections are opened by the Airflow providers' hooks
(`PostgresHook`, `MySqlHook`), given an Airflow `Connection` built at run time from the url, so
connection options behave as for any Airflow connection; `connId` uses a stored connection through
its own hook (`Connection.get_hook()`, which also serves SQLite). A SQLite url opens the file with
`sqlite3` (the module `SqliteHook` wraps; the hook only reads stored connections) and DuckDB with
the `duckdb` package (Airflow has no DuckDB provider).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from yaml2dag.errors import TaskFailure

#: libpq options a PostgreSQL url may carry besides user/password (other JDBC options are ignored).
_POSTGRES_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "options")
#: Airflow connection type → dialect.
_CONN_TYPES = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}


@dataclass
class Database:
    """An open DB-API connection, its dialect (`postgres`, `mysql`, `sqlite`, `duckdb`) and a name for messages."""

    connection: Any
    dialect: str
    where: str
    #: Whether the statement being run changes data or schema (set by the operator).
    last_statement_changes: bool = False

    def cursor(self) -> Any:
        """A DB-API cursor on the connection (DuckDB's connection is its own cursor: `cursor()` would open another)."""
        return self.connection if self.dialect == "duckdb" else self.connection.cursor()

    def begin(self) -> None:
        """Start a transaction explicitly where the driver does not (DuckDB autocommits otherwise)."""
        if self.dialect == "duckdb":
            self.connection.begin()


def url_password(url: str) -> str | None:
    """The password a JDBC url carries (`user:password@` or `?password=`), to mask it."""
    parts = urlsplit(url.removeprefix("jdbc:").split(":", 1)[-1] if url.startswith("jdbc:") else url)
    if parts.password:
        return unquote(parts.password)
    passwords = parse_qs(parts.query).get("password")
    return passwords[0] if passwords else None


def open_url(url: str, username: str | None, password: str | None) -> Database:
    """Connect to the database of a Kestra JDBC url; `username`/`password` override the url's."""
    if not url.startswith("jdbc:"):
        raise TaskFailure(f"invalid JDBC url `{url}`: it must start with jdbc:")
    scheme, _, rest = url[len("jdbc:") :].partition(":")
    if scheme == "sqlite":
        return _sqlite(rest)
    if scheme == "duckdb":
        return _duckdb(rest)
    if scheme in ("postgresql", "mysql", "mariadb"):
        return _server(scheme, rest, username, password)
    raise TaskFailure(f"JDBC url scheme `jdbc:{scheme}:` is not supported by yaml2dag yet")


def open_conn_id(conn_id: str) -> Database:
    """Connect through the hook of the Airflow connection `conn_id`."""
    from airflow.sdk.bases.hook import BaseHook
    from airflow.sdk.exceptions import AirflowException

    try:
        stored = BaseHook.get_connection(conn_id)
        dialect = _CONN_TYPES.get(str(stored.conn_type))
        if dialect is None:
            raise TaskFailure(
                f"Airflow connection `{conn_id}` has type `{stored.conn_type}`; "
                f"yaml2dag's JDBC tasks take {', '.join(sorted(_CONN_TYPES))}"
            )
        connection = stored.get_hook().get_conn()
    except (AirflowException, ValueError) as exc:
        raise TaskFailure(f"cannot use Airflow connection `{conn_id}`: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the hook and its driver raise their own errors
        raise TaskFailure(f"cannot connect through Airflow connection `{conn_id}`: {exc}") from None
    return Database(connection, dialect, f"connection `{conn_id}`")


def _sqlite(rest: str) -> Database:
    import sqlite3

    path = rest or ":memory:"
    try:
        connection = sqlite3.connect(path)
    except sqlite3.Error as exc:
        raise TaskFailure(f"cannot open SQLite database `{path}`: {exc}") from None
    return Database(connection, "sqlite", f"SQLite `{path}`")


def _duckdb(rest: str) -> Database:
    import duckdb

    path = rest.split("?", 1)[0] or ":memory:"
    try:
        connection = duckdb.connect(path)
    except duckdb.Error as exc:
        raise TaskFailure(f"cannot open DuckDB database `{path}`: {exc}") from None
    return Database(connection, "duckdb", f"DuckDB `{path}`")


def _server(scheme: str, rest: str, username: str | None, password: str | None) -> Database:
    from airflow.models.connection import Connection

    parts = urlsplit(rest)
    if not parts.hostname:
        raise TaskFailure(f"invalid JDBC url: jdbc:{scheme}://host:port/database expected")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    login = username or (unquote(parts.username) if parts.username else None) or query.pop("user", None)
    secret = password or (unquote(parts.password) if parts.password else None) or query.pop("password", None)
    query.pop("user", None)
    query.pop("password", None)
    database = parts.path.lstrip("/") or None
    where = f"{parts.hostname}:{parts.port or ''}/{database or ''}"
    try:
        port = parts.port
    except ValueError:
        raise TaskFailure(f"invalid port in JDBC url for {parts.hostname}") from None
    if scheme == "postgresql":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        extra = {key: value for key, value in query.items() if key in _POSTGRES_OPTIONS}
        extra.setdefault("connect_timeout", "10")
        conn = Connection(conn_type="postgres", host=parts.hostname, port=port or 5432, login=login,
                          password=secret, schema=database, extra=json.dumps(extra))  # fmt: skip
        hook: Any = PostgresHook(connection=conn)
        dialect, label = "postgres", "PostgreSQL"
    else:
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        conn = Connection(conn_type="mysql", host=parts.hostname, port=port or 3306, login=login,
                          password=secret, schema=database, extra=json.dumps({"charset": "utf8mb4"}))  # fmt: skip
        hook = MySqlHook(connection=conn)
        dialect, label = "mysql", "MySQL"
    try:
        connection = hook.get_conn()
    except Exception as exc:  # noqa: BLE001 - each driver has its own DB-API Error class
        raise TaskFailure(f"cannot connect to {label} at {where}: {_first_line(exc)}") from None
    return Database(connection, dialect, f"{label} at {where}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
