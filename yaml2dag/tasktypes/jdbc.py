"""Kestra's JDBC tasks for SQLite, DuckDB, PostgreSQL and MySQL/MariaDB: `Query` and `Queries` (docs/sql-s3.md)."""

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
        if (self.url is None) == (self.connId is None):
            raise ValueError("set `url` (e.g. jdbc:postgresql://host:5432/db) or `connId` (an Airflow connection)")
        if self.connId is not None and self.DATABASE == "duckdb":
            raise ValueError(
                "`connId` is not available for DuckDB (Airflow has no DuckDB connection type): "
                "set `url` (jdbc:duckdb:/path/to/file.db)"
            )
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

TASK_TYPES: tuple[type[TaskBase], ...] = (
    SqliteQuery, SqliteQueries, DuckdbQuery, DuckdbQueries,
    PostgresqlQuery, PostgresqlQueries, MysqlQuery, MysqlQueries,
)  # fmt: skip
