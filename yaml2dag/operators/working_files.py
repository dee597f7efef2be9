"""The files of a container's or a process's working directory: input, namespace and output files.

Shared by the script tasks (`operators.scripts`) and Docker Run (`operators.docker`): `inputFiles`
and namespace files are written into a local working directory, which is copied into a container
as a tar (`archive_working_dir`, so a remote daemon works too) and fetched back
(`fetch_working_dir`); files matching `outputFiles` go to the storage (`upload_output_files`).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from yaml2dag.errors import TaskFailure
from yaml2dag.tasktypes.base import as_flag

#: The folder holding Kestra's `kestra` Python helper module, copied into containers.
KESTRA_MODULE_DIR = Path(__file__).resolve().parent / "script_path"
#: Where the `kestra` module sits in a container (on PYTHONPATH).
CONTAINER_MODULE_DIR = "/kestra/python"
#: The working directory in a container (Kestra's).
CONTAINER_WORKING_DIR = "/kestra/working-dir"
#: The sub-folder of the local working directory a container's working directory is fetched into.
FETCHED_DIR = ".yaml2dag-container"


class TaskLog(Protocol):
    """The logger methods the script machinery calls: Airflow's task logger (`self.log`) or a `logging.Logger`."""

    def log(self, level: int, msg: str, /, *args: Any) -> Any: ...

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


def archive_working_dir(workdir: Path) -> bytes:
    """A tar of the working directory (as CONTAINER_WORKING_DIR) and the `kestra` module, for `put_archive`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("kestra", 0o755), (CONTAINER_WORKING_DIR[1:], 0o777), (CONTAINER_MODULE_DIR[1:], 0o755)):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, mode
            tar.addfile(entry)
        for path in sorted(workdir.rglob("*")):
            tar.add(path, arcname=f"{CONTAINER_WORKING_DIR[1:]}/{path.relative_to(workdir)}", recursive=False)
        tar.add(KESTRA_MODULE_DIR / "kestra.py", arcname=f"{CONTAINER_MODULE_DIR[1:]}/kestra.py")
    return buffer.getvalue()


def write_input_files(files: Any, workdir: Path) -> None:
    """Write `inputFiles` into the working directory: content as UTF-8, `kestra://` URIs copied from storage."""
    from yaml2dag.tasktypes.files import check_relative_path

    if files is None:
        return
    if isinstance(files, str):
        try:
            files = json.loads(files)
        except json.JSONDecodeError:
            files = None
        if not isinstance(files, dict):
            raise TaskFailure("`inputFiles` must render to a map of file name → content or kestra:// URI")
    for name, content in files.items():
        try:
            check_relative_path(str(name))
        except ValueError as exc:
            raise TaskFailure(f"inputFiles: {exc}") from None
        target = workdir / str(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content)
        if text.startswith("kestra://"):
            from yaml2dag.storage import download_local

            download_local(text, target)
        elif text.startswith("nsfile://"):
            raise TaskFailure(f"inputFiles `{name}`: nsfile:// URIs are not supported by yaml2dag yet")
        else:
            target.write_text(text, encoding="utf-8")


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A Java-style glob as a regex: `**` crosses folders, `*` and `?` do not."""
    parts = re.split(r"(\*\*/?|\*|\?)", glob)
    mapping = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(mapping.get(part, re.escape(part)) for part in parts) + r"\Z")


def write_namespace_files(settings: Any, namespace: str, workdir: Path, log: TaskLog) -> None:
    """Copy the namespace's files (`include`d, not `exclude`d) from the storage into the working directory."""
    from yaml2dag.storage import NAMESPACE_FILES_DIR, download_local, list_files, make_uri, namespace_segments

    if not settings:
        return
    try:
        if not as_flag(settings.get("enabled", True), "namespaceFiles.enabled"):
            return
    except ValueError as exc:
        raise TaskFailure(str(exc)) from None
    include = [glob_pattern(str(glob)) for glob in settings.get("include") or []]
    exclude = [glob_pattern(str(glob)) for glob in settings.get("exclude") or []]
    folder = make_uri(*namespace_segments(namespace), NAMESPACE_FILES_DIR)
    copied = 0
    for uri in list_files(folder):
        relative = unquote(uri[len(folder) :].lstrip("/"))
        if include and not any(pattern.match(relative) for pattern in include):
            continue
        if any(pattern.match(relative) for pattern in exclude):
            continue
        download_local(uri, workdir / relative)
        copied += 1
    log.info("Copied %s namespace file(s) of %s into the working directory", copied, namespace)


def upload_output_files(context: Any, patterns: list[str], root: Path) -> dict[str, str]:
    """Upload the files matching the `outputFiles` globs to the storage: relative path → kestra:// URI."""
    from yaml2dag.storage import upload_local

    found: dict[str, Path] = {}
    for pattern in patterns:
        pattern = str(pattern)
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise TaskFailure(f"outputFiles `{pattern}` must be a glob relative to the working directory")
        for path in sorted(root.glob(pattern)):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not relative.startswith(FETCHED_DIR):
                found.setdefault(relative, path)
    taken: set[str] = set()
    uploaded = {}
    for relative, path in found.items():
        name = path.name if path.name not in taken else relative.replace("/", "_")
        taken.add(name)
        uploaded[relative] = upload_local(context, path, name)
    return uploaded


def fetch_working_dir(client: Any, container_id: str, target: Path) -> None:
    """Copy the container's working directory to `target` (streamed through a temporary tar file)."""
    stream, _ = client.get_archive(container_id, CONTAINER_WORKING_DIR)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as buffer:
        for chunk in stream:
            buffer.write(chunk)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer, mode="r") as tar:
            tar.extractall(target, filter="data")
