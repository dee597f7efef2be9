"""Operators of Kestra's namespace file tasks: UploadFiles, DownloadFiles, DeleteFiles on `yaml2dag.storage`.

Namespace files are `kestra:///<namespace as folders>/_files/<path>`; every copy streams by chunks.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from yaml2dag import storage
from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.base import as_flag
from yaml2dag.tasktypes.namespace import DeleteFiles, DownloadFiles, UploadFiles

_UI_COLOR = "#e8f5e9"


def _matcher(files: Any) -> Callable[[str], bool]:
    """Kestra's path predicate for the rendered `files` (a pattern or a list of them)."""
    from yaml2dag.namespace_files import path_matcher

    patterns = [files] if isinstance(files, str) else list(files or [])
    try:
        return path_matcher(str(pattern) for pattern in patterns)
    except ValueError as exc:
        raise TaskFailure(f"`files`: {exc}") from None


def _namespace_path(*parts: str) -> str:
    """A namespace file path (`/a/b.txt`) from folder and file parts; `..` and empty names refused."""
    segments = [segment for part in parts for segment in str(part).replace("\\", "/").split("/") if segment]
    if not segments or any(segment in (".", "..") for segment in segments):
        raise TaskFailure(f"`{'/'.join(parts)}` is not a valid namespace file path (no `..`, not empty)")
    return "/" + "/".join(segments)


class UploadFilesOperator(KestraOperator, task_type=UploadFiles):
    """`io.kestra.plugin.core.namespace.UploadFiles`: put files into a namespace's files.

    `filesMap` maps a namespace file path (under `destination`) to a `kestra://` URI of the storage
    (a missing source is skipped with a warning, as Kestra skips it); `files` are globs matching
    files of the WorkingDirectory the task runs in (uploaded under `destination` with their
    relative paths). `conflict`: OVERWRITE (default), ERROR or SKIP. Output `files`: namespace file
    path → its `kestra:///…/_files/…` URI, for the files written.
    """

    ui_color = _UI_COLOR
    working_directory: str | None = None

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        namespace, conflict = str(self.namespace), str(self.conflict).upper()
        sources: dict[str, Any] = {}
        if self.filesMap is not None:
            sources.update(self._from_map(str(self.destination)))
        written: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="yaml2dag-upload-") as folder:
            if self.files is not None:
                sources.update(self._from_working_directory(context, Path(folder)))
            for path, source in sources.items():
                uri = storage.namespace_file_uri(namespace, path)
                if storage.exists(uri) and conflict != "OVERWRITE":
                    if conflict == "ERROR":
                        raise TaskFailure(f"namespace file `{path}` of {namespace} already exists (conflict: ERROR)")
                    self.log.info("Kept the existing namespace file %s (conflict: SKIP)", path)
                    continue
                self._copy(source, uri)
                written[path] = uri
        self.log.info("Uploaded %s file(s) to the namespace files of %s", len(written), namespace)
        return {"files": written}

    def _from_map(self, destination: str) -> dict[str, str]:
        """Namespace path → storage URI of `filesMap` (a map, or JSON text of one); missing sources skipped."""
        files_map: Any = self.filesMap
        if isinstance(files_map, str):
            try:
                files_map = json.loads(files_map)
            except json.JSONDecodeError:
                files_map = None
        if not isinstance(files_map, Mapping):
            raise TaskFailure("`filesMap` must be (or render to) a map of namespace file path → kestra:// URI")
        sources: dict[str, str] = {}
        for target, source in files_map.items():
            if not isinstance(source, str):
                raise TaskFailure("`filesMap` must be a map of namespace file path → kestra:// URI (text)")
            if not storage.exists(source):
                self.log.warning("filesMap `%s`: %s does not exist: skipped", target, source)
                continue
            sources[_namespace_path(destination, str(target))] = source
        return sources

    def _from_working_directory(self, context: Any, folder: Path) -> dict[str, Path]:
        """Namespace path → local file for the WorkingDirectory's files matching `files`."""
        if not self.working_directory:
            raise TaskFailure(
                "`files` match files of a WorkingDirectory: put this task inside one, or give storage files "
                "with `filesMap`"
            )
        from yaml2dag.operators.scripts import restore_directory

        restore_directory(context, self.working_directory, folder)
        matches = _matcher(self.files)
        found: dict[str, Path] = {}
        for local in sorted(path for path in folder.rglob("*") if path.is_file()):
            relative = "/" + local.relative_to(folder).as_posix()
            if matches(relative):
                found[_namespace_path(str(self.destination), relative)] = local
        return found

    @staticmethod
    def _copy(source: str | Path, uri: str) -> None:
        """Copy a storage URI or a local file to the namespace file `uri`."""
        if isinstance(source, Path):
            with source.open("rb") as stream, storage.open_uri_write(uri) as target:
                shutil.copyfileobj(stream, target, storage.CHUNK_SIZE)
            return
        with storage.open_read(source) as stream, storage.open_uri_write(uri) as target:
            storage.copy_stream(stream, target)


class DownloadFilesOperator(KestraOperator, task_type=DownloadFiles):
    """`io.kestra.plugin.core.namespace.DownloadFiles`: copy matching namespace files into this task's storage.

    Output `files`: the namespace file path (`/queries/a.sql`) → the copy's `kestra://` URI, which
    any later task reads (`read(outputs.dl.files['/queries/a.sql'])`, `inputFiles`, …).
    """

    ui_color = _UI_COLOR

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        namespace, matches = str(self.namespace), _matcher(self.files)
        folder = storage.task_run_uri(context)
        prefix = [segment for segment in str(self.destination or "").replace("\\", "/").split("/") if segment]
        downloaded: dict[str, str] = {}
        for path, uri in storage.namespace_files(namespace):
            if not matches(path):
                continue
            target = folder + "/" + "/".join(quote(part) for part in [*prefix, *path.strip("/").split("/")])
            with storage.open_read(uri) as source, storage.open_uri_write(target) as handle:
                storage.copy_stream(source, handle)
            downloaded[path] = target
        self.log.info("Downloaded %s namespace file(s) of %s", len(downloaded), namespace)
        return {"files": downloaded}


class DeleteFilesOperator(KestraOperator, task_type=DeleteFiles):
    """`io.kestra.plugin.core.namespace.DeleteFiles`: delete the matching files of a namespace.

    With `deleteParentFolder`, the folders left empty are removed too (on object stores, folders
    exist only through their files). No outputs, as in Kestra; the task log counts the deletions.
    """

    ui_color = _UI_COLOR

    def run(self, context: Any) -> None:  # noqa: D102
        namespace, matches = str(self.namespace), _matcher(self.files)
        try:
            delete_parents = as_flag(self.deleteParentFolder, "deleteParentFolder")
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        deleted = [path for path, uri in storage.namespace_files(namespace) if matches(path) and storage.delete(uri)]
        for path in deleted:
            self.log.info("Deleted namespace file %s", path)
        if delete_parents:
            _remove_empty_folders(namespace, deleted)
        self.log.info("Deleted %s namespace file(s) of %s", len(deleted), namespace)


def _remove_empty_folders(namespace: str, deleted: list[str]) -> None:
    """Remove the parent folders of `deleted` files that hold no file any more (deepest first)."""
    parents = {"/".join(path.split("/")[:depth]) for path in deleted for depth in range(2, path.count("/") + 1)}
    for parent in sorted(parents, key=lambda folder: folder.count("/"), reverse=True):
        folder_uri = storage.namespace_file_uri(namespace, parent)
        if not any(True for _ in storage.list_files(folder_uri)):
            storage.delete_tree(folder_uri)
