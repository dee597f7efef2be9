"""A ForEach nested in a ForEach body: one run of a child DAG per iteration of the ForEach holding it.

Airflow cannot nest dynamic task mapping, so the nested ForEach is compiled into a child DAG
`<dag id>__<foreach id>` (its values, its mapped body, its end, `_flow_state`). In the parent's
mapped body, `ForEachRunOperator` (task id: the ForEach's id) starts one run of it per iteration,
passing the iteration's value, index and the runs above it in the run's conf
(`yaml2dag.operators.context.Lineage`), and waits for it without holding a worker slot:

- on Airflow's scheduler, the run is created through the execution API (as `TriggerDagRunOperator`
  does) and awaited with `DagStateTrigger` on the triggerer, as a Subflow is;
- inside `dag.test()` (`yaml2dag run`, the tests), where no scheduler runs the child run, the
  trigger runs it itself with `dag.test()` (`DagTestRunTrigger`, run in line by `dag.test()`).

When the child run ends, the task takes the ForEach's Kestra state (its `_flow_state`: FAILED fails
it, WARNING is recorded) and records the outputs of the child's tasks (XCom `kestra_child_outputs`),
which later tasks read keyed by value as Kestra keys them: `outputs.<taskId>[outer][inner]`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from yaml2dag.errors import RenderError, TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.context import CHILD_OUTPUTS_XCOM_KEY, PARENT_CONF_KEY, FlowInfo, Lineage, TaskOutputs
from yaml2dag.operators.pause import in_dag_test
from yaml2dag.properties import parse_duration
from yaml2dag.states import ENDED_AIRFLOW_STATES, STATE_TASK_ID, STATE_XCOM_KEY, KestraState, end_task_id
from yaml2dag.tasktypes.flowable import LoopUntil

if TYPE_CHECKING:
    from airflow.sdk import DAG

#: Seconds between two checks of a child run's state (on the triggerer).
POLL_INTERVAL = 2.0

#: Child DAG id → the child DAG compiled in this process (what `DagTestRunTrigger` runs).
_CHILD_DAGS: dict[str, DAG] = {}


def register_child_dag(dag: DAG) -> None:
    """Remember a compiled child DAG, so that a `dag.test()` run in this process can run it."""
    _CHILD_DAGS[dag.dag_id] = dag


class ForEachRunOperator(BaseOperator):
    """Runs one iteration's nested ForEach as a run of its child DAG and waits for its end.

    :param child_dag_id: the child DAG (`<dag id>__<foreach id>`).
    :param loop_task_id: the task holding the values of the ForEach this task iterates in.
    :param flow: what the tasks of this DAG know about the flow (its inputs, for the child run).
    :param child_flow: what the child DAG's tasks know (where their outputs are).
    :param one_at_a_time: the ForEach holding it runs one iteration at a time (`concurrencyLimit: 1`):
        this iteration's run starts once the earlier iterations' ended, as in Kestra.
    """

    ui_color = "#f3eefc"

    def __init__(
        self,
        *,
        child_dag_id: str,
        loop_task_id: str,
        flow: FlowInfo,
        child_flow: FlowInfo,
        one_at_a_time: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.child_dag_id = child_dag_id
        self.loop_task_id = loop_task_id
        self.flow = flow
        self.child_flow = child_flow
        self.one_at_a_time = one_at_a_time

    def execute(self, context: Any, event: Any = None) -> None:  # noqa: D102
        if self.one_at_a_time and self._earlier_iteration_running(context):
            return
        conf = self._child_conf(context)
        value = conf[PARENT_CONF_KEY]["values"][-1]
        if in_dag_test(context):
            self.log.info("Running `%s` for the value `%s` in this process", self.child_dag_id, value)
            trigger: BaseTrigger = DagTestRunTrigger(dag_id=self.child_dag_id, conf=conf)
        else:
            from airflow.providers.standard.triggers.external_task import DagStateTrigger
            from airflow.utils.state import DagRunState

            run_id = trigger_child_run(self.child_dag_id, conf, "foreach")
            self.log.info("Started run %s of `%s` for the value `%s`", run_id, self.child_dag_id, value)
            trigger = DagStateTrigger(
                dag_id=self.child_dag_id,
                states=[DagRunState.SUCCESS, DagRunState.FAILED],
                run_ids=[run_id],
                poll_interval=POLL_INTERVAL,
            )
        self.defer(trigger=trigger, method_name="resume_loop")

    def _earlier_iteration_running(self, context: Any) -> bool:
        """Wait (True) while an earlier iteration of this task has not ended: check again soon."""
        from airflow.sdk.exceptions import AirflowRescheduleException

        task_instance, run_id = context["ti"], context["dag_run"].run_id
        index = int(getattr(task_instance, "map_index", -1))
        if index <= 0:
            return False
        found = task_instance.get_task_states(
            dag_id=task_instance.dag_id, run_ids=[run_id], task_ids=[self.task_id]
        ).get(run_id, {})
        earlier = {f"{self.task_id}_{before}" for before in range(index)}
        if all(str(state) in ENDED_AIRFLOW_STATES for key, state in found.items() if key in earlier):
            return False
        self.log.info("Waiting for the earlier iterations of `%s` to end (one at a time)", self.task_id)
        if in_dag_test(context):  # dag.test() runs the earlier ones in this same pass
            raise AirflowRescheduleException(dt.datetime.now(dt.UTC))
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(trigger=TimeDeltaTrigger(dt.timedelta(seconds=POLL_INTERVAL)), method_name="execute")
        return True

    def _child_conf(self, context: Any) -> dict[str, Any]:
        """The child run's conf: the flow's inputs and the lineage of the iteration it runs."""
        task_instance, dag_run = context["ti"], context["dag_run"]
        values = task_instance.xcom_pull(task_ids=self.loop_task_id, map_indexes=-1) or []
        index = int(getattr(task_instance, "map_index", -1))
        if not 0 <= index < len(values):
            raise TaskFailure(f"no value for iteration {index} of `{self.loop_task_id}`")
        above = Lineage.of_run(dag_run) or Lineage((), (), ())
        lineage = Lineage(
            runs=(*above.runs, (dag_run.dag_id, dag_run.run_id)),
            values=(*above.values, str(values[index])),
            iterations=(*above.iterations, index),
        )
        params = context.get("params") or {}
        inputs = {name: params[name] for name in self.flow.input_ids if name in params}
        return {**inputs, **lineage.conf()}

    def resume_loop(self, context: Any, event: Any = None) -> None:
        """The child run ended: record its tasks' outputs, then take the nested ForEach's state."""
        from yaml2dag.operators.subflow import _child_run

        run_id, airflow_state = _child_run(event)
        task_instance = context["ti"]
        outputs = TaskOutputs(task_instance, self.child_flow, run=(self.child_dag_id, run_id), prefix=())
        task_instance.xcom_push(key=CHILD_OUTPUTS_XCOM_KEY, value=outputs.collected())
        recorded = task_instance.xcom_pull(
            task_ids=STATE_TASK_ID, dag_id=self.child_dag_id, run_id=run_id, map_indexes=-1
        )
        if self._skipped(task_instance, run_id):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"`{self.task_id}` was skipped in run {run_id} (its runIf is false)")
        if isinstance(recorded, Mapping) and recorded.get("state"):
            state = KestraState.read(str(recorded["state"]))
        else:  # the run ended without its state task (e.g. marked failed in the UI)
            state = KestraState.SUCCESS if airflow_state == "success" else KestraState.FAILED
        self.log.info("Run %s of `%s` ended %s (Airflow: %s)", run_id, self.child_dag_id, state, airflow_state)
        if state is KestraState.WARNING:
            task_instance.xcom_push(key=STATE_XCOM_KEY, value=state.value)
        elif state is not KestraState.SUCCESS:
            raise TaskFailure(f"the iterations of `{self.task_id}` (run {run_id} of `{self.child_dag_id}`) {state}")

    def _skipped(self, task_instance: Any, run_id: str) -> bool:
        """Whether the nested ForEach never started in the child run (`runIf` false: Kestra's SKIPPED)."""
        end = end_task_id(self.task_id)
        found = task_instance.get_task_states(dag_id=self.child_dag_id, run_ids=[run_id], task_ids=[end])
        return str(found.get(run_id, {}).get(end, "")) == "skipped"


def trigger_child_run(child_dag_id: str, conf: dict[str, Any], kind: str) -> str:
    """Create a run of a child DAG through the execution API (as `TriggerDagRunOperator` does); its run id."""
    from airflow.sdk.exceptions import AirflowRuntimeError
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    run_id = f"{kind}__{dt.datetime.now(dt.UTC).isoformat()}_{uuid.uuid4().hex[:8]}"
    try:
        answer = SUPERVISOR_COMMS.send(TriggerDagRun(dag_id=child_dag_id, run_id=run_id, conf=conf))
    except AirflowRuntimeError as exc:
        raise TaskFailure(f"the run of `{child_dag_id}` could not be created: {exc}") from None
    if isinstance(answer, ErrorResponse):
        raise TaskFailure(f"the run of `{child_dag_id}` could not be created: {answer.error} {answer.detail}")
    return run_id


class DagTestRunTrigger(BaseTrigger):
    """Inside `dag.test()` only: run a child DAG to its end with `dag.test()`, then fire its run id and state.

    `dag.test()` runs a deferred task's trigger in line, in the same process, and has no scheduler
    that would run a run created for another DAG; this trigger runs it (in a thread: the child's
    own nested runs start event loops of their own).
    """

    def __init__(self, dag_id: str, conf: dict[str, Any]) -> None:
        super().__init__()
        self.dag_id = dag_id
        self.conf = conf

    def serialize(self) -> tuple[str, dict[str, Any]]:  # noqa: D102
        return f"{type(self).__module__}.{type(self).__qualname__}", {"dag_id": self.dag_id, "conf": self.conf}

    async def run(self) -> AsyncIterator[TriggerEvent]:  # noqa: D102
        dag = _CHILD_DAGS.get(self.dag_id)
        if dag is None:
            raise TaskFailure(f"the child DAG `{self.dag_id}` was not compiled in this process")
        dag_run = await asyncio.to_thread(dag.test, run_conf=self.conf)
        state = str(getattr(dag_run.state, "value", dag_run.state))
        yield TriggerEvent({"run_ids": [dag_run.run_id], dag_run.run_id: state})


#: XCom key of a LoopUntil's task: when its first iteration started (for `maxDuration`).
LOOP_STARTED_XCOM_KEY = "kestra_loop_started"


class LoopUntilOperator(KestraOperator, task_type=LoopUntil):
    """Runs a LoopUntil (`WaitFor`): one run of its child DAG per iteration, until its condition holds.

    As Kestra's `WaitFor` / `ExecutorService` do (core/.../flow/WaitFor.java): after each iteration
    `iterationCount` goes up by one, then the maximums of `checkFrequency` are checked (reached:
    stop, FAILED with `failOnMaxReached`), then `condition` is rendered with that iteration's
    outputs (truthy: stop, SUCCESS); otherwise the next iteration starts after `interval`. A failed
    iteration fails the loop. Its Kestra properties are `LoopUntil`'s (`condition`,
    `checkFrequency`, `failOnMaxReached`).

    :param child_dag_id: the child DAG running one iteration (`<dag id>__<loop id>`).
    :param child_flow: what the child DAG's tasks know (where their outputs are).
    """

    ui_color = "#f3eefc"

    child_dag_id: str
    child_flow: FlowInfo

    @property
    def interval(self) -> str:
        """`checkFrequency.interval`: the wait between two iterations (ISO-8601, default one minute)."""
        return str((self.checkFrequency or {}).get("interval") or "PT1M")

    @property
    def max_iterations(self) -> int | None:
        """`checkFrequency.maxIterations`: the most iterations (None: no limit)."""
        value = (self.checkFrequency or {}).get("maxIterations")
        return None if value is None else int(value)

    @property
    def max_duration(self) -> str | None:
        """`checkFrequency.maxDuration`: the longest time the loop may run (None: no limit)."""
        value = (self.checkFrequency or {}).get("maxDuration")
        return None if value is None else str(value)

    @property
    def fail_on_max_reached(self) -> bool:
        """`failOnMaxReached`: end FAILED (not SUCCESS) when a maximum is reached."""
        return bool(self.failOnMaxReached)

    def run(self, context: Any) -> None:  # noqa: D102
        context["ti"].xcom_push(key=LOOP_STARTED_XCOM_KEY, value=dt.datetime.now(dt.UTC).isoformat())
        context["ti"].xcom_push(key="return_value", value={"iterationCount": 1})
        self.next_iteration(context)

    def _iteration(self, task_instance: Any) -> int:
        """The running iteration, from 1 (Kestra's `iterationCount`, this task's output)."""
        recorded = task_instance.xcom_pull(task_ids=self.task_id, map_indexes=-1)
        return int(recorded["iterationCount"]) if isinstance(recorded, Mapping) else 1

    def next_iteration(self, context: Any, event: Any = None) -> None:
        """Start the run of the next iteration and wait for its end (no worker slot held)."""
        task_instance, dag_run = context["ti"], context["dag_run"]
        iteration = self._iteration(task_instance)
        above = Lineage.of_run(dag_run) or Lineage((), (), ())
        lineage = Lineage(runs=(*above.runs, (dag_run.dag_id, dag_run.run_id)), values=(), iterations=())
        params = context.get("params") or {}
        inputs = {name: params[name] for name in self.flow.input_ids if name in params}
        conf = {**inputs, **lineage.conf()}
        trigger: BaseTrigger
        if in_dag_test(context):
            self.log.info("Running iteration %d of `%s` in this process", iteration, self.task_id)
            trigger = DagTestRunTrigger(dag_id=self.child_dag_id, conf=conf)
        else:
            from airflow.providers.standard.triggers.external_task import DagStateTrigger
            from airflow.utils.state import DagRunState

            run_id = trigger_child_run(self.child_dag_id, conf, "loop")
            self.log.info("Started run %s of `%s` (iteration %d)", run_id, self.child_dag_id, iteration)
            trigger = DagStateTrigger(
                dag_id=self.child_dag_id,
                states=[DagRunState.SUCCESS, DagRunState.FAILED],
                run_ids=[run_id],
                poll_interval=POLL_INTERVAL,
            )
        self.defer(trigger=trigger, method_name="iteration_ended")

    def iteration_ended(self, context: Any, event: Any = None) -> None:
        """An iteration's run ended: record its outputs, then stop or start the next one after `interval`."""
        from yaml2dag.operators.subflow import _child_run

        run_id, airflow_state = _child_run(event)
        task_instance = context["ti"]
        iteration = self._iteration(task_instance)
        outputs = TaskOutputs(task_instance, self.child_flow, run=(self.child_dag_id, run_id), prefix=())
        task_instance.xcom_push(key=CHILD_OUTPUTS_XCOM_KEY, value=outputs.collected())
        state = self._run_state(task_instance, run_id, airflow_state)
        self.log.info("Iteration %d (run %s of `%s`) ended %s", iteration, run_id, self.child_dag_id, state)
        if state not in (KestraState.SUCCESS, KestraState.WARNING):
            self._fail(context, f"iteration {iteration} of `{self.task_id}` (run {run_id}) {state}")
        count = iteration + 1  # Kestra: the count goes up before the maximums and the condition are read
        task_instance.xcom_push(key="return_value", value={"iterationCount": count})
        started = task_instance.xcom_pull(task_ids=self.task_id, key=LOOP_STARTED_XCOM_KEY, map_indexes=-1)
        reached = self._maximum_reached(count, str(started))
        if reached:
            self.log.warning("%s reached after %d iterations", reached, iteration)
            if self.fail_on_max_reached:
                self._fail(context, f"`{self.task_id}`: {reached} reached after {iteration} iterations")
            return
        if self._condition_holds(context):
            self.log.info("Condition true after %d iterations", iteration)
            return
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(trigger=TimeDeltaTrigger(parse_duration(self.interval)), method_name="next_iteration")

    def _fail(self, context: Any, message: str) -> NoReturn:
        """Fail the loop with `message`, recorded for `yaml2dag run` and Kestra's `errorLogs()`."""
        from yaml2dag.operators.base import _record_error

        error = TaskFailure(message)
        _record_error(context, error)
        raise error

    def _run_state(self, task_instance: Any, run_id: str, airflow_state: str) -> KestraState:
        recorded = task_instance.xcom_pull(
            task_ids=STATE_TASK_ID, dag_id=self.child_dag_id, run_id=run_id, map_indexes=-1
        )
        if isinstance(recorded, Mapping) and recorded.get("state"):
            return KestraState.read(str(recorded["state"]))
        return KestraState.SUCCESS if airflow_state == "success" else KestraState.FAILED

    def _maximum_reached(self, count: int, started: str) -> str | None:
        """Which maximum the loop reached (`max iterations`, `max duration`), if any (Kestra's reachedMaximums)."""
        if self.max_iterations is not None and count > self.max_iterations:
            return "max iterations"
        if self.max_duration is not None:
            deadline = dt.datetime.fromisoformat(started) + parse_duration(self.max_duration)
            if deadline < dt.datetime.now(dt.UTC):
                return "max duration"
        return None

    def _condition_holds(self, context: Any) -> bool:
        from yaml2dag.expressions import is_truthy_text, render
        from yaml2dag.operators.context import build_context

        variables = build_context(self.flow, self.task_id, "io.kestra.plugin.core.flow.LoopUntil", context)
        try:
            return is_truthy_text(render(self.condition, variables))
        except RenderError as exc:
            self._fail(context, f"cannot render `condition`: {exc}")
