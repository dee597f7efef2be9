"""Kestra's Redis tasks: string Set/Get/Delete/Increment/Ttl, list ListPush/ListPop, pubsub Publish (spec §6)."""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from yaml2dag.tasktypes.base import DurationText, Flag, KestraModel, TaskBase, Text, choice, is_expression

_REDIS = "yaml2dag.operators.redis"
_LEGACY = "io.kestra.plugin.redis"
URL_SCHEMES = ("redis://", "rediss://", "unix://")


def _url(value: str) -> str:
    if not is_expression(value) and not value.startswith(URL_SCHEMES):
        raise ValueError("must be a Redis URL such as redis://:password@host:6379/0 (or rediss://, unix://)")
    return value


def _source(value: Any) -> Any:
    """`from`: a list of values, or a string (an expression or JSON text) rendering to a JSON list."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a list of values, or a string rendering to a JSON list")
    if not is_expression(value):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list):
            raise ValueError(
                "a string `from` must be (or render to) a JSON list; yaml2dag has no Kestra "
                "internal storage, so kestra:// file URIs are not supported"
            )
    return value


def _number_or_expression(value: Any) -> Any:
    if isinstance(value, bool) or not (isinstance(value, int | float) or is_expression(value)):
        raise ValueError("must be a number (or an expression rendering to one)")
    return value


#: A Redis URL, or an expression rendering to one.
RedisUrl = Annotated[str, AfterValidator(_url)]
#: `from` of ListPush / Publish.
Source = Annotated[list[Any] | str, AfterValidator(_source)]
SerdeType = choice("STRING", "JSON")


class _RedisTask(TaskBase):
    """Properties every Redis task has: where the server is."""

    #: `url` is Kestra's; `connId` is a yaml2dag extension naming an Airflow Redis connection.
    url: RedisUrl | None = None
    connId: str | None = None

    @model_validator(mode="after")
    def _one_server(self) -> _RedisTask:
        if (self.url is None) == (self.connId is None):
            raise ValueError("set `url` (e.g. redis://:password@host:6379/0) or `connId` (an Airflow connection)")
        return self

    def connection_arguments(self) -> dict[str, Any]:
        """Operator arguments naming the server."""
        return {"url": self.url, "redis_conn_id": self.connId}


class Expiration(KestraModel):
    """`options` of Increment: a time to live, relative or absolute."""

    expirationDuration: DurationText | None = None
    expirationDate: Text | None = None

    @model_validator(mode="after")
    def _one_expiration(self) -> Expiration:
        if self.expirationDuration is not None and self.expirationDate is not None:
            raise ValueError("use either `expirationDuration` or `expirationDate`, not both")
        return self


class SetOptions(KestraModel):
    """`options` of Set: expiration, NX (`mustNotExist`), XX (`mustExist`) and KEEPTTL."""

    expirationDuration: DurationText | None = None
    expirationDate: Text | None = None
    mustNotExist: Flag = False
    mustExist: Flag = False
    keepTtl: Flag = False

    @model_validator(mode="after")
    def _compatible(self) -> SetOptions:
        if self.keepTtl is True and (self.expirationDuration is not None or self.expirationDate is not None):
            raise ValueError("`keepTtl` cannot be combined with `expirationDuration` or `expirationDate`")
        if self.expirationDuration is not None and self.expirationDate is not None:
            raise ValueError("use either `expirationDuration` or `expirationDate`, not both")
        if self.mustNotExist is True and self.mustExist is True:
            raise ValueError("`mustNotExist` and `mustExist` cannot both be true")
        return self


class Set(_RedisTask):
    """SET `key` to `value`; with `get: true` the previous value is output as `oldValue`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Set", f"{_LEGACY}.Set")
    OPERATOR: ClassVar = f"{_REDIS}:RedisSetOperator"
    DYNAMIC: ClassVar = ("url", "key", "value", "serdeType", "get", "options")

    key: Text
    value: Any = Field()
    serdeType: SerdeType = "STRING"  # type: ignore[valid-type]
    get: Flag = False
    options: SetOptions | None = None

    @model_validator(mode="after")
    def _has_value(self) -> Set:
        if self.value is None:
            raise ValueError("`value` must not be null")
        return self

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        options = self.options.model_dump(exclude_none=True) if self.options else None
        return {
            **self.connection_arguments(),
            "key": self.key,
            "value": self.value,
            "serde_type": self.serdeType,
            "get": self.get,
            "options": options,
        }


