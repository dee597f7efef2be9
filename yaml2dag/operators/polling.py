"""Kestra's polling triggers at run time: an Airflow event trigger, run by the triggerer for an asset watcher.

`yaml2dag.polling` plans each HTTP or S3 polling trigger as an asset with an `AssetWatcher` whose
trigger is a `KestraPollingTrigger`. The triggerer runs it for as long as the DAG is active: every
`interval` it polls — as Kestra does, by running the task the trigger is made of (an `http.Request`,
an S3 listing and downloads), with the same operator a flow task uses — and when the trigger fires
it yields an event whose payload holds the trigger's outputs. Airflow records an asset event with
that payload, which starts a run of the flow's DAG; the run reads the outputs as `trigger.*`.

A poll that fails (server unreachable, bad credentials, an expression that does not render) is
logged in the triggerer's log and the trigger polls again after `interval` (Kestra's default,
`failOnTriggerError: false`). The HTTP client and boto3 are imported on the first poll only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from yaml2dag.polling import POLLING_TRIGGER_CLASS

#: Property names whose values are secrets: masked in every log before the first poll.
_SECRET_NAMES = frozenset({"secretKeyId", "sessionToken", "password", "token", "basicAuthPassword"})


class KestraPollingTrigger(BaseEventTrigger):
    """Polls what a Kestra HTTP or S3 trigger watches; yields an event carrying its outputs when it fires.

    :param kind: `http` or `s3`.
    :param namespace: The flow's namespace.
    :param flow_id: The flow's id.
    :param trigger_id: The trigger's id in the flow.
    :param trigger_type: The Kestra trigger type (for logs).
    :param task_type: The Kestra task run on each poll.
    :param operator: That task's operator, as `module:Class`.
    :param arguments: The operator's keyword arguments (the trigger's shared properties, not rendered).
    :param interval: Seconds between two polls.
    :param settings: The trigger's own properties (`responseCondition`; `on` for S3).
    :param stop_marker: With `stopAfter`: the storage file whose presence stops polling.
    """

    def __init__(
        self,
        *,
        kind: str,
        namespace: str,
        flow_id: str,
        trigger_id: str,
        trigger_type: str,
        task_type: str,
        operator: str,
        arguments: dict[str, Any],
        interval: float,
        settings: dict[str, str],
        stop_marker: str | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.namespace = namespace
        self.flow_id = flow_id
        # Not `trigger_id`: the triggerer sets that attribute to the trigger's database id.
        self.kestra_trigger_id = trigger_id
        self.trigger_type = trigger_type
        self.task_type = task_type
        self.operator = operator
        self.arguments = arguments
        self.interval = interval
        self.settings = settings
        self.stop_marker = stop_marker
        #: S3: the version (ETag) of each object already seen, for `on` CREATE / UPDATE.
        self._seen: dict[str, str] = {}
        self._stop_logged = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and keyword arguments the triggerer rebuilds this trigger from."""
        return (
            POLLING_TRIGGER_CLASS,
            {
                "kind": self.kind,
                "namespace": self.namespace,
                "flow_id": self.flow_id,
                "trigger_id": self.kestra_trigger_id,
                "trigger_type": self.trigger_type,
                "task_type": self.task_type,
                "operator": self.operator,
                "arguments": self.arguments,
                "interval": self.interval,
                "settings": self.settings,
                "stop_marker": self.stop_marker,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll every `interval` seconds, forever; yield an event each time the trigger fires."""
        while True:
            if self.stop_marker is not None and await asyncio.to_thread(self.stopped):
                await asyncio.sleep(self.interval)
                continue
            try:
                variables = await asyncio.to_thread(self.poll)
            except Exception as exc:  # noqa: BLE001 - a failed poll is logged; the next one may succeed
                self.log.warning(
                    "Trigger %s.%s.%s: poll failed (%s: %s); next poll in %ss",
                    self.namespace,
                    self.flow_id,
                    self.kestra_trigger_id,
                    type(exc).__name__,
                    _redacted(str(exc)),
                    self.interval,
                )
            else:
                if variables is not None:
                    self.log.info("Trigger %s.%s.%s fires", self.namespace, self.flow_id, self.kestra_trigger_id)
                    payload = {"triggerId": self.kestra_trigger_id, "type": self.trigger_type}
                    yield TriggerEvent({**payload, "variables": _redacted(variables)})
            await asyncio.sleep(self.interval)

    def stopped(self) -> bool:
        """Whether a run this trigger started ended in a `stopAfter` state (its stop marker exists)."""
        from yaml2dag import storage

        try:
            found = storage.exists(str(self.stop_marker))
        except Exception as exc:  # noqa: BLE001 - an unreadable storage must not stop the trigger for good
            self.log.warning("Trigger %s: cannot read its stop marker (%s); polling", self.kestra_trigger_id, exc)
            return False
        if found and not self._stop_logged:
            self.log.info(
                "Trigger %s.%s.%s is stopped (stopAfter); delete %s to start it again",
                self.namespace,
                self.flow_id,
                self.kestra_trigger_id,
                self.stop_marker,
            )
        self._stop_logged = found
        return found

    def poll(self) -> dict[str, Any] | None:
        """One poll: the trigger's outputs when it fires, else None."""
        if self.kind == "http":
            return self.poll_http()
        if self.kind == "s3":
            return self.poll_s3()
        raise ValueError(f"unknown polling trigger kind `{self.kind}`")

    # --- building the task a poll runs ----------------------------------------------------------

    def variables(self) -> dict[str, Any]:
        """What the trigger's expressions see: the flow (Kestra renders trigger properties with it)."""
        from yaml2dag.operators.context import environment_variables

        return {"flow": {"id": self.flow_id, "namespace": self.namespace}, "envs": environment_variables()}

    def build_task(self, arguments: Mapping[str, Any]) -> Any:
        """The operator of the trigger's task, with its properties rendered against `variables()`."""
        from airflow.sdk.log import mask_secret

        from yaml2dag.expressions import render_value
        from yaml2dag.operators.context import FlowInfo

        _mask_secrets(arguments, mask_secret)
        module, name = self.operator.split(":")
        operator_class = getattr(importlib.import_module(module), name)
        flow = FlowInfo(id=self.flow_id, namespace=self.namespace, task_ids=frozenset())
        task = operator_class(task_id=self.kestra_trigger_id, flow=flow, kestra_type=self.task_type, **arguments)
        variables = self.variables()
        for field_name in task.template_fields:
            value = getattr(task, field_name)
            if value is not None:
                setattr(task, field_name, render_value(value, variables))
        _mask_secrets({name: getattr(task, name, None) for name in _SECRET_NAMES}, mask_secret)
        return task

    # --- io.kestra.plugin.core.http.Trigger ----------------------------------------------------

    def poll_http(self) -> dict[str, Any] | None:
        """Send the request (a response >= 400 does not fail it) and test `responseCondition`.

        Fires with the Request's outputs `uri`, `code`, `headers`, `body` when the condition renders
        true (Kestra's truthiness: anything but `false`, `0`, `-0` and blank).
        """
        from yaml2dag.expressions import is_truthy_text, render

        arguments = dict(self.arguments)
        # As Kestra does: the condition, not the response code, decides whether the flow starts.
        arguments["options"] = {**dict(arguments.get("options") or {}), "allowFailed": True}
        outputs = self.build_task(arguments).run({})
        response = {"statusCode": outputs["code"], "body": outputs.get("body"), "headers": outputs["headers"]}
        condition = render(self.settings["responseCondition"], {**self.variables(), "response": response})
        if not is_truthy_text(condition):
            self.log.info(
                "responseCondition rendered `%s` (code %s): the flow does not start", condition, outputs["code"]
            )
            return None
        return {name: value for name, value in outputs.items() if value is not None}

    # --- io.kestra.plugin.aws.s3.Trigger -------------------------------------------------------

    def poll_s3(self) -> dict[str, Any] | None:
        """List the objects; download those that are new or changed (`on`), then MOVE / DELETE / NONE them.

        Fires with `objects`: each listed object's `key`, `size`, `eTag`, `lastModified`,
        `storageClass`, `uri` (its copy in the internal storage, kestra://) and `changeType`
        (CREATE or UPDATE).
        """
        task = self.build_task(self.arguments)
        task.checked_action()
        client = task.client()
        fired = []
        for item in task.listing(client):
            if item["key"].endswith("/"):
                continue
            change = self._change(
                f"s3://{task.bucket}/{item['key']}", str(item.get("eTag") or item.get("lastModified"))
            )
            if change is not None:
                fired.append({**item, "changeType": change})
        if not fired:
            return None
        storage_context = self.storage_context()
        for item in fired:
            item["uri"] = task.download(storage_context, client, str(task.bucket), item["key"])["uri"]
        task.apply_action(client, [item["key"] for item in fired])
        return {"objects": fired}

    def _change(self, uri: str, version: str) -> str | None:
        """CREATE (never seen), UPDATE (another version) or None, filtered by `on`; remembers `version`."""
        previous = self._seen.get(uri)
        self._seen[uri] = version
        on = self.settings.get("on", "CREATE_OR_UPDATE")
        if previous is None:
            return "CREATE" if on in ("CREATE", "CREATE_OR_UPDATE") else None
        if previous != version:
            return "UPDATE" if on in ("UPDATE", "CREATE_OR_UPDATE") else None
        return None

    def storage_context(self) -> dict[str, Any]:
        """Where a poll's downloads go: `kestra:///<ns>/<flow>/executions/<poll id>/tasks/<trigger id>/…`.

        The run does not exist yet when the trigger downloads, so each firing poll gets its own id.
        """
        poll_id = f"trigger_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
        return {
            "flow": {"id": self.flow_id, "namespace": self.namespace},
            "execution": {"id": poll_id},
            "task": {"id": self.kestra_trigger_id},
            "taskrun": {"id": self.kestra_trigger_id},
        }


def _mask_secrets(values: Mapping[str, Any], mask: Any) -> None:
    """Mask the literal values of secret properties (and of `options.auth`) in every log."""
    for name, value in values.items():
        if name in _SECRET_NAMES and isinstance(value, str) and value and "{{" not in value:
            mask(value)
        elif name in ("options", "auth") and isinstance(value, Mapping):
            _mask_secrets(value, mask)


def _redacted(value: Any) -> Any:
    from airflow.sdk.log import redact

    return redact(value)
