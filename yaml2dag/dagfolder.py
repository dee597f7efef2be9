"""Compile every flow file of a dags folder into DAGs, one broken file never hiding the others."""

from __future__ import annotations

import base64
import contextlib
import gc
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml2dag.errors import FlowError, FlowValidationError
from yaml2dag.flowfile import FLOW_SUFFIXES, read_flow
from yaml2dag.loader import read_flow_bytes
from yaml2dag.model import Flow

log = logging.getLogger(__name__)


class FlowFileWarning(UserWarning):
    """Emitted (and logged) for each flow file that could not be compiled."""


@dataclass
class FolderResult:
    """What loading a folder produced: DAGs by id, and errors by file."""

    dags: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[FlowError]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def find_flow_files(folder: str | Path) -> list[Path]:
    """Every `*.yaml` / `*.yml` file under `folder`, recursively, skipping hidden directories.

    `_files` folders hold namespace files (`yaml2dag.namespace_files`), never flows: skipped too.
    """
    found: list[Path] = []
    for root, directories, files in os.walk(folder):
        directories[:] = sorted(d for d in directories if not d.startswith((".", "__")) and d != "_files")
        found.extend(Path(root, name) for name in sorted(files) if name.endswith(FLOW_SUFFIXES))
    return found


def load_flows(
    paths: list[Path],
    namespace: dict[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    root: str | Path | None = None,
) -> FolderResult:
    """Compile `paths` into DAGs, put them into `namespace` (a DAG file's globals) and return them.

    `variables` overrides flow variables of the same name (used by `yaml2dag run --var`). With
    `root` (the flows folder), a file that is a symlink resolving outside it is an error.
    Whatever goes wrong with one file is recorded as that file's error; the others still load.
    """
    result = FolderResult()
    wanted = _parsing_dag_id()
    with _collector_paused():
        for path in paths:
            if wanted is not None and not _may_define(path, wanted):
                continue
            _load_one(path, result, namespace, variables or {}, root)
    return result


def _load_one(
    path: Path,
    result: FolderResult,
    namespace: dict[str, Any] | None,
    variables: Mapping[str, Any],
    root: str | Path | None = None,
) -> None:
    """Compile the flow in `path` into `result` (and `namespace`), or record its errors.

    Any exception but `KeyboardInterrupt`/`SystemExit` becomes an error of this file: one flow
    that breaks the compiler (or Airflow) must never take the other flows of the folder with it.
    """
    from yaml2dag.compiler import child_dags, compile_flow

    try:
        flow = override_variables(read_flow(path, root), variables, str(path))
        if flow.dag_id in result.dags:
            first = result.sources[flow.dag_id]
            raise FlowValidationError(
                [
                    FlowError(
                        f"flow `{flow.namespace}.{flow.id}` is already defined in {first}",
                        str(path),
                        hint="give one of the two flows another `id` or `namespace`",
                    )
                ]
            )
        dag = compile_flow(flow, str(path))
    except FlowValidationError as exc:
        result.errors[str(path)] = exc.errors
        _report(path, exc)
        return
    except OSError as exc:
        failed = FlowValidationError([FlowError(f"cannot read file: {exc.strerror or exc}", str(path))])
        result.errors[str(path)] = failed.errors
        _report(path, failed)
        return
    except Exception as exc:  # noqa: BLE001 - isolation: any failure is this flow's, reported located
        failed = unexpected_error(exc, str(path))
        result.errors[str(path)] = failed.errors
        _report(path, failed)
        return
    result.dags[flow.dag_id] = dag
    result.sources[flow.dag_id] = str(path)
    if namespace is not None:
        namespace[_global_name(flow.dag_id)] = dag
    for child in child_dags(dag):  # the DAGs of the ForEach nested in a ForEach body
        result.dags[child.dag_id] = child
        result.sources[child.dag_id] = str(path)
        if namespace is not None:
            namespace[_global_name(child.dag_id)] = child


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a folder's DAGs are built.

    Everything built either stays alive (the DAGs) or is freed by reference counting; left
    running, the collector would scan the growing set of DAGs again and again (at 5,000 flows
    about a seventh of the load's CPU time). It runs again, as before, once the folder is loaded.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def override_variables(flow: Flow, overrides: Mapping[str, Any], source: str) -> Flow:
    """A copy of `flow` whose `variables` take the values in `overrides` (names must exist)."""
    unknown = sorted(set(overrides) - set(flow.variables))
    if unknown:
        known = ", ".join(sorted(flow.variables)) or "none"
        raise FlowValidationError(
            [
                FlowError(f"unknown variable `{name}` (flow variables: {known})", source, path="variables")
                for name in unknown
            ]
        )
    if not overrides:
        return flow
    return flow.model_copy(update={"variables": {**flow.variables, **overrides}})


def load_embedded_flow(
    namespace: dict[str, Any], source: str, text: str, parsed: tuple[str, bytes] | None = None
) -> Any:
    """Compile flow YAML embedded in a generated DAG file (see `yaml2dag.bundle`) into `namespace`.

    `parsed` is the YAML as parsed when the file was written, tagged with the loader's
    fingerprint; it replaces parsing the text when the fingerprint is still the current one.
    A flow error is raised, so Airflow records it as this file's import error.
    """
    from yaml2dag.compiler import child_dags, compile_flow
    from yaml2dag.flowfile import parse_flow_text
    from yaml2dag.loader import decode_flow_bytes, load_parsed, loader_fingerprint
    from yaml2dag.validation import parse_flow

    try:
        text = decode_flow_bytes(text.encode("utf-8", errors="surrogateescape"), source)
        if parsed is not None and parsed[0] == loader_fingerprint():
            data = parsed[1]
            flow = parse_flow(load_parsed(base64.b64decode(data) if isinstance(data, str) else data), source, text)
        else:
            flow = parse_flow_text(text, source)
        dag = compile_flow(flow, source)
    except FlowValidationError as exc:
        failed = exc
    except Exception as exc:  # noqa: BLE001 - shown to users as this file's import error: readable, located
        failed = unexpected_error(exc, source)
    else:
        namespace[_global_name(dag.dag_id)] = dag
        for child in child_dags(dag):  # the DAGs of the ForEach nested in a ForEach body
            namespace[_global_name(child.dag_id)] = child
        return dag
    raise import_error(failed)


def report_flow_errors(errors: list[dict[str, Any]]) -> None:
    """Raise the errors a generated DAG file records for a flow file that could not be embedded.

    Airflow then shows them as that DAG file's import error (see `yaml2dag.bundle`).
    """
    raise import_error(FlowValidationError([FlowError(**error) for error in errors]))


def import_error(error: FlowValidationError) -> FlowValidationError:
    """`error` made ready to be a generated DAG file's import error: the located messages, not yaml2dag's frames.

    Airflow records an import error as the traceback of the exception (`[core]
    dagbag_import_error_tracebacks`, the last `dagbag_import_error_traceback_depth` frames) — for
    a flow error, frames of yaml2dag's validation before the messages users need. The error is
    raised without its own traceback (only the generated file's frames remain), and in a process
    that parses this one DAG file for Airflow (a DAG processor's parsing child, a task's worker:
    `_AIRFLOW_PROCESS_CONTEXT=client`) the traceback is turned off for the rest of the process, so
    Airflow records the message alone: `file.yaml:line:column: path: message (hint)`, one line per
    problem. Any other process (a DagBag over a whole folder) keeps Airflow's setting.
    """
    if os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "client":
        from airflow.configuration import conf

        conf.set("core", "dagbag_import_error_tracebacks", "False")
    return error.with_traceback(None)


def unexpected_error(exc: BaseException, source: str) -> FlowValidationError:
    """A flow error for an exception no check anticipated (a compiler bug, an Airflow limit...).

    The traceback is logged for whoever debugs it; users read what failed and what to try.
    """
    log.error("yaml2dag: compiling %s failed", source, exc_info=exc)
    detail = str(exc)
    if len(detail) > 300:
        detail = detail[:300] + "…"
    if isinstance(exc, RecursionError):
        message, hint = "the flow nests too deeply to compile", "simplify deeply nested expressions or tasks"
    elif isinstance(exc, MemoryError):
        message, hint = "the flow needs too much memory to compile", "make the flow smaller"
    else:
        message = f"the flow could not be compiled: {type(exc).__name__}: {detail}"
        hint = "this is a check yaml2dag misses; please report it with the flow"
        if "characters" in detail and "less than" in detail:
            hint = "shorten the ids: Airflow limits task and group ids (with their parents' ids) to 200 characters"
    return FlowValidationError([FlowError(message, source, hint=hint)])


def load_dags_folder(namespace: dict[str, Any], folder: str | Path | None = None) -> FolderResult:
    """Compile every flow under `folder` (default: the calling DAG file's directory) into `namespace`."""
    if folder is None:
        folder = Path(namespace["__file__"]).resolve().parent
    if _parsing_dag_id() is None:  # the DAG processor publishes the `_files/` folders; workers need not
        from yaml2dag.namespace_files import find_files_folders, publish_quietly

        publish_quietly(find_files_folders(Path(folder)))
    return load_flows(find_flow_files(folder), namespace, root=folder)


#: A top-level `id:` / `namespace:` line; the value is read by `_top_level_value`. Only the
#: anchored prefix is matched by the pattern, the rest of the line taken whole: linear in the text.
_TOP_LEVEL_KEY = re.compile(r"^(id|namespace)[ \t]*:(.*)$", re.M)
_PLAIN_START_REFUSED = frozenset("#'\"&*!|>{[%@`")


def _parsing_dag_id() -> str | None:
    """The DAG a worker is parsing for (Airflow's parsing context), or None in the DAG processor."""
    from airflow.sdk import get_parsing_context

    return get_parsing_context().dag_id


def _may_define(path: Path, dag_id: str) -> bool:
    """Whether the flow in `path` can be the DAG `dag_id`, read cheaply from its top-level keys.

    Workers only need the DAG they run; this lets them skip the other files without parsing them.
    When the keys cannot be read this way (unusual quoting, anchors...), the file is kept.
    """
    try:
        text = read_flow_bytes(path).decode("utf-8", errors="replace")
    except (OSError, FlowValidationError):
        return True  # the full load reports the problem
    values: dict[str, str] = {}
    for match in _TOP_LEVEL_KEY.finditer(text):
        key, value = match.group(1), _top_level_value(match.group(2))
        if key in values or value is None:
            return True
        values[key] = value
    if set(values) != {"id", "namespace"}:
        return True
    own = f"{values['namespace']}.{values['id']}"
    return dag_id == own or dag_id.startswith(f"{own}__")  # its child DAGs (nested ForEach) too


def _top_level_value(rest: str) -> str | None:
    """The scalar after `key:` on one line (quoted or plain, comment dropped), or None if unsure."""
    rest = rest.strip(" \t\r")
    if not rest:
        return None
    quote = rest[0]
    if quote in "'\"":
        end = rest.find(quote, 1)
        if end < 0:
            return None
        value, after = rest[1:end], rest[end + 1 :].lstrip(" \t")
        if (quote == '"' and "\\" in value) or (after and not after.startswith("#")):
            return None  # escapes, `''` or text after the closing quote: leave it to the YAML parser
        return value
    if quote in _PLAIN_START_REFUSED:
        return None
    for comment in (" #", "\t#"):
        if comment in rest:
            rest = rest[: rest.index(comment)]
    return rest.rstrip(" \t")


def _report(path: Path, exc: FlowValidationError) -> None:
    for error in exc.errors:
        log.error("%s", error)
    warnings.warn(f"{path}: flow not loaded:\n{exc}", FlowFileWarning, stacklevel=4)


def _global_name(dag_id: str) -> str:
    """The DAG file global holding the DAG `dag_id`: a name no other id maps to, always the same.

    ASCII letters and digits are kept, `_` is doubled and any other character written as
    `_<hex code>_`, so `a_b.c`, `a.b_c` and `a-b.c` get three different names.
    """
    return "dag_" + _UNSAFE_NAME_CHARACTER.sub(_escape_name_character, dag_id)


_UNSAFE_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9]")


def _escape_name_character(match: re.Match[str]) -> str:
    character = match.group()
    return "__" if character == "_" else f"_{ord(character):x}_"
