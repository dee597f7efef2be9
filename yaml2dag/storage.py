"""Kestra's internal storage (`kestra://` URIs) on Airflow Object Storage.

A Kestra task that makes a file gives its `kestra:///…` URI as an output; the next task reads it.
yaml2dag keeps those URIs as they are (so `{{ outputs.dl.uri }}` and `read(outputs.dl.uri)` work
unchanged) and resolves them under one base, an `airflow.sdk.ObjectStoragePath`:

* `[yaml2dag] storage_base` (env `AIRFLOW__YAML2DAG__STORAGE_BASE`): `file:///shared/volume`,
  `s3://bucket/prefix`, `gs://…`, … — default `file://$AIRFLOW_HOME/yaml2dag-storage`;
* `[yaml2dag] storage_conn_id` (env `AIRFLOW__YAML2DAG__STORAGE_CONN_ID`): the Airflow connection
  of that base (default: `aws_default` for `s3://`, `google_cloud_default` for `gs://`).

Paths follow Kestra's layout: `kestra:///<namespace as folders>/<flowId>/executions/<runId>/tasks/
<taskId>/<taskrunId>/<file>`, so the files of one run can be found and purged, and a namespace's
files live under `kestra:///<namespace as folders>/_files/<path>`.

A URI that is not `kestra://`, holds `..`, `.`, an empty segment or a backslash, points outside the
base (also through a symbolic link on a local base) or names a missing file is a `TaskFailure`
naming the URI: nothing is ever read or written outside the base. Everything streams: no function
here reads a whole file into memory.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import quote, unquote

from yaml2dag.errors import TaskFailure

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

SCHEME = "kestra://"
#: Chunk size of every copy (1 MiB): large enough for throughput, small enough for bounded memory.
CHUNK_SIZE = 1 << 20
#: Block size of remote (S3, GCS, …) reads and multipart writes: 8 MiB (S3 parts are 5 MiB at least).
REMOTE_BLOCK_SIZE = 8 << 20
#: The folder of a namespace's files, below the namespace's folders (Kestra's layout).
NAMESPACE_FILES_DIR = "_files"

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class StorageError(TaskFailure):
    """A storage URI that cannot be used: bad form, outside the base, missing or unreadable."""


# --- configuration --------------------------------------------------------------------------


def storage_base_url() -> str:
    """The configured base URL (`[yaml2dag] storage_base`), default a folder under AIRFLOW_HOME."""
    configured = os.environ.get("AIRFLOW__YAML2DAG__STORAGE_BASE")
    if configured is None:
        with contextlib.suppress(Exception):
            from airflow.sdk.configuration import conf

            configured = conf.get("yaml2dag", "storage_base", fallback=None)
    if configured:
        return configured.rstrip("/")
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(home, "yaml2dag-storage").absolute().as_uri()


#: The Airflow connection used for a base of each scheme when `storage_conn_id` is not set.
DEFAULT_CONN_IDS = {
    "s3": "aws_default",
    "s3a": "aws_default",
    "gs": "google_cloud_default",
    "gcs": "google_cloud_default",
}


def storage_conn_id(url: str | None = None) -> str | None:
    """The Airflow connection of the base (`[yaml2dag] storage_conn_id`), else the scheme's default."""
    configured = os.environ.get("AIRFLOW__YAML2DAG__STORAGE_CONN_ID")
    if configured is None:
        with contextlib.suppress(Exception):
            from airflow.sdk.configuration import conf

            configured = conf.get("yaml2dag", "storage_conn_id", fallback=None)
    if configured:
        return configured
    scheme = (url or storage_base_url()).split("://", 1)[0].lower()
    return DEFAULT_CONN_IDS.get(scheme)


def storage_base() -> ObjectStoragePath:
    """The base every `kestra://` URI resolves under (created when it is a local folder)."""
    from airflow.sdk import ObjectStoragePath

    url = storage_base_url()
    if url.startswith("file://"):
        Path(unquote(url[len("file://") :])).mkdir(parents=True, exist_ok=True)
    conn_id = storage_conn_id(url)
    return ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)


