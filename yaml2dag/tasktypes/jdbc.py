"""Kestra's JDBC tasks: `Query`/`Queries` (SQLite, DuckDB, PostgreSQL, MySQL), PostgreSQL `CopyIn`/`CopyOut`."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from yaml2dag.tasktypes.base import Flag, TaskBase, Text, choice, is_expression, rendered

_JDBC = "yaml2dag.operators.jdbc"
_PREFIX = "io.kestra.plugin.jdbc"
#: Kestra's task package → the JDBC url schemes it accepts.
URL_SCHEMES: dict[str, tuple[str, ...]] = {
    "sqlite": ("jdbc:sqlite:",),
    "duckdb": ("jdbc:duckdb:",),
    "postgresql": ("jdbc:postgresql:",),
    "mysql": ("jdbc:mysql:", "jdbc:mariadb:"),
}
FetchType = choice("NONE", "FETCH_ONE", "FETCH", "STORE")


def _jdbc_url(value: str) -> str:
    if not is_expression(value) and not value.startswith("jdbc:"):
        raise ValueError("must be a JDBC url such as jdbc:postgresql://host:5432/db")
    return value


class _JdbcTask(TaskBase):
    """Properties every JDBC task has: the database (`url` or `connId`), credentials, parameters, fetching."""

    DATABASE: ClassVar[str] = ""
    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"timeZoneId"}

    url: Annotated[str, AfterValidator(_jdbc_url)] | None = rendered(
        None,
        description="JDBC url: jdbc:postgresql://host:port/db, jdbc:mysql://…, jdbc:sqlite:/path, jdbc:duckdb:/path.",
    )
    connId: str | None = Field(
        None, description="yaml2dag extension: an Airflow connection to use instead of `url` (not for DuckDB)."
    )
    username: Text | None = rendered(None, description="Database user.")
    password: Text | None = rendered(None, description="Database password (masked in logs).")
    sql: Text = rendered(description="The SQL to run; `:name` placeholders take `parameters`.")
    parameters: dict[str, Any] | None = rendered(None, description="Values bound to `:name` placeholders.")
    fetchType: FetchType = rendered("NONE", description="NONE, FETCH_ONE (`row`), FETCH (`rows`), STORE (`uri`).")  # type: ignore[valid-type]
    timeZoneId: str | None = Field(None, description="Time zone of dates without one (Kestra: the server's).")
    fetchSize: int = Field(10000, ge=0, description="Rows fetched per round trip.")
    fetch: Flag = Field(False, description="Deprecated: fetchType FETCH.")
    fetchOne: Flag = Field(False, description="Deprecated: fetchType FETCH_ONE.")
    store: Flag = Field(False, description="Deprecated: fetchType STORE.")

    @model_validator(mode="after")
    def _one_database(self) -> _JdbcTask:
        # DuckDB first: its `url` has a default (a database in the working directory), so a `connId`
        # would otherwise be reported as "both given".
        if self.connId is not None and self.DATABASE == "duckdb":
            raise ValueError(
                "`connId` is not available for DuckDB (Airflow has no DuckDB connection type): "
                "set `url` (jdbc:duckdb:/path/to/file.db)"
            )
        if (self.url is None) == (self.connId is None):
            raise ValueError("set `url` (e.g. jdbc:postgresql://host:5432/db) or `connId` (an Airflow connection)")
        return self

    @field_validator("url")
    @classmethod
    def _url_of_this_database(cls, value: str | None) -> str | None:
        schemes = URL_SCHEMES.get(cls.DATABASE, ("jdbc:",))
        if value is not None and not is_expression(value) and not value.startswith(schemes):
            raise ValueError(f"a {cls.DATABASE} task needs a url starting with {' or '.join(schemes)}")
        return value


class JdbcQuery(_JdbcTask):
    """Run one SQL statement: outputs `row` (FETCH_ONE), `rows` (FETCH) or `uri` (STORE), and `size`."""

    OPERATOR: ClassVar = f"{_JDBC}:JdbcQueryOperator"


class JdbcQueries(_JdbcTask):
    """Run `;`-separated SQL statements: output `outputs`, one `row`/`rows`/`uri` + `size` per result set."""

    OPERATOR: ClassVar = f"{_JDBC}:JdbcQueriesOperator"

    transaction: Flag = rendered(True, description="Run all statements in one transaction (rolled back on error).")


def _declare(database: str) -> tuple[type[JdbcQuery], type[JdbcQueries]]:
    """The `Query` and `Queries` declarations of one database."""
    name = database.capitalize()
    query = type(
        f"{name}Query",
        (JdbcQuery,),
        {
            "__doc__": f"{JdbcQuery.__doc__} ({database})",
            "__module__": __name__,
            "TYPES": (f"{_PREFIX}.{database}.Query",),
            "DATABASE": database,
        },
    )
    queries = type(
        f"{name}Queries",
        (JdbcQueries,),
        {
            "__doc__": f"{JdbcQueries.__doc__} ({database})",
            "__module__": __name__,
            "TYPES": (f"{_PREFIX}.{database}.Queries",),
            "DATABASE": database,
        },
    )
    return query, queries


class _DuckDbFiles(TaskBase):
    """What Kestra's DuckDB tasks add: a working directory with input and output files, database files."""

    UNSUPPORTED: ClassVar[frozenset[str]] = _JdbcTask.UNSUPPORTED | {
        "communityExtensions",
        "captureOutputFiles",
        "maxCapturedFiles",
        "maxCapturedBytes",
    }

    url: Annotated[str, AfterValidator(_jdbc_url)] | None = rendered(
        "jdbc:duckdb:",
        description="jdbc:duckdb: (default: a new database file in the working directory) or jdbc:duckdb:/path.",
    )
    inputFiles: dict[str, Text] | Text | None = rendered(
        None, description="Files written into the working directory first: name → content or kestra:// URI."
    )
    outputFiles: list[Text] | None = rendered(
        None, description="Names of files the SQL writes (`{{ outputFiles.<name> }}`), uploaded as `outputFiles`."
    )
    databaseUri: Text | None = rendered(None, description="kestra:// URI of an existing DuckDB database file to open.")
    outputDbFile: Flag = rendered(False, description="Upload the database file as output `databaseUri`.")
    communityExtensions: Any = None
    captureOutputFiles: Any = None
    maxCapturedFiles: Any = None
    maxCapturedBytes: Any = None


