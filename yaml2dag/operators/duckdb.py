"""DuckDB's Query and Queries: the JDBC operators plus Kestra's working directory.

As in Kestra's DuckDB plugin, each task run gets a working directory: `inputFiles` are written into
it, `{{ workingDir }}` and `{{ outputFiles.<name> }}` name it and the files the SQL writes, DuckDB's
`file_search_path` points at it (so `read_csv_auto('data.csv')` finds an input file), and the
default url `jdbc:duckdb:` is a new database file inside it (`outputDbFile` uploads it).
`databaseUri` opens a database file from the storage instead.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.jdbc import JdbcQueriesOperator, JdbcQueryOperator
from yaml2dag.operators.jdbc_connections import Database
from yaml2dag.properties import as_flag
from yaml2dag.tasktypes.jdbc import DuckdbQueries, DuckdbQuery

_DEFAULT_URL = "jdbc:duckdb:"


class _DuckDbFilesMixin:
    """The working directory of a DuckDB task run: set up before the SQL runs, uploaded after."""

    _workdir: str | None = None
    _database_file: Path | None = None
    if TYPE_CHECKING:
        # Properties of the DuckDB declarations, set on the operator from them.
        url: Any
        inputFiles: Any
        outputFiles: Any
        databaseUri: Any
        outputDbFile: Any

    def working_dir(self) -> Path:
        """The working directory of the attempt (created on first use)."""
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="yaml2dag-duckdb-")
        return Path(self._workdir)

    def output_paths(self) -> dict[str, str]:
        """`outputFiles` name → path in the working directory."""
        from yaml2dag.tasktypes.scripts import check_relative_path

        paths = {}
        for name in getattr(self, "outputFiles", None) or []:
            try:
                check_relative_path(str(name))
            except ValueError as exc:
                raise TaskFailure(f"outputFiles: {exc}") from None
            paths[str(name)] = str(self.working_dir() / str(name))
        return paths

    def kestra_context(self, context: Any) -> dict[str, Any]:
        """Kestra's variables plus `workingDir` and `outputFiles` (the SQL is rendered with them)."""
        variables: dict[str, Any] = super().kestra_context(context)  # type: ignore[misc]
        variables.setdefault("workingDir", str(self.working_dir()))
        if "outputFiles" not in variables and getattr(self, "outputFiles", None):
            names = [name for name in self.outputFiles if "{{" not in str(name) and "{%" not in str(name)]
            variables["outputFiles"] = {str(name): str(self.working_dir() / str(name)) for name in names}
        return variables

    def prepare(self) -> None:
        """Write `inputFiles`, open `databaseUri`, and point the url at the database file."""
        from yaml2dag import storage
        from yaml2dag.operators.working_files import write_input_files

        workdir = self.working_dir()
        write_input_files(self.inputFiles, workdir)
        url = str(self.url or _DEFAULT_URL)
        if self.databaseUri:
            self._database_file = storage.download_local(str(self.databaseUri), workdir / uuid.uuid4().hex)
        elif url == _DEFAULT_URL:
            self._database_file = workdir / f"{uuid.uuid4().hex}.db"
        else:
            path = Path(url[len(_DEFAULT_URL) :].split("?", 1)[0])
            self._database_file = path if path.is_absolute() else None
        if self._database_file is not None:
            self.url = _DEFAULT_URL + str(self._database_file)

    def connect(self) -> Database:
        """Open the database, with DuckDB's `file_search_path` set to the working directory."""
        database: Database = super().connect()  # type: ignore[misc]
        folder = str(self.working_dir()).replace("'", "''")
        database.connection.execute(f"SET file_search_path='{folder}'")
        return database

    def uploads(self, context: Any) -> dict[str, Any]:
        """`outputFiles` (name → kestra:// URI) and, with `outputDbFile`, `databaseUri`."""
        from yaml2dag import storage

        uploaded = {}
        for name, path in self.output_paths().items():
            if not Path(path).is_file():
                raise TaskFailure(f"outputFiles `{name}`: the SQL did not write {{{{ outputFiles.{name} }}}}")
            uploaded[name] = storage.upload_local(context, Path(path), Path(name).name)
        outputs: dict[str, Any] = {"outputFiles": uploaded} if uploaded else {}
        if as_flag(self.outputDbFile, "outputDbFile"):
            if self._database_file is None or not self._database_file.is_file():
                raise TaskFailure("`outputDbFile`: the task has no local database file to upload (check `url`)")
            outputs["databaseUri"] = storage.upload_local(context, self._database_file)
        return outputs

    def run_in_working_dir(self, context: Any, run: Any) -> dict[str, Any] | None:
        """Prepare, run the SQL with `run`, upload the files; the working directory is removed after."""
        try:
            self.prepare()
            outputs = run(context) or {}
            outputs.update(self.uploads(context))
            return outputs or None
        finally:
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None


class DuckDbQueryOperator(_DuckDbFilesMixin, JdbcQueryOperator, task_type=DuckdbQuery):
    """`io.kestra.plugin.jdbc.duckdb.Query`: one statement in a working directory."""

    def run(self, context: Any) -> dict[str, Any] | None:
        """Run the statement between setting up and uploading the working directory."""
        return self.run_in_working_dir(context, super().run)


class DuckDbQueriesOperator(_DuckDbFilesMixin, JdbcQueriesOperator, task_type=DuckdbQueries):
    """`io.kestra.plugin.jdbc.duckdb.Queries`: statements in a working directory."""

    def run(self, context: Any) -> dict[str, Any] | None:
        """Run the statements between setting up and uploading the working directory."""
        return self.run_in_working_dir(context, super().run)
