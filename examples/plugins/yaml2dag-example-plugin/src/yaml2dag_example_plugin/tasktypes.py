"""Declarations: what a flow may write under `type: io.kestra.plugin.example.Greet` (imported at parse time)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from yaml2dag.tasktypes.base import TaskBase, Text, choice, rendered


class Greet(TaskBase):
    """Greet `name` (rendered) in `language`: outputs `greeting` and `length`."""

    TYPES: ClassVar = ("io.kestra.plugin.example.Greet",)
    OPERATOR: ClassVar = "yaml2dag_example_plugin.operators:GreetOperator"

    name: Text = rendered(description="Who to greet.")
    language: choice("en", "fr") = Field("en", description="Greeting language.")  # type: ignore[valid-type]
    shout: bool = Field(False, description="Upper-case the greeting.")


#: What the entry point registers.
TASK_TYPES = (Greet,)
