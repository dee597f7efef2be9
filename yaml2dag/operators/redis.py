"""Operators for Kestra's Redis tasks, on redis-py (through the Airflow redis provider for connections).

The server is the task's `url` (`redis://[user:password@]host:port/db`, `rediss://` for TLS,
`unix://`) or the Airflow Redis connection named by `connId`. A password in `url` is registered
with Airflow's secrets masker as soon as the url is rendered, so task logs and the rendered
fields show `***`. Values are stored as text: `serdeType: STRING` stores strings as they are,
`JSON` stores JSON (a string value must already be valid JSON) and parses it back on reads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.base import as_flag, parse_duration
from yaml2dag.tasktypes.redis import Delete, Get, Increment, ListPop, ListPush, Publish, Set, Ttl

#: How Redis (RESP2 `NOAUTH`, RESP3 `HELLO`) says that no password was sent.
_NO_PASSWORD_GIVEN = re.compile(
    r"Authentication required|NOAUTH|HELLO must be called with the client already authenticated"
)


class _RedisOperator(KestraOperator):
    """Shared by the Redis operators: the server, the client, and secret masking.

    :param url: Redis URL, e.g. `redis://:password@host:6379/0`.
    :param connId: Airflow Redis connection to use instead of `url`.
    """

    ui_color = "#fdecea"

    _where = "Redis"

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Mask the url's password in logs and rendered fields, before rendering and after.

        A literal password is masked first because a render error quotes the template.
        """
        _mask_url_password(self.url)
        super().render_template_fields(context, jinja_env)
        _mask_url_password(self.url)

    @contextmanager
    def redis_client(self) -> Iterator[Any]:
        """A connected redis-py client; Redis errors become task failures naming the server, never the password."""
        import redis

        client = self._connect()
        try:
            yield client
        except redis.exceptions.AuthenticationError as exc:
            if _NO_PASSWORD_GIVEN.search(str(exc)):
                raise TaskFailure(
                    f"{self._where} requires a password and none was given (redis://:password@host:port/db)"
                ) from None
            raise TaskFailure(f"{self._where} refused the credentials: {exc}") from None
        except redis.exceptions.ConnectionError as exc:
            raise TaskFailure(f"cannot connect to {self._where}: {exc}") from None
        except redis.exceptions.RedisError as exc:
            raise TaskFailure(f"{self._where} replied with an error: {exc}") from None
        finally:
            client.close()

    def _connect(self) -> Any:
        if self.connId:
            from airflow.providers.redis.hooks.redis import RedisHook
            from airflow.sdk.exceptions import AirflowException

            try:
                client = RedisHook(redis_conn_id=self.connId).get_conn()
            except (AirflowException, ValueError) as exc:
                raise TaskFailure(f"cannot use Airflow connection `{self.connId}`: {exc}") from None
        else:
            import redis

            try:
                client = redis.Redis.from_url(str(self.url), socket_connect_timeout=10)
            except ValueError as exc:
                raise TaskFailure(f"invalid Redis url: {exc}") from None
        settings = client.connection_pool.connection_kwargs
        where = settings.get("path") or f"{settings.get('host')}:{settings.get('port')}"
        self._where = f"Redis at {where}/{settings.get('db') or 0}"
        return client

    def serde(self, serde_type: str) -> str:
        """The rendered `serdeType`, checked."""
        serde = str(serde_type).strip().upper()
        if serde not in ("STRING", "JSON"):
            raise TaskFailure(f"invalid serdeType `{serde_type}`: use STRING or JSON")
        return serde

    def flag(self, value: Any, name: str) -> bool:
        """A rendered boolean property, checked."""
        try:
            return as_flag(value, name)
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None


class RedisSetOperator(_RedisOperator, task_type=Set):
    """`io.kestra.plugin.redis.string.Set` (alias `io.kestra.plugin.redis.Set`): SET a key.

    Output `oldValue` (the previous value, as stored) only with `get: true` and when there was one.
    A SET skipped by `mustNotExist`/`mustExist` is not an error, as in Kestra.

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param key: the key.
    :param value: the value; a map or list is stored as JSON.
    :param serdeType: STRING (default) or JSON.
    :param get: return the previous value as `oldValue` (SET ... GET).
    :param options: `expirationDuration` (ISO-8601), `expirationDate` (ISO date-time),
        `mustNotExist` (NX), `mustExist` (XX), `keepTtl` (KEEPTTL).
    """

    def run(self, context: Any) -> dict[str, Any] | None:  # noqa: D102
        payload = serialize(self.value, self.serde(self.serdeType))
        get = self.flag(self.get, "get")
        arguments = self._set_arguments()
        with self.redis_client() as client:
            result = client.set(self.key, payload, get=get, **arguments)
            self.log.info("SET %s on %s", self.key, self._where)
        if result is None and (arguments.get("nx") or arguments.get("xx")) and not get:
            condition = "it already exists (mustNotExist)" if arguments.get("nx") else "it does not exist (mustExist)"
            self.log.info("Key %s was not set: %s", self.key, condition)
        if get and result is not None:
            return {"oldValue": _text(result)}
        return None

    def _set_arguments(self) -> dict[str, Any]:
        options = self.options or {}
        arguments: dict[str, Any] = {
            "nx": self.flag(options.get("mustNotExist", False), "options.mustNotExist"),
            "xx": self.flag(options.get("mustExist", False), "options.mustExist"),
            "keepttl": self.flag(options.get("keepTtl", False), "options.keepTtl"),
        }
        if options.get("expirationDuration"):
            arguments["px"] = _milliseconds(options["expirationDuration"])
        if options.get("expirationDate"):
            arguments["pxat"] = int(_date(options["expirationDate"]).timestamp() * 1000)
        if arguments["keepttl"] and ("px" in arguments or "pxat" in arguments):
            raise TaskFailure("`keepTtl` cannot be combined with `expirationDuration` or `expirationDate`")
        return arguments


