"""Operators of Kestra's flowable tasks: the task that starts each flowable, the one that ends it, and Exit.

A flowable is a TaskGroup named after it. Its start task (`<id>.start`, a setup task) applies
`runIf` and decides which children run: it skips the tasks of the branches not taken (If,
Switch) or of the whole group (`runIf` false), or returns the values a ForEach is mapped over.
Its end task (`<id>.end`) gets the flowable's Kestra state from its direct children, as Kestra
does: FAILED when a child failed (local `errors` never rescue it), WARNING, or SUCCESS; then
`allowFailure` and `allowWarning` of the flowable apply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import BaseOperator

from yaml2dag.errors import TaskFailure
from yaml2dag.expressions import is_truthy_text
from yaml2dag.operators.base import KestraOperator
from yaml2dag.states import (
    EXIT_STATES,
    EXIT_XCOM_KEY,
    INTERNAL_UI_COLOR,
    INTERNAL_UI_FGCOLOR,
    OUTPUTS_XCOM_KEY,
    START_FAILURE_XCOM_KEY,
    STATE_XCOM_KEY,
    KestraState,
    end_task_id,
    failure_reason,
    flowable_of_start,
    is_internal,
    scope_state,
    start_task_id,
)
from yaml2dag.tasktypes.flowable import Exit, ForEach, If, Switch


class FlowableStartOperator(KestraOperator):
    """Starts a flowable: with `runIf` false, every task of the flowable is skipped (Kestra: SKIPPED).

    Subclasses choose the branch to run (`choose`); the tasks of the others are skipped.
    `inner_task_ids` and `branches` (branch name → task ids) are set by the compiler once the
    flowable's tasks exist.
    """

    ui_color = "#f3eefc"
    inner_task_ids: Sequence[str] = ()
    branches: Mapping[str, list[str]] = MappingProxyType({})

    def execute(self, context: Any) -> Any:
        """Run the flowable's decision; skip what must not run (also when `runIf` is false)."""
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, DownstreamTasksSkipped

        self._skipped: list[str] = []
        try:
            result = super().execute(context)
        except AirflowSkipException as skip:
            self.log.info("%s: the whole flowable is skipped", skip)
            raise DownstreamTasksSkipped(tasks=_here(context, self.inner_task_ids)) from None
        except (DownstreamTasksSkipped, AirflowFailException):
            raise
        except Exception as exc:  # noqa: BLE001 (any failure of its own evaluation)
            # Kestra: the flowable itself is FAILED (its children never start). Failing this setup
            # would make Airflow mark the whole group upstream_failed, so the end reports it.
            end = end_task_id(flowable_of_start(self.task_id))
            self.log.error("`%s` cannot start: %s", flowable_of_start(self.task_id), exc)
            context["ti"].xcom_push(key=START_FAILURE_XCOM_KEY, value=str(exc))
            inner = [task for task in self.inner_task_ids if task != end]
            raise DownstreamTasksSkipped(tasks=_here(context, inner)) from None
        if self._skipped:
            if result is not None:
                context["ti"].xcom_push(key="return_value", value=result)
            raise DownstreamTasksSkipped(tasks=_here(context, self._skipped))
        return result

    def run(self, context: Any) -> Any:  # noqa: D102
        return None

    def follow(self, context: Any, branch: str | None, outputs: dict[str, Any]) -> None:
        """Keep `branch` (None: none of them), skip the tasks of the other branches, record the outputs."""
        context["ti"].xcom_push(key=OUTPUTS_XCOM_KEY, value=outputs)
        self.log.info("Following `%s`", branch if branch else "no branch")
        self._skipped = sorted({task for name, tasks in self.branches.items() if name != branch for task in tasks})


def _here(context: Any, task_ids: Sequence[str]) -> list[str] | list[tuple[str, int]]:
    """The tasks to skip: inside a ForEach iteration (a mapped start), only at its own map index."""
    map_index = int(getattr(context["ti"], "map_index", -1))
    if map_index < 0:
        return list(task_ids)
    return [(task_id, map_index) for task_id in task_ids]


class IfOperator(FlowableStartOperator, task_type=If):
    """`io.kestra.plugin.core.flow.If`: run `then` when `condition` is true, else `else`.

    :param condition: expression; true unless it renders `false`, `0`, `-0` or empty. Output `evaluationResult`.
    """

    def run(self, context: Any) -> None:  # noqa: D102
        result = is_truthy_text(self.condition)
        self.log.info("Condition rendered `%s`: %s", self.condition, result)
        self.follow(context, "then" if result else "else", {"evaluationResult": result})


class SwitchOperator(FlowableStartOperator, task_type=Switch):
    """`io.kestra.plugin.core.flow.Switch`: run the case equal to `value`, else `defaults`.

    No matching case and no `defaults` fails the Switch. Outputs `value` and `defaults`.

    :param value: expression whose rendered text selects the case.
    """

    def run(self, context: Any) -> None:  # noqa: D102
        case = f"cases.{self.value}"
        if case in self.branches:
            self.follow(context, case, {"value": self.value, "defaults": False})
            return
        if not self.branches.get("defaults"):
            raise TaskFailure(f"Switch value `{self.value}` matches no case and there are no `defaults`")
        self.follow(context, "defaults", {"value": self.value, "defaults": True})