# --- URIs -----------------------------------------------------------------------------------


def is_storage_uri(value: object) -> bool:
    """True for a `kestra://` URI string."""
    return isinstance(value, str) and value.startswith(SCHEME)


def uri_segments(uri: str) -> list[str]:
    """The path segments of a `kestra://` URI, decoded and checked (no `..`, `.`, empty, backslash, NUL)."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise StorageError(
            f"`{uri}` is not a Kestra storage URI: only kestra:/// URIs are read from the storage base "
            "(other locations are outside it)"
        )
    raw = uri[len(SCHEME) :]
    if raw.startswith("/"):
        raw = raw[1:]
    for marker in ("?", "#"):
        if marker in raw:
            raise StorageError(f"`{uri}`: a storage URI has no query or fragment")
    segments = [unquote(segment) for segment in raw.split("/")]
    if not raw or any(segment in ("", ".", "..") or "\\" in segment or "\0" in segment for segment in segments):
        raise StorageError(
            f"`{uri}` is not a valid storage path: it must not be empty nor hold `..`, `.`, `//` or a backslash"
        )
    return segments


def make_uri(*segments: str) -> str:
    """The `kestra:///a/b/c` URI of the given path segments (each percent-encoded as needed)."""
    return SCHEME + "/" + "/".join(quote(segment, safe="@+=,;:!$&'()*~") for segment in segments)


def namespace_segments(namespace: str) -> list[str]:
    """A namespace as folders (`company.team` → `company/team`), as Kestra lays out its storage."""
    return [part for part in namespace.split(".") if part]


def namespace_file_uri(namespace: str, path: str) -> str:
    """The URI of a namespace file: `kestra:///<namespace folders>/_files/<path>`."""
    parts = [part for part in path.replace("\\", "/").split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        raise StorageError(f"`{path}` is not a valid namespace file path (no `..`, not empty)")
    return make_uri(*namespace_segments(namespace), NAMESPACE_FILES_DIR, *parts)


def namespace_folder_uri(namespace: str) -> str:
    """The folder URI of a namespace's files: `kestra:///<namespace folders>/_files`."""
    return make_uri(*namespace_segments(namespace), NAMESPACE_FILES_DIR)


def namespace_files(namespace: str) -> Iterator[tuple[str, str]]:
    """`(path, uri)` of every file of a namespace, the path as Kestra writes it (`/queries/a.sql`)."""
    folder = namespace_folder_uri(namespace)
    for uri in list_files(folder):
        yield "/" + unquote(uri[len(folder) :].lstrip("/")), uri


def resolve(uri: str) -> ObjectStoragePath:
    """The object a `kestra://` URI names, under the storage base (never outside it)."""
    segments = uri_segments(uri)
    base = storage_base()
    target = base.joinpath(*segments)
    if target.protocol in ("file", "local", ""):
        _check_local_containment(uri, base, target)
    return target


def _check_local_containment(uri: str, base: ObjectStoragePath, target: ObjectStoragePath) -> None:
    """On a local base, refuse a path that a symbolic link leads outside the base."""
    base_real = os.path.realpath(base.path)
    target_real = os.path.realpath(target.path)
    if target_real != base_real and not target_real.startswith(base_real.rstrip(os.sep) + os.sep):
        raise StorageError(f"`{uri}` resolves outside the storage base: refused")


# --- where a task run writes ----------------------------------------------------------------


