"""Kestra's namespace file tasks (`io.kestra.plugin.core.namespace.*`): UploadFiles, DownloadFiles, DeleteFiles.

A namespace's files are `kestra:///<namespace as folders>/_files/<path>` in yaml2dag's storage
(see `yaml2dag.namespace_files` for the `_files/` folders of a flows folder). Patterns follow
Kestra's `PathMatcherPredicate` (`glob:`, `regex:`, or a glob matched in any folder).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from yaml2dag.tasktypes.base import Flag, TaskBase, Text, choice, rendered

_NAMESPACE = "yaml2dag.operators.namespace"
_PREFIX = "io.kestra.plugin.core.namespace."
_PATTERNS = "Patterns of the namespace files: `glob:…`, `regex:…`, or a glob (`input.txt` matches in any folder)."


class UploadFiles(TaskBase):
    """Put files into a namespace's files: storage files by `filesMap`, working-directory files by `files`."""

    TYPES: ClassVar = (_PREFIX + "UploadFiles",)
    OPERATOR: ClassVar = f"{_NAMESPACE}:UploadFilesOperator"
    #: Inside a WorkingDirectory, `files` globs match the files of the shared folder.
    USES_WORKING_DIRECTORY: ClassVar[bool] = True

    namespace: Text = rendered(
        "{{ flow.namespace }}", description="Namespace receiving the files (default: the flow's)."
    )
    files: list[Text] | None = rendered(
        None,
        description="Globs (Kestra patterns) of files of the WorkingDirectory this task is in, uploaded under "
        "`destination` with their relative paths.",
    )
    filesMap: dict[str, Text] | Text | None = rendered(
        None,
        description="Namespace file path → kestra:// URI of a storage file (or an expression rendering to such a map, "
        "e.g. `{{ outputs.dl.outputFiles }}`).",
    )
    destination: Text = rendered("/", description="Folder of the namespace the files go into (default `/`).")
    conflict: choice("OVERWRITE", "ERROR", "SKIP") = rendered(  # type: ignore[valid-type]
        "OVERWRITE", description="When the namespace file exists: OVERWRITE it, fail (ERROR) or keep it (SKIP)."
    )

    @model_validator(mode="after")
    def _something_to_upload(self) -> UploadFiles:
        if self.files is None and self.filesMap is None:
            raise ValueError("set `files` or `filesMap`: the files to upload")
        return self


class DownloadFiles(TaskBase):
    """Copy the matching namespace files into this task's storage; output `files` (path → kestra:// URI)."""

    TYPES: ClassVar = (_PREFIX + "DownloadFiles",)
    OPERATOR: ClassVar = f"{_NAMESPACE}:DownloadFilesOperator"

    namespace: Text = rendered(description="Namespace whose files are downloaded.")
    files: list[Text] | Text = rendered(description=_PATTERNS)
    destination: Text = rendered("", description="Folder prefix of the copies in the task's storage.")


class DeleteFiles(TaskBase):
    """Delete the matching files of a namespace."""

    TYPES: ClassVar = (_PREFIX + "DeleteFiles",)
    OPERATOR: ClassVar = f"{_NAMESPACE}:DeleteFilesOperator"

    namespace: Text = rendered(description="Namespace whose files are deleted.")
    files: list[Text] | Text = rendered(description=_PATTERNS)
    deleteParentFolder: Flag = rendered(False, description="Also delete the folders the deletion leaves empty.")


TASK_TYPES: tuple[type[TaskBase], ...] = (UploadFiles, DownloadFiles, DeleteFiles)
