"""Kestra's Redis tasks: string Set/Get/Delete/Increment/Ttl, list ListPush/ListPop, pubsub Publish (spec §6)."""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from yaml2dag.tasktypes.base import DurationText, Flag, KestraModel, TaskBase, Text, choice, is_expression, rendered

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
    url: RedisUrl | None = rendered(None)
    connId: str | None = None

    @model_validator(mode="after")
    def _one_server(self) -> _RedisTask:
        if (self.url is None) == (self.connId is None):
            raise ValueError("set `url` (e.g. redis://:password@host:6379/0) or `connId` (an Airflow connection)")
        return self


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

    key: Text = rendered()
    value: Any = rendered()
    serdeType: SerdeType = rendered("STRING")  # type: ignore[valid-type]
    get: Flag = rendered(False)
    options: SetOptions | None = rendered(None)

    @model_validator(mode="after")
    def _has_value(self) -> Set:
        if self.value is None:
            raise ValueError("`value` must not be null")
        return self


class Get(_RedisTask):
    """GET `key`: outputs `data` (absent when the key is missing) and `key`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Get", f"{_LEGACY}.Get")
    OPERATOR: ClassVar = f"{_REDIS}:RedisGetOperator"

    key: Text = rendered()
    serdeType: SerdeType = rendered("STRING")  # type: ignore[valid-type]
    failedOnMissing: Flag = rendered(False)


class Delete(_RedisTask):
    """DEL `keys`: output `count`, the number of keys removed."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Delete", f"{_LEGACY}.Delete")
    OPERATOR: ClassVar = f"{_REDIS}:RedisDeleteOperator"

    keys: list[Text] = rendered(min_length=1)
    failedOnMissing: Flag = rendered(False)


class Increment(_RedisTask):
    """INCR / INCRBY / INCRBYFLOAT `key` by `amount`: outputs the new `value` and `key`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Increment",)
    OPERATOR: ClassVar = f"{_REDIS}:RedisIncrementOperator"

    key: Text = rendered()
    amount: Annotated[int | float | str, AfterValidator(_number_or_expression)] | None = rendered(None)
    options: Expiration | None = rendered(None)


class Ttl(_RedisTask):
    """TTL `key`: outputs `ttl` in seconds (-1: no expiry, -2: no such key) and `key`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.string.Ttl",)
    OPERATOR: ClassVar = f"{_REDIS}:RedisTtlOperator"

    key: Text = rendered()


class ListPush(_RedisTask):
    """LPUSH each value of `from` onto the list `key`, `batchSize` values per command: output `count`."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.list.ListPush", f"{_LEGACY}.ListPush")
    OPERATOR: ClassVar = f"{_REDIS}:RedisListPushOperator"

    key: Text = rendered()
    from_: Source = rendered(alias="from")
    serdeType: SerdeType = rendered("STRING")  # type: ignore[valid-type]
    batchSize: int = Field(default=500, ge=1)


class ListPop(_RedisTask):
    """LPOP `count` items at a time from `key` until it is empty or `maxRecords`/`maxDuration` is reached.

    Outputs `count` and `items` (the popped values, in pop order). Kestra writes them to an
    internal-storage file (output `uri`); yaml2dag has no such storage, so later tasks read
    `outputs.<id>.items` instead.
    """

    TYPES: ClassVar = ("io.kestra.plugin.redis.list.ListPop", f"{_LEGACY}.ListPop")
    OPERATOR: ClassVar = f"{_REDIS}:RedisListPopOperator"

    key: Text = rendered()
    serdeType: SerdeType = rendered("STRING")  # type: ignore[valid-type]
    count: int = Field(default=100, ge=1)
    maxRecords: int | None = Field(default=None, ge=1)
    maxDuration: DurationText | None = rendered(None)

    @model_validator(mode="after")
    def _bounded(self) -> ListPop:
        if self.maxRecords is None and self.maxDuration is None:
            raise ValueError("maxDuration or maxRecords must be set to avoid an infinite loop")
        return self


class Publish(_RedisTask):
    """PUBLISH each value of `from` on `channel`: output `count`, the number of messages sent."""

    TYPES: ClassVar = ("io.kestra.plugin.redis.pubsub.Publish", f"{_LEGACY}.Publish")
    OPERATOR: ClassVar = f"{_REDIS}:RedisPublishOperator"

    channel: Text = rendered()
    from_: Source = rendered(alias="from")
    serdeType: SerdeType = rendered("STRING")  # type: ignore[valid-type]


TASK_TYPES: tuple[type[TaskBase], ...] = (Set, Get, Delete, Increment, Ttl, ListPush, ListPop, Publish)
