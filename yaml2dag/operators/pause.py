"""Operator for Kestra's `Pause`: Airflow's human-in-the-loop "Required action", with a deadline.

The task writes a human-in-the-loop request (the Airflow UI lists it under Required Actions, with
the `onResume` inputs as a form), then waits without holding a worker slot:

- with `pauseDuration` or `timeout`: deferred on a `DateTimeTrigger` until the first deadline;
  a response given before it resumes the task at once (Airflow resumes deferred HITL tasks);
- with neither: parked in Airflow 3.3's `awaiting_input` state until someone responds.

Also holds what both waiting operators (Pause, Subflow) share: finishing a task after a wait
with the rules of `KestraOperator.execute` (allowFailure, the error for `errorLogs()`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.states import STATE_XCOM_KEY, KestraState
from yaml2dag.tasktypes.base import parse_duration
from yaml2dag.tasktypes.subflow import Pause

#: The one option of the resume form (Airflow's human-in-the-loop requests need at least one).
RESUME_OPTION = "Resume"
#: `triggering_user_name` of the runs `dag.test()` creates (`yaml2dag run` and the test suite).
DAG_TEST_USER = "dag_test"


def in_dag_test(context: Mapping[str, Any]) -> bool:
    """True inside `dag.test()`: one process, no scheduler, no API server for people to answer."""
    return getattr(context["dag_run"], "triggering_user_name", None) == DAG_TEST_USER


def end_warning(operator: KestraOperator, context: Any, reason: str) -> None:
    """End the task WARNING (Airflow: success, XCom `kestra_state`), or SUCCESS with allowWarning."""
    if operator.allow_warning:
        operator.log.info("%s: WARNING, but allowWarning is set: it ends SUCCESS", reason)
        return
    operator.log.warning("%s: the task ends WARNING", reason)
    context["ti"].xcom_push(key=STATE_XCOM_KEY, value=KestraState.WARNING.value)


class PauseOperator(KestraOperator, task_type=Pause):
    """`io.kestra.plugin.core.flow.Pause`: wait for a person to resume the run, or for a deadline.

    :param pauseDuration: resume by itself after this ISO-8601 duration (`delay` in old flows);
        `behavior` then decides the task's state.
    :param behavior: when `pauseDuration` elapses: RESUME (success), WARN (warning), FAIL (failed)
        or CANCEL (the task fails and the flow stops, allowFailure notwithstanding).
    :param onResume: the inputs asked when resuming (flow-input definitions); they become the
        Airflow Params of the resume form, and the values given are the output `onResume`.
    :param resume_timeout: Kestra's `timeout`, the longest wait for a person: when it passes
        first the task fails. (Not Airflow's `execution_timeout`, which would end the wait.)
    """

    ui_color = "#fff0c2"

    resume_timeout: dt.timedelta | None = None

    @property
    def resume_params(self) -> dict[str, dict[str, Any]]:
        """The `onResume` inputs as serialized Airflow Params (the resume form)."""
        from yaml2dag.inputs import build_params
        from yaml2dag.model import FlowInput

        params = build_params([FlowInput.model_validate(item) for item in self.onResume or []])
        # A required input has no value yet: None keeps the definition serializable (the form starts empty).
        return {
            name: {**param.serialize(), "value": param.value if param.has_value else None}
            for name, param in params.items()
        }

    def run(self, context: Any) -> None:  # noqa: D102
        behavior = str(self.behavior).upper()
        if behavior not in ("RESUME", "WARN", "FAIL", "CANCEL"):
            raise TaskFailure(f"invalid behavior `{self.behavior}`: use RESUME, WARN, FAIL or CANCEL")
        deadline, reason = self._deadline()
        if deadline is None and in_dag_test(context):
            raise TaskFailure(
                "this Pause has no pauseDuration or timeout, so only a person can resume it from the Airflow "
                "UI (Required Actions); `yaml2dag run` runs the flow in this process, with no UI: add a "
                "pauseDuration, or run the flow on Airflow (scripts/airflow-standalone.sh)"
            )
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        upsert_hitl_detail(
            ti_id=context["task_instance"].id,
            options=[RESUME_OPTION],
            subject=f"Resume {self.flow.namespace}.{self.flow.id}: task `{self.task_id}` is paused",
            body=self._body(deadline, reason),
            defaults=None,
            multiple=False,
            params=self.resume_params or {},
        )
        if deadline is None:
            from airflow.sdk.exceptions import TaskAwaitingInput

            self.log.info("Paused until someone resumes the run (Airflow UI: Required Actions)")
            raise TaskAwaitingInput(method_name="resume_pause", timeout=None)
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.log.info("Paused until %s (%s), or until someone resumes the run", deadline.isoformat(), reason)
        self.defer(trigger=DateTimeTrigger(moment=deadline), method_name="resume_pause")

    def _deadline(self) -> tuple[dt.datetime | None, str]:
        """When the pause ends by itself, from now, and why: `pauseDuration` or `timeout` (None: never)."""
        wait, reason = self._first_wait()
        return (dt.datetime.now(dt.UTC) + wait, reason) if wait is not None else (None, "")

    def _first_wait(self) -> tuple[dt.timedelta | None, str]:
        """The shorter of `pauseDuration` (then behavior applies) and `timeout` (then the task fails)."""
        waits = []
        if self.pauseDuration:
            try:
                waits.append((parse_duration(str(self.pauseDuration)), "pauseDuration"))
            except ValueError as exc:
                raise TaskFailure(f"`pauseDuration`: {exc}") from None
        if self.resume_timeout is not None:
            waits.append((self.resume_timeout, "timeout"))
        return min(waits, key=lambda wait: wait[0]) if waits else (None, "")

    def _body(self, deadline: dt.datetime | None, reason: str) -> str:
        lines = [self.doc_md or "A Kestra `Pause` task: choose **Resume** to continue the run."]
        if reason == "pauseDuration":
            lines.append(f"Without an answer the run resumes by itself at {deadline} (behavior {self.behavior}).")
        elif reason == "timeout":
            lines.append(f"Without an answer the task fails at {deadline} (timeout).")
        return "\n\n".join(lines)

    def resume_pause(self, context: Any, event: Any = None) -> Any:
        """Called when someone answered, or when the deadline passed."""
        return self.run_guarded(context, lambda: self._after_pause(context, event))

    def _after_pause(self, context: Any, event: Any) -> dict[str, Any] | None:
        if isinstance(event, Mapping) and event.get("error"):
            raise TaskFailure(f"Pause ended without a resume: {event['error']}")
        if isinstance(event, Mapping) and "chosen_options" in event:
            return self._resumed_by_a_person(event)
        if self._first_wait()[1] == "timeout":
            raise TaskFailure(f"Pause timed out: nobody resumed the run within {self._timeout_text()}")
        self._duration_elapsed(context)
        return None

    def _resumed_by_a_person(self, event: Mapping[str, Any]) -> dict[str, Any]:
        values = self._checked_inputs(event.get("params_input") or {})
        user = event.get("responded_by_user") or {}
        who = user.get("name") or user.get("id") if isinstance(user, Mapping) else None
        when = event.get("responded_at")
        when_text = when.isoformat() if isinstance(when, dt.datetime) else (str(when) if when else None)
        self.log.info("Resumed by %s at %s", who or "unknown", when_text)
        outputs: dict[str, Any] = {"resumed": {"by": who, "on": when_text, "to": "RUNNING"}}
        if self.resume_params:
            outputs["onResume"] = values
        return outputs

    def _checked_inputs(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The `onResume` values, each checked against its input's Param (type, allowed values, required)."""
        from airflow.sdk import Param
        from airflow.sdk.exceptions import ParamValidationError

        values: dict[str, Any] = {}
        for name, spec in (self.resume_params or {}).items():
            definition = dict(spec)
            definition.pop("source", None)
            param = Param(definition.pop("value", None), **definition)
            try:
                values[name] = param.resolve(given[name]) if name in given else param.resolve()
            except (ParamValidationError, ValueError, TypeError) as exc:
                raise TaskFailure(f"onResume input `{name}`: {str(exc).splitlines()[0]}") from None
        return values

    def _duration_elapsed(self, context: Any) -> None:
        behavior = str(self.behavior).upper()
        reason = f"pauseDuration {self.pauseDuration} elapsed"
        if behavior == "WARN":
            end_warning(self, context, f"{reason} (behavior WARN)")
        elif behavior == "FAIL":
            raise TaskFailure(f"{reason} (behavior FAIL)")
        elif behavior == "CANCEL":
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{reason} (behavior CANCEL): the run is cancelled")
        else:
            self.log.info("%s: resuming the run", reason)
        return None

    def _timeout_text(self) -> str:
        return str(self.resume_timeout) if self.resume_timeout is not None else "the timeout"