class DuckdbQuery(_DuckDbFiles, JdbcQuery):
    """Run one DuckDB statement in a working directory (`{{ workingDir }}`): outputs as Query, `outputFiles`."""

    TYPES: ClassVar = (f"{_PREFIX}.duckdb.Query",)
    OPERATOR: ClassVar = "yaml2dag.operators.duckdb:DuckDbQueryOperator"
    DATABASE: ClassVar[str] = "duckdb"


class DuckdbQueries(_DuckDbFiles, JdbcQueries):
    """Run `;`-separated DuckDB statements in a working directory: outputs as Queries, `outputFiles`."""

    TYPES: ClassVar = (f"{_PREFIX}.duckdb.Queries",)
    OPERATOR: ClassVar = "yaml2dag.operators.duckdb:DuckDbQueriesOperator"
    DATABASE: ClassVar[str] = "duckdb"


SqliteQuery, SqliteQueries = _declare("sqlite")
PostgresqlQuery, PostgresqlQueries = _declare("postgresql")
MysqlQuery, MysqlQueries = _declare("mysql")


def _one_character(value: str) -> str:
    """A COPY delimiter, quote or escape: one character (a backslash and `t` are read as a tab)."""
    if not is_expression(value) and len(value.replace("\\t", "\t")) != 1:
        raise ValueError("must be a single character")
    return value


#: One character (or an expression rendering to one).
Character = Annotated[str, AfterValidator(_one_character)]


