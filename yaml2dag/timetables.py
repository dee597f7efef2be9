"""`KestraScheduleTimetable`: Kestra's cron schedule with `conditions`, as an Airflow timetable.

A Schedule trigger with `conditions` (DayWeek, DayWeekInMonth, Weekend, TimeBetween, DateTimeBetween, PublicHoliday,
Not, Or) fires only at the cron times where they hold. This timetable wraps Airflow's own
`CronTriggerTimetable` (one per Schedule trigger, each with its conditions) and, in `next_dagrun_info`,
skips every fire time whose conditions do not hold — so no run exists for a skipped time, as in
Kestra. The scheduler and DAG processor deserialize it by name, which Airflow allows only for
timetables a plugin registers: `yaml2dag.plugin.Yaml2DagPlugin` (entry point `airflow.plugins`).

Imported by the DAG processor only for flows with Schedule conditions (never at plain DAG parse).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, TypedDict

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from airflow.timetables.trigger import CronTriggerTimetable

from yaml2dag.schedule_conditions import conditions_hold, earliest_after

#: Fire times tried before giving up on finding one where the conditions hold (None: no run planned).
MAX_SKIPPED = 100_000


class Schedule(TypedDict):
    """One Schedule trigger of the timetable: its 5-field cron and its conditions, as written in the flow."""

    cron: str
    conditions: list[dict[str, Any]]


class KestraScheduleTimetable(Timetable):
    """Cron fire times (Airflow's `CronTriggerTimetable`) where the Kestra Schedule conditions hold.

    :param schedules: one `{"cron": <5 fields>, "conditions": [...]}` per Schedule trigger (any fires);
        the conditions, as written in the flow, must all hold at a fire time for it to start a run.
    :param timezone: IANA name of the schedules' time zone (`trigger.date` is tested in it).
    """

    def __init__(self, schedules: list[dict[str, Any]], *, timezone: str) -> None:
        self.schedules: list[Schedule] = [
            {"cron": str(item["cron"]), "conditions": list(item["conditions"])} for item in schedules
        ]
        self.timezone = timezone
        never_past = dt.timedelta(0)
        self._crons = [
            CronTriggerTimetable(item["cron"], timezone=timezone, run_immediately=never_past) for item in self.schedules
        ]
        self.description = ", ".join(cron.description for cron in self._crons) + ", when the Kestra conditions hold"

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:  # noqa: D102
        return cls(data["schedules"], timezone=data["timezone"])

    def serialize(self) -> dict[str, Any]:  # noqa: D102
        return {"schedules": self.schedules, "timezone": self.timezone}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KestraScheduleTimetable):
            return NotImplemented
        return self.serialize() == other.serialize()

    __hash__ = None  # type: ignore[assignment]

    @property
    def summary(self) -> str:  # noqa: D102
        return ", ".join(item["cron"] for item in self.schedules) + " (with conditions)"

    def validate(self) -> None:  # noqa: D102
        for cron in self._crons:
            cron.validate()

    def infer_manual_data_interval(self, *, run_after: Any) -> DataInterval:  # noqa: D102
        return min(
            (cron.infer_manual_data_interval(run_after=run_after) for cron in self._crons), key=lambda i: i.start
        )

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        """The next fire time of any schedule where its conditions hold (skipped fire times get no run).

        Among the schedules' candidates, the choice is `MultipleCronTriggerTimetable`'s: the earliest
        with catch-up, else the latest one not in the future or, failing that, the earliest.
        """
        infos = [
            info
            for cron, item in zip(self._crons, self.schedules, strict=True)
            if (info := self._next(cron, item["conditions"], last_automated_data_interval, restriction)) is not None
        ]
        if not infos:
            return None
        if restriction.catchup:
            return min(infos, key=lambda info: info.run_after)
        now = time.time()
        return min(infos, key=lambda info: -ts if (ts := info.run_after.timestamp()) <= now else ts)

    def _next(
        self,
        cron: CronTriggerTimetable,
        conditions: list[dict[str, Any]],
        last: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        import pendulum

        zone = pendulum.timezone(self.timezone)
        floor = earliest_after(conditions)
        for _ in range(MAX_SKIPPED):
            info = cron.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
            if info is None:
                return None
            fire_time = info.run_after
            if floor is not None and fire_time <= floor:
                # Nothing holds before a DateTimeBetween's `after`: jump there instead of trying each time.
                jump = pendulum.instance(floor)
                last, floor = DataInterval(jump, jump), None
                continue
            if conditions_hold(conditions, fire_time.in_timezone(zone)):
                return info
            last = DataInterval(fire_time, fire_time)
        return None