class ForEachValuesOperator(FlowableStartOperator, task_type=ForEach):
    """`io.kestra.plugin.core.flow.ForEach`: render `values`; the loop's tasks are mapped over them.

    Values are de-duplicated and read as text (maps and lists as JSON), as Kestra does.

    :param values: a list, or a JSON array text or expression rendering to one.
    """

    def run(self, context: Any) -> list[str]:  # noqa: D102
        items = self.values
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except ValueError:
                raise TaskFailure(f"`values` rendered `{items[:200]}`, which is not a JSON array") from None
        if not isinstance(items, list):
            raise TaskFailure(f"`values` must be a list, not {type(items).__name__}")
        distinct = list(dict.fromkeys(_as_text(item) for item in items))
        self.log.info("%d value(s): %s", len(distinct), ", ".join(distinct)[:1000])
        _check_map_length(len(distinct))
        return distinct

    def execute(self, context: Any) -> Any:  # noqa: D102
        # The list itself is returned (not a map of outputs): the loop's mapped tasks expand over it.
        return super().execute(context) or []


def _check_map_length(count: int) -> None:
    """Airflow maps a ForEach's tasks over at most `[core] max_map_length` values: say so, naming the setting."""
    from airflow.sdk.configuration import conf

    limit = conf.getint("core", "max_map_length", fallback=1024)
    if count > limit:
        raise TaskFailure(
            f"`values` has {count} distinct values: Airflow runs a ForEach over at most {limit} "
            "(setting [core] max_map_length, AIRFLOW__CORE__MAX_MAP_LENGTH, for the scheduler, API server and "
            "workers alike); raise it or split the values"
        )


def _as_text(item: Any) -> str:
    from yaml2dag.expressions.values import java_string

    if item is None:
        raise TaskFailure("`values` holds a null: every value must be a string, a number or a map")
    if isinstance(item, dict | list):
        return json.dumps(item, separators=(",", ":"), ensure_ascii=False)
    return java_string(item)


class FlowableGateOperator(EmptyOperator):
    """`<id>.start` of a flowable with nothing to evaluate: only opens the flowable's group.

    An `EmptyOperator` (the scheduler completes it without a worker) drawn like yaml2dag's other
    internal tasks.
    """

    ui_color = INTERNAL_UI_COLOR
    ui_fgcolor = INTERNAL_UI_FGCOLOR


