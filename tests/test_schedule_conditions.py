"""Schedule trigger `conditions`: Kestra's condition semantics, and the timetable skipping fire times.

`KestraScheduleTimetable.next_dagrun_info` is called the way Airflow's scheduler calls it, on the
DAG as the scheduler sees it (serialized and deserialized, which needs the `yaml2dag` plugin:
registered here through a plugins folder, in a deployment through the package's entry point).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest

from yaml2dag.compiler import compile_flow
from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.schedule_conditions import conditions_hold

BLUEPRINTS = Path("/work/shared/corpora/blueprints")
C = "io.kestra.plugin.core.condition."
SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"


def flow_text(triggers: str) -> str:
    head = "id: scheduled\nnamespace: tests.schedules\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
    return head + "    message: hi\ntriggers:\n" + textwrap.indent(textwrap.dedent(triggers), "  ")


def blueprint_triggers(name: str) -> str:
    text = (BLUEPRINTS / name).read_text()
    block = text[text.index("\ntriggers:\n") + len("\ntriggers:\n") :]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith(" ") and not line.startswith("#"):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)) + "\n"


def dag_of(text: str):
    return compile_flow(parse_flow_text(text, "flow.yaml"))


@pytest.fixture
def yaml2dag_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Airflow's plugin manager loading the `yaml2dag` plugin from a plugins folder."""
    from airflow import plugins_manager, settings

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "yaml2dag_plugin.py").write_text("from yaml2dag.plugin import Yaml2DagPlugin  # noqa: F401\n")
    monkeypatch.setattr(settings, "PLUGINS_FOLDER", str(folder))
    caches = (plugins_manager._get_plugins, plugins_manager.get_timetables_plugins)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


