"""Operators of Kestra's KV store tasks, on Airflow Variables (`yaml2dag.kvstore`)."""

from __future__ import annotations

from typing import Any

from yaml2dag import kvstore
from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.base import as_flag, parse_duration
from yaml2dag.tasktypes.kv import Delete, Get, GetKeys, Set


class SetOperator(KestraOperator, task_type=Set):
    """`io.kestra.plugin.core.kv.Set`: store `value` under `key` (Airflow Variable `kestra.kv/<ns>/<key>`)."""

    ui_color = "#fff8e1"

    def run(self, context: Any) -> None:  # noqa: D102
        try:
            ttl = parse_duration(str(self.ttl)) if self.ttl is not None else None
        except ValueError as exc:
            raise TaskFailure(f"`ttl`: {exc}") from None
        entry = kvstore.set_value(
            str(self.namespace),
            str(self.key),
            self.value,
            kv_type=str(self.kvType) if self.kvType else None,
            ttl=ttl,
            overwrite=as_flag(self.overwrite, "overwrite"),
        )
        self.log.info("Set %s key `%s` in namespace %s", entry.type, entry.key, entry.namespace)


class GetOperator(KestraOperator, task_type=Get):
    """`io.kestra.plugin.core.kv.Get`: output `value` of `key` (absent when there is none)."""

    ui_color = "#fff8e1"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        namespace, key = str(self.namespace), str(self.key)
        entry = kvstore.get(namespace, key)
        if entry is None and as_flag(self.errorOnMissing, "errorOnMissing"):
            raise TaskFailure(
                f"No value found for key '{key}' in namespace '{namespace}' and `errorOnMissing` is set to true"
            )
        return {"value": None if entry is None else entry.value}


class GetKeysOperator(KestraOperator, task_type=GetKeys):
    """`io.kestra.plugin.core.kv.GetKeys`: output `keys` of the namespace (optionally by `prefix`)."""

    ui_color = "#fff8e1"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        return {"keys": kvstore.keys(str(self.namespace), None if self.prefix is None else str(self.prefix))}


class DeleteOperator(KestraOperator, task_type=Delete):
    """`io.kestra.plugin.core.kv.Delete`: delete `key`; output `deleted`."""

    ui_color = "#fff8e1"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        namespace, key = str(self.namespace), str(self.key)
        deleted = kvstore.delete(namespace, key)
        if not deleted and as_flag(self.errorOnMissing, "errorOnMissing"):
            raise TaskFailure(
                f"No value found for key '{key}' in namespace '{namespace}' and `errorOnMissing` is set to true"
            )
        return {"deleted": deleted}