class RedisGetOperator(_RedisOperator, task_type=Get):
    """`io.kestra.plugin.redis.string.Get` (alias `io.kestra.plugin.redis.Get`): GET a key.

    Outputs `data` (the value, parsed when `serdeType` is JSON) and `key`. A missing key leaves
    `data` absent (so `outputs.<id> contains 'data'` is false), or fails with `failedOnMissing`.

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param key: the key.
    :param serdeType: STRING (default) or JSON.
    :param failedOnMissing: fail when the key does not exist.
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        serde = self.serde(self.serdeType)
        with self.redis_client() as client:
            raw = client.get(self.key)
        if raw is None:
            if self.flag(self.failedOnMissing, "failedOnMissing"):
                raise TaskFailure(f"Missing keys '{self.key}'")
            self.log.info("GET %s on %s: no such key", self.key, self._where)
            return {"key": self.key}
        self.log.info("GET %s on %s", self.key, self._where)
        return {"data": deserialize(_text(raw), serde), "key": self.key}


class RedisDeleteOperator(_RedisOperator, task_type=Delete):
    """`io.kestra.plugin.redis.string.Delete` (alias `io.kestra.plugin.redis.Delete`): DEL keys.

    Output `count`, the number of keys that existed and were removed.

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param keys: the keys.
    :param failedOnMissing: fail when fewer keys were deleted than listed.
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        keys = [str(key) for key in self.keys]
        with self.redis_client() as client:
            count = int(client.delete(*keys))
        self.log.info("DEL %s on %s: %s deleted", " ".join(keys), self._where, count)
        if count < len(keys) and self.flag(self.failedOnMissing, "failedOnMissing"):
            raise TaskFailure(f"Missing keys, only {count} key deleted")
        return {"count": count}


class RedisIncrementOperator(_RedisOperator, task_type=Increment):
    """`io.kestra.plugin.redis.string.Increment`: INCR, INCRBY (integer amount) or INCRBYFLOAT.

    Outputs `value` (the new value) and `key`.

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param key: the key.
    :param amount: how much to add (default 1); a decimal amount uses INCRBYFLOAT.
    :param options: `expirationDuration` (ISO-8601, whole seconds) or `expirationDate` (ISO date-time).
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        amount = _number(self.amount)
        options = self.options or {}
        with self.redis_client() as client:
            if amount is None:
                value: int | float = client.incr(self.key)
            elif isinstance(amount, int):
                value = client.incrby(self.key, amount)
            else:
                value = float(client.incrbyfloat(self.key, amount))
            if options.get("expirationDuration"):
                seconds = int(parse_duration(str(options["expirationDuration"])).total_seconds())
                if seconds > 0:
                    client.expire(self.key, seconds)
            if options.get("expirationDate"):
                client.expireat(self.key, int(_date(options["expirationDate"]).timestamp()))
        self.log.info("Incremented %s on %s to %s", self.key, self._where, value)
        return {"value": value, "key": self.key}


class RedisTtlOperator(_RedisOperator, task_type=Ttl):
    """`io.kestra.plugin.redis.string.Ttl`: outputs `ttl` (seconds; -1 no expiry, -2 no such key) and `key`.

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param key: the key.
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        with self.redis_client() as client:
            ttl = int(client.ttl(self.key))
        self.log.info("TTL %s on %s: %s", self.key, self._where, ttl)
        return {"ttl": ttl, "key": self.key}


