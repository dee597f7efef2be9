"""Kestra's namespace files: Kestra's path patterns, and the `_files/` folders of a flows folder.

A namespace's files live in the storage under `kestra:///<namespace as folders>/_files/<path>`
(Kestra's layout, `storage.namespace_file_uri`). Flows folders may carry them too: a folder named
`_files` anywhere in the flows folder holds one folder per namespace, named like the namespace::

    dags/
      etl.yaml                     namespace company.team
      _files/
        company.team/
          queries/orders.sql       → read('queries/orders.sql') in company.team's flows
          scripts/clean.py         → namespaceFiles of a script task

The DAG bundle (on refresh), the loader file (in the DAG processor) and `yaml2dag run` (the
`_files/` folder next to the flow file) *publish* these files into the storage: a file is copied
when it is new or changed since this host last published it (size and modification time, kept
in a small manifest), and a file this host published that is gone from the folder is deleted
from the storage. Files put into the storage otherwise (UploadFiles, by hand) are left alone.
`_files/` folders are never read as flows.

Patterns (`DownloadFiles`, `DeleteFiles`, `UploadFiles.files`) follow Kestra's
`PathMatcherPredicate`: `regex:…` or `glob:…` as given; otherwise a glob, with `**/` put in front
when it starts with a word character (so `input.txt` matches it in any folder). Paths are matched
with a leading slash (`/queries/orders.sql`); `**` crosses folders, `*` and `?` do not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: The name of the folders that hold namespace files in a flows folder (Kestra's git convention).
FILES_FOLDER = "_files"
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_WORD_START = re.compile(r"^\w")


# --- Kestra's path patterns ----------------------------------------------------------------------


def glob_regex(glob: str) -> str:
    """A Java `glob:` pattern as a Python regex: `**` any text, `*`/`?` within one folder, `{a,b}`, `[…]`."""
    out: list[str] = []
    index, depth = 0, 0
    while index < len(glob):
        char = glob[index]
        if char == "*":
            if glob.startswith("**", index):
                out.append(".*")
                index += 2
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "{":
            out.append("(?:")
            depth += 1
        elif char == "}" and depth:
            out.append(")")
            depth -= 1
        elif char == "," and depth:
            out.append("|")
        elif char == "[":
            end = glob.find("]", index + 1)
            if end < 0:
                raise ValueError(f"`{glob}`: `[` without `]`")
            body = glob[index + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            index = end
        elif char == "\\" and index + 1 < len(glob):
            index += 1
            out.append(re.escape(glob[index]))
        else:
            out.append(re.escape(char))
        index += 1
    if depth:
        raise ValueError(f"`{glob}`: `{{` without `}}`")
    return "".join(out)


def path_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A predicate on namespace file paths (`/a/b.txt`) true when one of Kestra's `patterns` matches."""
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        pattern = str(pattern)
        if pattern.startswith("regex:"):
            source = pattern[len("regex:") :]
        else:
            glob = pattern[len("glob:") :] if pattern.startswith("glob:") else pattern
            if not pattern.startswith("glob:") and _WORD_START.match(glob):
                glob = "**/" + glob
            source = glob_regex(glob)
        try:
            compiled.append(re.compile(source))
        except re.error as exc:
            raise ValueError(f"`{pattern}` is not a valid pattern: {exc}") from None

    def matches(path: str) -> bool:
        return any(regex.fullmatch(path) for regex in compiled)

    return matches


# --- the `_files/` folders of a flows folder -----------------------------------------------------


def find_files_folders(root: Path) -> list[Path]:
    """Every `_files` folder under `root` (hidden folders skipped, as for flow files)."""
    found: list[Path] = []
    for folder, directories, _ in os.walk(root):
        if FILES_FOLDER in directories:
            found.append(Path(folder, FILES_FOLDER))
        directories[:] = sorted(d for d in directories if not d.startswith((".", "__")) and d != FILES_FOLDER)
    return found


