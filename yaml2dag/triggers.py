"""Flow triggers: checked when the flow is validated, and turned into the DAG's Airflow schedule.

- Schedule → `CronTriggerTimetable` (several: `MultipleCronTriggerTimetable`); the run's logical date
  is the fire time, Kestra's `trigger.date`. With `conditions`: `yaml2dag.timetables.KestraScheduleTimetable`,
  which skips the fire times where they do not hold (registered by the `yaml2dag` Airflow plugin).
- Flow → Airflow assets: every compiled flow's finished run emits asset events on
  `kestra://<namespace>/<flowId>/<STATE>`, on its namespace's `kestra://<namespace>/*/<STATE>`, on
  `kestra://<prefix>/**/<STATE>` for each namespace it is in, and on `kestra://**/<STATE>` (see
  `operators/state.py`); a Flow trigger schedules the DAG on the assets of what it waits for (flows,
  a namespace, a namespace prefix, any flow). Conditions no asset expresses (labels, Expression,
  Not, Or, a namespace suffix) and the flow's own executions are checked when the run starts
  (`_trigger_check`, `operators/trigger_check.py`), which skips the whole run when none matches.
- Webhook → nothing to schedule: the DAG is started through Airflow's REST API (docs/triggers.md).
- HTTP and S3 polling triggers → an asset with an `AssetWatcher` the triggerer polls (`polling.py`).

Schedule and Flow triggers of one flow combine into an `AssetOrTimeSchedule`. docs/triggers.md
describes the mapping and what differs from Kestra.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from yaml2dag.model import FLOW_TRIGGER_TYPES, SCHEDULE_TYPES, WEBHOOK_TYPES, Flow, Trigger
from yaml2dag.polling import POLLING_TYPES, WatcherSpec, polling_variables, watcher_specs

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

#: The task id of the run-start check of Flow trigger conditions (`operators/trigger_check.py`).
TRIGGER_CHECK_TASK_ID = "_trigger_check"

_CORE = "io.kestra.plugin.core.condition."
_LEGACY = "io.kestra.core.models.conditions.types."
#: Flow trigger condition types yaml2dag compiles (current name, its `…Condition` alias, the legacy name) → short name.
FLOW_CONDITION_TYPES = {
    f"{prefix}{name}{suffix}": name
    for name in (
        "ExecutionFlow",
        "ExecutionStatus",
        "ExecutionNamespace",
        "ExecutionLabels",
        "Expression",
        "Not",
        "Or",
        "MultipleCondition",
    )
    for prefix, suffix in ((_CORE, ""), (_CORE, "Condition"), (_LEGACY, "Condition"))
}
_CONDITION_PROPERTIES: dict[str, set[str]] = {
    "ExecutionFlow": {"namespace", "flowId"},
    "ExecutionStatus": {"in", "notIn"},
    "ExecutionNamespace": {"namespace", "comparison", "prefix"},
    "ExecutionLabels": {"labels"},
    "Expression": {"expression"},
    "Not": {"conditions"},
    "Or": {"conditions"},
    "MultipleCondition": {"conditions", "window", "windowAdvance", "resetOnSuccess"},
}

_COMMON = frozenset({"id", "type", "description", "disabled", "inputs", "stopAfter"})
PROPERTIES = {
    "Schedule": _COMMON
    | {"cron", "timezone", "withSeconds", "recoverMissedSchedules", "lateMaximumDelay", "conditions"},
    "Flow": _COMMON | {"states", "conditions", "preconditions", "dependsOn", "mode", "minSatisfied", "window"},
    "Webhook": _COMMON | {"key", "wait", "returnOutputs"},
    # Plus the type's own properties, checked by `polling.check_polling`.
    "Polling": (_COMMON - {"inputs"}) | {"conditions"},
}
#: Properties Kestra has on a trigger type that yaml2dag does not implement there yet.
NOT_YET = {"Webhook": {"conditions"}, "Polling": {"conditions"}}
_NO_SECONDS_HINT = "Airflow schedules to the minute: use a seconds field of `0`, or 5 fields without `withSeconds`"


@dataclass(frozen=True)
class Upstream:
    """What a Flow trigger listens to, and the final states of it that count.

    One flow, one namespace, a namespace and its children, or every flow.
    """

    namespace: str | None
    flow_id: str | None
    states: tuple[str, ...]
    #: `flow` (namespace.flow_id), `namespace` (its flows), `tree` (it and its children) or `any`.
    scope: str = "flow"

    def uris(self) -> list[str]:
        """The end-state assets listened to, one per state."""
        if self.scope == "flow":
            return [flow_state_uri(str(self.namespace), str(self.flow_id), state) for state in self.states]
        if self.scope == "namespace":
            return [namespace_state_uri(str(self.namespace), state) for state in self.states]
        if self.scope == "tree":
            return [tree_state_uri(str(self.namespace), state) for state in self.states]
        return [any_state_uri(state) for state in self.states]


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
                "use a Schedule, Flow or Webhook trigger (io.kestra.plugin.core.trigger.*), "
                "io.kestra.plugin.core.http.Trigger or io.kestra.plugin.aws.s3.Trigger",
                prefer_key=False,
            )
            continue
        if not _check_properties(trigger, kind, path, collector):
            continue
        if kind == "Schedule":
            _check_schedule(trigger, path, collector)
        elif kind == "Flow":
            for upstream in flow_upstreams(trigger, path, collector):
                if upstream.scope == "flow" and (upstream.namespace, upstream.flow_id) == (flow.namespace, flow.id):
                    collector.add(
                        path,
                        f"the trigger never fires: it waits for `{flow.namespace}.{flow.id}` itself, and a flow's "
                        "own executions never trigger it (as in Kestra)",
                        "wait for another flow",
                        prefer_key=False,
                    )
        elif kind == "Webhook":
            _check_webhook(trigger, path, collector)
    _check_one_timezone(flow, collector)


def trigger_kind(trigger: Trigger) -> str | None:
    """`Schedule`, `Flow`, `Webhook` or `Polling` (HTTP, S3) for the types yaml2dag compiles, else None."""
    if trigger.type in SCHEDULE_TYPES:
        return "Schedule"
    if trigger.type in FLOW_TRIGGER_TYPES:
        return "Flow"
    if trigger.type in WEBHOOK_TYPES:
        return "Webhook"
    if trigger.type in POLLING_TYPES:
        return "Polling"
    return None


def has_schedule(flow: Flow) -> bool:
    """True when an enabled Schedule, Flow or polling trigger starts runs (they get only the inputs' defaults)."""
    return any(
        trigger_kind(trigger) in ("Schedule", "Flow", "Polling") and not trigger.disabled for trigger in flow.triggers
    )


def has_cron_schedule(flow: Flow) -> bool:
    """True when an enabled Schedule trigger gives the DAG a cron timetable."""
    return any(trigger.type in SCHEDULE_TYPES and not trigger.disabled for trigger in flow.triggers)


def _check_properties(trigger: Trigger, kind: str, path: Path, collector: Collector) -> bool:
    """Properties of another trigger type are errors; False when any was found."""
    allowed = PROPERTIES[kind]
    fields = Trigger.model_fields
    label = f"`{trigger.type}`" if kind == "Polling" else f"a {kind}"
    ok = True
    for name in sorted(trigger.model_fields_set & fields.keys()):
        if name in NOT_YET.get(kind, ()):
            collector.add((*path, name), f"property `{name}` of {label} trigger is not supported by yaml2dag yet")
            ok = False
        elif name not in allowed and name not in Trigger.UNSUPPORTED:
            collector.add((*path, name), f"property `{name}` is not a property of {label} trigger")
            ok = False
    for extra in sorted(trigger.model_extra or {} if kind != "Polling" else {}):
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
        from yaml2dag.schedule_conditions import check_schedule_conditions

        def error(at: Path, message: str, hint: str) -> None:
            collector.add(at, message, hint, prefer_key=False)

        check_schedule_conditions(trigger.conditions, (*path, "conditions"), error)


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


def _condition_kind(condition: Any) -> str | None:
    """The short name (`ExecutionNamespace`, `Not`, ...) of a Flow trigger condition, None when unknown."""
    if not isinstance(condition, dict):
        return None
    return FLOW_CONDITION_TYPES.get(str(condition.get("type")))


class ErrorSink(Protocol):
    """Where the checks of a Flow trigger report a located error (`collector.add`, or nowhere)."""

    def __call__(self, at: Path, message: str, hint: str = "") -> None: ...


#: One upstream flow as written: where, its namespace and flowId, its own `states` (None: the trigger's).
_Named = tuple[Path, str | None, str | None, Iterable[str] | None]


@dataclass
class _Listening:
    """What a Flow trigger listens to, gathered from its conditions, preconditions and dependsOn."""

    accepted: set[str]
    named: list[_Named] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    scope: tuple[str, str | None] = ("any", None)


def flow_upstreams(trigger: Trigger, path: Path, collector: Collector | None = None) -> list[Upstream]:
    """The upstream executions a Flow trigger listens to, with their states; errors go to `collector`.

    Each item is one flow, one namespace, one namespace and its children, or every flow; the
    trigger's schedule is on their end-state assets. Conditions that assets cannot express (labels,
    expressions, `Not`, `Or`, a suffix) are checked when the triggered run starts (`needs_check`).
    """

    def error(at: Path, message: str, hint: str = "") -> None:
        if collector is not None:
            collector.add(at, message, hint, prefer_key=False)

    listening = _Listening(set(trigger.states or _DEFAULT_FLOW_STATES))
    _listen_conditions(listening, trigger, path, error)
    if sum(1 for source in listening.sources if source == "conditions") > 1:
        error(
            (*path, "conditions"),
            "several ExecutionFlow conditions can never hold together (an execution belongs to one flow)",
            "list the flows in `preconditions.flows` to wait for all of them",
        )
        return []
    if trigger.preconditions is not None and not _listen_preconditions(listening, trigger, path, error):
        return []
    if trigger.dependsOn is not None:
        for index, upstream in enumerate(trigger.dependsOn):
            listening.named.append(((*path, "dependsOn", index), upstream.namespace, upstream.flowId, upstream.states))
        listening.sources.append("dependsOn")
    if trigger.mode == "AT_LEAST":
        error((*path, "mode"), "`mode: AT_LEAST` is not supported by yaml2dag", "use ALL or ANY")
    sources = set(listening.sources)
    if len(sources - {"conditions"}) > 1 or ("conditions" in sources and len(sources) > 1):
        error(path, "name the upstream flows in one place: `conditions`, `preconditions` or `dependsOn`")
        return []
    return _resolve_upstreams(listening, path, error)


def _listen_conditions(listening: _Listening, trigger: Trigger, path: Path, error: ErrorSink) -> None:
    """Check each of the trigger's `conditions` and add what it listens to (`_CONDITION_LISTENERS`)."""
    for index, condition in enumerate(trigger.conditions or []):
        at = (*path, "conditions", index)
        kind = _condition_kind(condition)
        if kind is None:
            error(
                (*at, "type") if isinstance(condition, dict) and "type" in condition else at,
                f"condition `{condition.get('type') if isinstance(condition, dict) else condition}` is not "
                "supported on a Flow trigger by yaml2dag",
                "use ExecutionFlow, ExecutionStatus, ExecutionNamespace, ExecutionLabels, Expression, Not, Or "
                "or MultipleCondition (of ExecutionFlow conditions), or `preconditions.flows`",
            )
            continue
        _check_condition(condition, kind, at, error)
        listen = _CONDITION_LISTENERS.get(kind)
        if listen is not None:
            listen(listening, condition, at, error)


def _listen_execution_flow(listening: _Listening, condition: dict[str, Any], at: Path, error: ErrorSink) -> None:
    """ExecutionFlow: one named upstream flow (without `namespace` or `flowId`: reported by `_check_condition`)."""
    if condition.get("namespace") and condition.get("flowId"):
        listening.named.append((at, condition.get("namespace"), condition.get("flowId"), None))
    listening.sources.append("conditions")


def _listen_execution_status(listening: _Listening, condition: dict[str, Any], at: Path, error: ErrorSink) -> None:
    """ExecutionStatus: narrows the states the trigger accepts."""
    listening.accepted = _filter_states(listening.accepted, condition, at, error)


def _listen_namespace(listening: _Listening, condition: dict[str, Any], at: Path, error: ErrorSink) -> None:
    """ExecutionNamespace: the scope of the trigger (the first such condition sets it)."""
    if listening.scope[0] == "any":
        listening.scope = namespace_scope(str(condition.get("namespace") or ""), _comparison(condition))


def _listen_multiple(listening: _Listening, condition: dict[str, Any], at: Path, error: ErrorSink) -> None:
    """MultipleCondition: each complete ExecutionFlow child is a named upstream flow."""
    children = condition.get("conditions")
    for key, child in (children if isinstance(children, dict) else {}).items():
        if isinstance(child, dict) and child.get("namespace") and child.get("flowId"):
            listening.named.append(((*at, "conditions", key), child.get("namespace"), child.get("flowId"), None))
    listening.sources.append("multiple")


#: What each kind of condition adds to what the trigger listens to (the others are checked at run start).
_CONDITION_LISTENERS: dict[str, Callable[[_Listening, dict[str, Any], Path, ErrorSink], None]] = {
    "ExecutionFlow": _listen_execution_flow,
    "ExecutionStatus": _listen_execution_status,
    "ExecutionNamespace": _listen_namespace,
    "MultipleCondition": _listen_multiple,
}


def _listen_preconditions(listening: _Listening, trigger: Trigger, path: Path, error: ErrorSink) -> bool:
    """Check `preconditions` and add its `where` scope and `flows`; False when the trigger cannot be compiled."""
    assert trigger.preconditions is not None
    _check_preconditions(trigger, path, error)
    where = trigger.preconditions.where
    if where:
        if not _check_where(trigger, (*path, "preconditions"), error) or listening.scope[0] != "any":
            if listening.scope[0] != "any":
                error((*path, "preconditions", "where"), "use either ExecutionNamespace or `where`, not both")
            return False
        listening.scope, listening.accepted = _where_scope(where[0], listening.accepted)
    for index, upstream in enumerate(trigger.preconditions.flows):
        at = (*path, "preconditions", "flows", index)
        listening.named.append((at, upstream.namespace, upstream.flowId, upstream.states))
    listening.sources.append("preconditions")
    return True


def _resolve_upstreams(listening: _Listening, path: Path, error: ErrorSink) -> list[Upstream]:
    """The upstreams of what the trigger listens to: its named flows, else its scope, with the end states kept."""
    accepted = listening.accepted
    if not listening.named:
        kept = tuple(state for state in FLOW_END_STATES if state in accepted)
        if not kept:
            error(path, _never_fires("a flow", accepted), _NEVER_FIRES_HINT)
            return []
        return [Upstream(listening.scope[1], None, kept, listening.scope[0])]
    upstreams = []
    for at, namespace, flow_id, states in listening.named:
        if not namespace or not flow_id:
            error(
                at,
                "an upstream flow needs both `namespace` and `flowId`",
                "for every flow of a namespace use an ExecutionNamespace condition",
            )
            continue
        wanted = accepted & set(states) if states is not None else accepted
        kept = tuple(state for state in FLOW_END_STATES if state in wanted)
        if not kept:
            error(at, _never_fires(f"`{namespace}.{flow_id}`", wanted), _NEVER_FIRES_HINT)
            continue
        upstreams.append(Upstream(str(namespace), str(flow_id), kept))
    return upstreams


_NEVER_FIRES_HINT = "wait for SUCCESS, WARNING or FAILED (KILLED or CANCELLED: ended by an Exit task)"


def _never_fires(what: str, wanted: set[str]) -> str:
    return (
        f"the trigger never fires: {what} ends SUCCESS, WARNING, FAILED, KILLED or CANCELLED on Airflow, "
        f"none of the states it waits for ({', '.join(sorted(wanted)) or 'none'})"
    )


def _comparison(condition: dict[str, Any]) -> str:
    """ExecutionNamespace's comparison: `comparison`, else PREFIX when `prefix: true`, else EQUALS."""
    comparison = condition.get("comparison")
    if comparison:
        return str(comparison)
    return "PREFIX" if condition.get("prefix") is True else "EQUALS"


def namespace_scope(namespace: str, comparison: str) -> tuple[str, str | None]:
    """The assets an ExecutionNamespace condition listens to: (`namespace` | `tree` | `any`, namespace).

    EQUALS: the flows of that namespace. PREFIX: the namespace and its children (`company` listens
    to `company` and `company.…`, not to `companyX`: namespaces are matched whole, where Kestra
    compares strings). SUFFIX: every flow, filtered when the run starts.
    """
    if comparison == "EQUALS":
        return ("namespace", namespace)
    if comparison == "PREFIX":
        whole = namespace.removesuffix(".")
        return ("tree", whole) if whole else ("any", None)
    return ("any", None)


def _check_condition(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """Properties of one Flow trigger condition (recursively for Not and Or), by kind (`_CONDITION_CHECKS`)."""
    keys = {"type", "id", "description"} | _CONDITION_PROPERTIES[kind]
    _only_keys(condition, keys, at, error)
    check = _CONDITION_CHECKS.get(kind)
    if check is not None:
        check(condition, kind, at, error)


def _check_execution_flow(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """ExecutionFlow: `namespace` and `flowId`."""
    if not condition.get("namespace") or not condition.get("flowId"):
        error(at, "an ExecutionFlow condition needs `namespace` and `flowId`")


def _check_execution_namespace(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """ExecutionNamespace: a `namespace`, and a known `comparison`."""
    if not isinstance(condition.get("namespace"), str) or not condition["namespace"]:
        error(at, "an ExecutionNamespace condition needs `namespace`")
    if condition.get("comparison") not in (None, "EQUALS", "PREFIX", "SUFFIX"):
        error((*at, "comparison"), "`comparison` must be EQUALS, PREFIX or SUFFIX")


def _check_execution_labels(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """ExecutionLabels: `labels` as a map or a list of `{key, value}`."""
    if labels_map(condition.get("labels")) is None:
        error((*at, "labels"), "`labels` must be a map of label values, or a list of `{key, value}`")


def _check_expression(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """Expression: a non-blank `expression`."""
    if not isinstance(condition.get("expression"), str) or not condition["expression"].strip():
        error(at, "an Expression condition needs `expression`")


def _check_children(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """Not and Or: a non-empty list of `conditions`, each supported and checked (no MultipleCondition)."""
    children = condition.get("conditions")
    if not isinstance(children, list) or not children:
        error(at, f"a {kind} condition needs a non-empty list of `conditions`")
        return
    for index, child in enumerate(children):
        child_kind = _condition_kind(child)
        if child_kind is None or child_kind == "MultipleCondition":
            error(
                (*at, "conditions", index),
                f"condition `{child.get('type') if isinstance(child, dict) else child}` is not supported "
                f"inside {kind} by yaml2dag",
                "use ExecutionFlow, ExecutionStatus, ExecutionNamespace, ExecutionLabels, Expression, Not or Or",
            )
            continue
        _check_condition(child, child_kind, (*at, "conditions", index), error)


def _check_multiple(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """MultipleCondition: a map of ExecutionFlow conditions, waited for without a window (the default)."""
    children = condition.get("conditions")
    if not isinstance(children, dict) or not children:
        error(at, "a MultipleCondition needs a map of `conditions`")
        return
    for key, child in children.items():
        if _condition_kind(child) != "ExecutionFlow":
            error(
                (*at, "conditions", key),
                "only ExecutionFlow conditions are supported inside a MultipleCondition by yaml2dag",
                "name each upstream flow (namespace and flowId)",
            )
        elif not child.get("namespace") or not child.get("flowId"):
            error((*at, "conditions", key), "an ExecutionFlow condition needs `namespace` and `flowId`")
    if condition.get("window", "P1D") not in ("P1D", "PT24H") or condition.get("windowAdvance", "P0D") not in (
        "P0D",
        "PT0S",
    ):
        error(
            (*at, "window") if "window" in condition else (*at, "windowAdvance"),
            "a MultipleCondition window other than Kestra's default (`window: P1D`, `windowAdvance: P0D`) "
            "is not supported by yaml2dag",
            "remove it: Airflow waits for every flow without a window (docs/triggers.md)",
        )
    if condition.get("resetOnSuccess") is False:
        error((*at, "resetOnSuccess"), "`resetOnSuccess: false` is not supported", "remove it")


#: What each kind of Flow trigger condition requires beyond its known properties (ExecutionStatus: nothing here).
_CONDITION_CHECKS: dict[str, Callable[[dict[str, Any], str, Path, ErrorSink], None]] = {
    "ExecutionFlow": _check_execution_flow,
    "ExecutionNamespace": _check_execution_namespace,
    "ExecutionLabels": _check_execution_labels,
    "Expression": _check_expression,
    "Not": _check_children,
    "Or": _check_children,
    "MultipleCondition": _check_multiple,
}


_WHERE_FIELDS = ("FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION")
_WHERE_TYPES = (
    "EQUAL_TO", "NOT_EQUAL_TO", "IN", "NOT_IN", "IS_TRUE", "IS_FALSE", "IS_NULL", "IS_NOT_NULL",
    "STARTS_WITH", "ENDS_WITH", "REGEX", "CONTAINS",
)  # fmt: skip


def _check_where(trigger: Trigger, at: Path, error: ErrorSink) -> bool:
    """`preconditions.where`: one execution filter, without `flows` (any execution it matches fires)."""
    assert trigger.preconditions is not None
    where = trigger.preconditions.where or []
    if len(where) > 1 or trigger.preconditions.flows:
        error(
            (*at, "where"),
            "`where` is supported alone, with one entry: several preconditions met by different executions "
            "within a time window cannot be expressed with Airflow assets",
            "use one `where` entry, or name the flows in `preconditions.flows`",
        )
        return False
    entry = where[0]
    here = (*at, "where", 0)
    if not isinstance(entry, dict) or not isinstance(entry.get("filters"), list) or not entry["filters"]:
        error(here, "a `where` entry needs `id` and a non-empty list of `filters`")
        return False
    ok = True
    for key in sorted(set(entry) - {"id", "operand", "filters"}, key=str):
        error((*here, key), f"unknown property `{key}` of a `where` entry")
        ok = False
    if entry.get("operand", "AND") not in ("AND", "OR"):
        error((*here, "operand"), "`operand` must be AND or OR")
        ok = False
    for index, item in enumerate(entry["filters"]):
        spot = (*here, "filters", index)
        if not isinstance(item, dict) or item.get("field") not in _WHERE_FIELDS or item.get("type") not in _WHERE_TYPES:
            error(
                spot,
                "a filter needs `field` ("
                + ", ".join(_WHERE_FIELDS)
                + ") and `type` ("
                + ", ".join(_WHERE_TYPES)
                + ")",
            )
            ok = False
            continue
        for key in sorted(set(item) - {"field", "type", "value", "values"}, key=str):
            error((*spot, key), f"unknown property `{key}` of a filter")
            ok = False
        if item["type"] in ("IN", "NOT_IN") and not isinstance(item.get("values"), list):
            error(spot, f"`{item['type']}` needs `values` (a list)")
            ok = False
        elif (
            item["type"] not in ("IN", "NOT_IN", "IS_NULL", "IS_NOT_NULL", "IS_TRUE", "IS_FALSE")
            or item["field"] == "EXPRESSION"
        ) and not isinstance(item.get("value"), str):
            error(spot, f"`{item['type']}` on {item['field']} needs `value`")
            ok = False
    return ok


def _where_scope(entry: dict[str, Any], accepted: set[str]) -> tuple[tuple[str, str | None], set[str]]:
    """The assets a `where` entry can listen to: narrowed by AND-ed NAMESPACE and STATE filters."""
    scope: tuple[str, str | None] = ("any", None)
    if entry.get("operand", "AND") != "AND":
        return scope, accepted
    for item in entry["filters"]:
        if item["field"] == "NAMESPACE" and item["type"] == "EQUAL_TO":
            scope = ("namespace", item["value"])
        elif item["field"] == "NAMESPACE" and item["type"] == "STARTS_WITH" and scope[0] == "any":
            scope = namespace_scope(item["value"], "PREFIX")
        elif item["field"] == "STATE" and item["type"] == "EQUAL_TO":
            accepted = accepted & {item["value"]}
        elif item["field"] == "STATE" and item["type"] == "IN":
            accepted = accepted & set(item["values"])
        elif item["field"] == "STATE" and item["type"] == "NOT_IN":
            accepted = accepted - set(item["values"])
        elif item["field"] == "STATE" and item["type"] == "NOT_EQUAL_TO":
            accepted = accepted - {item["value"]}
    return scope, accepted


def where_holds(
    entry: dict[str, Any],
    event: dict[str, Any],
    variables: dict[str, Any],
    render: Callable[[str, dict[str, Any]], str],
) -> bool:
    """Kestra's `FilterCondition` of a `preconditions.where` entry, on an upstream end event."""
    from yaml2dag.expressions import is_truthy_text

    def holds(item: dict[str, Any]) -> bool:
        field = item["field"]
        if field == "EXPRESSION":
            value: str | None = render(str(item.get("value")), variables)
        else:
            value = event.get({"FLOW_ID": "flowId", "NAMESPACE": "namespace", "STATE": "state"}[field])
        wanted = item.get("value")
        kind = item["type"]
        if kind == "EQUAL_TO":
            return wanted == value
        if kind == "NOT_EQUAL_TO":
            return wanted != value
        if kind in ("IN", "NOT_IN"):
            return (value in item["values"]) is (kind == "IN")
        if kind in ("IS_TRUE", "IS_FALSE"):
            return is_truthy_text(value or "") is (kind == "IS_TRUE")
        if kind in ("IS_NULL", "IS_NOT_NULL"):
            return (value is None) is (kind == "IS_NULL")
        if value is None:
            return False
        if kind == "STARTS_WITH":
            return value.startswith(str(wanted))
        if kind == "ENDS_WITH":
            return value.endswith(str(wanted))
        if kind == "CONTAINS":
            return str(wanted) in value
        return re.fullmatch(str(wanted), value) is not None  # REGEX: Java's `matches`

    results = (holds(item) for item in entry["filters"])
    return any(results) if entry.get("operand") == "OR" else all(results)


def _check_preconditions(trigger: Trigger, path: Path, error: ErrorSink) -> None:
    assert trigger.preconditions is not None
    if not trigger.preconditions.resetOnSuccess:
        error(
            (*path, "preconditions", "resetOnSuccess"),
            "`resetOnSuccess: false` is not supported: an Airflow asset schedule always starts afresh",
            "remove it",
        )


def labels_map(labels: Any) -> dict[str, str] | None:
    """Labels written as a map or a list of `{key, value}`, as a map of strings; None when malformed."""
    if isinstance(labels, dict):
        return {str(key): _label_text(value) for key, value in labels.items()}
    if isinstance(labels, list) and all(isinstance(item, dict) and set(item) == {"key", "value"} for item in labels):
        return {str(item["key"]): _label_text(item["value"]) for item in labels}
    return None


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _only_keys(condition: dict[str, Any], allowed: set[str], at: Path, error: ErrorSink) -> None:
    for key in sorted(set(condition) - allowed, key=str):
        error((*at, key), f"unknown property `{key}` for condition `{condition['type']}`")


def _filter_states(accepted: set[str], condition: dict[str, Any], at: Path, error: ErrorSink) -> set[str]:
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


def needs_check(flow: Flow) -> bool:
    """Whether a run started by a Flow trigger must check its triggering event when it starts.

    True when a trigger listens to more than named flows (a namespace, every flow: the flow's own
    end events must be ignored, as Kestra ignores them) or has conditions no asset expresses.
    """
    for index, trigger in enumerate(flow.triggers):
        if trigger.type not in FLOW_TRIGGER_TYPES or trigger.disabled:
            continue
        if any(upstream.scope != "flow" for upstream in flow_upstreams(trigger, ("triggers", index))):
            return True
        kinds = {_condition_kind(condition) for condition in trigger.conditions or []}
        if kinds & {"ExecutionNamespace", "ExecutionLabels", "Expression", "Not", "Or"}:
            return True
        upstreams = [*(trigger.preconditions.flows if trigger.preconditions else []), *(trigger.dependsOn or [])]
        if any(upstream.labels or upstream.when for upstream in upstreams):
            return True
        if trigger.preconditions is not None and trigger.preconditions.where:
            return True
    return False


def trigger_check_specs(flow: Flow) -> list[dict[str, Any]]:
    """What the run-start check of a flow tests, per enabled Flow trigger (plain data for the operator).

    Each spec: `id`, `states` (the upstream end states that count), `conditions` (the trigger's
    Kestra conditions, evaluated on the triggering event) and `upstreams` (the named flows with their
    states, labels and `when`, any of which the event must come from; empty: any flow).
    """
    specs = []
    for index, trigger in enumerate(flow.triggers):
        if trigger.type not in FLOW_TRIGGER_TYPES or trigger.disabled:
            continue
        listened = flow_upstreams(trigger, ("triggers", index))
        named = [*(trigger.preconditions.flows if trigger.preconditions else []), *(trigger.dependsOn or [])]
        by_flow = {(u.namespace, u.flowId): u for u in named}
        upstreams = []
        for upstream in listened:
            if upstream.scope != "flow":
                continue
            declared = by_flow.get((upstream.namespace, upstream.flow_id))
            upstreams.append(
                {
                    "namespace": upstream.namespace,
                    "flowId": upstream.flow_id,
                    "states": list(upstream.states),
                    "labels": labels_map(declared.labels) if declared is not None and declared.labels else {},
                    "when": declared.when if declared is not None else None,
                }
            )
        states = sorted({state for upstream in listened for state in upstream.states})
        conditions = [c for c in trigger.conditions or [] if _condition_kind(c) != "MultipleCondition"]
        where = list(trigger.preconditions.where or []) if trigger.preconditions is not None else []
        specs.append(
            {"id": trigger.id, "states": states, "conditions": conditions, "upstreams": upstreams, "where": where}
        )
    return specs


def event_mismatch(
    spec: dict[str, Any],
    event: dict[str, Any],
    own: tuple[str, str],
    render: Callable[[str, dict[str, Any]], str],
) -> str | None:
    """Why a triggering event does not fire the trigger described by `spec` (None: it fires).

    `event` is the upstream end event's extra (namespace, flowId, state, labels, executionId, ...);
    `own` the (namespace, flowId) of the triggered flow: its own executions never fire it (Kestra);
    `render` renders an expression with variables (Expression conditions, `when`).
    """
    if (event.get("namespace"), event.get("flowId")) == own:
        return "the flow's own execution (a flow never triggers itself)"
    if event.get("state") not in spec["states"]:
        return f"state {event.get('state')} is not one of {', '.join(spec['states'])}"
    variables = condition_variables(event, own)
    if spec["upstreams"]:
        reasons = [_upstream_mismatch(upstream, event, variables, render) for upstream in spec["upstreams"]]
        if all(reasons):
            return "; ".join(str(reason) for reason in reasons)
    from yaml2dag.errors import RenderError

    try:
        for condition in spec["conditions"]:
            if not condition_holds(condition, event, variables, render):
                return f"condition {condition.get('type', '').rsplit('.', 1)[-1]} does not hold"
        for entry in spec.get("where") or []:
            if not where_holds(entry, event, variables, render):
                return f"`where` {entry.get('id')} does not hold"
    except (RenderError, re.error) as exc:
        # Kestra logs a condition that cannot be evaluated and treats it as not met.
        return f"a condition could not be evaluated: {exc}"
    return None


def _upstream_mismatch(
    upstream: dict[str, Any],
    event: dict[str, Any],
    variables: dict[str, Any],
    render: Callable[[str, dict[str, Any]], str],
) -> str | None:
    name = f"{upstream['namespace']}.{upstream['flowId']}"
    if (event.get("namespace"), event.get("flowId")) != (upstream["namespace"], upstream["flowId"]):
        return f"not from {name}"
    if event.get("state") not in upstream["states"]:
        return f"{name} ended {event.get('state')}"
    labels = event.get("labels") or {}
    if any(labels.get(key) != value for key, value in (upstream.get("labels") or {}).items()):
        return f"{name} lacks the labels {upstream['labels']}"
    if upstream.get("when"):
        from yaml2dag.errors import RenderError

        try:
            if not _true(render(upstream["when"], variables)):
                return f"`when` of {name} is false"
        except RenderError as exc:
            return f"`when` of {name} could not be evaluated: {exc}"
    return None


def condition_variables(event: dict[str, Any], own: tuple[str, str]) -> dict[str, Any]:
    """What an Expression condition sees: the triggered `flow`, the upstream `execution`, `trigger`, `labels`."""
    trigger = {key: event[key] for key in _TRIGGER_KEYS if key in event}
    return {
        "flow": {"namespace": own[0], "id": own[1]},
        "execution": {
            "id": event.get("executionId"),
            "namespace": event.get("namespace"),
            "flowId": event.get("flowId"),
            "state": event.get("state"),
        },
        "trigger": trigger,
        "labels": dict(event.get("labels") or {}),
    }


def condition_holds(
    condition: dict[str, Any],
    event: dict[str, Any],
    variables: dict[str, Any],
    render: Callable[[str, dict[str, Any]], str],
) -> bool:
    """Kestra's `Condition.test` of one Flow trigger condition, on an upstream end event."""
    kind = _condition_kind(condition)
    namespace = str(event.get("namespace") or "")
    if kind == "ExecutionFlow":
        return (namespace, event.get("flowId")) == (condition.get("namespace"), condition.get("flowId"))
    if kind == "ExecutionStatus":
        state = event.get("state")
        return (condition.get("in") is None or state in condition["in"]) and state not in (condition.get("notIn") or [])
    if kind == "ExecutionNamespace":
        wanted = str(condition.get("namespace"))
        comparison = _comparison(condition)
        if comparison == "PREFIX":
            return namespace.startswith(wanted)
        if comparison == "SUFFIX":
            return namespace.endswith(wanted)
        return namespace == wanted
    if kind == "ExecutionLabels":
        labels = event.get("labels") or {}
        return all(labels.get(key) == value for key, value in (labels_map(condition.get("labels")) or {}).items())
    if kind == "Expression":
        return _true(render(str(condition.get("expression")), variables))
    if kind == "Not":
        return not any(condition_holds(child, event, variables, render) for child in condition["conditions"])
    if kind == "Or":
        return any(condition_holds(child, event, variables, render) for child in condition["conditions"])
    return True  # MultipleCondition: its flows are the asset condition


def _true(rendered: str) -> bool:
    """Kestra's Expression condition: false when the result is blank or `false`."""
    return not (rendered.strip() == "" or rendered.strip() == "false")


def flow_state_uri(namespace: str, flow_id: str, state: str) -> str:
    """The asset a compiled flow emits when a run ends in Kestra state `state`."""
    return f"kestra://{namespace}/{flow_id}/{state}"


def namespace_state_uri(namespace: str, state: str) -> str:
    """The asset every flow of exactly `namespace` emits when a run ends in `state`."""
    return f"kestra://{namespace}/*/{state}"


def tree_state_uri(namespace: str, state: str) -> str:
    """The asset every flow of `namespace` or a child namespace (`namespace.…`) emits when a run ends in `state`."""
    return f"kestra://{namespace}/**/{state}"


def any_state_uri(state: str) -> str:
    """The asset every flow emits when a run ends in `state`."""
    return f"kestra://**/{state}"


def emitted_uris(namespace: str, flow_id: str, state: str) -> list[str]:
    """Every asset a run of `namespace.flow_id` ending in `state` emits an event on.

    The flow's own asset, its namespace's, one per namespace it is in (`company`, `company.team`
    for `company.team`) and the asset of every flow: Airflow schedules only on exact assets, so
    each kind of Flow trigger (one flow, a namespace, a namespace prefix, any flow) has its own.
    """
    parts = namespace.split(".")
    trees = [tree_state_uri(".".join(parts[: size + 1]), state) for size in range(len(parts))]
    return [
        flow_state_uri(namespace, flow_id, state),
        namespace_state_uri(namespace, state),
        *trees,
        any_state_uri(state),
    ]


def flow_alias_name(namespace: str, flow_id: str) -> str:
    """The asset alias through which a compiled flow emits its end-state assets."""
    return f"kestra://{namespace}/{flow_id}"


_TRIGGER_KEYS = ("executionId", "namespace", "flowId", "flowRevision", "state", "labels")


def flow_trigger_variables(events: Iterable[Any]) -> dict[str, Any] | None:
    """Kestra's `trigger` variables of a run started by a Flow or polling trigger: the latest event's.

    `events` are the run's triggering asset events (`context["triggering_asset_events"]` values,
    flattened): an upstream flow's end event gives `executionId`, `namespace`, …; a polling
    trigger's event its outputs (`body`, `code`, … or `objects`). None when none came from yaml2dag.
    """
    found = [
        event
        for event in events
        if (extra := getattr(event, "extra", None) or {}).get("flowId") or polling_variables(extra) is not None
    ]
    if not found:
        return None
    extra = max(found, key=lambda event: event.timestamp).extra
    polled = polling_variables(extra)
    if polled is not None:
        return polled
    return {key: extra[key] for key in _TRIGGER_KEYS if key in extra}


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
    #: With Schedule `conditions`: each trigger's cron and conditions (fire times failing them are skipped).
    conditional: tuple[Mapping[str, Any], ...] = ()
    #: The polling triggers' assets and watchers (their URIs are among `assets`).
    watchers: tuple[WatcherSpec, ...] = ()


def schedule_spec(flow: Flow) -> ScheduleSpec | None:
    """The schedule of the flow's enabled Schedule and Flow triggers, or None (runs are triggered by hand)."""
    schedules = [t for t in flow.triggers if t.type in SCHEDULE_TYPES and not t.disabled]
    # Validation guarantees that every enabled Schedule trigger uses the same timezone.
    crons = tuple(dict.fromkeys(airflow_cron(t.cron or "", t.withSeconds) for t in schedules))
    zone = schedules[0].timezone if schedules else None
    conditional: tuple[Mapping[str, Any], ...] = ()
    if any(t.conditions for t in schedules):
        conditional = tuple(
            {"cron": airflow_cron(t.cron or "", t.withSeconds), "conditions": list(t.conditions or [])}
            for t in schedules
        )
    watchers = watcher_specs(flow)
    assets = _asset_condition(flow, [watcher.uri for watcher in watchers])
    if not crons and assets is None:
        return None
    return ScheduleSpec(crons, zone, assets, conditional, watchers)


def _asset_condition(flow: Flow, watched: list[str]) -> AssetCondition | None:
    """The asset condition of the flow's enabled Flow triggers and polling triggers' assets (any fires), or None."""

    def any_of(items: list[AssetCondition]) -> AssetCondition:
        return items[0] if len(items) == 1 else ("any", tuple(items))

    conditions: list[AssetCondition] = []
    for index, trigger in enumerate(flow.triggers):
        if trigger.type not in FLOW_TRIGGER_TYPES or trigger.disabled:
            continue
        per_flow = [any_of(list(upstream.uris())) for upstream in flow_upstreams(trigger, ("triggers", index))]
        if not per_flow:
            continue
        if len(per_flow) == 1:
            conditions.append(per_flow[0])
        else:
            conditions.append(("any" if trigger.mode == "ANY" else "all", tuple(per_flow)))
    conditions.extend(watched)
    return any_of(conditions) if conditions else None


def build_schedule(spec: ScheduleSpec | None) -> Any:
    """The Airflow schedule of a `ScheduleSpec`: a cron timetable, an asset condition, both, or None.

    The first run is the first fire time after the DAG appears (never one in the past), and after
    a pause or downtime only the latest missed fire time runs (`catchup=False`).
    """
    from airflow.sdk import AssetOrTimeSchedule

    if spec is None:
        return None
    timetable = _build_timetable(spec) if spec.crons else None
    watchers = {watcher.uri: watcher for watcher in spec.watchers}
    assets = None if spec.assets is None else _build_assets(spec.assets, watchers)
    if timetable is not None and assets is not None:
        return AssetOrTimeSchedule(timetable=timetable, assets=assets)
    return timetable if timetable is not None else assets


def _build_timetable(spec: ScheduleSpec) -> Any:
    from airflow.sdk import CronTriggerTimetable, MultipleCronTriggerTimetable

    zone = spec.timezone or _default_timezone()
    if spec.conditional:
        # Fire times where the conditions fail are skipped by the timetable: no run is created for them.
        from yaml2dag.timetables import KestraScheduleTimetable

        return KestraScheduleTimetable([dict(item) for item in spec.conditional], timezone=str(zone))
    # timedelta(0): a new DAG waits for the next fire time (Kestra does not run a past one).
    never_past = dt.timedelta(0)
    if len(spec.crons) == 1:
        return CronTriggerTimetable(spec.crons[0], timezone=zone, run_immediately=never_past)
    return MultipleCronTriggerTimetable(*spec.crons, timezone=zone, run_immediately=never_past)


def _build_assets(condition: AssetCondition, watchers: Mapping[str, WatcherSpec]) -> Any:
    from airflow.sdk import Asset, AssetAll, AssetAny

    if isinstance(condition, str):
        if condition in watchers:
            return _watched_asset(watchers[condition])
        return Asset(uri=condition)
    kind, items = condition
    return (AssetAny if kind == "any" else AssetAll)(*(_build_assets(item, watchers) for item in items))


def _watched_asset(spec: WatcherSpec) -> Any:
    """A polling trigger's asset, watched by the triggerer running its polling class."""
    import importlib

    from airflow.sdk import Asset, AssetWatcher

    module, name = spec.classpath.rsplit(".", 1)
    trigger_class = getattr(importlib.import_module(module), name)
    return Asset(uri=spec.uri, watchers=[AssetWatcher(name=spec.name, trigger=trigger_class(**spec.kwargs))])


def _default_timezone() -> str:
    from airflow.sdk.configuration import conf

    return conf.get("core", "default_timezone", fallback="utc")