class RedisListPushOperator(_RedisOperator, task_type=ListPush):
    """`io.kestra.plugin.redis.list.ListPush` (alias `io.kestra.plugin.redis.ListPush`): LPUSH values.

    Values go to the head of the list, in order (so the last one ends up first). Output `count`.

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param key: the list's key.
    :param from_: Kestra's `from`: a list of values, or a string rendering to a JSON list.
    :param serdeType: STRING (default) or JSON.
    :param batchSize: values per LPUSH command (default 500).
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        serde = self.serde(self.serdeType)
        values = [serialize(item, serde) for item in _source_list(self.from_)]
        count = 0
        with self.redis_client() as client:
            for start in range(0, len(values), self.batchSize):
                batch = values[start : start + self.batchSize]
                client.lpush(self.key, *batch)
                count += len(batch)
        self.log.info("LPUSH %s values onto %s on %s", count, self.key, self._where)
        return {"count": count}


class RedisListPopOperator(_RedisOperator, task_type=ListPop):
    """`io.kestra.plugin.redis.list.ListPop` (alias `io.kestra.plugin.redis.ListPop`): LPOP values.

    Pops `count` values at a time until the list is empty, `maxRecords` values were popped (checked
    after each batch, so up to `count - 1` more can come) or `maxDuration` has passed. Outputs
    `count` and `items`, the popped values in pop order (Kestra's `uri` file has no equivalent here).

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param key: the list's key.
    :param serdeType: STRING (default) or JSON.
    :param count: values per LPOP (default 100).
    :param maxRecords: stop once this many values were popped.
    :param maxDuration: stop once this ISO-8601 duration has passed.
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        serde = self.serde(self.serdeType)
        deadline = None
        if self.maxDuration:
            deadline = time.monotonic() + _seconds(self.maxDuration)
        items: list[Any] = []
        with self.redis_client() as client:
            while True:
                batch = client.lpop(self.key, self.count) or []
                items.extend(deserialize(_text(raw), serde) for raw in batch)
                if not batch or (self.maxRecords is not None and len(items) >= self.maxRecords):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
        self.log.info("LPOP %s values from %s on %s", len(items), self.key, self._where)
        return {"count": len(items), "items": items}


class RedisPublishOperator(_RedisOperator, task_type=Publish):
    """`io.kestra.plugin.redis.pubsub.Publish` (alias `io.kestra.plugin.redis.Publish`): PUBLISH values.

    Output `count`, the number of messages published (not the number of subscribers reached).

    :param url: Redis URL.
    :param connId: Airflow Redis connection to use instead of `url`.
    :param channel: the channel.
    :param from_: Kestra's `from`: a list of values, or a string rendering to a JSON list.
    :param serdeType: STRING (default) or JSON.
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        serde = self.serde(self.serdeType)
        values = [serialize(item, serde) for item in _source_list(self.from_)]
        receivers = 0
        with self.redis_client() as client:
            for value in values:
                receivers += int(client.publish(self.channel, value))
        self.log.info(
            "Published %s messages on %s on %s (%s deliveries)", len(values), self.channel, self._where, receivers
        )
        return {"count": len(values)}


# --- values --------------------------------------------------------------------------------------


def serialize(value: Any, serde: str) -> str:
    """A value as stored in Redis: JSON text for `JSON` (strings must already be JSON), else text."""
    if serde == "JSON":
        if isinstance(value, str):
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise TaskFailure(f"serdeType JSON: `{_short(value)}` is not valid JSON ({exc})") from None
            return value
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def deserialize(text: str, serde: str) -> Any:
    """A stored value as a task output: parsed JSON for `JSON`, else the text itself."""
    if serde != "JSON":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFailure(f"serdeType JSON: stored value `{_short(text)}` is not valid JSON ({exc})") from None


def _source_list(source: Any) -> list[Any]:
    if isinstance(source, list):
        return source
    try:
        parsed = json.loads(str(source))
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, list):
        raise TaskFailure(
            f"`from` rendered `{_short(str(source))}`: it must be a JSON list (kestra:// files are not supported)"
        )
    return parsed


def _text(raw: Any) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mask_url_password(url: str | None) -> None:
    """Register the password of `url` (unless it is still an expression) with Airflow's secrets masker."""
    password = _url_password(url)
    if password and "{{" not in password and "{%" not in password:
        from airflow.sdk.log import mask_secret

        mask_secret(password)


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(str(url)).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _seconds(duration: Any) -> float:
    try:
        return parse_duration(str(duration)).total_seconds()
    except ValueError as exc:
        raise TaskFailure(str(exc)) from None


def _milliseconds(duration: Any) -> int:
    milliseconds = int(_seconds(duration) * 1000)
    if milliseconds <= 0:
        raise TaskFailure(f"expirationDuration `{duration}` must be positive")
    return milliseconds


def _date(text: Any) -> dt.datetime:
    """An ISO-8601 date-time (`2030-01-01T00:00:00Z`, with offset or `[Zone]`); naive means UTC."""
    value = str(text).strip()
    zone = None
    if value.endswith("]") and "[" in value:
        value, zone = value[:-1].split("[", 1)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise TaskFailure(
            f"expirationDate `{text}` is not an ISO-8601 date-time such as 2030-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(zone) if zone else dt.UTC)
    return moment


def _number(amount: Any) -> int | float | None:
    if amount is None or isinstance(amount, int | float) and not isinstance(amount, bool):
        return amount
    text = str(amount).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise TaskFailure(f"amount rendered `{text}`: it must be a number") from None
