"""Operators for Kestra's S3 tasks, on the Amazon provider's `S3Hook` (boto3 underneath).

Credentials: the task's `accessKeyId` / `secretKeyId` / `sessionToken` / `region` /
`endpointOverride` when given (an Airflow AWS connection is built from them at run time, so the
hook behaves as with a stored one), else the Airflow connection `connId` (default `aws_default`,
which falls back to boto3's default chain when it does not exist). Secrets are masked before
rendering. Files move between S3 and Kestra's internal storage (`yaml2dag.storage`) as streams.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.aws_s3 import Copy, CreateBucket, Delete, Download, Downloads, List, Upload


class _S3Operator(KestraOperator):
    """Shared by the S3 operators: the hook, masking, errors, and listing."""

    ui_color = "#fff4e0"

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Mask the secret key and session token before rendering (errors quote templates) and after."""
        self._mask()
        super().render_template_fields(context, jinja_env)
        self._mask()

    def _mask(self) -> None:
        from airflow.sdk.log import mask_secret

        for secret in (self.secretKeyId, self.sessionToken):
            if secret and "{{" not in str(secret) and "{%" not in str(secret):
                mask_secret(str(secret))

    def hook(self) -> Any:
        """An `S3Hook` on the task's credentials, or on the Airflow connection `connId` / `aws_default`."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        region = str(self.region) if self.region else None
        hook = S3Hook(aws_conn_id=self.connId or "aws_default", region_name=region)
        if self.accessKeyId or self.endpointOverride:
            from airflow.models.connection import Connection
            from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

            extra = {"endpoint_url": str(self.endpointOverride)} if self.endpointOverride else {}
            if self.sessionToken:
                extra["aws_session_token"] = str(self.sessionToken)
            if region:
                extra["region_name"] = region
            conn = Connection(
                conn_id="kestra_task_s3",
                conn_type="aws",
                login=str(self.accessKeyId) if self.accessKeyId else None,
                password=str(self.secretKeyId) if self.secretKeyId else None,
                extra=json.dumps(extra),
            )
            hook.__dict__["conn_config"] = AwsConnectionWrapper(conn=conn, region_name=region)
        return hook

    def client(self) -> Any:
        """The boto3 S3 client of `hook()`."""
        return self.hook().get_conn()

    def fail(self, exc: BaseException, doing: str) -> TaskFailure:
        """An S3 error as a task failure: what was done and S3's own message."""
        return TaskFailure(f"S3 {doing} failed: {exc}")

    def listing(self, client: Any) -> list[dict[str, Any]]:
        """The objects List and Downloads see: prefix, delimiter, marker, maxKeys, regexp and filter applied."""
        arguments: dict[str, Any] = {"Bucket": str(self.bucket), "MaxKeys": int(self.maxKeys)}
        for name, key in (("prefix", "Prefix"), ("delimiter", "Delimiter"), ("marker", "Marker")):
            if getattr(self, name):
                arguments[key] = str(getattr(self, name))
        kind = str(self.filter).upper()
        if kind not in ("FILES", "DIRECTORY", "BOTH"):
            raise TaskFailure(f"invalid filter `{self.filter}`: use FILES, DIRECTORY or BOTH")
        pattern = re.compile(str(self.regexp)) if self.regexp else None
        try:
            answer = client.list_objects(**arguments)
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError and connection errors alike
            raise self.fail(exc, f"listing of bucket `{self.bucket}`") from None
        objects = []
        for item in answer.get("Contents", []):
            key = item["Key"]
            is_directory = key.endswith("/")
            if (kind == "FILES" and is_directory) or (kind == "DIRECTORY" and not is_directory):
                continue
            if pattern is not None and not pattern.fullmatch(key):
                continue
            objects.append(
                {
                    "key": key,
                    "size": item.get("Size"),
                    "eTag": item.get("ETag"),
                    "lastModified": item["LastModified"].isoformat() if item.get("LastModified") else None,
                    "storageClass": item.get("StorageClass"),
                    "uri": f"s3://{self.bucket}/{key}",
                }
            )
        return objects

    def download(self, context: Any, client: Any, bucket: str, key: str, version: str | None = None) -> dict[str, Any]:
        """Stream one object into a new internal-storage file: `uri` and the object's head fields."""
        from yaml2dag import storage

        extra = {"VersionId": version} if version else {}
        try:
            head = client.head_object(Bucket=bucket, Key=key, **extra)
            with storage.open_write(context, key.rsplit("/", 1)[-1] or "object") as (uri, stream):
                client.download_fileobj(bucket, key, stream, ExtraArgs=extra or None)
        except TaskFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError and connection errors alike
            raise self.fail(exc, f"download of s3://{bucket}/{key}") from None
        return {
            "uri": uri,
            "contentLength": head.get("ContentLength"),
            "contentType": head.get("ContentType"),
            "metadata": head.get("Metadata") or {},
            "eTag": head.get("ETag"),
            "versionId": head.get("VersionId"),
        }


