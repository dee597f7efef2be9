"""Kestra's polling triggers (`http.Trigger`, `aws.s3.Trigger`): checked, and planned as Airflow asset watchers.

A polling trigger shares its properties with a Kestra task — Kestra itself builds that task on each
poll: the HTTP trigger runs an `http.Request`, the S3 trigger a listing and a `Download` per object
(the `Downloads` task's properties). So a trigger's properties are validated by that task's
declaration (same names, types, defaults and located errors), plus the trigger's own (`interval`,
`responseCondition`, `on`).

Each enabled polling trigger becomes an Airflow asset `kestra://<namespace>/<flowId>/triggers/<id>`
with an `AssetWatcher`: the triggerer runs `yaml2dag.operators.polling.KestraPollingTrigger`, which
polls every `interval`, and when the trigger fires, emits an asset event whose payload holds the
trigger's outputs; the flow's DAG is scheduled on that asset, so the event starts a run that reads
them as `trigger.*` (docs/triggers.md). This module is pure: it plans, the triggerer runs.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yaml2dag.properties import is_expression, parse_duration

if TYPE_CHECKING:
    import pydantic

    from yaml2dag.diagnostics import Collector
    from yaml2dag.model import Flow, Trigger
    from yaml2dag.tasktypes.base import TaskBase

#: The states a compiled flow can end in (`stopAfter` naming others never stops the trigger).
_END_STATES = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED")

Path = tuple[str | int, ...]

#: The run-time class every polling trigger runs as (in Airflow's triggerer).
POLLING_TRIGGER_CLASS = "yaml2dag.operators.polling.KestraPollingTrigger"
#: Properties of Kestra's `AbstractTrigger` yaml2dag does not implement on a polling trigger.
_TRIGGER_NOT_YET = frozenset({"logLevel", "logToFile", "workerGroup", "failOnTriggerError"})
#: Properties every trigger has (the generic `Trigger` model checks them).
_GENERIC = ("id", "type", "description", "disabled", "conditions", "stopAfter")


@dataclass(frozen=True)
class PollingType:
    """A Kestra polling trigger type: the task it runs on each poll, and its own properties."""

    #: `http` or `s3`: which poll the triggerer runs.
    kind: str
    #: The Kestra task type whose declaration validates the shared properties.
    task_type: str
    #: The trigger's own properties and their defaults.
    own: Mapping[str, str]
    #: Properties Kestra has on this trigger that yaml2dag does not implement yet.
    not_yet: frozenset[str] = frozenset()
    #: Values allowed for an own property (a literal; an expression is refused: fixed when planned).
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_HTTP = PollingType(
    kind="http",
    task_type="io.kestra.plugin.core.http.Request",
    own={"interval": "PT60S", "responseCondition": "{{ response.statusCode < 400 }}"},
    not_yet=frozenset({"encryptBody"}),
)
_S3 = PollingType(
    kind="s3",
    task_type="io.kestra.plugin.aws.s3.Downloads",
    own={"interval": "PT60S", "on": "CREATE_OR_UPDATE"},
    not_yet=frozenset(
        {
            "requestPayer",
            "encodingType",
            "expectedBucketOwner",
            "maxFiles",
            "stateKey",
            "stateTtl",
            "compatibilityMode",
            "forcePathStyle",
            "stsRoleArn",
            "stsRoleExternalId",
            "stsRoleSessionName",
            "stsEndpointOverride",
            "stsRoleSessionDuration",
        }
    ),
    choices={"on": ("CREATE", "UPDATE", "CREATE_OR_UPDATE")},
)
#: The polling trigger types yaml2dag compiles (current and legacy names).
POLLING_TYPES: dict[str, PollingType] = {
    "io.kestra.plugin.core.http.Trigger": _HTTP,
    "io.kestra.plugin.fs.http.Trigger": _HTTP,
    "io.kestra.plugin.aws.s3.Trigger": _S3,
}


@dataclass(frozen=True)
class WatcherSpec:
    """One polling trigger as data: the asset it emits on and the triggerer class's keyword arguments."""

    uri: str
    name: str
    classpath: str
    kwargs: Mapping[str, Any]


def is_polling(trigger: Trigger) -> bool:
    """True for an HTTP or S3 polling trigger."""
    return trigger.type in POLLING_TYPES


def polling_uri(namespace: str, flow_id: str, trigger_id: str) -> str:
    """The asset a polling trigger's events are emitted on."""
    return f"kestra://{namespace}/{flow_id}/triggers/{trigger_id}"


def stop_marker_uri(namespace: str, flow_id: str, trigger_id: str) -> str:
    """The storage file whose presence stops a polling trigger (`stopAfter`); delete it to poll again."""
    from yaml2dag.storage import make_uri, namespace_segments

    return make_uri(*namespace_segments(namespace), flow_id, "triggers", trigger_id, "stopped")


def stop_after(flow: Flow) -> dict[str, list[str]]:
    """Trigger id → its `stopAfter` states, for the enabled polling triggers that have one."""
    return {
        trigger.id: [str(state) for state in trigger.stopAfter]
        for trigger in flow.triggers
        if is_polling(trigger) and not trigger.disabled and trigger.stopAfter
    }


def _raw_properties(trigger: Trigger) -> dict[str, Any]:
    """The trigger's type-specific properties as written (they are extras of the generic `Trigger` model)."""
    return dict(trigger.model_extra or {})


def _task_item(trigger: Trigger, polling: PollingType) -> dict[str, Any]:
    """The task the trigger runs on each poll, as YAML data: the shared properties under the task's type."""
    shared = {
        name: value
        for name, value in _raw_properties(trigger).items()
        if name not in polling.own and name not in polling.not_yet and name not in _TRIGGER_NOT_YET
    }
    return {**shared, "id": trigger.id, "type": polling.task_type}


