"""The variables a Kestra expression sees (`flow`, `execution`, `outputs`, ...), built from Airflow's context."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from yaml2dag.expressions.values import MISSING
from yaml2dag.inputs import inputs_of_run, nested
from yaml2dag.states import (
    ERROR_XCOM_KEY,
    LABELS_XCOM_KEY,
    OUTPUTS_XCOM_KEY,
    STATE_XCOM_KEY,
    KestraState,
    start_task_id,
    state_task_ids,
    task_state,
)

__all__ = ["ERROR_XCOM_KEY", "OUTPUTS_XCOM_KEY", "STATE_XCOM_KEY"]


@dataclass(frozen=True)
class FlowInfo:
    """What every task of a compiled flow knows about its flow, fixed at compile time."""

    id: str
    namespace: str
    task_ids: frozenset[str]
    variables: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    input_ids: tuple[str, ...] = ()
    revision: int = 1
    #: Each input's type and `dependsOn` (`yaml2dag.inputs.InputSpec`), to read its Param value.
    input_specs: tuple[Any, ...] = ()
    #: Input values of the Schedule triggers (`yaml2dag.inputs.ScheduledInputs`), for scheduled runs.
    scheduled_inputs: tuple[Any, ...] = ()
    #: Ids of the flowable tasks: their state is their `<id>.end` task's, their outputs their `<id>.start` task's.
    flowable_ids: frozenset[str] = frozenset()
    #: Task id → id of the ForEach it runs in (its outputs are keyed by value).
    loop_of: Mapping[str, str] = field(default_factory=dict)
    #: Ids of the `afterExecution` tasks (at any depth): they see the run's final `execution.state`.
    after_execution_ids: frozenset[str] = frozenset()
    #: Ids of the `Labels` tasks, in flow order: the labels they set are the execution's (`labels`).
    labels_task_ids: tuple[str, ...] = ()
    #: Task id → the task running the child DAG that holds it (a ForEach nested in a ForEach).
    carried_by: Mapping[str, str] = field(default_factory=dict)
    #: In a child DAG: the layouts (`yaml2dag.plan.DagLayout`) of the DAGs above it, root first.
    ancestors: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Lineage:
    """Where a child DAG's run sits in the flow's execution (the `yaml2dag_parent` entry of its conf).

    A ForEach nested in a ForEach body runs as a child DAG; each run is one iteration of the
    ForEach holding it, started by the DAG above.
    """

    #: `(dag_id, run_id)` of the runs above this one, the flow's own run first.
    runs: tuple[tuple[str, str], ...]
    #: The values of the iterations this run belongs to, outermost first (one per run above).
    values: tuple[str, ...]
    iterations: tuple[int, ...]

    @classmethod
    def of_run(cls, dag_run: Any) -> Lineage | None:
        """The lineage recorded in a run's conf, or None for a run of the flow itself."""
        conf = getattr(dag_run, "conf", None) or {}
        found = conf.get(PARENT_CONF_KEY) if isinstance(conf, Mapping) else None
        if not isinstance(found, Mapping) or not found.get("runs"):
            return None
        return cls(
            runs=tuple((str(dag_id), str(run_id)) for dag_id, run_id in found["runs"]),
            values=tuple(str(value) for value in found.get("values", ())),
            iterations=tuple(int(index) for index in found.get("iterations", ())),
        )

    def conf(self) -> dict[str, Any]:
        """The conf entry recording this lineage."""
        return {
            PARENT_CONF_KEY: {
                "runs": [list(run) for run in self.runs],
                "values": list(self.values),
                "iterations": list(self.iterations),
            }
        }


#: The conf key of a child DAG run holding its `Lineage`.
PARENT_CONF_KEY = "yaml2dag_parent"
#: XCom key of the task running a nested ForEach: the outputs of the tasks of its child run.
CHILD_OUTPUTS_XCOM_KEY = "kestra_child_outputs"


