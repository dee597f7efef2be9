"""Kestra's file functions: `read`, `fileSize`, `fileExists`, `isFileEmpty`, `fileURI`, `fromIon`.

A `kestra:///…` argument names a file of the internal storage (`yaml2dag.storage`); any other
string is a namespace file of the flow's namespace (or of the `namespace` argument), as in Kestra.
A file must be a file of an execution or a namespace file (Kestra's rule); the storage refuses
`..`, a path outside its base and a missing file with an error naming the URI. The storage and
Ion libraries are imported when a function runs, never when a flow is translated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from yaml2dag.errors import RenderError, TaskFailure
from yaml2dag.expressions.limits import MAX_TEXT

#: `read()` loads the file into the rendered text: larger files are refused (read them in a task).
READ_LIMIT = MAX_TEXT
_EXECUTION_FILE = re.compile(r"^kestra:///.+/.+/executions/[^/]+/(tasks|inputs|trigger|outputs)/.+")


def _flow_namespace(context: Context) -> str:
    flow = context.get("flow")
    namespace = flow.get("namespace") if isinstance(flow, Mapping) else None
    if not namespace:
        raise RenderError("namespace files need the flow's namespace (`flow.namespace`), which is not known here")
    return str(namespace)


def file_uri_of(context: Context, path: Any, namespace: Any = None, function: str = "read") -> str:
    """The storage URI a file function's `path` argument names (checked as Kestra does)."""
    from yaml2dag import storage

    if path is None or not isinstance(path, str) or not path:
        raise RenderError(
            f"The '{function}' function expects an argument 'path' that is a path to a namespace file "
            "or an internal storage URI."
        )
    if path.startswith("kestra://"):
        if not path.startswith("kestra:///"):
            raise RenderError(f"Unable to read the file '{path}': a storage URI starts with kestra:///")
        namespace_files = "/" + storage.NAMESPACE_FILES_DIR + "/"
        if not _EXECUTION_FILE.match(path) and namespace_files not in path:
            raise RenderError(f"Unable to read the file '{path}' as it is not an execution file nor a namespace file")
        return path
    if namespace is not None and not isinstance(namespace, str):
        raise RenderError(f"The '{function}' function expects an argument 'namespace' with type string.")
    try:
        return storage.namespace_file_uri(namespace or _flow_namespace(context), path)
    except TaskFailure as exc:
        raise RenderError(str(exc)) from None


def _storage_call(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except TaskFailure as exc:
        raise RenderError(str(exc)) from None


@pass_context
def read_file(context: Context, path: Any = None, namespace: Any = None) -> str:
    """`read(path)`: the text (UTF-8) of a storage file or a namespace file."""
    from yaml2dag import storage

    uri = file_uri_of(context, path, namespace, "read")
    return str(_storage_call(lambda: storage.read_text(uri, READ_LIMIT)))


@pass_context
def file_size(context: Context, path: Any = None, namespace: Any = None) -> int:
    """`fileSize(path)`: the size in bytes of a storage file or a namespace file."""
    from yaml2dag import storage

    uri = file_uri_of(context, path, namespace, "fileSize")
    return int(_storage_call(lambda: storage.file_size(uri)))


@pass_context
def file_exists(context: Context, path: Any = None, namespace: Any = None) -> bool:
    """`fileExists(path)`: true when the storage file or namespace file exists."""
    from yaml2dag import storage

    uri = file_uri_of(context, path, namespace, "fileExists")
    return bool(_storage_call(lambda: storage.exists(uri)))


@pass_context
def is_file_empty(context: Context, path: Any = None, namespace: Any = None) -> bool:
    """`isFileEmpty(path)`: true when the file has no byte (a missing file is an error)."""
    from yaml2dag import storage

    uri = file_uri_of(context, path, namespace, "isFileEmpty")
    return int(_storage_call(lambda: storage.file_size(uri))) == 0


@pass_context
def file_uri(context: Context, path: Any = None, namespace: Any = None) -> str:
    """`fileURI(path)`: the `kestra:///…/_files/<path>` URI of a namespace file."""
    if isinstance(path, str) and path.startswith("kestra://"):
        raise RenderError("The 'fileURI' function expects a namespace file path, not a storage URI.")
    return file_uri_of(context, path, namespace, "fileURI")


def from_ion(ion: Any = None, all_rows: Any = None) -> Any:
    """`fromIon(ion, allRows=false)`: the first Ion value of a text (every value with allRows)."""
    from yaml2dag.serdes import SerdesError
    from yaml2dag.serdes.ion import loads

    if ion is None:
        return None
    if not isinstance(ion, str):
        raise RenderError("The 'fromIon' function expects an argument 'ion' with type string.")
    if all_rows is not None and not isinstance(all_rows, bool):
        raise RenderError("The 'fromIon' function expects an argument 'allRows' with type boolean.")
    try:
        values = loads(ion)
    except SerdesError as exc:
        raise RenderError(f"Invalid ion: {exc}") from None
    if all_rows:
        return values
    return values[0] if values else None


def to_ion(value: Any) -> str:
    """`toIon` filter: the value as one line of Ion text (Kestra's row format)."""
    from yaml2dag.serdes import SerdesError
    from yaml2dag.serdes.ion import dumps

    try:
        return dumps(value)
    except SerdesError as exc:
        raise RenderError(str(exc)) from None


#: name → (filter, Pebble argument names, required count)
FILE_FILTERS: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]] = {"toIon": (to_ion, (), 0)}

#: name → (function, Pebble argument names, required count)
FILE_FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]] = {
    "read": (read_file, ("path", "namespace"), 1),
    "fileSize": (file_size, ("path", "namespace"), 1),
    "fileExists": (file_exists, ("path", "namespace"), 1),
    "isFileEmpty": (is_file_empty, ("path", "namespace"), 1),
    "fileURI": (file_uri, ("path", "namespace"), 1),
    "fromIon": (from_ion, ("ion", "allRows"), 1),
}
