"""Run one flow on real Airflow in this process (`dag.test()`), collecting states, outputs and logs.

Airflow reads its configuration when first imported, so `prepare_airflow_home` must run before
anything imports `airflow`; the CLI and the test suite call it first.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from yaml2dag.errors import FlowError, FlowValidationError
from yaml2dag.flowfile import read_flow
from yaml2dag.model import Flow

LOADER_NAME = "yaml2dag_run_flow.py"
#: Set to the AIRFLOW_HOME that `prepare_airflow_home` created (its database may come from the cache).
_THROW_AWAY = "YAML2DAG_THROW_AWAY_HOME"
_LOADER_TEMPLATE = '''"""airflow DAG file written by `yaml2dag run`: compiles the flow being run."""

import json
from pathlib import Path

from yaml2dag.dagfolder import load_flows

load_flows([Path({path!r})], globals(), variables=json.loads({variables!r}))
'''


@dataclass
class LogLine:
    """One line a task wrote to its log."""

    level: str
    message: str
    logger: str = ""

    def from_task(self) -> bool:
        """Whether the task itself wrote the line (its operator's logger), not Airflow's machinery."""
        return self.logger.startswith("airflow.task.operators")


@dataclass
class TaskResult:
    """A task's final Airflow state, its outputs (XCom) and its log lines."""

    state: str
    outputs: dict[str, Any] | None = None
    logs: list[LogLine] = field(default_factory=list)
    start: Any = None
    end: Any = None
    error: str | None = None

    def log_text(self) -> str:
        """All log messages joined by newlines (handy in assertions)."""
        return "\n".join(line.message for line in self.logs)


@dataclass
class RunResult:
    """The outcome of one flow run: run state and every task of the flow by its own id."""

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, TaskResult]
    duration: float
    state_task: TaskResult | None = None
    #: The signal (SIGINT 2, SIGTERM 15) that interrupted the run, None when it ran to its end.
    signum: int | None = None
    #: The flow's `outputs` (rendered by `_flow_state` at the end of the run).
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The `yaml2dag run --json` document."""
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "outputs": self.outputs,
            "interrupted_by": signal.Signals(self.signum).name if self.signum else None,
            "tasks": {
                task_id: {
                    "state": task.state,
                    "outputs": task.outputs or {},
                    "error": task.error,
                    "logs": [{"level": line.level, "message": line.message} for line in task.logs if line.from_task()],
                }
                for task_id, task in self.tasks.items()
            },
        }


def prepare_airflow_home() -> Path:
    """Point Airflow at a throw-away home and dags folder unless AIRFLOW_HOME is already set.

    With a user's AIRFLOW_HOME its database is used, but the dags folder is still a private
    temporary one so a run never disturbs the user's DAGs.
    """
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="yaml2dag-airflow-")
        os.environ[_THROW_AWAY] = os.environ["AIRFLOW_HOME"]
        if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
            from cryptography.fernet import Fernet

            # SECRET inputs are stored encrypted (yaml2dag.sealing): a key for this throw-away home.
            os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
    dags_folder = Path(os.environ["AIRFLOW_HOME"], "yaml2dag-run-dags")
    if "AIRFLOW__CORE__DAGS_FOLDER" not in os.environ:
        dags_folder = Path(tempfile.mkdtemp(prefix="yaml2dag-run-dags-"))
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def ensure_database() -> None:
    """Create or migrate the Airflow metadata database if it is not current.

    A throw-away home's SQLite database is copied from a per-Airflow-version cache (see
    `_database_cache`) instead of being created table by table; the cache is filled on first use.
    """
    cache = _database_cache()
    target = _throw_away_database()
    if cache is not None and target is not None and not target.exists() and _migrated(cache):
        shutil.copyfile(cache, target)
        return
    from airflow.utils import db

    db.initdb() if not _database_exists() else db.upgradedb()
    if cache is not None and target is not None and target.is_file() and not cache.exists():
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            _sqlite_copy(target, partial)
            os.replace(partial, cache)  # atomic: a concurrent run sees the whole file or none


def _migrated(database: Path) -> bool:
    """Whether `database` is an SQLite file with Airflow's tables, stamped by its migrations."""
    import sqlite3

    if not database.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            stamped = "alembic_version" in tables and connection.execute("SELECT 1 FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    return bool(stamped) and {"dag_run", "task_instance", "xcom"} <= tables


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (its write-ahead log included), by SQLite's backup API."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(source)) as reader, contextlib.closing(sqlite3.connect(target)) as writer:
        reader.backup(writer)


def _throw_away_database() -> Path | None:
    """The SQLite file of the throw-away home `prepare_airflow_home` made, None for a user's own database."""
    home = os.environ.get("AIRFLOW_HOME", "")
    if os.environ.get(_THROW_AWAY) != home or any(
        key in os.environ for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD")
    ):
        return None
    return Path(home, "airflow.db")


def _database_cache() -> Path | None:
    """Where a freshly migrated database of these Airflow packages is kept (None: caching disabled).

    `$YAML2DAG_CACHE_DIR`, else `$XDG_CACHE_HOME/yaml2dag`, else `~/.cache/yaml2dag`; the name holds
    a digest of every installed `apache-airflow*` distribution and version (providers add tables),
    so an upgrade gets a new file. `YAML2DAG_CACHE_DIR=` (empty) disables the cache.
    """
    from importlib.metadata import distributions

    folder = os.environ.get("YAML2DAG_CACHE_DIR")
    if folder == "":
        return None
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = str(Path(base, "yaml2dag"))
    versions = sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in distributions()
        if str(dist.metadata["Name"] or "").lower().startswith("apache-airflow")
    )
    digest = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]
    return Path(folder, f"airflow-metadata-{digest}.db")