def scheduler_view(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def fire_times(timetable, after: dt.datetime, count: int) -> list[pendulum.DateTime]:
    """The next `count` runs the scheduler would create after a run at `after` (catch-up order)."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    last = DataInterval(pendulum.instance(after), pendulum.instance(after))
    times = []
    for _ in range(count):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=TimeRestriction(None, None, True)
        )
        times.append(info.run_after)
        last = info.data_interval
    return times


def at(text: str, zone: str = "UTC") -> pendulum.DateTime:
    return pendulum.parse(text, tz=zone)


# --- Kestra's condition semantics -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "date", "holds"),
    [
        ({"type": f"{C}DayWeek", "dayOfWeek": "MONDAY"}, "2026-12-07T11:00", True),
        ({"type": f"{C}DayWeek", "dayOfWeek": "MONDAY"}, "2026-12-08T11:00", False),
        ({"type": f"{C}Weekend"}, "2026-12-05T11:00", True),
        ({"type": f"{C}Weekend"}, "2026-12-04T11:00", False),
        ({"type": f"{C}DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "FIRST"}, "2026-12-07T11:00", True),
        ({"type": f"{C}DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "FIRST"}, "2026-12-14T11:00", False),
        ({"type": f"{C}DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "SECOND"}, "2026-12-14T11:00", True),
        ({"type": f"{C}DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "FOURTH"}, "2026-12-28T11:00", True),
        ({"type": f"{C}DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "LAST"}, "2026-12-28T11:00", True),
        ({"type": f"{C}DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "LAST"}, "2026-12-21T11:00", False),
        ({"type": f"{C}DayWeekInMonth", "dayOfWeek": "SATURDAY", "dayInMonth": "LAST"}, "2027-02-27T11:00", True),
        # TimeBetween compares Java OffsetTimes: the fire time's offset against the bounds' offsets.
        ({"type": f"{C}TimeBetween", "after": "08:00:00+02:00", "before": "17:00:00+02:00"}, "2026-07-01T06:30", True),
        ({"type": f"{C}TimeBetween", "after": "08:00:00+02:00", "before": "17:00:00+02:00"}, "2026-07-01T06:00", False),
        ({"type": f"{C}TimeBetween", "after": "08:00:00+02:00", "before": "17:00:00+02:00"}, "2026-07-01T15:00", False),
        ({"type": f"{C}TimeBetween", "before": "12:00:00Z"}, "2026-07-01T11:59", True),
        ({"type": f"{C}DateTimeBetween", "after": "2026-01-01T00:00:00Z"}, "2026-01-01T00:00", False),
        ({"type": f"{C}DateTimeBetween", "after": "2026-01-01T00:00:00Z"}, "2026-01-01T00:01", True),
        ({"type": f"{C}DateTimeBetween", "before": "2026-01-01T00:00:00+01:00"}, "2025-12-31T23:30", False),
        # The blueprint's `before` 2025-01-01 and `after` 2025-12-31: never true, as on Kestra.
        (
            {"type": f"{C}DateTimeBetween", "before": "2025-01-01T00:00:00Z", "after": "2025-12-31T23:59:59Z"},
            "2025-06-01T11:00",
            False,
        ),
        ({"type": f"{C}Not", "conditions": [{"type": f"{C}DayWeek", "dayOfWeek": "MONDAY"}]}, "2026-12-07T11:00",
         False),
        ({"type": f"{C}PublicHoliday", "country": "FR"}, "2026-07-14T11:00", True),
        ({"type": f"{C}PublicHoliday", "country": "FR"}, "2026-07-15T11:00", False),
        ({"type": f"{C}PublicHoliday", "country": "DE", "subDivision": "BY"}, "2026-01-06T11:00", True),
        ({"type": f"{C}PublicHoliday", "country": "DE", "subDivision": "BE"}, "2026-01-06T11:00", False),
        (
            {"type": f"{C}Or", "conditions": [
                {"type": f"{C}DayWeek", "dayOfWeek": "MONDAY"}, {"type": f"{C}DayWeek", "dayOfWeek": "THURSDAY"}]},
            "2026-12-10T11:00",
            True,
        ),
    ],
)  # fmt: skip
def test_conditions_follow_kestra(condition, date, holds):
    assert conditions_hold([condition], at(date)) is holds


def test_days_are_the_days_of_the_schedule_time_zone():
    """Kestra tests `trigger.date`, a date in the schedule's time zone."""
    monday = {"type": f"{C}DayWeek", "dayOfWeek": "MONDAY"}
    fire = at("2026-12-06T23:30")  # Sunday in UTC, Monday in Berlin
    assert conditions_hold([monday], fire) is False
    assert conditions_hold([monday], fire.in_timezone("Europe/Berlin")) is True


# --- the timetable -------------------------------------------------------------------------------------


def test_the_first_monday_blueprint_runs_only_on_first_mondays(yaml2dag_plugin):
    dag = scheduler_view(dag_of(flow_text(blueprint_triggers("every-monday.yaml"))))
    assert type(dag.timetable).__name__ == "KestraScheduleTimetable"
    runs = fire_times(dag.timetable, at("2026-12-01T00:00"), 4)
    berlin = [run.in_timezone("Europe/Berlin") for run in runs]
    assert [(run.date().isoformat(), run.hour) for run in berlin] == [
        ("2026-12-07", 11),
        ("2027-01-04", 11),
        ("2027-02-01", 11),
        ("2027-03-01", 11),
    ]


def test_a_new_dag_waits_for_the_next_matching_fire_time(yaml2dag_plugin):
    """catchup=False, first run: the next fire time after now where the conditions hold."""
    from airflow.sdk.timezone import utcnow

    dag = scheduler_view(dag_of(flow_text(blueprint_triggers("schedule-condition-dayweek.yaml"))))
    before = utcnow()
    info = dag.next_dagrun_info(last_automated_run_info=None)
    assert info.run_after > before
    assert (info.run_after.day_of_week, info.run_after.hour) == (pendulum.MONDAY, 11)
    assert info.run_after - before <= dt.timedelta(days=7)


def test_skipped_hours_of_the_time_between_blueprint(yaml2dag_plugin):
    """@hourly between 08:00+02:00 and 17:00+02:00 (exclusive): 07:00..14:00 UTC, never 06:00 or 15:00."""
    dag = scheduler_view(dag_of(flow_text(blueprint_triggers("schedule-condition-timebetween.yaml"))))
    runs = fire_times(dag.timetable, at("2026-07-01T00:00"), 10)
    assert [run.in_timezone("UTC").hour for run in runs] == [7, 8, 9, 10, 11, 12, 13, 14, 7, 8]
    assert runs[8].day == 2


def test_or_and_not_blueprints(yaml2dag_plugin):
    or_dag = scheduler_view(dag_of(flow_text(blueprint_triggers("schedule-condition-or.yaml"))))
    days = [run.day_of_week for run in fire_times(or_dag.timetable, at("2026-12-01T00:00"), 4)]
    assert days == [pendulum.THURSDAY, pendulum.MONDAY, pendulum.THURSDAY, pendulum.MONDAY]
    not_dag = scheduler_view(dag_of(flow_text(blueprint_triggers("schedule-condition-not.yaml"))))
    runs = fire_times(not_dag.timetable, at("2026-12-06T12:00"), 6)  # from Sunday noon
    assert pendulum.MONDAY not in [run.day_of_week for run in runs]
    assert runs[0].date().isoformat() == "2026-12-08"


def test_a_date_time_window_starts_at_its_after_date(yaml2dag_plugin):
    text = flow_text(
        f"""\
        - id: s
          type: {SCHEDULE}
          cron: "*/5 * * * *"
          conditions:
            - type: {C}DateTimeBetween
              after: "2027-03-01T10:02:00Z"
              before: "2027-03-01T10:20:00Z"
        """
    )
    dag = scheduler_view(dag_of(text))
    from airflow.timetables.base import DataInterval, TimeRestriction

    runs = fire_times(dag.timetable, at("2026-12-01T00:00"), 3)
    assert [run.isoformat() for run in runs] == [
        "2027-03-01T10:05:00+00:00",
        "2027-03-01T10:10:00+00:00",
        "2027-03-01T10:15:00+00:00",
    ]
    last = DataInterval(runs[-1], runs[-1])
    assert (
        dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=TimeRestriction(None, None, True))
        is None
    ), "no fire time holds after the window: no run is planned"


