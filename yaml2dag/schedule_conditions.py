"""Kestra Schedule trigger `conditions` on a fire time: checked at compile time, evaluated by the timetable.

Pure Python (no Airflow import): `check_schedule_conditions` reports located errors, and
`conditions_hold` is Kestra's `ScheduleCondition.test` on `trigger.date` (the fire time, in the
schedule's time zone). `yaml2dag.timetables.KestraScheduleTimetable` skips the fire times where
they do not hold, so no run is created for them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

Path = tuple[str | int, ...]
ErrorSink = Callable[[Path, str, str], None]

_CORE = "io.kestra.plugin.core.condition."
_LEGACY = "io.kestra.core.models.conditions.types."
_NAMES = ("DayWeek", "DayWeekInMonth", "Weekend", "Not", "Or", "TimeBetween", "DateTimeBetween", "PublicHoliday")
#: Schedule condition types yaml2dag compiles (current name, its `…Condition` alias, the legacy name) → short name.
SCHEDULE_CONDITION_TYPES = {
    f"{prefix}{name}{suffix}": name
    for name in _NAMES
    for prefix, suffix in ((_CORE, ""), (_CORE, "Condition"), (_LEGACY, "Condition"))
}
_PROPERTIES = {
    "DayWeek": {"date", "dayOfWeek"},
    "DayWeekInMonth": {"date", "dayOfWeek", "dayInMonth"},
    "Weekend": {"date"},
    "Not": {"conditions"},
    "Or": {"conditions"},
    "TimeBetween": {"date", "after", "before"},
    "DateTimeBetween": {"date", "after", "before"},
    "PublicHoliday": {"date", "country", "subDivision"},
}
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
DAYS_IN_MONTH = ("FIRST", "SECOND", "THIRD", "FOURTH", "LAST")
_TRIGGER_DATE = re.compile(r"^\{\{\s*trigger\.date\s*\}\}$")


def kind_of(condition: Any) -> str | None:
    """The short name (`DayWeek`, `Not`, ...) of a Schedule condition yaml2dag compiles, else None."""
    if not isinstance(condition, dict):
        return None
    return SCHEDULE_CONDITION_TYPES.get(str(condition.get("type")))


def check_schedule_conditions(conditions: Any, at: Path, error: ErrorSink) -> None:
    """Report every Schedule condition, or property, yaml2dag cannot evaluate exactly."""
    if not isinstance(conditions, list):
        error(at, "`conditions` must be a list of conditions", "")
        return
    for index, condition in enumerate(conditions):
        _check(condition, (*at, index), error)


def _check(condition: Any, at: Path, error: ErrorSink) -> None:
    """One Schedule condition: its type, its properties, then what its kind requires (`_KIND_CHECKS`)."""
    kind = kind_of(condition)
    if kind is None:
        name = condition.get("type") if isinstance(condition, dict) else condition
        error(
            (*at, "type") if isinstance(condition, dict) and "type" in condition else at,
            f"condition `{name}` is not supported on a Schedule trigger by yaml2dag",
            "use DayWeek, DayWeekInMonth, Weekend, TimeBetween, DateTimeBetween, PublicHoliday, Not or Or",
        )
        return
    for key in sorted(set(condition) - _PROPERTIES[kind] - {"type", "id", "description"}, key=str):
        error((*at, key), f"unknown property `{key}` for condition `{condition['type']}`", "")
    _check_date(condition, at, error)
    check = _KIND_CHECKS.get(kind)
    if check is not None:
        check(condition, kind, at, error)


def _check_date(condition: dict[str, Any], at: Path, error: ErrorSink) -> None:
    """`date`: only Kestra's default, the fire time (`{{ trigger.date }}`)."""
    date = condition.get("date")
    if date is not None and not (isinstance(date, str) and _TRIGGER_DATE.match(date.strip())):
        error(
            (*at, "date"),
            'only the default `date: "{{ trigger.date }}"` is supported on a Schedule condition',
            "remove `date`: the condition tests the fire time",
        )


