"""Properties that bring files into a task's working directory, shared by the script and Docker tasks.

`inputFiles` (name → content or `kestra://` URI), `outputFiles` (globs uploaded to the storage
afterwards) and `namespaceFiles` (the namespace's files, `include`/`exclude` globs).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from yaml2dag.tasktypes.base import Flag, KestraModel, Text, rendered


def check_relative_path(name: str) -> str:
    """Refuse a file name that would leave the working directory (absolute, `..`, empty)."""
    parts = str(name).replace("\\", "/").split("/")
    if not str(name).strip() or str(name).startswith("/") or any(part in ("..", "") for part in parts):
        raise ValueError(f"file name `{name}` must be a relative path inside the working directory (no `..`)")
    return name


class NamespaceFiles(KestraModel):
    """`namespaceFiles`: copy the flow namespace's files into the working directory first."""

    enabled: Flag = Field(default=True, description="Copy them (default true once the block is given).")
    include: list[Text] | None = Field(default=None, description="Globs of the files to copy (default all).")
    exclude: list[Text] | None = Field(default=None, description="Globs of the files not to copy.")
    ifExists: Any = None
    folderPerNamespace: Any = None
    namespaces: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset({"ifExists", "folderPerNamespace", "namespaces"})


class WorkingDirectoryFiles(KestraModel):
    """`inputFiles`, `outputFiles` and `namespaceFiles`: declared once for the script tasks and Docker `Run`."""

    inputFiles: dict[str, Text] | Text | None = rendered(
        None,
        description="Files written into the working directory first: name → content, or name → a kestra:// URI "
        "(copied from the storage); or an expression rendering to such a map (JSON).",
    )
    outputFiles: list[Text] | None = rendered(
        None, description="Globs (relative to the working directory) of files uploaded to the storage afterwards."
    )
    namespaceFiles: NamespaceFiles | None = rendered(
        None, description="Copy the namespace's files (`kestra:///<namespace>/_files/…`) into the working directory."
    )

    @field_validator("inputFiles")
    @classmethod
    def _relative_names(cls, value: Any) -> Any:
        """Input file names stay inside the working directory."""
        if isinstance(value, dict):
            for name in value:
                check_relative_path(name)
        return value