def _database_exists() -> bool:
    from airflow.settings import engine
    from sqlalchemy import inspect

    return inspect(engine).has_table("dag_run")


#: Deepest nesting of lists/objects accepted in an `--input` value (Airflow's serializers recurse on the stack).
MAX_INPUT_DEPTH = 256
#: Where errors about `--input` values say they come from (the command line, not the flow file).
INPUT_SOURCE = "--input"


def coerce_inputs(flow: Flow, raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn `--input key=value` strings into values of each input's type (`n=5` on an INT gives 5).

    A FILE input given as `f=@local/path` names a local file the run copies into its storage.
    """
    from yaml2dag.inputs import InputValueError, given_value

    by_id = {item.id: item for item in flow.inputs}
    values: dict[str, Any] = {}
    errors: list[FlowError] = []
    for name, text in raw.items():
        if name not in by_id:
            known = ", ".join(by_id) or "none"
            raise FlowValidationError([_input_error(name, f"unknown input `{name}` (flow inputs: {known})")])
        depth = nesting_depth(text)
        if depth > MAX_INPUT_DEPTH:
            errors.append(_input_error(name, f"nested {depth} levels deep; at most {MAX_INPUT_DEPTH} are supported"))
            continue
        if by_id[name].type == "FILE" and isinstance(text, str) and text.startswith("@"):
            from yaml2dag.storage import StorageError, allow_local_file

            try:  # `f=@path`: the run copies this local file into its storage when it starts
                text = allow_local_file(Path(text[1:]).expanduser())
            except StorageError as exc:
                errors.append(_input_error(name, str(exc)))
                continue
        try:
            values[name] = given_value(by_id[name], text)
        except InputValueError as exc:
            errors.append(_input_error(name, str(exc)))
        except RecursionError:
            errors.append(_input_error(name, "too deeply nested to be read"))
    if errors:
        raise FlowValidationError(errors)
    return values


def _input_error(name: str, message: str) -> FlowError:
    """An error about the value given for input `name`, located at `--input`, path `inputs.<name>`."""
    return FlowError(message.removeprefix(f"input `{name}`: "), file=INPUT_SOURCE, path=f"inputs.{name}")


def nesting_depth(text: str) -> int:
    """How deeply `[`/`{` nest in JSON-like `text` (brackets inside double-quoted strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


class _LogCapture:
    """Collects structlog events of the tasks `dag.test()` runs, attributed to the running task."""

    def __init__(
        self,
        on_line: Callable[[str, LogLine], None] | None = None,
        on_finished: Callable[[str], None] | None = None,
    ) -> None:
        self.lines: dict[str, list[LogLine]] = {}
        self.current: str | None = None
        #: "task" while a task's code runs, "trigger" while its deferral is waited on, None between tasks.
        self.phase: str | None = None
        self.on_line = on_line
        self.on_finished = on_finished

    def processor(self, logger: Any, method_name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if self.current is not None:
            message = str(event.get("event", ""))
            if event.get("positional_args"):
                with contextlib.suppress(TypeError, ValueError):
                    message = message % tuple(event["positional_args"])
            name = str(event.get("logger") or event.get("logger_name") or getattr(logger, "name", "") or "")
            self._add(LogLine(method_name.upper(), message, name))
            error = _logged_exception(event.get("exc_info"))
            if error is not None:
                self._add(LogLine(method_name.upper(), f"{type(error).__name__}: {error}", name))
        return event

    def _add(self, line: LogLine) -> None:
        assert self.current is not None
        self.lines.setdefault(self.current, []).append(line)
        if self.on_line:
            self.on_line(self.current, line)

    def dag_test_record(self, record: logging.LogRecord) -> bool:
        """Follow `dag.test()`'s own "starting/end task" records to know which task is running."""
        message = str(record.msg)
        args = record.args if isinstance(record.args, tuple) else ()
        if message.startswith("[DAG TEST] starting task_id=") and args:
            self.current = str(args[0])
            self.phase = "task"
        elif message.startswith("[DAG TEST] running trigger in line"):
            self.phase = "trigger"
        elif message.startswith("[DAG TEST] Trigger completed"):
            self.phase = "task"
        elif message.startswith("[DAG TEST] end task task_id=") and args:
            self.phase = None
            if self.on_finished:
                self.on_finished(str(args[0]))
        return True


class RunAborted(BaseException):
    """A second signal, or one between tasks: the run is ended at once (failed), nothing more runs."""


class _Interruption:
    """SIGINT/SIGTERM during a run: the running task fails, as a worker's task does when killed.

    The first signal fails the task that is running (its wait for a trigger, e.g. a Sleep, included),
    so `errors` and `finally` tasks then run by their trigger rules as on Airflow; a second signal,
    or one arriving between tasks, aborts the run (`RunAborted`).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, capture: _LogCapture) -> None:
        self.capture = capture
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._task_handlers: dict[int, Any] = {}
        self._install = signal.signal
        #: The task that was running when the first signal came.
        self.task: str | None = None
        self._second = False
        self._raised = False
        self._active = True
        self._main_thread = threading.main_thread().ident

    def __enter__(self) -> _Interruption:
        for signum in self.SIGNALS:
            self._previous[signum] = self._install(signum, self._handle)
        # The retry wakes the main thread with SIGUSR1, not SIGALRM: Airflow's own timeouts (the DAG
        # file import, execution timeouts) take SIGALRM and its timer for themselves.
        self._previous[signal.SIGUSR1] = self._install(signal.SIGUSR1, self._retry)
        # Airflow's task runner sets its own SIGTERM handler for each task (it calls the operator's
        # `on_kill` and nothing else, so the run went on): while the run lasts, a handler set for
        # SIGINT/SIGTERM is recorded, to be called by ours, instead of replacing ours.
        signal.signal = self._record  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal = self._install
        self._active = False
        for signum, handler in self._previous.items():
            self._install(signum, handler)

    def _record(self, signum: int, handler: Any) -> Any:
        if signum not in self.SIGNALS:
            return self._install(signum, handler)
        previous = self._task_handlers.get(signum, self._handle)
        self._task_handlers[signum] = handler
        return previous

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if first:
            self.task = self.capture.current if self.capture.phase else None
        else:
            self._second = True
        self._act(frame)

    def _retry_soon(self) -> None:
        """Call `_retry` in the main thread 50 ms from now (a timer thread sends SIGUSR1)."""

        def wake() -> None:
            if self._active and self._main_thread is not None:
                signal.pthread_kill(self._main_thread, signal.SIGUSR1)

        timer = threading.Timer(0.05, wake)
        timer.daemon = True
        timer.start()

    def _retry(self, signum: int, frame: Any) -> None:
        """SIGUSR1: act on a signal that came while Airflow's machinery was mid-way (see `_act`)."""
        self._act(frame)

    def _act(self, frame: Any) -> None:
        """Raise what interrupts the run, unless Airflow is inside a database or API call just now.

        An exception raised inside SQLAlchemy or the in-process API call would leave a transaction
        half-done; the decision is then taken again 50 ms later (`_retry_soon`), until the code is outside.
        """
        from airflow.sdk.exceptions import AirflowTaskTerminated

        assert self.signum is not None
        if _inside_library(frame) or (self.capture.phase == "task" and not _inside_task_runner(frame)):
            # Between a task's end and dag.test()'s next step (e.g. the deferral of a Sleep, before
            # its trigger runs in line), an exception would escape dag.test() and end the whole run.
            self._retry_soon()
            return
        name = signal.Signals(self.signum).name
        if self._second or self.capture.phase is None:
            raise RunAborted(name)
        if self._raised:
            return  # the running task was interrupted already; it is ending
        self._raised = True
        if self.capture.phase == "task":
            on_kill = self._task_handlers.get(signal.SIGTERM)
            if callable(on_kill):
                with contextlib.suppress(Exception):
                    on_kill(self.signum, frame)  # the operator stops what it started (a container, a process)
        if self.capture.phase == "trigger":
            # dag.test() fails the task on an Exception raised while its trigger runs, then goes on.
            raise RuntimeError(f"interrupted by {name} while waiting")
        raise AirflowTaskTerminated(f"interrupted by {name}")


#: Code a signal must not interrupt with an exception (a database transaction, an in-process API call).
_LIBRARIES = (f"{os.sep}sqlalchemy{os.sep}", f"{os.sep}httpx{os.sep}", f"{os.sep}a2wsgi{os.sep}")


def _inside_library(frame: Any) -> bool:
    """Whether `frame` or a caller of it runs SQLAlchemy, httpx or a2wsgi code."""
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in _LIBRARIES):
            return True
        frame = frame.f_back
    return False


def _inside_task_runner(frame: Any) -> bool:
    """Whether `frame` or a caller of it is the operator's `execute`, called by the Task SDK's runner.

    Only there does the runner catch `AirflowTaskTerminated` (failing the task); raised in its
    pre- or post-processing (rendering, reporting a deferral) it would escape `dag.test()`.
    """
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_execute_task" and f"execution_time{os.sep}task_runner" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def _logged_error(logs: list[LogLine]) -> str | None:
    """The last exception Airflow's task runner logged for a task (`Type: message`), if any."""
    errors = [line.message for line in logs if line.level == "ERROR" and line.logger == "task"]
    errors = [message for message in errors if message != "Task failed with exception"]
    return errors[-1] if errors else None


def _logged_exception(exc_info: Any) -> BaseException | None:
    """The exception a log call attached (`exc_info=True`, an exception, or a sys.exc_info() tuple)."""
    if exc_info is True:
        return sys.exc_info()[1]
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1]
    return None


def run_flow(
    path: str | Path,
    inputs: Mapping[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    on_task_done: Callable[[str, str], None] | None = None,
    on_log_line: Callable[[str, LogLine], None] | None = None,
    quiet: bool = True,
) -> RunResult:
    """Compile the flow in `path` and run it once with `dag.test()`; raises FlowValidationError.

    `variables` overrides flow variables (e.g. a host name). `on_task_done(task_id, state)` is
    called as each task that ran finishes, `on_log_line` for each log line; with `quiet`,
    Airflow's own console output is suppressed.
    """
    from yaml2dag.dagfolder import override_variables
    from yaml2dag.namespace_files import FILES_FOLDER, publish_quietly

    path = Path(path).resolve()
    flow = override_variables(read_flow(path), variables or {}, str(path))
    dag = _load_dag(path, variables or {})
    publish_quietly([path.parent / FILES_FOLDER])  # the namespace files next to the flow file
    conf = dict(inputs or {})
    _check_params(dag, conf)
    _check_input_values(flow, conf)

    import structlog
    from airflow.sdk.log import mask_logs

    from yaml2dag.sealing import install

    install()  # SECRET inputs are stored sealed in the run's conf, as the API server stores them

    with _Console(quiet) as console:

        def finished(task_id: str) -> None:
            if on_task_done and task_id in flow_task_ids:
                console.call(on_task_done, task_id, _latest_state(dag.dag_id, task_id))

        def line(task_id: str, log_line: LogLine) -> None:
            if on_log_line and task_id in flow_task_ids:
                console.call(on_log_line, task_id, log_line)

        flow_task_ids = {task.id for task in flow.all_tasks()}
        capture = _LogCapture(line, finished)
        dag_logger = logging.getLogger("airflow.sdk.definitions.dag")
        log_filter = logging.Filter()
        log_filter.filter = capture.dag_test_record  # type: ignore[method-assign]
        dag_logger.addFilter(log_filter)
        previous = structlog.get_config()["processors"]
        # Mask secrets (passwords in URLs, Variables read by secret()) before lines are captured,
        # as a real worker's log handler would.
        structlog.configure(processors=[mask_logs, capture.processor, *previous])
        serve_current_api_version_only()
        started = time.monotonic()
        interruption = _Interruption(capture)
        try:
            with interruption:
                try:
                    dag_run = dag.test(run_conf=conf)
                except BaseException as exc:  # RunAborted, or what a signal raised elsewhere
                    if interruption.signum is None:
                        raise
                    dag_run = _abort(dag.dag_id, str(exc) or "interrupted")
        finally:
            structlog.configure(processors=previous)
            dag_logger.removeFilter(log_filter)
        duration = time.monotonic() - started
    result = _collect(dag, flow, dag_run, capture, duration)
    result.signum = interruption.signum
    stopped = result.tasks.get(interruption.task or "")
    if stopped is not None and result.signum and stopped.error is None and stopped.state == "failed":
        stopped.error = f"interrupted by {signal.Signals(result.signum).name}"
    return result


def _abort(dag_id: str, reason: str) -> Any:
    """End the latest run of `dag_id` failed: every unfinished task instance failed; returns the run."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import select

    if settings.Session is not None:
        with contextlib.suppress(Exception):
            settings.Session.rollback()  # dag.test()'s own session may be mid-transaction
    with create_session() as session:
        dag_run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)
        ).one()
        for ti in session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id)
        ):
            if ti.state not in State.finished:
                ti.state = TaskInstanceState.FAILED if ti.start_date else TaskInstanceState.UPSTREAM_FAILED
        dag_run.state = DagRunState.FAILED
        session.flush()
        session.expunge(dag_run)
    logging.getLogger(__name__).warning("run aborted: %s", reason)
    return dag_run


def _latest_state(dag_id: str, task_id: str) -> str:
    """The state of the latest instance of `task_id` in the flow's DAG or its child DAGs (`<dag id>__…`)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import or_, select

    in_flow = or_(TaskInstance.dag_id == dag_id, TaskInstance.dag_id.startswith(f"{dag_id}__", autoescape=True))
    # Called while dag.test() runs: a session of its own, as closing the thread's scoped session would
    # detach the run dag.test() holds (DetachedInstanceError on its next read).
    with create_session(scoped=False) as session:
        state = session.scalar(
            select(TaskInstance.state)
            .where(in_flow, TaskInstance.task_id == task_id)
            .order_by(TaskInstance.start_date.desc())
            .limit(1)
        )
    return _state_name(state)


def _state_name(state: Any) -> str:
    return str(getattr(state, "value", state))


def serve_current_api_version_only() -> None:
    """Let `dag.test()`'s in-process Task Execution API serve only this Airflow's own API version.

    Airflow builds that API (a Cadwyn app) on its first request with routes and schemas for every
    API version since 3.0 — nine, about 6 CPU seconds, over half of a warm `yaml2dag run` — though
    the only client is this process's Task SDK, which speaks the newest version. Served alone
    (with the routes that exist only in older versions left out), the build takes about a tenth of
    that. Anything unexpected (another Airflow layout, a client on another version, an API already
    built) leaves Airflow's full API as it is.
    """
    try:
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from airflow.sdk.execution_time.supervisor import in_process_api_server
        from cadwyn import HeadVersion, Version, VersionBundle
        from cadwyn.route_generation import _DELETED_ROUTE_TAG
        from fastapi.routing import APIRoute

        app = in_process_api_server().app
        if app._cadwyn_initialized or app.versions.versions[0].value != API_VERSION:
            return
        app.versions = VersionBundle(HeadVersion(), Version(API_VERSION), api_version_var=app.versions.api_version_var)
        router = app._latest_version_router
        router.routes = [
            route for route in router.routes if not (isinstance(route, APIRoute) and _DELETED_ROUTE_TAG in route.tags)
        ]
    except Exception:  # noqa: BLE001 - an optimisation only: Airflow's own API works without it
        logging.getLogger(__name__).debug("serving every Task Execution API version", exc_info=True)


def _load_dag(path: Path, variables: Mapping[str, Any]) -> Any:
    from airflow.configuration import conf

    dags_folder = Path(conf.get("core", "dags_folder"))
    dags_folder.mkdir(parents=True, exist_ok=True)
    loader = dags_folder / LOADER_NAME
    loader.write_text(_LOADER_TEMPLATE.format(path=str(path), variables=json.dumps(dict(variables))))
    spec = importlib.util.spec_from_file_location(f"yaml2dag_run_{abs(hash((str(path), time.time())))}", loader)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = next(value for name, value in vars(module).items() if name.startswith("dag_"))
    dag.fileloc = str(loader)
    return dag


def _check_params(dag: Any, conf: dict[str, Any]) -> None:
    """Refuse missing or ill-typed inputs before any task runs, naming the input."""
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    errors = []
    for name in dag.params:
        param = copy.deepcopy(dag.params.get_param(name))
        try:
            param.resolve(conf[name]) if name in conf else param.resolve()
        except (ParamValidationError, ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0]
            if "No value passed" in reason:
                reason = "missing required input (pass it with --input name=value)"
            errors.append(_input_error(name, reason))
    if errors:
        raise FlowValidationError(errors)


def _check_input_values(flow: Flow, conf: dict[str, Any]) -> None:
    """Refuse values a task could not read (bad JSON or YAML, unmet validator, `dependsOn`) before any task runs."""
    from yaml2dag.inputs import check_run_values

    problems = check_run_values(flow, conf)
    secrets = [item.id for item in flow.inputs or [] if item.type == "SECRET" and conf.get(item.id)]
    if secrets and not problems:
        from yaml2dag.sealing import seal

        try:
            seal("")
        except ValueError as exc:
            raise FlowValidationError([_input_error(secrets[0], str(exc))]) from None
    if problems:
        raise FlowValidationError([_input_error(error.input_id, str(error)) for error in problems])


#: The state that represents several map indexes of one task: the worst one wins.
_STATE_RANK = ("failed", "upstream_failed", "up_for_retry", "running", "queued", "scheduled", "success", "skipped")


def _merged(instances: list[tuple[str, Any, Any]]) -> tuple[str, Any, Any]:
    """One (state, start, end) for a task, over its map indexes (a ForEach runs it once per value)."""
    if len(instances) == 1:
        return instances[0]
    states = [state for state, _, _ in instances]
    state = next((rank for rank in _STATE_RANK if rank in states), states[0])
    starts = [start for _, start, _ in instances if start is not None]
    ends = [end for _, _, end in instances if end is not None]
    return state, min(starts, default=None), max(ends, default=None)


def quiet_console(quiet: bool = True) -> _Console:
    """A context manager that hides Airflow's console output (file descriptors 1 and 2)."""
    return _Console(quiet)


class _Console:
    """Hides Airflow's console output while a run is in progress (when `quiet`).

    A handle on the real stdout is kept for the run's own progress lines.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._saved: tuple[int, int] | None = None
        self._stream: Any = None

    def __enter__(self) -> _Console:
        if self.quiet:
            sys.stdout.flush()
            sys.stderr.flush()
            self._saved = os.dup(1), os.dup(2)
            self._stream = os.fdopen(os.dup(self._saved[0]), "w", buffering=1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.close(devnull)
        return self

    def call(self, function: Callable[..., None], *args: Any) -> None:
        """Call a progress callback with `sys.stdout` pointing at the real console."""
        if self._stream is None:
            function(*args)
            return
        saved = sys.stdout
        sys.stdout = self._stream
        try:
            function(*args)
        finally:
            sys.stdout = saved

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(self._saved[0], 1)
            os.dup2(self._saved[1], 2)
            os.close(self._saved[0])
            os.close(self._saved[1])
            self._stream.close()


def _run_xcoms(session: Any, dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    """Every XCom of a run: (task id, key) → value, or map index → value for mapped tasks."""
    from airflow.models.xcom import XComModel

    rows = cast("Iterable[XComModel]", session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id)))
    xcoms: dict[tuple[str, str], Any] = {}
    for row in rows:
        value = XComModel.deserialize_value(row)
        if row.map_index >= 0:
            xcoms.setdefault((row.task_id, row.key), {})[row.map_index] = value
        else:
            xcoms[(row.task_id, row.key)] = value
    return xcoms


def _task_results(
    flow: Flow,
    carried_by: Mapping[str, str],
    instances_by_id: Mapping[str, Any],
    xcoms: Mapping[tuple[str, str], Any],
    result: Callable[..., TaskResult],
) -> dict[str, TaskResult]:
    """The result of every task that ran, keyed by its Kestra id; outputs of a ForEach's tasks keyed by value."""
    from yaml2dag.states import OUTPUTS_XCOM_KEY, end_task_id, start_task_id
    from yaml2dag.tasktypes.flowable import FlowableBase

    tasks = {}
    loops = flow.loop_members()
    carriers = set(carried_by.values())
    for task in flow.all_tasks():
        if task.id in carriers:  # a nested ForEach or a LoopUntil: the task running its child DAG
            if task.id in instances_by_id:  # holds its state (and a LoopUntil's `iterationCount`)
                tasks[task.id] = result(task.id, output_key="" if task.id in loops else "return_value")
        elif isinstance(task, FlowableBase):
            if end_task_id(task.id) in instances_by_id:
                tasks[task.id] = result(end_task_id(task.id), start_task_id(task.id), OUTPUTS_XCOM_KEY)
        elif task.id in instances_by_id:
            tasks[task.id] = result(task.id)
        if task.id not in tasks:
            continue
        if task.id in carried_by:
            tasks[task.id].outputs = _carried_outputs(
                xcoms, task.id, carried_by[task.id], loops.get(carried_by[task.id])
            )
        elif loops.get(task.id) is not None and isinstance(tasks[task.id].outputs, dict):
            values = xcoms.get((start_task_id(loops[task.id]), "return_value")) or []
            per_index = cast("dict[int, Any]", tasks[task.id].outputs)
            tasks[task.id].outputs = {v: per_index[i] for i, v in enumerate(values) if i in per_index}
    return tasks


def _child_runs(session: Any, dag: Any, dag_run: Any) -> list[tuple[str, str]]:
    """`(dag_id, run_id)` of the child DAG runs (nested ForEach) of this run, at any depth."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    from yaml2dag.compiler import child_dags
    from yaml2dag.operators.context import Lineage

    children = [child.dag_id for child in child_dags(dag)]
    found = []
    for run in session.scalars(select(DagRun).where(DagRun.dag_id.in_(children))):
        lineage = Lineage.of_run(run)
        if lineage is not None and lineage.runs[0] == (dag.dag_id, dag_run.run_id):
            found.append((run.dag_id, run.run_id))
    return found


def _carried_outputs(xcoms: Mapping[tuple[str, str], Any], task_id: str, carrier: str, loop: str | None) -> Any:
    """The outputs of a task of a nested ForEach, keyed by value (`{outer: {inner: ...}}`).

    Outside a ForEach (`loop` None: a LoopUntil's tasks), those of the last iteration.
    """
    from yaml2dag.operators.context import CHILD_OUTPUTS_XCOM_KEY
    from yaml2dag.states import start_task_id

    if loop is None:
        recorded = xcoms.get((carrier, CHILD_OUTPUTS_XCOM_KEY))
        return recorded.get(task_id) if isinstance(recorded, dict) else None
    values = xcoms.get((start_task_id(loop), "return_value")) or []
    per_index = xcoms.get((carrier, CHILD_OUTPUTS_XCOM_KEY)) or {}
    found = {
        value: per_index[index][task_id]
        for index, value in enumerate(values)
        if isinstance(per_index.get(index), dict) and task_id in per_index[index]
    }
    return found or None


def _read_runs(dag: Any, dag_run: Any, nested: bool) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """Each task's merged (state, start, end) and the run's XComs; with `nested`, the child runs' too."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from yaml2dag.states import ERROR_XCOM_KEY, STATE_XCOM_KEY

    with create_session() as session:
        xcoms = _run_xcoms(session, dag.dag_id, dag_run.run_id)
        by_id: dict[str, list[Any]] = {}
        runs = [(dag.dag_id, dag_run.run_id), *(_child_runs(session, dag, dag_run) if nested else [])]
        for dag_id, run_id in runs:
            child = dag_id != dag.dag_id  # a nested ForEach's run: its own internal tasks are left out
            for ti in session.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            ):
                if not (child and ti.task_id.startswith("_")):
                    by_id.setdefault(ti.task_id, []).append((_state_name(ti.state), ti.start_date, ti.end_date))
            for (task_id, key), value in _run_xcoms(session, dag_id, run_id).items() if child else ():
                if key in (STATE_XCOM_KEY, ERROR_XCOM_KEY) and not task_id.startswith("_"):
                    xcoms.setdefault((task_id, key), value)
    return {task_id: _merged(found) for task_id, found in by_id.items()}, xcoms


def _collect(dag: Any, flow: Flow, dag_run: Any, capture: _LogCapture, duration: float) -> RunResult:
    """Read back every task's state, outputs and logs; WARNING (Airflow: success) is reported as such."""
    from yaml2dag.plan import plan_flow
    from yaml2dag.states import ERROR_XCOM_KEY, STATE_TASK_ID, STATE_XCOM_KEY, reported_state

    layout = plan_flow(flow).layout
    carried_by = dict(layout.carried_by) if layout is not None else {}
    instances_by_id, xcoms = _read_runs(dag, dag_run, bool(carried_by))

    def result(task_id: str, output_id: str | None = None, output_key: str = "return_value") -> TaskResult:
        state, start, end = instances_by_id[task_id]
        state = reported_state(state, xcoms.get((task_id, STATE_XCOM_KEY)))
        outputs = xcoms.get((output_id or task_id, output_key)) if task_id != STATE_TASK_ID else None
        logs = capture.lines.get(task_id, [])
        error = xcoms.get((task_id, ERROR_XCOM_KEY))
        if isinstance(error, dict):  # a mapped task: one message per map index
            error = "; ".join(str(message) for _, message in sorted(error.items()))
        if error is None and state in ("failed", "up_for_retry"):
            error = _logged_error(logs)
        return TaskResult(state, outputs, logs, start, end, None if error is None else str(error))

    tasks = _task_results(flow, carried_by, instances_by_id, xcoms, result)
    state_task = result(STATE_TASK_ID) if STATE_TASK_ID in instances_by_id else None
    run_state = _state_name(dag_run.state)
    flow_state = xcoms.get((STATE_TASK_ID, "return_value")) or {}
    if run_state == "success" and flow_state.get("state") == "WARNING":
        run_state = "warning"
    found = flow_state.get("outputs")
    outputs: dict[str, Any] = found if isinstance(found, dict) else {}
    return RunResult(dag.dag_id, dag_run.run_id, run_state, tasks, duration, state_task, outputs=outputs)
