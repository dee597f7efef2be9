"""Kestra's KV store on Airflow Variables: one Variable per key, visible and editable in the UI.

A key `my_key` of the namespace `company.team` is the Airflow Variable
`kestra.kv/company.team/my_key` whose value is JSON::

    {"type": "STRING", "value": "hello", "expirationDate": "2026-12-03T10:00:00+00:00",
     "updateDate": "2026-12-02T10:00:00+00:00"}

(`expirationDate` null when the key never expires). An operator may edit the value in the
Airflow UI; a Variable under the prefix whose value is not such a document reads as a STRING.
Reads go through `Variable.get` (so a secrets backend can serve them too); listing
(`GetKeys`) uses `Variable.keys(prefix)`, which sees the metadata database only.

As in Kestra, the `kv()` function and `kv.Get` without an explicit namespace look in the flow's
namespace, then in each parent namespace (`company.team` → `company`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from yaml2dag.errors import TaskFailure

PREFIX = "kestra.kv/"
TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")
_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
_DURATION = re.compile(r"^-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$", re.IGNORECASE)
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]*$", re.IGNORECASE)


class KVError(TaskFailure):
    """A KV store operation that cannot be done (bad key, expired or missing value, bad type)."""


@dataclass(frozen=True)
class KVEntry:
    """One stored key: its value, Kestra type and expiry."""

    key: str
    namespace: str
    type: str
    value: Any
    expiration: datetime | None = None
    updated: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        """True when the key's TTL has passed."""
        return self.expiration is not None and self.expiration <= (now or datetime.now(UTC))


def check_key(key: object) -> str:
    """A valid Kestra KV key (letters, digits, `.`, `_`, `-`; not starting with a symbol)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise KVError(f"Key `{key}` is invalid: it must match {_KEY.pattern}")
    return key


def check_namespace(namespace: object) -> str:
    """A valid namespace."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise KVError(f"Namespace `{namespace}` is invalid")
    return namespace


def variable_key(namespace: str, key: str) -> str:
    """The Airflow Variable holding `key` of `namespace`."""
    return f"{PREFIX}{check_namespace(namespace)}/{check_key(key)}"


def namespace_chain(namespace: str) -> list[str]:
    """The namespace then its parents: `a.b.c` → `a.b.c`, `a.b`, `a`."""
    parts = namespace.split(".")
    return [".".join(parts[:size]) for size in range(len(parts), 0, -1)]


def _variable_get(name: str) -> str | None:
    from airflow.sdk import Variable

    try:
        value = Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - Airflow raises several types for a missing variable
        return None
    return None if value is None else str(value)


def _parse_time(text: object) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decode(namespace: str, key: str, raw: str) -> KVEntry:
    """The entry a Variable's text holds (a plain text edited by hand is a STRING)."""
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        document = None
    if not (isinstance(document, dict) and "value" in document and "type" in document):
        return KVEntry(key, namespace, "STRING", raw)
    try:
        expiration = _parse_time(document.get("expirationDate"))
        updated = _parse_time(document.get("updateDate"))
    except ValueError:
        expiration = updated = None
    return KVEntry(key, namespace, str(document["type"]), document["value"], expiration, updated)


def get(namespace: str, key: str) -> KVEntry | None:
    """The entry of `key` in exactly `namespace` (None when absent); an expired key is an error."""
    raw = _variable_get(variable_key(namespace, key))
    if raw is None:
        return None
    entry = decode(namespace, key, raw)
    if entry.expired():
        raise KVError(f"The requested value for key '{key}' in namespace '{namespace}' has expired")
    return entry


def get_inherited(namespace: str, key: str) -> KVEntry | None:
    """The entry of `key` in `namespace` or its nearest parent namespace holding it."""
    for candidate in namespace_chain(check_namespace(namespace)):
        entry = get(candidate, key)
        if entry is not None:
            return entry
    return None


def set_value(
    namespace: str,
    key: str,
    value: Any,
    kv_type: str | None = None,
    ttl: timedelta | None = None,
    overwrite: bool = True,
) -> KVEntry:
    """Store `value` under `key` (typed as `kv_type`, or guessed); refuse to replace when not `overwrite`."""
    from airflow.sdk import Variable

    name = variable_key(namespace, key)
    if not overwrite and _variable_get(name) is not None:
        raise KVError(f"Cannot set value for key '{key}'. Key already exists and `overwrite` is set to `false`.")
    kind = (kv_type or guess_type(value)).upper()
    stored = coerce(value, kind, key)
    now = datetime.now(UTC)
    expiration = now + ttl if ttl is not None else None
    document = {
        "type": kind,
        "value": stored,
        "expirationDate": expiration.isoformat() if expiration else None,
        "updateDate": now.isoformat(),
    }
    Variable.set(name, json.dumps(document, default=str), description=f"Kestra KV {namespace}:{key} (yaml2dag)")
    return KVEntry(key, namespace, kind, stored, expiration, now)


def delete(namespace: str, key: str) -> bool:
    """Delete `key` of `namespace`; True when it existed."""
    from airflow.sdk import Variable

    name = variable_key(namespace, key)
    if _variable_get(name) is None:
        return False
    Variable.delete(name)
    return True


def keys(namespace: str, prefix: str | None = None) -> list[str]:
    """The (not expired) keys of exactly `namespace`, optionally only those starting with `prefix`."""
    from airflow.sdk import Variable

    start = f"{PREFIX}{check_namespace(namespace)}/"
    found = []
    for name in sorted(Variable.keys(prefix=start + (prefix or ""))):
        key = name[len(start) :]
        if "/" in key:
            continue
        raw = _variable_get(name)
        if raw is not None and not decode(namespace, key, raw).expired():
            found.append(key)
    return found


def guess_type(value: Any) -> str:
    """Kestra's type of a value set without `kvType`."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float | Decimal):
        return "NUMBER"
    if isinstance(value, dict | list):
        return "JSON"
    if isinstance(value, datetime):
        return "DATETIME"
    if isinstance(value, date):
        return "DATE"
    return "STRING"


def coerce(value: Any, kind: str, key: str) -> Any:
    """The JSON-storable value of `value` read as Kestra type `kind` (a bad value is an error)."""
    if kind not in TYPES:
        raise KVError(f"kvType `{kind}` is not one of {', '.join(TYPES)}")
    try:
        return _coerce(value, kind)
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise KVError(f"Value of key '{key}' is not a valid {kind}: {value!r} ({exc})") from None


def _coerce(value: Any, kind: str) -> Any:
    if kind == "STRING":
        return value if isinstance(value, str) else json.dumps(value, default=str)
    if kind == "NUMBER":
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        number = Decimal(str(value).strip())
        return int(number) if number == number.to_integral_value() and "." not in str(value) else float(number)
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise ValueError("expected true or false")
        return text == "true"
    if kind == "DATETIME":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return moment.isoformat()
    if kind == "DATE":
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return day.isoformat()
    if kind == "DURATION":
        text = str(value).strip()
        if not _DURATION.match(text) or text in ("P", "PT") or text.endswith("T"):
            raise ValueError("expected an ISO-8601 duration such as PT5M")
        return text
    # JSON
    return json.loads(value) if isinstance(value, str) else value