class TaskOutputs(Mapping[str, Any]):
    """`outputs.<taskId>`: the XCom each task returned, pulled from Airflow only when read.

    A flowable's outputs are its start task's; a task inside a ForEach has one output per value,
    read as `outputs.<taskId>[value]` (nested ForEach: `outputs.<taskId>[outer][inner]`). In a
    child DAG's run, the tasks of the runs above it are read from those runs.
    """

    def __init__(
        self,
        task_instance: Any,
        flow: FlowInfo,
        lineage: Lineage | None = None,
        run: tuple[str, str] | None = None,
        prefix: tuple[str, ...] | None = None,
    ) -> None:
        self._task_instance = task_instance
        self._flow = flow
        self._task_ids = flow.task_ids
        self._lineage = lineage
        #: The `(dag_id, run_id)` read (None: the task's own run).
        self._run = run
        #: The iteration values this run's outputs are keyed under (its lineage's values).
        self._prefix = prefix if prefix is not None else (lineage.values if lineage else ())
        self._cache: dict[str, Any] = {}

    def __getitem__(self, task_id: str) -> Any:
        if task_id not in self._cache:
            pulled = self._find(task_id)
            self._cache[task_id] = MISSING if pulled is None else pulled
        if self._cache[task_id] is MISSING:
            raise KeyError(task_id)
        return self._cache[task_id]

    def _find(self, task_id: str) -> Any:
        own = None
        if task_id in self._task_ids or task_id in self._flow.carried_by:
            local = self._pull(task_id) if task_id in self._task_ids else self._carried(task_id)
            own = _keyed(self._prefix, local) if local is not None else None
        # In a child DAG's run, the iterations that already ended are read from the runs above
        # (`outputs.t.s1` from the run of `s2`), this run's own ones from this run.
        above = self._above(task_id) if self._lineage is not None else None
        return _merged(above, own)

    def _above(self, task_id: str) -> Any:
        """The outputs of `task_id` as the closest run above this one that knows it reads them."""
        assert self._lineage is not None
        depths = range(min(len(self._flow.ancestors), len(self._lineage.runs)))
        for depth in reversed(depths):
            layout = self._flow.ancestors[depth]
            if task_id in layout.task_ids or task_id in layout.carried_by:
                above = FlowInfo(
                    id=self._flow.id,
                    namespace=self._flow.namespace,
                    task_ids=layout.task_ids,
                    flowable_ids=layout.flowable_ids,
                    loop_of=layout.loop_of,
                    carried_by=layout.carried_by,
                )
                run = self._lineage.runs[depth]
                return TaskOutputs(self._task_instance, above, None, run, self._lineage.values[:depth]).get(task_id)
        return None

    def _xcom(self, task_id: str, key: str, map_indexes: Any) -> Any:
        if self._run is None:
            return self._task_instance.xcom_pull(task_ids=task_id, key=key, map_indexes=map_indexes)
        dag_id, run_id = self._run
        return self._task_instance.xcom_pull(
            task_ids=task_id, dag_id=dag_id, run_id=run_id, key=key, map_indexes=map_indexes
        )

    def _pull(self, task_id: str) -> Any:
        flowable = task_id in self._flow.flowable_ids
        source, key = (start_task_id(task_id), OUTPUTS_XCOM_KEY) if flowable else (task_id, "return_value")
        loop = self._flow.loop_of.get(task_id)
        if loop is None:
            if flowable or self._run is not None:
                return self._xcom(source, key, -1)
            return self._task_instance.xcom_pull(task_ids=task_id)
        # Inside a ForEach: one output per value, keyed by the value (as Kestra keys them).
        values = self._loop_values(loop)
        pulled = self._xcom(source, key, range(len(values)))
        by_value = {value: output for value, output in zip(values, pulled or [], strict=False) if output is not None}
        return by_value or None

    def _carried(self, task_id: str) -> Any:
        """The outputs of a task of a child DAG: recorded by the task that ran it, per iteration here."""
        carrier = self._flow.carried_by[task_id]
        loop = self._flow.loop_of.get(carrier)
        if loop is None:
            recorded = self._xcom(carrier, CHILD_OUTPUTS_XCOM_KEY, -1)
            return recorded.get(task_id) if isinstance(recorded, Mapping) else None
        values = self._loop_values(loop)
        pulled = self._xcom(carrier, CHILD_OUTPUTS_XCOM_KEY, range(len(values)))
        by_value = {
            value: recorded[task_id]
            for value, recorded in zip(values, pulled or [], strict=False)
            if isinstance(recorded, Mapping) and recorded.get(task_id) is not None
        }
        return by_value or None

    def _loop_values(self, loop_id: str) -> list[str]:
        return list(self._xcom(start_task_id(loop_id), "return_value", -1) or [])

    def __contains__(self, task_id: object) -> bool:
        try:
            self[task_id]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return (task_id for task_id in sorted(self._task_ids) if task_id in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def collected(self) -> dict[str, Any]:
        """Every output of this DAG's tasks and of the child runs below it (what a parent run records)."""
        found = {}
        for task_id in sorted({*self._task_ids, *self._flow.carried_by}):
            pulled = self._pull(task_id) if task_id in self._task_ids else self._carried(task_id)
            if pulled is not None:
                found[task_id] = pulled
        return found


def _merged(base: Any, own: Any) -> Any:
    """`own` laid over `base`, maps merged key by key (None when both are None)."""
    if isinstance(base, Mapping) and isinstance(own, Mapping):
        return {**base, **{key: _merged(base.get(key), value) for key, value in own.items()}}
    return base if own is None else own


def _keyed(prefix: tuple[str, ...], outputs: Any) -> Any:
    """`outputs` under the iteration values of the runs above (`{outer: {inner: ...}}`)."""
    for value in reversed(prefix):
        outputs = {value: outputs}
    return outputs


def environment_variables() -> dict[str, str]:
    """`envs`: process variables prefixed `ENV_`, prefix stripped and lower-cased."""
    return {key[4:].lower(): value for key, value in os.environ.items() if key.startswith("ENV_")}


def loop_values(task_instance: Any, loop_id: str) -> list[str]:
    """The values of the ForEach `loop_id` in this run (its start task's result), in map-index order."""
    values = task_instance.xcom_pull(task_ids=start_task_id(loop_id), map_indexes=-1)
    return list(values or [])


def _final_state(task_instance: Any) -> str:
    """The run's Kestra state as `_flow_state` recorded it (for `afterExecution` tasks)."""
    from yaml2dag.states import STATE_TASK_ID

    recorded = task_instance.xcom_pull(task_ids=STATE_TASK_ID)
    return str(recorded.get("state", "FAILED")) if isinstance(recorded, dict) else "FAILED"


def build_context(
    flow: FlowInfo,
    task_id: str,
    task_type: str,
    airflow_context: Mapping[str, Any],
    loop_task_id: str | None = None,
    loop_child: bool = False,
) -> dict[str, Any]:
    """The Kestra variables for one task attempt; absent roots stay absent (strict mode).

    Inside a ForEach (`loop_task_id`: the task holding its values) `taskrun.value` is this map
    index's value, also readable as `parent.taskrun.value` from nested tasks.
    """
    dag_run = airflow_context["dag_run"]
    task_instance = airflow_context["ti"]
    lineage = Lineage.of_run(dag_run)
    context: dict[str, Any] = {
        "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
        "execution": {
            "id": dag_run.run_id,
            "originalId": dag_run.run_id,
            "startDate": dag_run.start_date,
            "state": "RUNNING",
        },
        "task": {"id": task_id, "type": task_type},
        "taskrun": {
            "id": str(getattr(task_instance, "id", "")),
            "startDate": getattr(task_instance, "start_date", None),
            "attemptsCount": max(int(getattr(task_instance, "try_number", 1) or 1) - 1, 0),
        },
        "outputs": TaskOutputs(task_instance, flow, lineage),
        "envs": environment_variables(),
    }
    if lineage is not None:  # a child DAG's run is part of the flow's execution
        context["execution"]["id"] = context["execution"]["originalId"] = lineage.runs[0][1]
    if task_id in flow.after_execution_ids:
        context["execution"]["state"] = _final_state(task_instance)
    _iteration(context, task_instance, loop_task_id, lineage, loop_child)
    if flow.variables:
        context["vars"] = flow.variables
    labels = execution_labels(flow.labels, flow.labels_task_ids, task_instance)
    if labels:
        context["labels"] = nested(labels)
    trigger = _trigger(dag_run) or _flow_trigger(dag_run, airflow_context)
    if trigger:
        context["trigger"] = trigger
    if flow.input_specs:
        context["inputs"] = inputs_of_run(flow.input_specs, flow.scheduled_inputs, airflow_context, context)
    elif flow.input_ids:
        params = airflow_context.get("params") or {}
        context["inputs"] = nested({name: params.get(name) for name in flow.input_ids})
    context.update(run_information(flow, task_id, airflow_context))
    return context


def _iteration(
    context: dict[str, Any], task_instance: Any, loop_task_id: str | None, lineage: Lineage | None, loop_child: bool
) -> None:
    """`taskrun.value`, `taskrun.iteration`, `parent` and `parents` of a task in a ForEach iteration.

    `parents` lists the task runs above it that have a value, closest first (Kestra): a task in a
    flowable inside the loop has the flowable's run (this iteration's value) first; a direct child
    of a nested ForEach has that ForEach's run, whose value is the iteration of the ForEach above
    (a child DAG's run knows those from its lineage). A direct child of a top-level ForEach,
    whose parent has no value in Kestra, reads its own value there (yaml2dag's leniency).
    """
    above = [{"taskrun": {"value": value}} for value in reversed(lineage.values)] if lineage else []
    values = (task_instance.xcom_pull(task_ids=loop_task_id, map_indexes=-1) or []) if loop_task_id else []
    index = int(getattr(task_instance, "map_index", -1))
    if loop_task_id is not None and 0 <= index < len(values):
        own = [{"taskrun": {"value": values[index]}}]
        context["taskrun"]["value"] = values[index]
        context["taskrun"]["iteration"] = index
        context["parents"] = (above or own) if loop_child else [*own, *above]
    elif lineage is not None and lineage.values:  # the nested ForEach itself: its parent's iteration
        context["taskrun"]["value"] = lineage.values[-1]
        context["taskrun"]["iteration"] = lineage.iterations[-1] if lineage.iterations else 0
        context["parents"] = above[1:] or above
    else:
        return
    context["parent"] = context["parents"][0]


def execution_labels(
    flow_labels: Mapping[str, str], labels_task_ids: tuple[str, ...], task_instance: Any
) -> dict[str, str]:
    """The execution's labels: the flow's, then those each `Labels` task that ran set (flow order, later wins)."""
    labels = dict(flow_labels)
    for task_id in labels_task_ids:
        pulled = task_instance.xcom_pull(task_ids=task_id, key=LABELS_XCOM_KEY)
        for item in pulled if isinstance(pulled, list) else [pulled]:
            if isinstance(item, dict):
                labels.update(item)
    return labels


def _trigger(dag_run: Any) -> dict[str, Any] | None:
    run_type = str(getattr(dag_run, "run_type", ""))
    if not run_type.lower().endswith("scheduled"):
        return None
    return {
        "date": dag_run.logical_date,
        "next": getattr(dag_run, "data_interval_end", None),
        "previous": getattr(dag_run, "data_interval_start", None),
    }


def _flow_trigger(dag_run: Any, airflow_context: Mapping[str, Any]) -> dict[str, Any] | None:
    """`trigger.*` of a run started by a Flow trigger: the upstream execution that ended."""
    if not str(getattr(dag_run, "run_type", "")).lower().endswith("asset_triggered"):
        return None
    from yaml2dag.triggers import flow_trigger_variables

    events = airflow_context.get("triggering_asset_events") or {}
    return flow_trigger_variables(event for found in events.values() for event in found)


# --- run-time information for `tasks`, `tasksWithState()` and `errorLogs()` --------------------


class TaskStates(Mapping[str, Any]):
    """`tasks.<taskId>.state`: the Kestra state of every other task of the run, read from Airflow once."""

    def __init__(
        self, task_instance: Any, dag_id: str, run_id: str, task_ids: frozenset[str], flowable_ids: frozenset[str]
    ) -> None:
        self._task_instance = task_instance
        self._dag_id = dag_id
        self._run_id = run_id
        self._task_ids = task_ids
        #: Kestra id → the Airflow task holding its state (a flowable's end task).
        self._airflow_ids = state_task_ids(task_ids, flowable_ids)
        self._states: dict[str, dict[str, str]] | None = None

    def _load(self) -> dict[str, dict[str, str]]:
        if self._states is None:
            try:
                found = self._task_instance.get_task_states(
                    dag_id=self._dag_id, run_ids=[self._run_id], task_ids=sorted(self._airflow_ids)
                )
            except Exception:  # noqa: BLE001 - outside a worker (dag.test, tests) there may be no API
                found = {}
            states = found.get(self._run_id, found) if isinstance(found, Mapping) else {}
            self._states = {}
            for airflow_id, airflow_state in states.items():
                state = self._kestra_state(airflow_id, str(airflow_state))
                if airflow_id in self._airflow_ids and state is not None:
                    self._states[self._airflow_ids[airflow_id]] = {"state": state.value}
        return self._states

    def _kestra_state(self, task_id: str, airflow_state: str) -> KestraState | None:
        """Kestra's state of a task; a success that recorded WARNING (allowFailure) is WARNING."""
        recorded = None
        if airflow_state == "success":
            with contextlib.suppress(Exception):
                recorded = self._task_instance.xcom_pull(task_ids=task_id, key=STATE_XCOM_KEY)
        return task_state(airflow_state, recorded)

    def __getitem__(self, task_id: str) -> dict[str, str]:
        return self._load()[task_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class RunInformation:
    """What `errorLogs()` reads: the failed tasks of this run and the error each left in XCom."""

    def __init__(self, flow: FlowInfo, airflow_context: Mapping[str, Any], states: TaskStates) -> None:
        self._flow = flow
        self._task_instance = airflow_context["ti"]
        self._run_id = airflow_context["dag_run"].run_id
        self._states = states

    def error_logs(self) -> list[dict[str, Any]]:
        """One ERROR entry per task that failed, also when allowFailure turned it into WARNING.

        Each entry has `taskId`, `message`, `level`, `flowId`, `namespace` and `executionId`.
        """
        entries = []
        for task_id, details in self._states.items():
            if details.get("state") not in (KestraState.FAILED, KestraState.WARNING):
                continue
            try:
                message = self._task_instance.xcom_pull(task_ids=task_id, key=ERROR_XCOM_KEY)
            except Exception:  # noqa: BLE001 - a missing XCom must not hide the failure itself
                message = None
            entries.append(
                {
                    "namespace": self._flow.namespace,
                    "flowId": self._flow.id,
                    "taskId": task_id,
                    "executionId": self._run_id,
                    "level": "ERROR",
                    "message": str(message) if message is not None else f"Task {task_id} failed",
                }
            )
        return entries


def run_information(flow: FlowInfo, task_id: str, airflow_context: Mapping[str, Any]) -> dict[str, Any]:
    """The `tasks` root (other tasks' states) and the object behind `errorLogs()`; both read lazily."""
    from yaml2dag.expressions.functions import RUN_INFO_KEY

    dag_run = airflow_context["dag_run"]
    dag_id = getattr(dag_run, "dag_id", None) or getattr(airflow_context.get("dag"), "dag_id", "")
    others = frozenset(flow.task_ids - {task_id})
    states = TaskStates(airflow_context["ti"], str(dag_id), dag_run.run_id, others, flow.flowable_ids)
    return {"tasks": states, RUN_INFO_KEY: RunInformation(flow, airflow_context, states)}
