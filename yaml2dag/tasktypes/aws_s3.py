"""Kestra's Amazon S3 tasks: Upload, Download, Downloads, List, Delete, Copy, CreateBucket (docs/sql-s3.md)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from yaml2dag.tasktypes.base import Flag, KestraModel, TaskBase, Text, choice, rendered

_S3 = "yaml2dag.operators.aws_s3"
_PREFIX = "io.kestra.plugin.aws.s3"
Filter = choice("FILES", "DIRECTORY", "BOTH")


class _S3Connection(TaskBase):
    """Where S3 is and how to sign in: Kestra's AWS properties, or an Airflow AWS connection (`connId`)."""

    connId: str | None = Field(
        None, description="yaml2dag extension: an Airflow AWS connection (default: Airflow's `aws_default`)."
    )
    region: Text | None = rendered(None, description="AWS region.")
    accessKeyId: Text | None = rendered(None, description="Access key id (else the connection's or the default chain).")
    secretKeyId: Text | None = rendered(None, description="Secret access key (masked in logs).")
    sessionToken: Text | None = rendered(None, description="Session token (masked in logs).")
    endpointOverride: Text | None = rendered(None, description="S3 endpoint URL, for S3-compatible servers.")


class _S3Task(_S3Connection):
    """An S3 task on one bucket."""

    bucket: Text = rendered(description="The bucket.")


class _ListingTask(_S3Task):
    """The listing properties List and Downloads share."""

    prefix: Text | None = rendered(None, description="Only keys starting with this prefix.")
    delimiter: Text | None = rendered(None, description="Group keys by this delimiter.")
    marker: Text | None = rendered(None, description="Start listing after this key.")
    maxKeys: int = Field(1000, ge=1, description="At most this many keys.")
    regexp: Text | None = rendered(None, description="Only keys matching this regular expression (whole key).")
    filter: Filter = rendered("BOTH", description="FILES, DIRECTORY (keys ending with /) or BOTH.")  # type: ignore[valid-type]


class Upload(_S3Task):
    """Upload internal-storage files (`from`: a kestra:// URI, a list, or a map key → URI) to `bucket`/`key`."""

    TYPES: ClassVar = (f"{_PREFIX}.Upload",)
    OPERATOR: ClassVar = f"{_S3}:S3UploadOperator"

    key: Text = rendered(description="Object key; with a list `from`, the key prefix (a folder).")
    from_: Any = rendered(alias="from", description="kestra:// URI, list of URIs, or map key → URI.")
    contentType: Text | None = rendered(None, description="Content-Type of the object.")
    metadata: dict[str, Text] | None = rendered(None, description="User metadata.")


class Download(_S3Task):
    """Download `bucket`/`key` into the internal storage: outputs `uri`, `contentLength`, `contentType`, `metadata`."""

    TYPES: ClassVar = (f"{_PREFIX}.Download",)
    OPERATOR: ClassVar = f"{_S3}:S3DownloadOperator"

    key: Text = rendered(description="Object key.")
    versionId: Text | None = rendered(None, description="Object version.")


class Downloads(_ListingTask):
    """Download every listed object: outputs `objects` and `outputFiles` (key → kestra:// URI); then MOVE/DELETE."""

    TYPES: ClassVar = (f"{_PREFIX}.Downloads",)
    OPERATOR: ClassVar = f"{_S3}:S3DownloadsOperator"

    action: choice("MOVE", "DELETE", "NONE") = rendered(description="What to do with the objects afterwards.")  # type: ignore[valid-type]
    moveTo: S3Location | None = rendered(None, description="With MOVE: `bucket` and `key` (prefix) to move to.")


class S3Location(KestraModel):
    """A bucket and a key (Copy's `from` / `to`, Downloads' `moveTo`)."""

    bucket: Text | None = None
    key: Text | None = None
    versionId: Text | None = None


class List(_ListingTask):
    """List objects: output `objects` (key, size, eTag, lastModified, storageClass, uri)."""

    TYPES: ClassVar = (f"{_PREFIX}.List",)
    OPERATOR: ClassVar = f"{_S3}:S3ListOperator"


class Delete(_S3Task):
    """Delete `bucket`/`key`: outputs `deleteMarker` and `versionId`."""

    TYPES: ClassVar = (f"{_PREFIX}.Delete",)
    OPERATOR: ClassVar = f"{_S3}:S3DeleteOperator"

    key: Text = rendered(description="Object key.")


class Copy(_S3Connection):
    """Copy `from` (bucket, key, versionId) to `to` (bucket, key); `delete: true` removes the source (a move)."""

    TYPES: ClassVar = (f"{_PREFIX}.Copy",)
    OPERATOR: ClassVar = f"{_S3}:S3CopyOperator"

    from_: S3Location = rendered(alias="from", description="The source object.")
    to: S3Location = rendered(description="The destination (bucket defaults to the source's).")
    delete: Flag = rendered(False, description="Delete the source after copying.")


class CreateBucket(_S3Task):
    """Create `bucket` (no error when it exists and is yours): outputs `bucket` and `region`."""

    TYPES: ClassVar = (f"{_PREFIX}.CreateBucket",)
    OPERATOR: ClassVar = f"{_S3}:S3CreateBucketOperator"


Downloads.model_rebuild()

TASK_TYPES: tuple[type[TaskBase], ...] = (Upload, Download, Downloads, List, Delete, Copy, CreateBucket)
