"""Kestra tasks that act on the execution itself: Labels (set the run's labels)."""

from __future__ import annotations

from typing import Any, ClassVar

from yaml2dag.tasktypes.base import TaskBase, rendered

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


TASK_TYPES: tuple[type[TaskBase], ...] = (Labels,)
