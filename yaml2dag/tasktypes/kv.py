"""Kestra's KV store tasks (`io.kestra.plugin.core.kv.*`): Set, Get, GetKeys, Delete on `yaml2dag.kvstore`."""

from __future__ import annotations

from typing import Any, ClassVar

from yaml2dag.tasktypes.base import DurationText, Flag, TaskBase, Text, choice, rendered

_KV = "yaml2dag.operators.kv"
_PREFIX = "io.kestra.plugin.core.kv."
_NAMESPACE_DESCRIPTION = "Namespace of the key (default: the flow's namespace; no parent namespaces)."


class Set(TaskBase):
    """Store `value` under `key` in a namespace's KV store."""

    TYPES: ClassVar = (_PREFIX + "Set",)
    OPERATOR: ClassVar = f"{_KV}:SetOperator"

    key: Text = rendered(description="The key (letters, digits, `.`, `_`, `-`).")
    value: Any = rendered(description="The value: text, or any YAML value (typed by `kvType` or guessed).")
    namespace: Text = rendered("{{ flow.namespace }}", description=_NAMESPACE_DESCRIPTION)
    overwrite: Flag = rendered(True, description="Replace an existing value (false: fail when the key exists).")
    ttl: DurationText | None = rendered(None, description="Time to live (ISO-8601, e.g. P30D): the key then expires.")
    kvType: choice("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON") | None = rendered(  # type: ignore[valid-type]
        None, description="Type of the value; guessed from the value when absent."
    )


class Get(TaskBase):
    """Read a key of a namespace's KV store; output `value`."""

    TYPES: ClassVar = (_PREFIX + "Get",)
    OPERATOR: ClassVar = f"{_KV}:GetOperator"

    key: Text = rendered(description="The key to read.")
    namespace: Text = rendered("{{ flow.namespace }}", description=_NAMESPACE_DESCRIPTION)
    errorOnMissing: Flag = rendered(False, description="Fail when the key does not exist.")


class GetKeys(TaskBase):
    """List the keys of a namespace's KV store; output `keys`."""

    TYPES: ClassVar = (_PREFIX + "GetKeys",)
    OPERATOR: ClassVar = f"{_KV}:GetKeysOperator"

    prefix: Text | None = rendered(None, description="Only the keys starting with this text.")
    namespace: Text = rendered("{{ flow.namespace }}", description=_NAMESPACE_DESCRIPTION)


class Delete(TaskBase):
    """Delete a key of a namespace's KV store; output `deleted`."""

    TYPES: ClassVar = (_PREFIX + "Delete",)
    OPERATOR: ClassVar = f"{_KV}:DeleteOperator"

    key: Text = rendered(description="The key to delete.")
    namespace: Text = rendered("{{ flow.namespace }}", description=_NAMESPACE_DESCRIPTION)
    errorOnMissing: Flag = rendered(False, description="Fail when the key does not exist.")


TASK_TYPES: tuple[type[TaskBase], ...] = (Set, Get, GetKeys, Delete)