def _sources(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """Upload's `from` → (object key, kestra:// URI) pairs: one URI, a list (under `key`/), or a map."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TaskFailure(f"`from` is not valid JSON: {exc}") from None
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        for uri in value:
            yield f"{key.rstrip('/')}/{str(uri).rsplit('/', 1)[-1]}", str(uri)
    elif isinstance(value, dict):
        for name, uri in value.items():
            yield f"{key.rstrip('/')}/{name}", str(uri)
    else:
        raise TaskFailure("`from` must be a kestra:// URI, a list of them, or a map of name → URI")


class S3UploadOperator(_S3Operator, task_type=Upload):
    """`io.kestra.plugin.aws.s3.Upload`: internal-storage file(s) → S3. Outputs `bucket`, `key`."""

    def run(self, context: Any) -> dict[str, Any]:
        from yaml2dag import storage

        client = self.client()
        extra: dict[str, Any] = {}
        if self.contentType:
            extra["ContentType"] = str(self.contentType)
        if self.metadata:
            extra["Metadata"] = {str(name): str(value) for name, value in self.metadata.items()}
        keys = []
        for key, uri in _sources(self.from_, str(self.key)):
            if not storage.is_storage_uri(uri):
                raise TaskFailure(f"`from` must name internal-storage files (kestra://…), got `{uri}`")
            with storage.open_read(uri) as stream:
                try:
                    client.upload_fileobj(stream, str(self.bucket), key, ExtraArgs=extra or None)
                except Exception as exc:  # noqa: BLE001 - botocore raises ClientError and connection errors alike
                    raise self.fail(exc, f"upload to s3://{self.bucket}/{key}") from None
            self.log.info("Uploaded %s to s3://%s/%s", uri, self.bucket, key)
            keys.append(key)
        return {"bucket": str(self.bucket), "key": keys[0] if len(keys) == 1 else str(self.key)}


class S3DownloadOperator(_S3Operator, task_type=Download):
    """`io.kestra.plugin.aws.s3.Download`: S3 → internal storage. Outputs `uri`, `contentLength`, … ."""

    def run(self, context: Any) -> dict[str, Any]:
        version = str(self.versionId) if self.versionId else None
        return self.download(context, self.client(), str(self.bucket), str(self.key), version)


class S3DownloadsOperator(_S3Operator, task_type=Downloads):
    """`io.kestra.plugin.aws.s3.Downloads`: every listed object → internal storage, then MOVE / DELETE / NONE."""

    def run(self, context: Any) -> dict[str, Any]:
        self.checked_action()
        client = self.client()
        objects = [item for item in self.listing(client) if not item["key"].endswith("/")]
        files: dict[str, str] = {}
        for item in objects:
            item["uri"] = files[item["key"]] = self.download(context, client, str(self.bucket), item["key"])["uri"]
        self.apply_action(client, [item["key"] for item in objects])
        return {"objects": objects, "outputFiles": files}

    def checked_action(self) -> str:
        """The rendered `action` (MOVE, DELETE, NONE), checked with `moveTo`."""
        action = str(self.action).upper()
        if action not in ("MOVE", "DELETE", "NONE"):
            raise TaskFailure(f"invalid action `{self.action}`: use MOVE, DELETE or NONE")
        if action == "MOVE" and not (self.moveTo and self.moveTo.get("key")):
            raise TaskFailure("`action: MOVE` needs `moveTo.key` (and optionally `moveTo.bucket`)")
        return action

    def apply_action(self, client: Any, keys: list[str]) -> None:
        """MOVE (copy under `moveTo`, then delete) or DELETE the objects `keys` of `bucket`; NONE: nothing."""
        action = self.checked_action()
        for key in keys:
            try:
                if action == "MOVE":
                    target_bucket = str(self.moveTo.get("bucket") or self.bucket)
                    target = f"{str(self.moveTo['key']).rstrip('/')}/{key.rsplit('/', 1)[-1]}"
                    client.copy_object(Bucket=target_bucket, Key=target,
                                       CopySource={"Bucket": str(self.bucket), "Key": key})  # fmt: skip
                if action in ("MOVE", "DELETE"):
                    client.delete_object(Bucket=str(self.bucket), Key=key)
            except Exception as exc:  # noqa: BLE001 - botocore raises ClientError and connection errors alike
                raise self.fail(exc, f"{action.lower()} of s3://{self.bucket}/{key}") from None


class S3ListOperator(_S3Operator, task_type=List):
    """`io.kestra.plugin.aws.s3.List`: output `objects`."""

    def run(self, context: Any) -> dict[str, Any]:
        return {"objects": self.listing(self.client())}


class S3DeleteOperator(_S3Operator, task_type=Delete):
    """`io.kestra.plugin.aws.s3.Delete`: outputs `deleteMarker`, `versionId`."""

    def run(self, context: Any) -> dict[str, Any]:
        try:
            answer = self.client().delete_object(Bucket=str(self.bucket), Key=str(self.key))
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError and connection errors alike
            raise self.fail(exc, f"delete of s3://{self.bucket}/{self.key}") from None
        return {"deleteMarker": bool(answer.get("DeleteMarker", False)), "versionId": answer.get("VersionId")}


class S3CopyOperator(_S3Operator, task_type=Copy):
    """`io.kestra.plugin.aws.s3.Copy`: outputs `bucket`, `key`, `eTag`, `versionId`."""

    def run(self, context: Any) -> dict[str, Any]:
        source, target = dict(self.from_), dict(self.to)
        if not source.get("bucket") or not source.get("key"):
            raise TaskFailure("`from` needs `bucket` and `key`")
        copy_source = {"Bucket": str(source["bucket"]), "Key": str(source["key"])}
        if source.get("versionId"):
            copy_source["VersionId"] = str(source["versionId"])
        bucket, key = str(target.get("bucket") or source["bucket"]), str(target.get("key") or source["key"])
        client = self.client()
        try:
            answer = client.copy_object(Bucket=bucket, Key=key, CopySource=copy_source)
            if self.delete is True or str(self.delete).lower() == "true":
                client.delete_object(Bucket=copy_source["Bucket"], Key=copy_source["Key"])
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError and connection errors alike
            raise self.fail(exc, f"copy of s3://{copy_source['Bucket']}/{copy_source['Key']}") from None
        return {
            "bucket": bucket,
            "key": key,
            "eTag": answer.get("CopyObjectResult", {}).get("ETag"),
            "versionId": answer.get("VersionId"),
        }


class S3CreateBucketOperator(_S3Operator, task_type=CreateBucket):
    """`io.kestra.plugin.aws.s3.CreateBucket`: outputs `bucket`, `region`."""

    def run(self, context: Any) -> dict[str, Any]:
        hook = self.hook()
        try:
            if not hook.check_for_bucket(str(self.bucket)):
                hook.create_bucket(bucket_name=str(self.bucket), region_name=str(self.region) if self.region else None)
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError and connection errors alike
            raise self.fail(exc, f"creation of bucket `{self.bucket}`") from None
        return {"bucket": str(self.bucket), "region": hook.conn_region_name}