def test_several_schedules_keep_their_own_conditions(yaml2dag_plugin):
    text = flow_text(
        f"""\
        - id: mondays
          type: {SCHEDULE}
          cron: "0 9 * * *"
          conditions: [{{type: {C}DayWeek, dayOfWeek: MONDAY}}]
        - id: weekends
          type: {SCHEDULE}
          cron: "0 18 * * *"
          conditions: [{{type: {C}Weekend}}]
        """
    )
    dag = scheduler_view(dag_of(text))
    runs = fire_times(dag.timetable, at("2026-12-04T00:00"), 4)  # from Friday
    assert [run.isoformat() for run in runs] == [
        "2026-12-05T18:00:00+00:00",
        "2026-12-06T18:00:00+00:00",
        "2026-12-07T09:00:00+00:00",
        "2026-12-12T18:00:00+00:00",
    ]


def test_fridays_but_not_public_holidays(yaml2dag_plugin):
    """Blueprint weekly-confluence-recap: Fridays 16:00, Not(PublicHoliday US); 2026-07-03 is the observed
    Independence Day (from the `holidays` library)."""
    dag = scheduler_view(dag_of(flow_text(blueprint_triggers("weekly-confluence-recap.yaml"))))
    runs = fire_times(dag.timetable, at("2026-06-20T00:00"), 3)
    assert [run.date().isoformat() for run in runs] == ["2026-06-26", "2026-07-10", "2026-07-17"]


