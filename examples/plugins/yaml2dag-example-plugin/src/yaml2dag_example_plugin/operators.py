"""Behaviour: the operator, imported only when the task runs (or the DAG is built)."""

from __future__ import annotations

from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag_example_plugin.tasktypes import Greet

_WORDS = {"en": "Hello", "fr": "Bonjour"}


class GreetOperator(KestraOperator, task_type=Greet):
    """`io.kestra.plugin.example.Greet`: log and output a greeting."""

    def run(self, context: Any) -> dict[str, Any]:
        if not str(self.name).strip():
            raise TaskFailure("`name` rendered to an empty string")
        greeting = f"{_WORDS[self.language]}, {self.name}!"
        if self.shout:
            greeting = greeting.upper()
        self.log.info("%s", greeting)
        return {"greeting": greeting, "length": len(greeting)}
