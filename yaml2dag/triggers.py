"""Flow triggers: checked when the flow is validated, and turned into the DAG's Airflow schedule."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from yaml2dag.model import SCHEDULE_TYPES, Flow

if TYPE_CHECKING:
    from yaml2dag.validation import Collector


def check_triggers(flow: Flow, collector: Collector) -> None:
    """Add an error for every trigger yaml2dag cannot schedule."""
    for index, trigger in enumerate(flow.triggers):
        _check_trigger(trigger, ("triggers", index), collector)
    _check_one_timezone(flow, collector)


def has_schedule(flow: Flow) -> bool:
    """True when an enabled Schedule trigger starts runs (they get only the inputs' defaults)."""
    return any(trigger.type in SCHEDULE_TYPES and not trigger.disabled for trigger in flow.triggers)


def build_timetable(flow: Flow) -> Any:
    """The Airflow timetable of the flow's enabled Schedule triggers, or None (manual runs only)."""
    from airflow.sdk import CronTriggerTimetable, MultipleCronTriggerTimetable

    schedules = [t for t in flow.triggers if t.type in SCHEDULE_TYPES and not t.disabled]
    if not schedules:
        return None
    # Validation guarantees that every enabled Schedule trigger uses the same timezone.
    zone = schedules[0].timezone or _default_timezone()
    if len(schedules) == 1:
        return CronTriggerTimetable(schedules[0].cron, timezone=zone)
    return MultipleCronTriggerTimetable(*(t.cron for t in schedules), timezone=zone)


def _default_timezone() -> str:
    from airflow.sdk.configuration import conf

    return conf.get("core", "default_timezone", fallback="utc")


def _check_trigger(trigger: Any, path: tuple[str | int, ...], collector: Collector) -> None:
    if trigger.type not in SCHEDULE_TYPES:
        collector.add(
            (*path, "type"), f"trigger type `{trigger.type}` is not supported by yaml2dag yet", prefer_key=False
        )
        return
    for extra in sorted(trigger.model_extra or {}):
        collector.add((*path, extra), f"unknown property `{extra}` for a Schedule trigger")
    if not trigger.cron:
        collector.add(path, "missing required property `cron` for a Schedule trigger")
    elif not _valid_cron(trigger.cron):
        collector.add(
            (*path, "cron"),
            f"invalid cron expression `{trigger.cron}`",
            "use 5 fields, e.g. `0 9 * * 1-5`",
            prefer_key=False,
        )
    if trigger.timezone and not _valid_timezone(trigger.timezone):
        collector.add(
            (*path, "timezone"),
            f"unknown time zone `{trigger.timezone}`",
            "use an IANA time zone name such as `Europe/Paris`, `UTC` or `Etc/GMT-2`",
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


def _valid_cron(expression: str) -> bool:
    from croniter import croniter

    return bool(re.fullmatch(r"@(hourly|daily|midnight|weekly|monthly|yearly|annually)", expression)) or (
        len(expression.split()) == 5 and croniter.is_valid(expression)
    )
