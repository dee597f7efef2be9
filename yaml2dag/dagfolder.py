"""Compile every flow file of a dags folder into DAGs, one broken file never hiding the others."""

from __future__ import annotations

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
    """Every `*.yaml` / `*.yml` file under `folder`, recursively, skipping hidden directories."""
    found: list[Path] = []
    for root, directories, files in os.walk(folder):
        directories[:] = sorted(d for d in directories if not d.startswith((".", "__")))
        found.extend(Path(root, name) for name in sorted(files) if name.endswith(FLOW_SUFFIXES))
    return found


def load_flows(
    paths: list[Path], namespace: dict[str, Any] | None = None, variables: Mapping[str, Any] | None = None
) -> FolderResult:
    """Compile `paths` into DAGs, put them into `namespace` (a DAG file's globals) and return them.

    `variables` overrides flow variables of the same name (used by `yaml2dag run --var`).
    """
    result = FolderResult()
    wanted = _parsing_dag_id()
    with _collector_paused():
        for path in paths:
            if wanted is not None and not _may_define(path, wanted):
                continue
            _load_one(path, result, namespace, variables or {})
    return result


def _load_one(path: Path, result: FolderResult, namespace: dict[str, Any] | None, variables: Mapping[str, Any]) -> None:
    """Compile the flow in `path` into `result` (and `namespace`), or record its errors."""
    from yaml2dag.compiler import compile_flow

    try:
        flow = override_variables(read_flow(path), variables, str(path))
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
    result.dags[flow.dag_id] = dag
    result.sources[flow.dag_id] = str(path)
    if namespace is not None:
        namespace[_global_name(flow.dag_id)] = dag


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
    from yaml2dag.compiler import compile_flow
    from yaml2dag.flowfile import parse_flow_text
    from yaml2dag.loader import decode_flow_bytes, load_parsed, loader_fingerprint
    from yaml2dag.validation import parse_flow

    text = decode_flow_bytes(text.encode("utf-8", errors="surrogateescape"), source)
    if parsed is not None and parsed[0] == loader_fingerprint():
        flow = parse_flow(load_parsed(parsed[1]), source, text)
    else:
        flow = parse_flow_text(text, source)
    dag = compile_flow(flow, source)
    namespace[_global_name(dag.dag_id)] = dag
    return dag


def load_dags_folder(namespace: dict[str, Any], folder: str | Path | None = None) -> FolderResult:
    """Compile every flow under `folder` (default: the calling DAG file's directory) into `namespace`."""
    if folder is None:
        folder = Path(namespace["__file__"]).resolve().parent
    return load_flows(find_flow_files(folder), namespace)


_TOP_LEVEL_SCALAR = re.compile(
    r"^(id|namespace)[ \t]*:[ \t]*"
    r"(?:'([^'\n]*)'|\"([^\"\\\n]*)\"|([^\s#'\"&*!|>{\[%@`][^\n#]*?))"
    r"[ \t]*(?:#.*)?$",
    re.M,
)


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
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    values: dict[str, str] = {}
    for match in _TOP_LEVEL_SCALAR.finditer(text):
        key = match.group(1)
        if key in values:
            return True
        values[key] = next(group for group in match.groups()[1:] if group is not None)
    if set(values) != {"id", "namespace"}:
        return True
    return f"{values['namespace']}.{values['id']}" == dag_id


def _report(path: Path, exc: FlowValidationError) -> None:
    for error in exc.errors:
        log.error("%s", error)
    warnings.warn(f"{path}: flow not loaded:\n{exc}", FlowFileWarning, stacklevel=4)


def _global_name(dag_id: str) -> str:
    return "dag_" + re.sub(r"\W", "_", dag_id)