class Get(_RedisTask):
    """GET `key`: outputs `data` (absent when the key is missing) and `key`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Get", f"{_LEGACY}.Get")
    OPERATOR: ClassVar = f"{_REDIS}:RedisGetOperator"
    DYNAMIC: ClassVar = ("url", "key", "serdeType", "failedOnMissing")

    key: Text
    serdeType: SerdeType = "STRING"  # type: ignore[valid-type]
    failedOnMissing: Flag = False

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {
            **self.connection_arguments(),
            "key": self.key,
            "serde_type": self.serdeType,
            "failed_on_missing": self.failedOnMissing,
        }


class Delete(_RedisTask):
    """DEL `keys`: output `count`, the number of keys removed."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Delete", f"{_LEGACY}.Delete")
    OPERATOR: ClassVar = f"{_REDIS}:RedisDeleteOperator"
    DYNAMIC: ClassVar = ("url", "keys", "failedOnMissing")

    keys: list[Text] = Field(min_length=1)
    failedOnMissing: Flag = False

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {**self.connection_arguments(), "keys": list(self.keys), "failed_on_missing": self.failedOnMissing}


class Increment(_RedisTask):
    """INCR / INCRBY / INCRBYFLOAT `key` by `amount`: outputs the new `value` and `key`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Increment",)
    OPERATOR: ClassVar = f"{_REDIS}:RedisIncrementOperator"
    DYNAMIC: ClassVar = ("url", "key", "amount", "options")

    key: Text
    amount: Annotated[int | float | str, AfterValidator(_number_or_expression)] | None = None
    options: Expiration | None = None

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        options = self.options.model_dump(exclude_none=True) if self.options else None
        return {**self.connection_arguments(), "key": self.key, "amount": self.amount, "options": options}


class Ttl(_RedisTask):
    """TTL `key`: outputs `ttl` in seconds (-1: no expiry, -2: no such key) and `key`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Ttl",)
    OPERATOR: ClassVar = f"{_REDIS}:RedisTtlOperator"
    DYNAMIC: ClassVar = ("url", "key")

    key: Text

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {**self.connection_arguments(), "key": self.key}


class ListPush(_RedisTask):
    """LPUSH each value of `from` onto the list `key`, `batchSize` values per command: output `count`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.list.ListPush", f"{_LEGACY}.ListPush")
    OPERATOR: ClassVar = f"{_REDIS}:RedisListPushOperator"
    DYNAMIC: ClassVar = ("url", "key", "from", "serdeType")

    key: Text
    from_: Source = Field(alias="from")
    serdeType: SerdeType = "STRING"  # type: ignore[valid-type]
    batchSize: int = Field(default=500, ge=1)

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {
            **self.connection_arguments(),
            "key": self.key,
            "source": self.from_,
            "serde_type": self.serdeType,
            "batch_size": self.batchSize,
        }


class ListPop(_RedisTask):
    """LPOP `count` items at a time from `key` until it is empty or `maxRecords`/`maxDuration` is reached.

    Outputs `count` and `items` (the popped values, in pop order). Kestra writes them to an
    internal-storage file (output `uri`); yaml2dag has no such storage, so later tasks read
    `outputs.<id>.items` instead.
    """

    TYPES: ClassVar = ("io.kestra.plugin.redis.list.ListPop", f"{_LEGACY}.ListPop")
    OPERATOR: ClassVar = f"{_REDIS}:RedisListPopOperator"
    DYNAMIC: ClassVar = ("url", "key", "serdeType", "maxDuration")

    key: Text
    serdeType: SerdeType = "STRING"  # type: ignore[valid-type]
    count: int = Field(default=100, ge=1)
    maxRecords: int | None = Field(default=None, ge=1)
    maxDuration: DurationText | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ListPop:
        if self.maxRecords is None and self.maxDuration is None:
            raise ValueError("maxDuration or maxRecords must be set to avoid an infinite loop")
        return self

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {
            **self.connection_arguments(),
            "key": self.key,
            "serde_type": self.serdeType,
            "count": self.count,
            "max_records": self.maxRecords,
            "max_duration": self.maxDuration,
        }


class Publish(_RedisTask):
    """PUBLISH each value of `from` on `channel`: output `count`, the number of messages sent."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.pubsub.Publish", f"{_LEGACY}.Publish")
    OPERATOR: ClassVar = f"{_REDIS}:RedisPublishOperator"
    DYNAMIC: ClassVar = ("url", "channel", "from", "serdeType")

    channel: Text
    from_: Source = Field(alias="from")
    serdeType: SerdeType = "STRING"  # type: ignore[valid-type]

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {
            **self.connection_arguments(),
            "channel": self.channel,
            "source": self.from_,
            "serde_type": self.serdeType,
        }


TASK_TYPES: tuple[type[TaskBase], ...] = (Set, Get, Delete, Increment, Ttl, ListPush, ListPop, Publish)
