"""Operators of the tasks that act on the execution itself: Labels."""

from __future__ import annotations

import json
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.expressions.values import to_text
from yaml2dag.operators.base import KestraOperator
from yaml2dag.states import LABELS_XCOM_KEY
from yaml2dag.tasktypes.execution import Labels


class LabelsOperator(KestraOperator, task_type=Labels):
    """`io.kestra.plugin.core.execution.Labels`: set labels on the running execution.

    Airflow runs have no labels: the labels are recorded as this task's XCom `kestra_labels`, and
    every later task of the run reads the execution's labels — the flow's, then those of each Labels
    task that ran, in flow order, the later key winning — as `labels`; the run's Flow-trigger events
    carry them too (ExecutionLabels conditions). The output is empty, as in Kestra.

    :param labels: a map, a list of `{key, value}` or a JSON map (rendered); values become text.
    """

    ui_color = "#e8f0fe"

    def run(self, context: Any) -> None:  # noqa: D102
        labels = _as_map(self.labels)
        for key, value in labels.items():
            if key.startswith("system."):
                raise TaskFailure(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
        context["ti"].xcom_push(key=LABELS_XCOM_KEY, value=labels)
        self.log.info("Execution labels set: %s", ", ".join(f"{key}={value}" for key, value in labels.items()))


def _as_map(labels: Any) -> dict[str, str]:
    """The rendered `labels` property as a map of text, as Kestra's Labels task reads it."""
    if isinstance(labels, str):
        try:
            labels = json.loads(labels)
        except ValueError as exc:
            raise TaskFailure(f"`labels` did not render to a JSON map of labels: {exc}") from None
        if not isinstance(labels, dict):
            raise TaskFailure('`labels` must render to a JSON map of labels (`{"key": "value"}`)')
    if isinstance(labels, list):
        pairs = []
        for item in labels:
            if not isinstance(item, dict) or "key" not in item:
                raise TaskFailure(f"`labels` list items must be `{{key, value}}` maps, got {to_text(item)}")
            pairs.append((item["key"], item.get("value")))
        labels = dict(pairs)
    return {to_text(key): to_text(value) for key, value in labels.items()}
