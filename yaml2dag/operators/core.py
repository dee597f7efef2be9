"""Operators for Kestra's core tasks: Log, Fail, Assert, Sleep, Return, OutputValues, Echo."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from yaml2dag.errors import RenderError, TaskFailure
from yaml2dag.expressions import is_truthy_text
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.base import parse_duration
from yaml2dag.tasktypes.core import Assert, Echo, Fail, Log, OutputValues, Return, Sleep

_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
}


class LogOperator(KestraOperator, task_type=Log):
    """`io.kestra.plugin.core.log.Log`: write each message to the task log.

    :param message: a message, or a list of messages logged one line each.
    :param level: TRACE, DEBUG, INFO (default), WARN or ERROR; logging never fails the task.
    """

    ui_color = "#eef7ee"

    def run(self, context: Any) -> None:  # noqa: D102
        level = _LEVELS.get(str(self.level).upper())
        if level is None:
            raise TaskFailure(f"invalid log level `{self.level}`: use TRACE, DEBUG, INFO, WARN or ERROR")
        messages = self.message if isinstance(self.message, list) else [self.message]
        for message in messages:
            self.log.log(level, "%s", message)


class FailOperator(KestraOperator, task_type=Fail):
    """`io.kestra.plugin.core.execution.Fail`: fail always, or when `condition` renders truthy.

    :param condition: optional expression; the task fails unless it renders false, 0, -0 or empty.
    :param errorMessage: the failure message (default `Task failure`).
    """

    ui_color = "#fde8e8"

    def run(self, context: Any) -> None:  # noqa: D102
        if self.condition is None:
            raise TaskFailure(self.errorMessage)
        if is_truthy_text(self.condition):
            self.log.error("%s", self.errorMessage)
            raise TaskFailure(f"Fail on a condition: {self.errorMessage}")
        self.log.info("Condition `%s` is false: not failing", self.condition)


class AssertOperator(KestraOperator, task_type=Assert):
    """`io.kestra.plugin.core.execution.Assert`: evaluate every condition, fail if any is false.

    Each condition is rendered on its own, so one that cannot be rendered counts as failed and
    the others are still checked; every failure is logged.

    :param conditions: expressions that must render truthy.
    :param errorMessage: added to the failure message; rendered only when an assertion fails.
    """

    ui_color = "#fff4e5"

    def run(self, context: Any) -> None:  # noqa: D102
        failed = 0
        for condition in self.conditions:
            try:
                holds = is_truthy_text(self.render(condition, context))
            except RenderError as exc:
                self.log.error("Assertion `%s` failed: %s", condition, exc)
                failed += 1
                continue
            if holds:
                self.log.info("Assertion `%s` succeeded", condition)
            else:
                self.log.error("Assertion `%s` failed!", condition)
                failed += 1
        if failed:
            message = f"{failed} assertion(s) failed!"
            if self.errorMessage:
                try:
                    message += " " + self.render(self.errorMessage, context)
                except RenderError as exc:
                    message += f" (errorMessage could not be rendered: {exc})"
            raise TaskFailure(message)


class SleepOperator(KestraOperator, task_type=Sleep):
    """`io.kestra.plugin.core.flow.Sleep`: wait without holding a worker slot (deferred to the triggerer).

    :param duration: an ISO-8601 duration such as `PT1S`.
    """

    ui_color = "#f3e8fd"

    def run(self, context: Any) -> None:  # noqa: D102
        try:
            delay = parse_duration(self.duration)
        except ValueError as exc:
            raise TaskFailure(str(exc)) from None
        self.log.info("Waiting for %s", self.duration)
        if delay <= dt.timedelta(0):
            return
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        moment = dt.datetime.now(dt.UTC) + delay
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="resume")

    def resume(self, context: Any, event: Any = None) -> None:
        """Called when the trigger fires: the wait is over."""
        self.log.info("Waited %s", self.duration)


class ReturnOperator(KestraOperator, task_type=Return):
    """`io.kestra.plugin.core.debug.Return`: render `format` into output `value`.

    :param format: the template to render.
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        self.log.info("Returning `%s`", self.format)
        return {"value": self.format}


class OutputValuesOperator(KestraOperator, task_type=OutputValues):
    """`io.kestra.plugin.core.output.OutputValues`: output a map of rendered values as `values`.

    :param values: a map whose string leaves are rendered; or one expression rendering to a JSON map.
    """

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        values = self.values
        if isinstance(values, str):
            try:
                values = json.loads(values)
            except json.JSONDecodeError as exc:
                raise TaskFailure(f"`values` did not render to a JSON map: {exc}") from None
            if not isinstance(values, dict):
                raise TaskFailure("`values` must render to a JSON map")
        return {"values": values}


class EchoOperator(KestraOperator, task_type=Echo):
    """`io.kestra.plugin.core.debug.Echo` (deprecated in Kestra): log the rendered `format` at `level`."""

    ui_color = "#eef7ee"

    def run(self, context: Any) -> None:  # noqa: D102
        level = _LEVELS.get(str(self.level).upper())
        if level is None:
            raise TaskFailure(f"invalid log level `{self.level}`: use TRACE, DEBUG, INFO, WARN or ERROR")
        self.log.log(level, "%s", self.format)
