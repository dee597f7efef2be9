"""Operators of the tasks that act on or read the execution itself: Labels, Fetch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.expressions.values import to_text
from yaml2dag.operators.base import KestraOperator
from yaml2dag.states import LABELS_XCOM_KEY
from yaml2dag.tasktypes.execution import Fetch, Labels


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


#: Kestra's log levels, lowest first, and the Airflow level names each one covers.
_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
_AIRFLOW_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "warn": "WARN", "error": "ERROR"}
_AIRFLOW_LEVELS |= {"critical": "ERROR", "exception": "ERROR", "fatal": "ERROR"}
#: Logger names of the lines a task's own code writes (`self.log` of its operator).
_TASK_LOGGER = "airflow.task.operators."


class FetchOperator(KestraOperator, task_type=Fetch):
    """`io.kestra.plugin.core.log.Fetch`: the run's task log lines into an Ion file; outputs `uri`, `size`.

    Reads Airflow's task log files (`[logging] base_log_folder`, the default `log_filename_template`
    layout `dag_id=…/run_id=…/task_id=…/[map_index=…/]attempt=N.log`), keeping the lines each task's
    own code logged (its operator's logger) at `level` or above, every attempt, in time order. Each
    row is Kestra's LogEntry: namespace, flowId, taskId, executionId, taskRunId, attemptNumber,
    timestamp, level, thread, message.

    :param executionId: the run to read (default: this run); `namespace`/`flowId` name its flow.
    :param tasksId: only these tasks (default: all).
    :param level: the lowest level kept (TRACE, DEBUG, INFO, WARN, ERROR).
    """

    ui_color = "#eef7ee"

    def run(self, context: Any) -> dict[str, Any]:  # noqa: D102
        from yaml2dag import storage
        from yaml2dag.operators.pause import in_dag_test
        from yaml2dag.serdes.ion import IonWriter

        namespace = str(self.namespace or self.flow.namespace)
        flow_id = str(self.flowId or self.flow.id)
        run_id = str(self.executionId or context["dag_run"].run_id)
        if in_dag_test(context) and not self.executionId:
            raise TaskFailure(
                "Fetch reads Airflow's task log files, which `yaml2dag run` (one process, `dag.test()`) does "
                "not write: run the flow on Airflow (scripts/airflow-standalone.sh)"
            )
        folder = _run_log_folder(f"{namespace}.{flow_id}", run_id)
        entries = sorted(
            _entries(folder, namespace, flow_id, run_id, self.tasksId, _LEVELS.index(str(self.level))),
            key=lambda entry: entry["timestamp"],
        )
        with storage.open_write(context, f"{self.task_id}.ion") as (uri, stream):
            writer = IonWriter(stream)
            for entry in entries:
                writer.write(entry)
            writer.flush()
        # DEBUG: Kestra's Fetch logs nothing, so a later Fetch of the same run counts the same lines.
        self.log.debug("Fetched %d log lines of run %s into %s", writer.count, run_id, uri)
        return {"uri": uri, "size": writer.count}


def _run_log_folder(dag_id: str, run_id: str) -> Any:
    """The folder of one run's task logs; `TaskFailure` when Airflow wrote none there."""
    from pathlib import Path

    from airflow.sdk.configuration import conf

    base = Path(conf.get("logging", "base_log_folder"))
    folder = base / f"dag_id={dag_id}" / f"run_id={run_id}"
    if not folder.is_dir():
        raise TaskFailure(
            f"no task logs of run `{run_id}` of `{dag_id}` under {base}: Fetch reads Airflow's local task log "
            "files (the default `log_filename_template`; remote logging is not supported by yaml2dag yet)"
        )
    return folder


def _entries(
    folder: Any, namespace: str, flow_id: str, run_id: str, task_ids: list[str] | None, lowest: int
) -> Iterator[dict[str, Any]]:
    """Kestra LogEntry rows of the task log lines under `folder` at level index `lowest` or above."""
    import datetime as dt

    for path in sorted(folder.glob("task_id=*/**/attempt=*.log")):
        task_id = path.relative_to(folder).parts[0].removeprefix("task_id=")
        if task_id.startswith("_") or (task_ids is not None and task_id not in task_ids):
            continue
        attempt = int(path.stem.removeprefix("attempt="))
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            level = _AIRFLOW_LEVELS.get(str(record.get("level", "")).lower())
            if not str(record.get("logger", "")).startswith(_TASK_LOGGER) or level is None:
                continue
            if _LEVELS.index(level) < lowest:
                continue
            yield {
                "namespace": namespace,
                "flowId": flow_id,
                "taskId": task_id,
                "executionId": run_id,
                "taskRunId": str(record.get("ti_id", "")),
                "attemptNumber": attempt - 1,
                "triggerId": None,
                "timestamp": dt.datetime.fromisoformat(str(record.get("timestamp")).replace("Z", "+00:00")),
                "level": level,
                "thread": str(record.get("logger", "")),
                "message": str(record.get("event", "")),
            }