def polling_task(trigger: Trigger) -> TaskBase:
    """The declaration of the task a valid polling trigger runs (raises pydantic's ValidationError if invalid)."""
    from yaml2dag.tasktypes import TASK_TYPES

    polling = POLLING_TYPES[trigger.type]
    return TASK_TYPES[polling.task_type].model_validate(_task_item(trigger, polling))


def check_polling(
    trigger: Trigger,
    path: Path,
    collector: Collector,
    add_errors: Callable[[pydantic.ValidationError, Path, type[Any], Any, Collector], None],
) -> TaskBase | None:
    """Located errors for a polling trigger's properties; its task declaration when they are valid.

    `add_errors` turns a pydantic error of the task declaration into located errors (validation's).
    """
    import pydantic

    from yaml2dag.tasktypes import TASK_TYPES
    from yaml2dag.tasktypes.base import TaskBase

    polling = POLLING_TYPES[trigger.type]
    task_class = TASK_TYPES[polling.task_type]
    raw = _raw_properties(trigger)
    shared_names = {field.alias or name for name, field in task_class.operator_properties().items()}
    known = sorted(shared_names | set(polling.own) | set(_GENERIC))
    ok = True
    for name in sorted(raw):
        if name in polling.not_yet or name in _TRIGGER_NOT_YET:
            collector.add((*path, name), f"property `{name}` of `{trigger.type}` is not supported by yaml2dag yet")
            ok = False
        elif name not in polling.own and (name in TaskBase.model_fields or name not in shared_names):
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else f"known properties: {', '.join(known)}"
            collector.add((*path, name), f"unknown property `{name}` for a `{trigger.type}` trigger", hint)
            ok = False
    ok = _check_own(trigger, polling, raw, path, collector) and ok
    item = {
        name: value for name, value in _task_item(trigger, polling).items() if name in shared_names | {"id", "type"}
    }
    try:
        task = task_class.model_validate(item)
    except pydantic.ValidationError as exc:
        # Errors name the trigger's type, not the task's (the data is only used for names and positions).
        add_errors(exc, path, task_class, {**item, "type": trigger.type}, collector)
        return None
    return task if ok else None


def _check_own(trigger: Trigger, polling: PollingType, raw: dict[str, Any], path: Path, collector: Collector) -> bool:
    """`interval` is a fixed positive duration; `on` one of its values; `responseCondition` text."""
    ok = True
    interval = raw.get("interval", polling.own["interval"])
    try:
        if is_expression(interval) or not isinstance(interval, str):
            raise ValueError("must be a fixed ISO-8601 duration such as PT30S (it is set when the DAG is built)")
        if parse_duration(interval) < dt.timedelta(seconds=1):
            raise ValueError("must be at least one second (PT1S)")
    except ValueError as exc:
        collector.add((*path, "interval"), f"invalid `interval` `{interval}`: {exc}", prefer_key=False)
        ok = False
    for name, allowed in polling.choices.items():
        if name in raw and raw[name] not in allowed:
            collector.add((*path, name), f"`{name}` must be one of {', '.join(allowed)}", prefer_key=False)
            ok = False
    for index, state in enumerate(trigger.stopAfter or []):
        if state not in _END_STATES:
            collector.add(
                (*path, "stopAfter", index),
                f"`{state}`: a run of a compiled flow never ends in this state",
                f"use {', '.join(_END_STATES)}",
                prefer_key=False,
            )
            ok = False
    condition = raw.get("responseCondition")
    if "responseCondition" in polling.own and condition is not None and not isinstance(condition, str | bool):
        collector.add((*path, "responseCondition"), "`responseCondition` must be an expression", prefer_key=False)
        ok = False
    return ok


def watcher_specs(flow: Flow) -> tuple[WatcherSpec, ...]:
    """The asset watchers of the flow's enabled polling triggers (the flow is valid)."""
    specs = []
    for trigger in flow.triggers:
        if not is_polling(trigger) or trigger.disabled:
            continue
        polling = POLLING_TYPES[trigger.type]
        task = polling_task(trigger)
        raw = _raw_properties(trigger)
        settings = {name: str(raw.get(name, default)) for name, default in polling.own.items()}
        arguments = {name: value for name, value in task.operator_arguments().items() if value is not None}
        kwargs = {
            "kind": polling.kind,
            "namespace": flow.namespace,
            "flow_id": flow.id,
            "trigger_id": trigger.id,
            "trigger_type": trigger.type,
            "task_type": polling.task_type,
            "operator": task.OPERATOR,
            "arguments": arguments,
            "interval": parse_duration(settings.pop("interval")).total_seconds(),
            "settings": settings,
            "stop_marker": stop_marker_uri(flow.namespace, flow.id, trigger.id) if trigger.stopAfter else None,
        }
        uri = polling_uri(flow.namespace, flow.id, trigger.id)
        specs.append(WatcherSpec(uri, f"{flow.dag_id}.{trigger.id}", POLLING_TRIGGER_CLASS, kwargs))
    return tuple(specs)


def polling_trigger_id(events: Any) -> str | None:
    """The id of the polling trigger whose event started a run (its triggering asset events), or None."""
    for found in (events or {}).values():
        for event in found:
            extra = getattr(event, "extra", None) or {}
            if polling_variables(extra) is not None:
                return str(extra["payload"]["triggerId"])
    return None


def polling_variables(extra: Mapping[str, Any]) -> dict[str, Any] | None:
    """`trigger.*` of a run started by a polling trigger's asset event (its `extra`), or None for another event."""
    payload = extra.get("payload") if extra.get("from_trigger") else None
    if not isinstance(payload, Mapping) or "triggerId" not in payload:
        return None
    return dict(payload.get("variables") or {})
