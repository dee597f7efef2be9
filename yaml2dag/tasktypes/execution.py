"""Kestra tasks that act on or read the execution itself: Labels (set its labels), Fetch (read its logs)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from yaml2dag.tasktypes.base import TaskBase, Text, choice, rendered

_EXECUTION = "yaml2dag.operators.execution"


class Labels(TaskBase):
    """Add labels to the running execution (later tasks read them as `labels`), overriding equal keys."""

    TYPES: ClassVar = ("io.kestra.plugin.core.execution.Labels", "io.kestra.core.tasks.executions.Labels")
    OPERATOR: ClassVar = f"{_EXECUTION}:LabelsOperator"

    labels: dict[str, Any] | list[dict[str, Any]] | str = rendered(
        description=(
            "Labels to set: a map, a list of `{key, value}`, or an expression rendering to a JSON map; "
            "keys and values are rendered. Keys starting with `system.` are refused."
        ),
    )


class Fetch(TaskBase):
    """Fetch the log lines of this run's tasks (or another run's) at `level` or above into an Ion file."""

    TYPES: ClassVar = ("io.kestra.plugin.core.log.Fetch", "io.kestra.core.tasks.log.Fetch")
    OPERATOR: ClassVar = f"{_EXECUTION}:FetchOperator"

    namespace: Text | None = rendered(None, description="With `executionId`: the namespace of its flow.")
    flowId: Text | None = rendered(None, description="With `executionId`: the id of its flow.")
    executionId: Text | None = rendered(
        None, description="The run whose logs to fetch (an Airflow run id; default: this run)."
    )
    tasksId: list[str] | None = Field(default=None, description="Only the logs of these tasks (default: every task).")
    level: choice("TRACE", "DEBUG", "INFO", "WARN", "ERROR") = Field(  # type: ignore[valid-type]
        default="INFO", description="The lowest level fetched."
    )


TASK_TYPES: tuple[type[TaskBase], ...] = (Labels, Fetch)