def folder_files(files_folder: Path) -> Iterator[tuple[str, str, Path]]:
    """(namespace, path inside the namespace, local file) for each file of a `_files` folder.

    Entries that are not a namespace folder, and symbolic links leading out of the folder, are
    skipped with a warning.
    """
    root = os.path.realpath(files_folder)
    for namespace_folder in sorted(files_folder.iterdir()):
        if not namespace_folder.is_dir() or not _NAMESPACE.match(namespace_folder.name):
            if not namespace_folder.name.startswith("."):
                log.warning(
                    "yaml2dag: %s: not a namespace folder (`_files/<namespace>/…`, lower-case): skipped",
                    namespace_folder,
                )
            continue
        for folder, directories, files in os.walk(namespace_folder):
            directories[:] = sorted(d for d in directories if not d.startswith("."))
            for name in sorted(files):
                local = Path(folder, name)
                real = os.path.realpath(local)
                if not real.startswith(root + os.sep) or not os.path.isfile(real):
                    log.warning("yaml2dag: %s: not a regular file inside %s: skipped", local, files_folder)
                    continue
                yield namespace_folder.name, local.relative_to(namespace_folder).as_posix(), local


@dataclass
class PublishReport:
    """What one publication did: URIs copied, URIs deleted, and the files that failed (with why)."""

    copied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def publish(files_folders: Iterable[Path], state_dir: Path | None = None) -> PublishReport:
    """Copy the files of `files_folders` into the storage as namespace files (changed ones only).

    `state_dir` keeps this host's manifest (default: `$AIRFLOW_HOME/yaml2dag-namespace-files`); a
    file that this host published earlier and that is gone is deleted from the storage. A file that
    cannot be copied is recorded in the report (and logged), never stopping the others.
    """
    from yaml2dag import storage

    folders = [Path(folder) for folder in files_folders]
    report = PublishReport()
    manifest_path = _manifest_path(folders, state_dir)
    previous = _read_manifest(manifest_path)
    current: dict[str, list[int]] = {}
    for files_folder in folders:
        if not files_folder.is_dir():
            continue
        for namespace, relative, local in folder_files(files_folder):
            uri = storage.namespace_file_uri(namespace, relative)
            stat = local.stat()
            signature = [stat.st_size, stat.st_mtime_ns]
            if previous.get(uri) == signature and uri not in current:
                current[uri] = signature
                continue
            try:
                with local.open("rb") as source, storage.open_uri_write(uri) as target:
                    storage.copy_stream(source, target)
            except (OSError, storage.StorageError) as exc:
                report.failed[uri] = str(exc)
                log.warning("yaml2dag: namespace file %s could not be published to %s: %s", local, uri, exc)
                continue
            current[uri] = signature
            report.copied.append(uri)
    for uri in sorted(set(previous) - set(current)):
        try:
            if storage.delete(uri):
                report.deleted.append(uri)
        except storage.StorageError as exc:
            report.failed[uri] = str(exc)
    _write_manifest(manifest_path, current)
    if report.copied or report.deleted:
        log.info("yaml2dag: namespace files published: %s copied, %s deleted", len(report.copied), len(report.deleted))
    return report


def publish_quietly(files_folders: Iterable[Path], state_dir: Path | None = None) -> PublishReport | None:
    """`publish`, where a failure is logged and never raised (flows must load whatever happens)."""
    try:
        return publish(files_folders, state_dir)
    except Exception:  # noqa: BLE001 - publishing namespace files must never stop flows from loading
        log.warning("yaml2dag: publishing namespace files failed", exc_info=True)
        return None


def _manifest_path(folders: list[Path], state_dir: Path | None) -> Path:
    """The manifest of this host for these folders and the current storage base."""
    from yaml2dag.storage import storage_base_url

    if state_dir is None:
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        state_dir = Path(home, "yaml2dag-namespace-files")
    key = "\n".join([storage_base_url(), *sorted(os.path.realpath(folder) for folder in folders)])
    return Path(state_dir, hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")


def _read_manifest(path: Path) -> dict[str, list[int]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(uri): list(value) for uri, value in data.items()} if isinstance(data, dict) else {}


def _write_manifest(path: Path, manifest: dict[str, list[int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
