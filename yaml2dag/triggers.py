"""Flow triggers: checked when the flow is validated, and turned into the DAG's Airflow schedule.

- Schedule → `CronTriggerTimetable` (several: `MultipleCronTriggerTimetable`); the run's logical date
  is the fire time, Kestra's `trigger.date`.
- Flow → Airflow assets: every compiled flow emits one asset event per finished run, on the asset
  `kestra://<namespace>/<flowId>/<STATE>` (see `operators/state.py`); a Flow trigger schedules the DAG
  on the assets of the upstream flows and states it waits for.
- Webhook → nothing to schedule: the DAG is started through Airflow's REST API (docs/triggers.md).

Schedule and Flow triggers of one flow combine into an `AssetOrTimeSchedule`. docs/triggers.md
describes the mapping and what differs from Kestra.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yaml2dag.model import FLOW_TRIGGER_TYPES, SCHEDULE_TYPES, WEBHOOK_TYPES, Flow, Trigger

if TYPE_CHECKING:
    from yaml2dag.diagnostics import Collector

Path = tuple[str | int, ...]

#: Kestra's cron nicknames, as 5-field expressions Airflow reads the same way.
NICKNAMES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

#: The final states a compiled flow reports (`_flow_state`; KILLED and CANCELLED only through an Exit task).
FLOW_END_STATES = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED")
#: A Flow trigger's default `states`: Kestra's terminated states and PAUSED.
_DEFAULT_FLOW_STATES = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "PAUSED")

EXECUTION_FLOW_CONDITIONS = (
    "io.kestra.plugin.core.condition.ExecutionFlow",
    "io.kestra.plugin.core.condition.ExecutionFlowCondition",
    "io.kestra.core.models.conditions.types.ExecutionFlowCondition",
)
EXECUTION_STATUS_CONDITIONS = (
    "io.kestra.plugin.core.condition.ExecutionStatus",
    "io.kestra.plugin.core.condition.ExecutionStatusCondition",
    "io.kestra.core.models.conditions.types.ExecutionStatusCondition",
)

_COMMON = frozenset({"id", "type", "description", "disabled", "inputs", "stopAfter"})
PROPERTIES = {
    "Schedule": _COMMON
    | {"cron", "timezone", "withSeconds", "recoverMissedSchedules", "lateMaximumDelay", "conditions"},
    "Flow": _COMMON | {"states", "conditions", "preconditions", "dependsOn", "mode", "minSatisfied", "window"},
    "Webhook": _COMMON | {"key", "wait", "returnOutputs"},
}
#: Properties Kestra has on a trigger type that yaml2dag does not implement there yet.
NOT_YET = {"Webhook": {"conditions"}}
_NO_SECONDS_HINT = "Airflow schedules to the minute: use a seconds field of `0`, or 5 fields without `withSeconds`"


@dataclass(frozen=True)
class Upstream:
    """One upstream flow of a Flow trigger and the final states of it that count."""

    namespace: str
    flow_id: str
    states: tuple[str, ...]


# --- validation -------------------------------------------------------------------------------------


def check_triggers(flow: Flow, collector: Collector) -> None:
    """Add a located error for every trigger, or trigger property, yaml2dag cannot honour."""
    for index, trigger in enumerate(flow.triggers):
        path: Path = ("triggers", index)
        kind = trigger_kind(trigger)
        if kind is None:
            collector.add(
                (*path, "type"),
                f"trigger type `{trigger.type}` is not supported by yaml2dag",
                "use a Schedule, Flow or Webhook trigger (io.kestra.plugin.core.trigger.*)",
                prefer_key=False,
            )
            continue
        if not _check_properties(trigger, kind, path, collector):
            continue
        if kind == "Schedule":
            _check_schedule(trigger, path, collector)
        elif kind == "Flow":
            flow_upstreams(trigger, path, collector)
        else:
            _check_webhook(trigger, path, collector)
    _check_one_timezone(flow, collector)


def trigger_kind(trigger: Trigger) -> str | None:
    """`Schedule`, `Flow` or `Webhook` for the types yaml2dag compiles, else None."""
    if trigger.type in SCHEDULE_TYPES:
        return "Schedule"
    if trigger.type in FLOW_TRIGGER_TYPES:
        return "Flow"
    if trigger.type in WEBHOOK_TYPES:
        return "Webhook"
    return None


def has_schedule(flow: Flow) -> bool:
    """True when an enabled Schedule or Flow trigger starts runs (they get only the inputs' defaults)."""
    return any(trigger_kind(trigger) in ("Schedule", "Flow") and not trigger.disabled for trigger in flow.triggers)


def has_cron_schedule(flow: Flow) -> bool:
    """True when an enabled Schedule trigger gives the DAG a cron timetable."""
    return any(trigger.type in SCHEDULE_TYPES and not trigger.disabled for trigger in flow.triggers)


def _check_properties(trigger: Trigger, kind: str, path: Path, collector: Collector) -> bool:
    """Properties of another trigger type are errors; False when any was found."""
    allowed = PROPERTIES[kind]
    fields = Trigger.model_fields
    ok = True
    for name in sorted(trigger.model_fields_set & fields.keys()):
        if name in NOT_YET.get(kind, ()):
            collector.add((*path, name), f"property `{name}` of a {kind} trigger is not supported by yaml2dag yet")
            ok = False
        elif name not in allowed and name not in Trigger.UNSUPPORTED:
            collector.add((*path, name), f"property `{name}` is not a property of a {kind} trigger")
            ok = False
    for extra in sorted(trigger.model_extra or {}):
        collector.add((*path, extra), f"unknown property `{extra}` for a {kind} trigger")
        ok = False
    return ok


def _check_schedule(trigger: Trigger, path: Path, collector: Collector) -> None:
    if not trigger.cron:
        collector.add(path, "missing required property `cron` for a Schedule trigger")
    else:
        cron_error = _cron_error(trigger.cron, trigger.withSeconds)
        if cron_error:
            collector.add((*path, "cron"), cron_error[0], cron_error[1], prefer_key=False)
    if trigger.timezone and not _valid_timezone(trigger.timezone):
        collector.add(
            (*path, "timezone"),
            f"unknown time zone `{trigger.timezone}`",
            "use an IANA time zone name such as `Europe/Paris`, `UTC` or `Etc/GMT-2`",
            prefer_key=False,
        )
    if trigger.recoverMissedSchedules == "NONE":
        collector.add(
            (*path, "recoverMissedSchedules"),
            "`recoverMissedSchedules: NONE` is not supported: Airflow always starts the latest missed schedule",
            "use LAST (Airflow's behaviour: only the latest missed schedule runs) or ALL",
            prefer_key=False,
        )
    if trigger.conditions is not None:
        collector.add(
            (*path, "conditions"),
            "`conditions` on a Schedule trigger are not supported by yaml2dag",
            "express the days in the cron expression, or test the date with `runIf` on the tasks",
        )


def _check_webhook(trigger: Trigger, path: Path, collector: Collector) -> None:
    if not trigger.key:
        collector.add(path, "missing required property `key` for a Webhook trigger")
    for name in ("wait", "returnOutputs"):
        if getattr(trigger, name):
            collector.add(
                (*path, name),
                f"`{name}: true` is not supported: Airflow's REST API returns as soon as the run is queued",
                "remove it, and poll `GET /api/v2/dags/{dag_id}/dagRuns/{run_id}` for the run's state",
                prefer_key=False,
            )


def _check_one_timezone(flow: Flow, collector: Collector) -> None:
    """Airflow runs several cron schedules of one DAG in a single timezone."""
    schedules = [(i, t) for i, t in enumerate(flow.triggers) if t.type in SCHEDULE_TYPES and not t.disabled]
    if not schedules:
        return
    first = schedules[0][1].timezone
    for index, trigger in schedules[1:]:
        if trigger.timezone != first:
            collector.add(
                ("triggers", index, "timezone") if trigger.timezone else ("triggers", index),
                f"timezone `{trigger.timezone or 'default'}` differs from `{first or 'default'}` of the first schedule",
                "all Schedule triggers of a flow must use the same timezone",
                prefer_key=False,
            )
            return


def _valid_timezone(name: str) -> bool:
    import pendulum  # what Airflow builds the timetable's zone with

    try:
        pendulum.timezone(name)
    except (ValueError, OSError):
        return False
    return True


def airflow_cron(expression: str, with_seconds: bool) -> str:
    """The 5-field expression Airflow schedules for a valid Kestra cron (nicknames, seconds `0` dropped)."""
    expression = expression.strip()
    if expression.lower() in NICKNAMES:
        return NICKNAMES[expression.lower()]
    fields = expression.split()
    return " ".join(fields[1:] if with_seconds else fields)


def _cron_error(expression: str, with_seconds: bool) -> tuple[str, str] | None:
    """(message, hint) when Airflow cannot schedule the Kestra cron exactly, else None."""
    from croniter import croniter

    if expression.strip().lower() in NICKNAMES:
        return None
    if expression.strip().startswith("@"):
        return (
            f"unknown cron nickname `{expression.strip()}`",
            "use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually",
        )
    fields = expression.split()
    wanted = 6 if with_seconds else 5
    if len(fields) != wanted:
        hint = (
            "with `withSeconds: true` write 6 fields, seconds first: `0 */5 * * * *`"
            if with_seconds
            else "use 5 fields, e.g. `0 9 * * 1-5` (6 fields, seconds first, need `withSeconds: true`)"
        )
        return f"invalid cron expression `{expression}`: {len(fields)} fields, expected {wanted}", hint
    if with_seconds and not re.fullmatch(r"0+", fields[0]):
        return f"cron `{expression}` fires at seconds other than 0, which Airflow cannot schedule", _NO_SECONDS_HINT
    minutes_cron = " ".join(fields[1:] if with_seconds else fields)
    if not croniter.is_valid(minutes_cron):
        return f"invalid cron expression `{expression}`", "use 5 fields, e.g. `0 9 * * 1-5`"
    return None


# --- Flow triggers ----------------------------------------------------------------------------------


def flow_upstreams(trigger: Trigger, path: Path, collector: Collector | None = None) -> list[Upstream]:
    """The upstream flows of a Flow trigger with their states; errors go to `collector` when given."""

    def error(at: Path, message: str, hint: str = "") -> None:
        if collector is not None:
            collector.add(at, message, hint, prefer_key=False)

    accepted = set(trigger.states or _DEFAULT_FLOW_STATES)
    named: list[tuple[Path, str | None, str | None, Iterable[str] | None]] = []
    sources = []
    refused = False
    for index, condition in enumerate(trigger.conditions or []):
        at = (*path, "conditions", index)
        kind = condition.get("type") if isinstance(condition, dict) else None
        if kind in EXECUTION_FLOW_CONDITIONS:
            _only_keys(condition, {"type", "namespace", "flowId"}, at, error)
            named.append((at, condition.get("namespace"), condition.get("flowId"), None))
            sources.append("conditions")
        elif kind in EXECUTION_STATUS_CONDITIONS:
            _only_keys(condition, {"type", "in", "notIn"}, at, error)
            accepted = _filter_states(accepted, condition, at, error)
        else:
            refused = True
            error(
                (*at, "type") if isinstance(condition, dict) and "type" in condition else at,
                f"condition `{kind}` is not supported on a Flow trigger by yaml2dag",
                "name the upstream flows in `preconditions.flows` (namespace, flowId, states); "
                "ExecutionFlow and ExecutionStatus conditions are also accepted",
            )
    if sum(1 for source in sources if source == "conditions") > 1:
        error(
            (*path, "conditions"),
            "several ExecutionFlow conditions can never hold together (an execution belongs to one flow)",
            "list the flows in `preconditions.flows` to wait for all of them",
        )
        return []
    if trigger.preconditions is not None:
        if not trigger.preconditions.resetOnSuccess:
            error(
                (*path, "preconditions", "resetOnSuccess"),
                "`resetOnSuccess: false` is not supported: an Airflow asset schedule always starts afresh",
                "remove it",
            )
        for index, upstream in enumerate(trigger.preconditions.flows):
            at = (*path, "preconditions", "flows", index)
            named.append((at, upstream.namespace, upstream.flowId, upstream.states))
        sources.append("preconditions")
    if trigger.dependsOn is not None:
        for index, upstream in enumerate(trigger.dependsOn):
            named.append(((*path, "dependsOn", index), upstream.namespace, upstream.flowId, upstream.states))
        sources.append("dependsOn")
    if trigger.mode == "AT_LEAST":
        error((*path, "mode"), "`mode: AT_LEAST` is not supported by yaml2dag", "use ALL or ANY")
    if len(set(sources)) > 1:
        error(path, "name the upstream flows in one place: `conditions`, `preconditions` or `dependsOn`")
        return []
    if not named:
        if not refused:
            error(
                path,
                "a Flow trigger needs the upstream flow (namespace and flowId)",
                "add `preconditions: {flows: [{namespace: ..., flowId: ..., states: [SUCCESS]}]}`; "
                "triggers on any flow or a whole namespace are not supported",
            )
        return []
    upstreams = []
    for at, namespace, flow_id, states in named:
        if not namespace or not flow_id:
            error(
                at,
                "an upstream flow needs both `namespace` and `flowId`",
                "triggers on any flow of a namespace are not supported: name each flow",
            )
            continue
        wanted = accepted & set(states) if states is not None else accepted
        kept = tuple(state for state in FLOW_END_STATES if state in wanted)
        if not kept:
            error(
                at,
                f"the trigger never fires: `{namespace}.{flow_id}` ends SUCCESS, WARNING, FAILED, KILLED or "
                "CANCELLED on Airflow, "
                f"none of the states it waits for ({', '.join(sorted(wanted)) or 'none'})",
                "wait for SUCCESS, WARNING or FAILED (KILLED or CANCELLED: ended by an Exit task)",
            )
            continue
        upstreams.append(Upstream(str(namespace), str(flow_id), kept))
    return upstreams


def _only_keys(condition: dict[str, Any], allowed: set[str], at: Path, error: Any) -> None:
    for key in sorted(set(condition) - allowed, key=str):
        error((*at, key), f"unknown property `{key}` for condition `{condition['type']}`")


def _filter_states(accepted: set[str], condition: dict[str, Any], at: Path, error: Any) -> set[str]:
    from yaml2dag.model import EXECUTION_STATES

    for key in ("in", "notIn"):
        values = condition.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or any(value not in EXECUTION_STATES for value in values):
            error((*at, key), f"`{key}` must be a list of execution states such as SUCCESS, WARNING, FAILED")
            continue
        accepted = accepted & set(values) if key == "in" else accepted - set(values)
    return accepted


def flow_state_uri(namespace: str, flow_id: str, state: str) -> str:
    """The asset a compiled flow emits when a run ends in Kestra state `state`."""
    return f"kestra://{namespace}/{flow_id}/{state}"


def flow_alias_name(namespace: str, flow_id: str) -> str:
    """The asset alias through which a compiled flow emits its end-state assets."""
    return f"kestra://{namespace}/{flow_id}"


def flow_trigger_variables(events: Iterable[Any]) -> dict[str, Any] | None:
    """Kestra's `trigger` variables of a run started by a Flow trigger: the last upstream end event.

    `events` are the run's triggering asset events (`context["triggering_asset_events"]` values,
    flattened); None when none came from a yaml2dag flow.
    """
    found = [event for event in events if (getattr(event, "extra", None) or {}).get("flowId")]
    if not found:
        return None
    extra = max(found, key=lambda event: event.timestamp).extra
    return {key: extra[key] for key in ("executionId", "namespace", "flowId", "flowRevision", "state") if key in extra}


# --- the Airflow schedule ---------------------------------------------------------------------------


#: An asset condition as data: an asset URI, or ("any" | "all", the conditions it joins).
AssetCondition = str | tuple[str, tuple["AssetCondition", ...]]


@dataclass(frozen=True)
class ScheduleSpec:
    """The DAG's schedule as data: Schedule triggers' crons and Flow triggers' asset condition (or both)."""

    crons: tuple[str, ...] = ()
    #: The crons' IANA time zone; None: Airflow's default time zone.
    timezone: str | None = None
    assets: AssetCondition | None = None


def schedule_spec(flow: Flow) -> ScheduleSpec | None:
    """The schedule of the flow's enabled Schedule and Flow triggers, or None (runs are triggered by hand)."""
    schedules = [t for t in flow.triggers if t.type in SCHEDULE_TYPES and not t.disabled]
    # Validation guarantees that every enabled Schedule trigger uses the same timezone.
    crons = tuple(dict.fromkeys(airflow_cron(t.cron or "", t.withSeconds) for t in schedules))
    zone = schedules[0].timezone if schedules else None
    assets = _asset_condition(flow)
    if not crons and assets is None:
        return None
    return ScheduleSpec(crons, zone, assets)


def _asset_condition(flow: Flow) -> AssetCondition | None:
    """The asset condition of the flow's enabled Flow triggers (any trigger fires), or None."""

    def any_of(items: list[AssetCondition]) -> AssetCondition:
        return items[0] if len(items) == 1 else ("any", tuple(items))

    conditions: list[AssetCondition] = []
    for index, trigger in enumerate(flow.triggers):
        if trigger.type not in FLOW_TRIGGER_TYPES or trigger.disabled:
            continue
        per_flow = [
            any_of([flow_state_uri(u.namespace, u.flow_id, state) for state in u.states])
            for u in flow_upstreams(trigger, ("triggers", index))
        ]
        if not per_flow:
            continue
        if len(per_flow) == 1:
            conditions.append(per_flow[0])
        else:
            conditions.append(("any" if trigger.mode == "ANY" else "all", tuple(per_flow)))
    return any_of(conditions) if conditions else None


def build_schedule(spec: ScheduleSpec | None) -> Any:
    """The Airflow schedule of a `ScheduleSpec`: a cron timetable, an asset condition, both, or None.

    The first run is the first fire time after the DAG appears (never one in the past), and after
    a pause or downtime only the latest missed fire time runs (`catchup=False`).
    """
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, MultipleCronTriggerTimetable

    if spec is None:
        return None
    timetable: CronTriggerTimetable | MultipleCronTriggerTimetable | None = None
    if spec.crons:
        zone = spec.timezone or _default_timezone()
        # timedelta(0): a new DAG waits for the next fire time (Kestra does not run a past one).
        never_past = dt.timedelta(0)
        if len(spec.crons) == 1:
            timetable = CronTriggerTimetable(spec.crons[0], timezone=zone, run_immediately=never_past)
        else:
            timetable = MultipleCronTriggerTimetable(*spec.crons, timezone=zone, run_immediately=never_past)
    assets = None if spec.assets is None else _build_assets(spec.assets)
    if timetable is not None and assets is not None:
        return AssetOrTimeSchedule(timetable=timetable, assets=assets)
    return timetable if timetable is not None else assets


def _build_assets(condition: AssetCondition) -> Any:
    from airflow.sdk import Asset, AssetAll, AssetAny

    if isinstance(condition, str):
        return Asset(uri=condition)
    kind, items = condition
    return (AssetAny if kind == "any" else AssetAll)(*(_build_assets(item) for item in items))


def _default_timezone() -> str:
    from airflow.sdk.configuration import conf

    return conf.get("core", "default_timezone", fallback="utc")
