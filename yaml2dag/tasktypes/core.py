"""Kestra core task types: Log, Fail, Assert, Sleep, Return, OutputValues."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from yaml2dag.tasktypes.base import DurationText, TaskBase, Text, TextOrTextList, choice

_CORE = "yaml2dag.operators.core"


class Log(TaskBase):
    """Log one message, or each message of a list, at `level`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log")
    OPERATOR: ClassVar = f"{_CORE}:LogOperator"
    DYNAMIC: ClassVar = ("message", "level")

    message: TextOrTextList = Field(description="Message to log, or a list of messages logged one per line.")
    level: choice("TRACE", "DEBUG", "INFO", "WARN", "ERROR") = Field(  # type: ignore[valid-type]
        default="INFO", description="Log level: TRACE, DEBUG, INFO, WARN or ERROR."
    )

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {"message": self.message, "level": self.level}


class Fail(TaskBase):
    """Fail the execution, always or when `condition` renders truthy."""

    TYPES: ClassVar = ("io.kestra.plugin.core.execution.Fail", "io.kestra.core.tasks.executions.Fail")
    OPERATOR: ClassVar = f"{_CORE}:FailOperator"
    DYNAMIC: ClassVar = ("condition", "errorMessage")

    condition: Text | None = Field(
        default=None,
        description="Fail only when this renders true (not `false`, `0`, `-0` or empty); without it, always fail.",
    )
    errorMessage: Text = Field(default="Task failure", description="Message of the failure.")

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {"condition": self.condition, "error_message": self.errorMessage}


class Assert(TaskBase):
    """Check every condition; fail listing those that rendered false."""

    TYPES: ClassVar = ("io.kestra.plugin.core.execution.Assert",)
    OPERATOR: ClassVar = f"{_CORE}:AssertOperator"
    DYNAMIC: ClassVar = ("conditions", "errorMessage")

    conditions: list[Text] = Field(
        min_length=1, description="Expressions that must all render true; each one that does not is logged."
    )
    errorMessage: Text | None = Field(default=None, description="Added to the failure message when a check fails.")

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {"conditions": list(self.conditions), "error_message": self.errorMessage}


class Sleep(TaskBase):
    """Wait for `duration` without holding a worker slot."""

    TYPES: ClassVar = ("io.kestra.plugin.core.flow.Sleep",)
    OPERATOR: ClassVar = f"{_CORE}:SleepOperator"
    DYNAMIC: ClassVar = ("duration",)

    duration: DurationText = Field(description="How long to wait: an ISO-8601 duration such as PT30S or PT5M.")

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {"duration": self.duration}


class Return(TaskBase):
    """Render `format` and return it as output `value`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.debug.Return", "io.kestra.core.tasks.debugs.Return")
    OPERATOR: ClassVar = f"{_CORE}:ReturnOperator"
    DYNAMIC: ClassVar = ("format",)

    format: Text | None = Field(default=None, description="Text to render; the result is the output `value`.")

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {"format": self.format}


class OutputValues(TaskBase):
    """Render `values` and return them as output `values`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.output.OutputValues",)
    OPERATOR: ClassVar = f"{_CORE}:OutputValuesOperator"
    DYNAMIC: ClassVar = ("values",)

    values: dict[str, Any] | str = Field(
        default_factory=dict,
        description="Values to render and output as `values`: a map, or an expression rendering to a JSON object.",
    )

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        return {"values": self.values}


TASK_TYPES: tuple[type[TaskBase], ...] = (Log, Fail, Assert, Sleep, Return, OutputValues)