def _check_day_of_week(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """DayWeek: `dayOfWeek` is a day name."""
    if condition.get("dayOfWeek") not in DAYS:
        error((*at, "dayOfWeek"), "`dayOfWeek` must be one of " + ", ".join(DAYS), "")


def _check_day_in_month(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """DayWeekInMonth: `dayOfWeek` is a day name and `dayInMonth` FIRST … FOURTH or LAST."""
    _check_day_of_week(condition, kind, at, error)
    if condition.get("dayInMonth") not in DAYS_IN_MONTH:
        error((*at, "dayInMonth"), "`dayInMonth` must be one of " + ", ".join(DAYS_IN_MONTH), "")


def _check_between(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """TimeBetween and DateTimeBetween: `after` and/or `before`, each a time (date-time) with an offset."""
    parse: Callable[[Any], object] = offset_time if kind == "TimeBetween" else zoned_datetime
    example = "08:00:00+02:00" if kind == "TimeBetween" else "2025-01-01T00:00:00Z"
    if condition.get("after") is None and condition.get("before") is None:
        error(at, f"a {kind} condition needs `after`, `before` or both", "")
    for key in ("after", "before"):
        if condition.get(key) is not None and parse(condition[key]) is None:
            error((*at, key), f"`{key}` must be an ISO 8601 {'time' if kind == 'TimeBetween' else 'date-time'} "
                  f"with an offset, e.g. `{example}`", "")  # fmt: skip


def _check_children(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """Not and Or: a non-empty list of `conditions`, each checked in turn."""
    children = condition.get("conditions")
    if not isinstance(children, list) or not children:
        error(at, f"a {kind} condition needs a non-empty list of `conditions`", "")
        return
    for index, child in enumerate(children):
        _check(child, (*at, "conditions", index), error)


def _check_holiday(condition: dict[str, Any], kind: str, at: Path, error: ErrorSink) -> None:
    """PublicHoliday: `country` (required: Kestra defaults to the server locale), a `subDivision` it knows."""
    country, subdivision = condition.get("country"), condition.get("subDivision")
    if not isinstance(country, str) or not country:
        error(at, "a PublicHoliday condition needs `country` (an ISO 3166 code such as `FR`)", "")
        return
    if "{{" in country or (isinstance(subdivision, str) and "{{" in subdivision):
        error(at, "`country` and `subDivision` must be plain values on yaml2dag (no expressions)", "")
        return
    try:
        holiday_calendar(country, subdivision)
    except NotImplementedError as exc:
        error((*at, "subDivision" if subdivision and country.upper() in str(exc) else "country"), str(exc), "")


#: What each kind of Schedule condition requires beyond its known properties (Weekend: nothing).
_KIND_CHECKS: dict[str, Callable[[dict[str, Any], str, Path, ErrorSink], None]] = {
    "DayWeek": _check_day_of_week,
    "DayWeekInMonth": _check_day_in_month,
    "TimeBetween": _check_between,
    "DateTimeBetween": _check_between,
    "PublicHoliday": _check_holiday,
    "Not": _check_children,
    "Or": _check_children,
}


@functools.cache
def holiday_calendar(country: str, subdivision: str | None) -> Any:
    """The public holidays of a country (and subdivision), from the `holidays` library (imported here only)."""
    import holidays

    return holidays.country_holidays(country.upper(), subdiv=subdivision)


def offset_time(value: Any) -> float | None:
    """A Java `OffsetTime` (`08:00:00+02:00`, `Z` for UTC) as Java compares it: seconds of day minus offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.time.fromisoformat(value.strip())
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is None:
        return None
    return _seconds_of_day(parsed) - int(offset.total_seconds())


def zoned_datetime(value: Any) -> dt.datetime | None:
    """A Java `ZonedDateTime` written with an offset (`2025-01-01T00:00:00Z`), else None."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _seconds_of_day(value: dt.time | dt.datetime) -> float:
    return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1_000_000


def conditions_hold(conditions: list[dict[str, Any]], fire_time: dt.datetime) -> bool:
    """Whether every condition holds for a fire time (aware, in the schedule's time zone)."""
    return all(condition_holds(condition, fire_time) for condition in conditions)


def condition_holds(condition: dict[str, Any], fire_time: dt.datetime) -> bool:
    """Kestra's `test` of one Schedule condition on `trigger.date`."""
    kind = kind_of(condition)
    day = fire_time.date()
    if kind == "DayWeek":
        return DAYS[day.weekday()] == condition["dayOfWeek"]
    if kind == "Weekend":
        return day.weekday() >= 5
    if kind == "DayWeekInMonth":
        if DAYS[day.weekday()] != condition["dayOfWeek"]:
            return False
        if condition["dayInMonth"] == "LAST":
            return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
        return (day.day - 1) // 7 == DAYS_IN_MONTH.index(condition["dayInMonth"])
    if kind == "TimeBetween":
        offset = fire_time.utcoffset() or dt.timedelta(0)
        now = _seconds_of_day(fire_time) - offset.total_seconds()
        return _between(now, offset_time(condition.get("after")), offset_time(condition.get("before")))
    if kind == "DateTimeBetween":
        return _between(fire_time, zoned_datetime(condition.get("after")), zoned_datetime(condition.get("before")))
    if kind == "PublicHoliday":
        return day in holiday_calendar(condition["country"], condition.get("subDivision"))
    if kind == "Not":
        return not any(condition_holds(child, fire_time) for child in condition["conditions"])
    if kind == "Or":
        return any(condition_holds(child, fire_time) for child in condition["conditions"])
    raise ValueError(f"unsupported schedule condition {condition.get('type')}")


def _between(value: Any, after: Any, before: Any) -> bool:
    """Strictly after `after` and strictly before `before` (Java's isAfter / isBefore)."""
    return (after is None or value > after) and (before is None or value < before)


def earliest_after(conditions: list[dict[str, Any]]) -> dt.datetime | None:
    """The latest `after` of the top-level DateTimeBetween conditions: no fire time before it can hold."""
    candidates = [
        zoned_datetime(condition.get("after"))
        for condition in conditions
        if kind_of(condition) == "DateTimeBetween" and condition.get("after") is not None
    ]
    found = [value for value in candidates if value is not None]
    return max(found) if found else None
