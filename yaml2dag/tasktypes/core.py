"""Kestra core task types: Log, Fail, Assert, Sleep, Return, OutputValues, Echo."""

from __future__ import annotations

from typing import Any, ClassVar

from yaml2dag.tasktypes.base import DurationText, TaskBase, Text, TextOrTextList, choice, rendered

_CORE = "yaml2dag.operators.core"


class Log(TaskBase):
    """Log one message, or each message of a list, at `level`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log")
    OPERATOR: ClassVar = f"{_CORE}:LogOperator"

    message: TextOrTextList = rendered(description="Message to log, or a list of messages logged one per line.")
    level: choice("TRACE", "DEBUG", "INFO", "WARN", "ERROR") = rendered(  # type: ignore[valid-type]
        "INFO", description="Log level: TRACE, DEBUG, INFO, WARN or ERROR."
    )


class Fail(TaskBase):
    """Fail the execution, always or when `condition` renders truthy."""

    TYPES: ClassVar = ("io.kestra.plugin.core.execution.Fail", "io.kestra.core.tasks.executions.Fail")
    OPERATOR: ClassVar = f"{_CORE}:FailOperator"

    condition: Text | None = rendered(
        None,
        description="Fail only when this renders true (not `false`, `0`, `-0` or empty); without it, always fail.",
    )
    errorMessage: Text = rendered("Task failure", description="Message of the failure.")


class Assert(TaskBase):
    """Check every condition; fail listing those that rendered false."""

    TYPES: ClassVar = ("io.kestra.plugin.core.execution.Assert",)
    OPERATOR: ClassVar = f"{_CORE}:AssertOperator"

    # Rendered by the task, one at a time: one that cannot render counts as failed, the others still run.
    conditions: list[Text] = rendered(
        by_task=True,
        min_length=1,
        description="Expressions that must all render true; each one that does not is logged.",
    )
    errorMessage: Text | None = rendered(
        None, by_task=True, description="Added to the failure message when a check fails."
    )


class Sleep(TaskBase):
    """Wait for `duration` without holding a worker slot."""

    TYPES: ClassVar = ("io.kestra.plugin.core.flow.Sleep",)
    OPERATOR: ClassVar = f"{_CORE}:SleepOperator"

    duration: DurationText = rendered(description="How long to wait: an ISO-8601 duration such as PT30S or PT5M.")


class Return(TaskBase):
    """Render `format` and return it as output `value`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.debug.Return", "io.kestra.core.tasks.debugs.Return")
    OPERATOR: ClassVar = f"{_CORE}:ReturnOperator"

    format: Text | None = rendered(None, description="Text to render; the result is the output `value`.")


class OutputValues(TaskBase):
    """Render `values` and return them as output `values`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.output.OutputValues",)
    OPERATOR: ClassVar = f"{_CORE}:OutputValuesOperator"

    values: dict[str, Any] | str = rendered(
        default_factory=dict,
        description="Values to render and output as `values`: a map, or an expression rendering to a JSON object.",
    )


class Echo(TaskBase):
    """Deprecated in Kestra (use Log): log the rendered `format` at `level`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.debug.Echo", "io.kestra.core.tasks.debugs.Echo")
    OPERATOR: ClassVar = f"{_CORE}:EchoOperator"

    format: Text = rendered(description="Text to render and log.")
    level: choice("TRACE", "DEBUG", "INFO", "WARN", "ERROR") = rendered(  # type: ignore[valid-type]
        "INFO", description="Log level: TRACE, DEBUG, INFO, WARN or ERROR."
    )


TASK_TYPES: tuple[type[TaskBase], ...] = (Log, Fail, Assert, Sleep, Return, OutputValues, Echo)