def test_a_schedule_without_conditions_keeps_airflow_cron_timetable():
    dag = dag_of(flow_text(f"- id: s\n  type: {SCHEDULE}\n  cron: '0 9 * * *'\n"))
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"


def test_schedule_with_conditions_and_flow_trigger_combine(yaml2dag_plugin):
    text = flow_text(
        f"""\
        - id: s
          type: {SCHEDULE}
          cron: "0 11 * * *"
          conditions: [{{type: {C}Weekend}}]
        - id: f
          type: io.kestra.plugin.core.trigger.Flow
          dependsOn: [{{namespace: ns, flowId: up, states: [SUCCESS]}}]
        """
    )
    dag = scheduler_view(dag_of(text))
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    runs = fire_times(dag.timetable, at("2026-12-01T00:00"), 2)
    assert [run.date().isoformat() for run in runs] == ["2026-12-05", "2026-12-06"]


# --- refusals ------------------------------------------------------------------------------------------


def only_error(text: str):
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "flow.yaml")
    errors = caught.value.errors
    assert len(errors) == 1, [str(error) for error in errors]
    return errors[0]


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        ("{type: %sPublicHoliday}", "triggers[0].conditions[0]", "needs `country`"),
        ("{type: %sPublicHoliday, country: ZZ}", "triggers[0].conditions[0].country", "ZZ"),
        ("{type: %sPublicHoliday, country: FR, subDivision: XX}", "triggers[0].conditions[0].subDivision", "XX"),
        ("{type: %sHasRetryAttempt, in: [FAILED]}", "triggers[0].conditions[0].type", "not supported on a Schedule"),
        ("{type: %sDayWeek, dayOfWeek: MONDAY, date: '{{ now() }}'}", "triggers[0].conditions[0].date", "trigger.date"),
        ("{type: %sDayWeek, dayOfWeek: MON}", "triggers[0].conditions[0].dayOfWeek", "MONDAY"),
        ("{type: %sDayWeekInMonth, dayOfWeek: MONDAY, dayInMonth: FIFTH}", "triggers[0].conditions[0].dayInMonth", ""),
        ("{type: %sTimeBetween, after: '08:00:00'}", "triggers[0].conditions[0].after", "with an offset"),
        ("{type: %sTimeBetween}", "triggers[0].conditions[0]", "needs `after`, `before`"),
        ("{type: %sDateTimeBetween, before: 2025-01-01}", "triggers[0].conditions[0].before", "date-time"),
        ("{type: %sNot, conditions: []}", "triggers[0].conditions[0]", "non-empty"),
        ("{type: %sExecutionStatus, in: [FAILED]}", "triggers[0].conditions[0].type", "not supported"),
        ("{type: %sWeekend, extra: 1}", "triggers[0].conditions[0].extra", "unknown property"),
    ],
)
def test_schedule_condition_mistakes_are_located_errors(condition, path, message):
    text = flow_text(f"- id: s\n  type: {SCHEDULE}\n  cron: '0 9 * * *'\n  conditions:\n    - {condition % C}\n")
    error = only_error(text)
    assert error.path == path
    assert message in error.message
    assert error.line is not None


def test_compile_shows_the_conditions_of_the_schedule(tmp_path, capsys):
    import json

    from yaml2dag.cli import main

    flow = tmp_path / "flow.yaml"
    flow.write_text(flow_text(blueprint_triggers("every-monday.yaml")))
    assert main(["compile", str(flow), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schedule"] == {
        "timetable": "KestraScheduleTimetable",
        "cron": ["0 11 * * MON"],
        "timezone": "Europe/Berlin",
        "conditions": [["DayWeekInMonth"]],
    }
    assert main(["compile", str(flow)]) == 0
    assert "schedule:        0 11 * * MON (Europe/Berlin) when DayWeekInMonth" in capsys.readouterr().out