def run_location(context: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """(namespace, flowId, runId, taskId, taskrunId) of the task run of an Airflow task context.

    Also accepts the Kestra variables of a task (`flow`, `execution`, `task`, `taskrun`).
    """
    if "ti" in context:
        task_instance = context["ti"]
        operator = context.get("task")
        flow = getattr(operator, "flow", None)
        namespace = getattr(flow, "namespace", None) or "default"
        flow_id = getattr(flow, "id", None) or str(getattr(task_instance, "dag_id", "flow"))
        run_id = str(context["dag_run"].run_id if context.get("dag_run") else task_instance.run_id)
        task_id = str(task_instance.task_id).rsplit(".", 1)[-1]
        taskrun_id = str(getattr(task_instance, "id", "") or "")
        map_index = int(getattr(task_instance, "map_index", -1) or -1)
        if not taskrun_id:
            taskrun_id = f"{task_id}-{map_index}" if map_index >= 0 else task_id
        return namespace, flow_id, run_id, task_id, taskrun_id
    flow_info = context.get("flow") or {}
    execution = context.get("execution") or {}
    task = context.get("task") or {}
    taskrun = context.get("taskrun") or {}
    return (
        str(flow_info.get("namespace") or "default"),
        str(flow_info.get("id") or "flow"),
        str(execution.get("id") or "run"),
        str(task.get("id") or "task"),
        str(taskrun.get("id") or task.get("id") or "taskrun"),
    )


def safe_segment(text: str) -> str:
    """A name usable as one path segment on every backend (Airflow run ids hold `:` and `+`)."""
    cleaned = _SAFE_NAME.sub("_", text).strip("._") or "_"
    return cleaned[:200]


def execution_uri(namespace: str, flow_id: str, run_id: str) -> str:
    """The folder URI of one run's files: `kestra:///<ns>/<flow>/executions/<run>`."""
    return make_uri(*namespace_segments(namespace), flow_id, "executions", safe_segment(run_id))


def task_run_uri(context: Mapping[str, Any]) -> str:
    """The folder URI of the current task run's files."""
    namespace, flow_id, run_id, task_id, taskrun_id = run_location(context)
    return (
        execution_uri(namespace, flow_id, run_id) + "/tasks/" + quote(task_id) + "/" + quote(safe_segment(taskrun_id))
    )


def new_file_uri(context: Mapping[str, Any], filename: str) -> str:
    """The URI a new file `filename` of the current task run gets (the name is kept when safe)."""
    name = Path(str(filename).replace("\\", "/")).name
    if name in ("", ".", ".."):
        raise StorageError(f"`{filename}` is not a valid file name")
    return task_run_uri(context) + "/" + quote(name, safe="@+=,;:!$&'()*~")


# --- reading and writing --------------------------------------------------------------------


@contextlib.contextmanager
def open_read(uri: str) -> Iterator[BinaryIO]:
    """Read a `kestra://` URI (a task's file or a namespace file) as a binary stream."""
    target = resolve(uri)
    remote = not _is_local(target)
    try:
        handle = target.open("rb", block_size=REMOTE_BLOCK_SIZE) if remote else target.open("rb")
    except FileNotFoundError:
        raise StorageError(f"`{uri}`: no such file in the storage") from None
    except IsADirectoryError:
        raise StorageError(f"`{uri}` is a folder, not a file") from None
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes a located task error
        raise StorageError(f"`{uri}` cannot be read: {type(exc).__name__}: {exc}") from None
    with handle:
        handle.read(0)  # Airflow records the read for lineage once, not on every call
        stream = _unwrapped(handle)
        # fsspec's remote files read lines slowly: a standard buffer makes line iteration fast.
        yield io.BufferedReader(cast("io.RawIOBase", stream), CHUNK_SIZE) if remote else stream


def _is_local(target: ObjectStoragePath) -> bool:
    return target.protocol in ("file", "local", "")


def _unwrapped(handle: Any) -> BinaryIO:
    """The file object under Airflow's lineage-tracking wrapper, which costs a path rendering per call."""
    return getattr(handle, "_obj", handle)


@contextlib.contextmanager
def open_write(context: Mapping[str, Any], filename: str) -> Iterator[tuple[str, BinaryIO]]:
    """Create a new file of the current task run; yields `(kestra_uri, binary stream)`.

    The file exists once the block exits; when the block raises, nothing is left behind.
    """
    uri = new_file_uri(context, filename)
    with open_uri_write(uri) as handle:
        yield uri, handle


@contextlib.contextmanager
def open_uri_write(uri: str) -> Iterator[BinaryIO]:
    """Write (create or replace) the file of a `kestra://` URI as a binary stream."""
    target = resolve(uri)
    with contextlib.suppress(Exception):
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = target.open("wb") if _is_local(target) else target.open("wb", block_size=REMOTE_BLOCK_SIZE)
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes a located task error
        raise StorageError(f"`{uri}` cannot be written: {type(exc).__name__}: {exc}") from None
    try:
        with handle:
            handle.write(b"")  # Airflow records the write for lineage once, not on every call
            yield _unwrapped(handle)
    except BaseException:
        with contextlib.suppress(Exception):
            target.unlink()
        raise


def file_size(uri: str) -> int:
    """The size in bytes of the file of a `kestra://` URI."""
    target = resolve(uri)
    try:
        if not target.is_file():
            raise StorageError(f"`{uri}`: no such file in the storage")
        return int(target.stat().st_size)
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes a located task error
        raise StorageError(f"`{uri}` cannot be read: {type(exc).__name__}: {exc}") from None


def exists(uri: str) -> bool:
    """True when the file of a `kestra://` URI exists (a bad URI is still an error)."""
    target = resolve(uri)
    try:
        return bool(target.is_file())
    except Exception:  # noqa: BLE001 - unreadable reads as absent
        return False


def delete(uri: str) -> bool:
    """Delete the file of a `kestra://` URI; True when there was one."""
    target = resolve(uri)
    try:
        if not target.is_file():
            return False
        target.unlink()
    except FileNotFoundError:
        return False
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes a located task error
        raise StorageError(f"`{uri}` cannot be deleted: {type(exc).__name__}: {exc}") from None
    return True


def delete_tree(uri: str) -> list[str]:
    """Delete every file under the folder URI `uri`; returns the URIs deleted."""
    deleted = list(list_files(uri))
    for found in deleted:
        delete(found)
    with contextlib.suppress(Exception):
        folder = resolve(uri)
        if folder.exists():
            folder.rmdir(recursive=True) if _takes_recursive(folder) else shutil.rmtree(folder.path)
    return deleted


def _takes_recursive(folder: ObjectStoragePath) -> bool:
    return folder.protocol not in ("file", "local", "")


def list_files(uri: str) -> Iterator[str]:
    """The `kestra://` URIs of every file under the folder URI `uri` (sorted; none when absent)."""
    folder = resolve(uri)
    with contextlib.suppress(FileNotFoundError):
        if not folder.exists():
            return
        found = sorted(str(path.path) for path in folder.rglob("*") if path.is_file())
        base_path = str(storage_base().path).rstrip("/")
        for path in found:
            relative = path[len(base_path) :].lstrip("/") if path.startswith(base_path) else path
            yield make_uri(*relative.split("/"))


def copy_stream(source: BinaryIO, target: BinaryIO) -> int:
    """Copy `source` to `target` in chunks; returns the number of bytes copied."""
    total = 0
    while chunk := source.read(CHUNK_SIZE):
        target.write(chunk)
        total += len(chunk)
    return total


def upload_local(context: Mapping[str, Any], path: Path, filename: str | None = None) -> str:
    """Copy a local file into the current task run's storage; returns its `kestra://` URI."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"`{path}`: no such local file to upload")
    with open_write(context, filename or path.name) as (uri, target), path.open("rb") as source:
        copy_stream(source, target)
    return uri


def download_local(uri: str, path: Path) -> Path:
    """Copy the file of a `kestra://` URI to the local `path` (parents created); returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_read(uri) as source, path.open("wb") as target:
        copy_stream(source, target)
    return path


def read_text(uri: str, limit: int | None = None) -> str:
    """The UTF-8 text of a storage file (for `read()`); `limit` bytes at most, refused beyond."""
    with open_read(uri) as source:
        data = source.read(-1 if limit is None else limit + 1)
    if limit is not None and len(data) > limit:
        raise StorageError(f"`{uri}` is larger than {limit} bytes: too large to read into an expression")
    return data.decode("utf-8", errors="replace")


# --- FILE inputs ----------------------------------------------------------------------------

#: Local files `yaml2dag run --input f=@path` names: readable by this process's run whatever the roots.
_ALLOWED_LOCAL_FILES: set[str] = set()


def allow_local_file(path: Path) -> str:
    """Let this process's runs read the local file `path` as a FILE input; returns its `file://` URI."""
    real = os.path.realpath(path)
    if not os.path.isfile(real):
        raise StorageError(f"`{path}`: no such local file")
    _ALLOWED_LOCAL_FILES.add(real)
    return Path(real).as_uri()


def file_input_roots() -> list[str]:
    """The local folders `file://` FILE inputs may name (`[yaml2dag] file_input_roots`, comma-separated)."""
    configured = os.environ.get("AIRFLOW__YAML2DAG__FILE_INPUT_ROOTS")
    if configured is None:
        with contextlib.suppress(Exception):
            from airflow.sdk.configuration import conf

            configured = conf.get("yaml2dag", "file_input_roots", fallback=None)
    return [os.path.realpath(root.strip()) for root in (configured or "").split(",") if root.strip()]


def _local_input(uri: str) -> Path:
    path = os.path.realpath(unquote(uri[len("file://") :]))
    allowed = path in _ALLOWED_LOCAL_FILES or any(
        path.startswith(root.rstrip(os.sep) + os.sep) for root in file_input_roots()
    )
    if not allowed:
        raise StorageError(
            f"`{uri}` is outside the folders FILE inputs may read: set [yaml2dag] file_input_roots "
            "(AIRFLOW__YAML2DAG__FILE_INPUT_ROOTS) to a comma-separated list of folders"
        )
    if not os.path.isfile(path):
        raise StorageError(f"`{uri}`: no such local file")
    return Path(path)


@contextlib.contextmanager
def _open_source(uri: str) -> Iterator[BinaryIO]:
    """A binary stream of a FILE input given as `file://`, `s3://`/`gs://`/… or `http(s)://`."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "file":
        with _local_input(uri).open("rb") as handle:
            yield handle
        return
    if scheme in ("http", "https"):
        import urllib.error
        import urllib.request

        try:
            response = urllib.request.urlopen(uri, timeout=60)  # noqa: S310 - the scheme is checked above
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise StorageError(f"`{uri}` cannot be downloaded: {exc}") from None
        with response:
            yield response
        return
    from airflow.sdk import ObjectStoragePath

    conn_id = DEFAULT_CONN_IDS.get(scheme)
    try:
        source = ObjectStoragePath(uri, conn_id=conn_id) if conn_id else ObjectStoragePath(uri)
        handle = source.open("rb")
    except FileNotFoundError:
        raise StorageError(f"`{uri}`: no such file") from None
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes a located task error
        raise StorageError(f"`{uri}` cannot be read: {type(exc).__name__}: {exc}") from None
    with handle:
        yield handle


def input_file_uri(context: Mapping[str, Any], input_id: str, value: str) -> str:
    """The `kestra://` URI of a FILE input's value, copying it into the run's storage when needed.

    A `kestra:///` URI is kept (it must exist); `file://` (under `file_input_roots`), `s3://`,
    `gs://`, … and `http(s)://` are copied once per run to `…/executions/<run>/inputs/<id>/<name>`
    (Kestra's layout), so every task of the run reads the same file.
    """
    if value.startswith(SCHEME):
        if not exists(value):
            raise StorageError(f"FILE input `{input_id}`: `{value}`: no such file in the storage")
        return value
    if "://" not in value:
        raise StorageError(
            f"FILE input `{input_id}`: `{value}` is not a URI (kestra:///…, file:///…, s3://…, https://…)"
        )
    namespace, flow_id, run_id, _, _ = run_location(context)
    name = unquote(value.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]) or "file"
    name = Path(name.replace("\\", "/")).name or "file"
    target = execution_uri(namespace, flow_id, run_id) + "/inputs/" + quote(input_id) + "/" + quote(name)
    if exists(target):
        return target
    with _open_source(value) as source, open_uri_write(target) as handle:
        copy_stream(source, handle)
    return target