class _PostgresCopy(TaskBase):
    """PostgreSQL `COPY` between a table (or query) and a file of the internal storage (Kestra's `AbstractCopy`)."""

    DATABASE: ClassVar[str] = "postgresql"
    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {
        "ssl", "sslMode", "sslRootCert", "sslCert", "sslKey", "sslKeyPassword", "socketTimeout",
    }  # fmt: skip

    url: Annotated[str, AfterValidator(_jdbc_url)] | None = rendered(
        None, description="JDBC url: jdbc:postgresql://host:port/database."
    )
    connId: str | None = Field(None, description="yaml2dag extension: an Airflow Postgres connection instead of `url`.")
    username: Text | None = rendered(None, description="Database user.")
    password: Text | None = rendered(None, description="Database password (masked in logs).")
    table: Text | None = rendered(None, description="The table (optionally schema-qualified).")
    columns: list[Text] | None = rendered(None, description="Only these columns (default: all).")
    format: choice("TEXT", "CSV", "BINARY") = rendered("TEXT", description="TEXT (default), CSV or BINARY.")  # type: ignore[valid-type]
    oids: Flag | None = rendered(None, description="Copy the OID of each row (tables with OIDs only).")
    freeze: Flag | None = rendered(None, description="COPY FREEZE: rows loaded already frozen.")
    delimiter: Character | None = rendered(None, description="Column separator (tab in TEXT, comma in CSV).")
    nullString: Text | None = rendered(None, description="The text of a null value (\\N in TEXT, empty in CSV).")
    header: Flag | None = rendered(None, description="CSV: the file has a header line.")
    quote: Character | None = rendered(None, description='CSV: the quoting character (default ").')
    escape: Character | None = rendered(None, description="CSV: the escape character (default: the quote).")
    forceQuote: list[Text] | None = rendered(None, description="CopyOut, CSV: always quote these columns (`*`: all).")
    forceNotNull: list[Text] | None = rendered(None, description="CopyIn, CSV: never read these columns as null.")
    forceNull: list[Text] | None = rendered(None, description="CopyIn, CSV: a quoted null string is null here too.")
    encoding: Text | None = rendered(None, description="Encoding of the file (default: the client encoding).")
    ssl: Any = None
    sslMode: Any = None
    sslRootCert: Any = None
    sslCert: Any = None
    sslKey: Any = None
    sslKeyPassword: Any = None
    socketTimeout: Any = None

    @model_validator(mode="after")
    def _one_database(self) -> _PostgresCopy:
        if (self.url is None) == (self.connId is None):
            raise ValueError("set `url` (e.g. jdbc:postgresql://host:5432/db) or `connId` (an Airflow connection)")
        if self.url is not None and not is_expression(self.url) and not self.url.startswith("jdbc:postgresql:"):
            raise ValueError("a postgresql task needs a url starting with jdbc:postgresql:")
        return self


class CopyIn(_PostgresCopy):
    """Load a file of the internal storage (`from`) into `table` with COPY … FROM STDIN: output `rowCount`."""

    TYPES: ClassVar = (f"{_PREFIX}.postgresql.CopyIn",)
    OPERATOR: ClassVar = f"{_JDBC}:PostgresCopyInOperator"

    from_: Text = rendered(alias="from", description="The file to load (kestra:// URI).")
    table: Text = rendered(description="The table to load (optionally schema-qualified).")


class CopyOut(_PostgresCopy):
    """Write `table`, or the result of `sql`, to a new storage file with COPY … TO STDOUT: `uri`, `rowCount`."""

    TYPES: ClassVar = (f"{_PREFIX}.postgresql.CopyOut",)
    OPERATOR: ClassVar = f"{_JDBC}:PostgresCopyOutOperator"

    sql: Text | None = rendered(
        None, description="A SELECT (or … RETURNING) whose result is copied, instead of `table`."
    )

    @model_validator(mode="after")
    def _table_or_sql(self) -> CopyOut:
        if self.sql is None and self.table is None:
            raise ValueError("set `table` or `sql`: what to copy")
        return self


TASK_TYPES: tuple[type[TaskBase], ...] = (
    SqliteQuery, SqliteQueries, DuckdbQuery, DuckdbQueries,
    PostgresqlQuery, PostgresqlQueries, MysqlQuery, MysqlQueries, CopyIn, CopyOut,
)  # fmt: skip
