"""Kestra `retry` blocks run by Airflow: when a failed task runs again, computed as Kestra computes it.

Kestra decides after each failed attempt whether and when the task runs again
(`TaskRun.nextRetryDate`): no retry once `maxAttempts` attempts were made, else the next attempt
starts `delay` after the failed one ended, unless that is later than `maxDuration` after the first
attempt started. The delay depends on the type (`nextRetryDate` of `Constant`, `Exponential`,
`Random`):

- `constant`: `interval`;
- `exponential`: `interval × int(delayFactor ?? 2) × (n − 1)` after the n-th attempt, capped at
  `maxInterval` — so the first retry is immediate and the waits grow linearly (0, 2, 4, 6 × interval);
- `random`: uniform in `[minInterval, maxInterval)`, in whole milliseconds.

On Airflow, `KestraRetryPolicy` (Airflow 3.3's `retry_policy` hook, evaluated by the worker when
an attempt fails) makes the same decision and hands Airflow the delay; the scheduler then keeps the
task `up_for_retry` until that time, holding no worker slot. The start of the first attempt (for
`maxDuration`) is kept in the task instance's `task_state_store`, which survives retries.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yaml2dag.tasktypes.base import Retry, parse_duration

if TYPE_CHECKING:
    from yaml2dag.tasktypes import TaskBase

#: Kestra retries without limit when `maxAttempts` is not set; Airflow needs a number of retries.
UNLIMITED_RETRIES = 1_000_000
#: `task_state_store` key holding when the first attempt of a task instance started (ISO-8601).
FIRST_ATTEMPT_KEY = "kestra_retry_first_attempt"
_ZERO = dt.timedelta(0)
_DEFAULT_DELAY_FACTOR = 2


@dataclass(frozen=True)
class RetrySchedule:
    """A `retry` block reduced to what deciding a retry needs: plain durations, no YAML."""

    kind: str
    max_attempts: int | None = None
    interval: dt.timedelta = _ZERO
    min_interval: dt.timedelta = _ZERO
    max_interval: dt.timedelta | None = None
    delay_factor: float | None = None
    max_duration: dt.timedelta | None = None

    @classmethod
    def from_retry(cls, retry: Retry) -> RetrySchedule:
        """The schedule of a validated `retry` block."""

        def duration(text: str | None) -> dt.timedelta | None:
            return parse_duration(text) if text is not None else None

        return cls(
            kind=retry.type,
            max_attempts=retry.attempts,
            interval=duration(retry.interval) or _ZERO,
            min_interval=duration(retry.minInterval) or _ZERO,
            max_interval=duration(retry.maxInterval),
            delay_factor=retry.delayFactor,
            max_duration=duration(retry.maxDuration),
        )

    def delay(self, attempts: int, rng: random.Random | None = None) -> dt.timedelta:
        """Kestra's wait between the end of attempt number `attempts` (1-based) and the next one."""
        if self.kind == "constant":
            wait = self.interval
        elif self.kind == "exponential":
            factor = _DEFAULT_DELAY_FACTOR if self.delay_factor is None else int(self.delay_factor)
            wait = self.interval * (factor * (attempts - 1))
            if self.max_interval is not None and wait > self.max_interval:
                wait = self.max_interval
        else:
            low = _milliseconds(self.min_interval)
            high = _milliseconds(self.max_interval or self.min_interval)
            wait = dt.timedelta(milliseconds=(rng or random).randrange(low, high) if high > low else low)
        # A retry date in the past (a negative interval) means "now" for Kestra's executor.
        return max(wait, _ZERO)

    def next_delay(
        self, attempts: int, first_start: dt.datetime, now: dt.datetime, rng: random.Random | None = None
    ) -> dt.timedelta | None:
        """The wait before the next attempt, or None when Kestra would not retry any more."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return None
        wait = self.delay(attempts, rng)
        if self.max_duration is not None and now + wait > first_start + self.max_duration:
            return None
        return wait

    @property
    def retries(self) -> int:
        """Airflow's `retries`: every attempt after the first one (bounded, even when Kestra's is not)."""
        return UNLIMITED_RETRIES if self.max_attempts is None else self.max_attempts - 1


class KestraRetryPolicy:
    """An Airflow `retry_policy` that retries a failed attempt when, and as late as, Kestra would.

    It follows Airflow's `RetryPolicy` interface (`evaluate`, `serialize`, `deserialize`) without
    subclassing it, so that validating a flow does not import Airflow. The decision is made once per
    attempt (the operator asks first, for `allowFailure`) and then reused, so a `random` wait is
    drawn once.
    """

    def __init__(self, schedule: RetrySchedule) -> None:
        self.schedule = schedule
        self._decisions: dict[tuple[str, int], dt.timedelta | None] = {}

    def __repr__(self) -> str:
        return f"KestraRetryPolicy({self.schedule!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KestraRetryPolicy) and other.schedule == self.schedule

    def __hash__(self) -> int:
        return hash(self.schedule)

    def start_attempt(self, context: Any) -> None:
        """Remember when the first attempt started (only `maxDuration` needs it)."""
        store = context.get("task_state_store")
        if self.schedule.max_duration is None or store is None:
            return
        ti = context["ti"]
        if int(ti.try_number or 1) == 1 or store.get(FIRST_ATTEMPT_KEY) is None:
            store.set(FIRST_ATTEMPT_KEY, _started(ti).isoformat())

    def finish(self, context: Any) -> None:
        """Forget the first attempt's start once the task is done (a later clear starts afresh)."""
        store = context.get("task_state_store")
        if self.schedule.max_duration is not None and store is not None:
            store.delete(FIRST_ATTEMPT_KEY)

    def next_delay(self, context: Any) -> dt.timedelta | None:
        """The wait before the next attempt of this failed one, or None when it is the last one."""
        ti = context["ti"]
        attempts = int(ti.try_number or 1)
        key = (str(ti.id), attempts)
        if key not in self._decisions:
            now = dt.datetime.now(dt.UTC)
            decision = self.schedule.next_delay(attempts, self._first_start(context), now)
            self._decisions[key] = decision
            if decision is None:
                self.finish(context)
        return self._decisions[key]

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> Any:
        """Airflow's hook: retry after Kestra's delay, or fail now (no retry left or `maxDuration` passed)."""
        from airflow.sdk.definitions.retry_policy import RetryDecision

        if context is None:
            return RetryDecision.default()
        wait = self.next_delay(context)
        if wait is None:
            return RetryDecision.fail(reason=self.describe(try_number, None))
        return RetryDecision.retry(delay=wait, reason=self.describe(try_number, wait))

    def describe(self, attempts: int, wait: dt.timedelta | None) -> str:
        """The log line of a decision, e.g. `exponential retry: attempt 3 starts in 0.4s`."""
        kind = self.schedule.kind
        if wait is not None:
            return f"{kind} retry: attempt {attempts + 1} starts in {wait.total_seconds():g}s"
        if self.schedule.max_attempts is not None and attempts >= self.schedule.max_attempts:
            return f"{kind} retry: no retry left after {attempts} attempt(s) (maxAttempts)"
        return f"{kind} retry: no retry, the next attempt would start after maxDuration"

    def serialize(self) -> dict[str, Any]:
        """A JSON form (Airflow stores only that a policy exists; the worker re-parses the DAG)."""
        return {
            "__type": type(self).__name__,
            "kind": self.schedule.kind,
            "max_attempts": self.schedule.max_attempts,
            "interval": self.schedule.interval.total_seconds(),
            "min_interval": self.schedule.min_interval.total_seconds(),
            "max_interval": _seconds(self.schedule.max_interval),
            "delay_factor": self.schedule.delay_factor,
            "max_duration": _seconds(self.schedule.max_duration),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> KestraRetryPolicy:
        """The policy `serialize` described."""

        def duration(value: float | None) -> dt.timedelta | None:
            return None if value is None else dt.timedelta(seconds=value)

        return cls(
            RetrySchedule(
                kind=data["kind"],
                max_attempts=data["max_attempts"],
                interval=dt.timedelta(seconds=data["interval"]),
                min_interval=dt.timedelta(seconds=data["min_interval"]),
                max_interval=duration(data["max_interval"]),
                delay_factor=data["delay_factor"],
                max_duration=duration(data["max_duration"]),
            )
        )

    def _first_start(self, context: Any) -> dt.datetime:
        ti = context["ti"]
        store = context.get("task_state_store")
        stored = store.get(FIRST_ATTEMPT_KEY) if store is not None and self.schedule.max_duration else None
        return dt.datetime.fromisoformat(stored) if isinstance(stored, str) else _started(ti)


def retry_arguments(task: TaskBase, inherited: Retry | None = None) -> dict[str, Any]:
    """Operator keyword arguments for the retry that applies to `task`: its own, else `inherited`.

    `inherited` is the retry of the flow (or of a flowable parent). As in Kestra's worker,
    `warningOnRetry` counts only on the task's own retry, and an `allowFailure` task does not take
    an inherited retry: its failure ends WARNING at once, so Kestra has nothing to retry.
    """
    retry = task.retry or (None if task.allowFailure else inherited)
    if retry is None:
        return {}
    return {**retry_arguments_of(retry), "warning_on_retry": bool(task.retry and task.retry.warningOnRetry)}


def retry_arguments_of(retry: Retry) -> dict[str, Any]:
    """Operator keyword arguments running `retry` through Airflow: retries, first delay, Kestra's policy."""
    schedule = RetrySchedule.from_retry(retry)
    first_wait = schedule.min_interval if schedule.kind == "random" else schedule.delay(1)
    return {"retries": schedule.retries, "retry_delay": first_wait, "retry_policy": KestraRetryPolicy(schedule)}


def _started(ti: Any) -> dt.datetime:
    start = getattr(ti, "start_date", None)
    return start if isinstance(start, dt.datetime) else dt.datetime.now(dt.UTC)


def _milliseconds(duration: dt.timedelta) -> int:
    return int(duration / dt.timedelta(milliseconds=1))


def _seconds(duration: dt.timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()