class FlowableEndOperator(BaseOperator):
    """Ends a flowable: its Kestra state from its direct children, as Kestra computes it.

    FAILED when a child failed (FAILED → WARNING with `allowFailure` / AllowFailure), else WARNING
    when a child ended WARNING (→ SUCCESS with `allowWarning`), else SUCCESS. When an Exit inside
    it ended the execution, the flowable takes the Exit's state (Kestra: its parents end so).
    When its start was skipped (the flowable never started), it is skipped too; when its start
    failed (its own evaluation: a ForEach's values, an If's condition), it is FAILED.

    :param flowable_id: the Kestra id of the flowable.
    :param child_task_ids: Airflow ids of the tasks holding the children's states.
    :param allow_failure: a failed child makes the flowable WARNING instead of FAILED.
    :param allow_warning: a WARNING flowable ends SUCCESS.
    :param exit_task_ids: the Exit tasks inside the flowable, at any depth.
    """

    ui_color = INTERNAL_UI_COLOR
    ui_fgcolor = INTERNAL_UI_FGCOLOR

    def __init__(
        self,
        *,
        flowable_id: str,
        child_task_ids: Sequence[str],
        allow_failure: bool = False,
        allow_warning: bool = False,
        exit_task_ids: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flowable_id = flowable_id
        self.child_task_ids = list(child_task_ids)
        self.allow_failure = allow_failure
        self.allow_warning = allow_warning
        self.exit_task_ids = list(exit_task_ids)

    def execute(self, context: Any) -> None:  # noqa: D102
        from airflow.sdk.exceptions import AirflowSkipException

        start = start_task_id(self.flowable_id)
        start_state = str(_states(context, [start]).get(start, ""))
        if start_state == "skipped":
            raise AirflowSkipException(f"`{self.flowable_id}` never started: it is skipped")
        exited = _exit_state(context, self.exit_task_ids)
        if exited is not None:
            self._exited(context, exited)
            return
        if start_state in ("failed", "upstream_failed"):
            raise TaskFailure(f"`{self.flowable_id}` FAILED: its start `{start}` {start_state.replace('_', ' ')}")
        start_failure = context["ti"].xcom_pull(task_ids=start, key=START_FAILURE_XCOM_KEY)
        if start_failure:
            raise TaskFailure(f"`{self.flowable_id}` FAILED: {start_failure}")
        state, reason = children_state(context, self.child_task_ids)
        if state is KestraState.FAILED and self.allow_failure:
            self.log.warning("%s, but failures are allowed: `%s` ends WARNING", reason, self.flowable_id)
            state = KestraState.WARNING
        if state is KestraState.WARNING and self.allow_warning:
            state = KestraState.SUCCESS
        if state is KestraState.FAILED:
            raise TaskFailure(f"`{self.flowable_id}` FAILED: {reason}")
        if state is KestraState.WARNING:
            self.log.warning("`%s` ends WARNING", self.flowable_id)
            context["ti"].xcom_push(key=STATE_XCOM_KEY, value=state.value)
        else:
            self.log.info("`%s` ends SUCCESS", self.flowable_id)

    def _exited(self, context: Any, exited: str) -> None:
        """An Exit inside ended the execution: the flowable ends in its state (FAILED, KILLED… fail it)."""
        state = KestraState.read(exited)
        self.log.warning(
            "An Exit inside `%s` ended the execution %s: so does `%s`", self.flowable_id, state, self.flowable_id
        )
        if state is KestraState.SUCCESS:
            return
        context["ti"].xcom_push(key=STATE_XCOM_KEY, value=state.value)
        if state is not KestraState.WARNING:
            raise TaskFailure(f"`{self.flowable_id}` {state.value}: an Exit inside it ended the execution")


def _states(context: Any, task_ids: Sequence[str]) -> dict[str, object]:
    """Airflow states of `task_ids` in this run (this map index only, inside a ForEach iteration)."""
    if not task_ids:
        return {}  # (Airflow reads every task of the run when given no ids)
    task_instance = context["ti"]
    run_id = context["dag_run"].run_id
    map_index = int(getattr(task_instance, "map_index", -1))
    found = task_instance.get_task_states(
        dag_id=task_instance.dag_id,
        run_ids=[run_id],
        task_ids=list(task_ids),
        map_index=map_index if map_index >= 0 else None,
    ).get(run_id, {})
    return dict(found)


def _exit_state(context: Any, exit_task_ids: Sequence[str]) -> str | None:
    """The state an Exit among `exit_task_ids` ended the execution in, or None."""
    for task_id in exit_task_ids:
        recorded = context["ti"].xcom_pull(task_ids=task_id, key=EXIT_XCOM_KEY)
        for state in recorded if isinstance(recorded, list) else [recorded]:
            if state:
                return str(state)
    return None


def children_state(context: Any, task_ids: Sequence[str]) -> tuple[KestraState, str]:
    """The Kestra state (FAILED, WARNING, SUCCESS) of a scope from its tasks' states, and why.

    Reads this map index only when the scope is inside a ForEach iteration.
    """
    task_instance = context["ti"]
    states = _states(context, task_ids)
    if failure_reason(states):
        return scope_state(states, {})
    return scope_state(
        states, {task_id: task_instance.xcom_pull(task_ids=task_id, key=STATE_XCOM_KEY) for task_id in task_ids}
    )


class ExitOperator(KestraOperator, task_type=Exit):
    """`io.kestra.plugin.core.execution.Exit`: end the run now in `state`; nothing else starts.

    Every task that has not started yet is skipped (errors and finally included, as in Kestra);
    the flow's state task then ends the run in `state` (FAILED, CANCELED and KILLED fail it).

    :param state: SUCCESS, WARNING, FAILED, CANCELED or KILLED.
    """

    ui_color = "#fde8e8"
    #: End tasks of the flowables holding this Exit: they run on and take its state.
    parent_end_ids: Sequence[str] = ()
    #: The flow's `afterExecution` tasks: they run after the execution ended, Exit or not.
    after_task_ids: Sequence[str] = ()

    def execute(self, context: Any) -> None:  # noqa: D102
        from airflow.sdk.exceptions import DownstreamTasksSkipped

        super().execute(context)
        state = str(self.state).upper()
        if state not in EXIT_STATES:
            raise TaskFailure(f"`state` rendered `{self.state}`: use SUCCESS, WARNING, FAILED, CANCELED or KILLED")
        self.log.warning("Exit: the execution ends %s; no other task starts", state)
        context["ti"].xcom_push(key=EXIT_XCOM_KEY, value=state)
        if state != KestraState.SUCCESS:
            # Kestra: the Exit task run itself ends in this state (Airflow shows it succeeded).
            context["ti"].xcom_push(key=STATE_XCOM_KEY, value=KestraState.read(state).value)
        # The flow's own state and event tasks still run, and the ends of the flowables holding it.
        keep = {self.task_id, *self.parent_end_ids, *self.after_task_ids}
        others = [task_id for task_id in self.dag.task_ids if task_id not in keep and not is_internal(task_id)]
        raise DownstreamTasksSkipped(tasks=others)

    def run(self, context: Any) -> None:  # noqa: D102
        return None
