"""Kestra's states, how they are read from Airflow, and the Kestra ↔ Airflow task-id mapping.

One place for every state rule: `yaml2dag run`, the flowable end tasks, `_flow_state`,
`errorLogs()` / `tasks.<id>.state` and the Flow-trigger events all read states through it.
Airflow has no WARNING: a task that ends WARNING succeeds in Airflow and records
`WARNING_MARK` under the XCom key `STATE_XCOM_KEY`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping


class KestraState(enum.StrEnum):
    """Kestra's execution and task-run states (`State.Type`)."""

    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    QUEUED = "QUEUED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"
    BREAKPOINT = "BREAKPOINT"
    RESUBMITTED = "RESUBMITTED"

    @classmethod
    def read(cls, text: str) -> KestraState:
        """The state named `text`; the Exit task's spelling `CANCELED` is Kestra's CANCELLED."""
        name = str(text).strip().upper()
        return cls.CANCELLED if name == "CANCELED" else cls(name)


#: The states Kestra counts as a run's end (what Flow triggers wait for by default).
TERMINATED = (
    KestraState.SUCCESS,
    KestraState.WARNING,
    KestraState.FAILED,
    KestraState.KILLED,
    KestraState.CANCELLED,
)
#: The end states an Exit task may give a run (its own spelling CANCELED included).
EXIT_STATES = ("SUCCESS", "WARNING", "FAILED", "CANCELED", "KILLED")
#: Exit states that fail the Airflow run.
FAILING_EXIT_STATES = frozenset({"FAILED", "CANCELED", "CANCELLED", "KILLED"})

#: Airflow task-instance states as Kestra names them; states missing here have no Kestra task run.
AIRFLOW_TO_KESTRA: Mapping[str, KestraState] = {
    "success": KestraState.SUCCESS,
    "failed": KestraState.FAILED,
    "skipped": KestraState.SKIPPED,
    "running": KestraState.RUNNING,
    "queued": KestraState.CREATED,
    "scheduled": KestraState.CREATED,
    "deferred": KestraState.RUNNING,
    "up_for_retry": KestraState.RETRYING,
    "up_for_reschedule": KestraState.RUNNING,
    "restarting": KestraState.RESTARTED,
    "awaiting_input": KestraState.PAUSED,
}
#: The Airflow states a task ends in.
ENDED_AIRFLOW_STATES = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})

# --- XCom keys where a task records what Airflow cannot show ------------------------------------

# --- how the tasks yaml2dag adds look in the Airflow UI --------------------------------------------

#: Fill and text colours of the tasks yaml2dag adds (`_flow_state`, `_flow_event`, `_trigger_check`,
#: `<id>.start` without a condition, `<id>.end`): pale grey with grey names, so the flow's own
#: tasks stand out in the graph. The state colour (a failed `_flow_state` is red) stays Airflow's.
INTERNAL_UI_COLOR = "#f5f5f5"
INTERNAL_UI_FGCOLOR = "#757575"
#: First line of their docs (`doc_md`, the task's Details tab).
INTERNAL_DOC = "*Internal task added by yaml2dag* (not a task of the flow)."

#: A task's Kestra state when Airflow's differs (WARNING, recorded by a task that succeeded in Airflow).
STATE_XCOM_KEY = "kestra_state"
#: The error message a failed task leaves for `errorLogs()`.
ERROR_XCOM_KEY = "kestra_error"
#: The state an Exit task ended the execution in.
EXIT_XCOM_KEY = "kestra_exit"
#: A flowable's Kestra outputs (its start task's return value feeds ForEach mapping).
OUTPUTS_XCOM_KEY = "kestra_outputs"
#: XCom key of the labels a `Labels` task set on the execution (a map; later tasks see them in `labels`).
LABELS_XCOM_KEY = "kestra_labels"

# --- task ids -----------------------------------------------------------------------------------

#: The internal task giving the run its Kestra state (fails the run when a main task failed).
STATE_TASK_ID = "_flow_state"
#: The internal task emitting the run's end-state asset event (Flow triggers).
EVENT_TASK_ID = "_flow_event"


def start_task_id(flowable_id: str) -> str:
    """Airflow id of the task that starts a flowable (evaluates its condition or values, applies `runIf`)."""
    return f"{flowable_id}.start"


def flowable_of_start(task_id: str) -> str:
    """The Kestra id of the flowable whose start task is `task_id`."""
    return task_id.removesuffix(".start")


#: A flowable's start records here why its own evaluation failed (its end then fails with it).
START_FAILURE_XCOM_KEY = "kestra_start_failure"


def end_task_id(flowable_id: str) -> str:
    """Airflow id of the task whose state is a flowable's Kestra state."""
    return f"{flowable_id}.end"


def is_internal(task_id: str) -> bool:
    """Whether an Airflow task was added by yaml2dag (Kestra ids never start with `_`)."""
    return task_id.startswith("_")


def state_task_ids(kestra_ids: Iterable[str], flowable_ids: frozenset[str]) -> dict[str, str]:
    """Airflow id of the task holding each Kestra task's state → the Kestra id (a flowable: its end)."""
    return {end_task_id(task_id) if task_id in flowable_ids else task_id: task_id for task_id in kestra_ids}


# --- reading states -----------------------------------------------------------------------------


def task_state(airflow_state: str, recorded: object = None) -> KestraState | None:
    """A task's Kestra state from its Airflow state and the state it recorded (None: no task run)."""
    state = AIRFLOW_TO_KESTRA.get(str(airflow_state))
    if state is KestraState.SUCCESS and is_warning(recorded):
        return KestraState.WARNING
    return state


def is_warning(recorded: object) -> bool:
    """Whether a recorded `STATE_XCOM_KEY` value (one, or one per map index) says WARNING."""
    return KestraState.WARNING.value in _recorded_values(recorded)


def _recorded_values(recorded: object) -> list[object]:
    """The recorded values of a task: one, or one per map index (a list, or a map index → value map)."""
    if isinstance(recorded, dict):
        return list(recorded.values())
    return list(recorded) if isinstance(recorded, list) else [recorded]


#: Recorded states reported instead of Airflow's, worst first (an Exit's state, or WARNING).
_RECORDED_RANK = (KestraState.KILLED, KestraState.FAILED, KestraState.CANCELLED, KestraState.WARNING)


def recorded_state(recorded: object) -> KestraState | None:
    """The worst Kestra state a task recorded under `STATE_XCOM_KEY` (KILLED … WARNING), or None."""
    found = set()
    for value in _recorded_values(recorded):
        try:
            found.add(KestraState.read(str(value)))
        except ValueError:
            continue
    return next((state for state in _RECORDED_RANK if state in found), None)


def reported_state(airflow_state: str, recorded: object = None) -> str:
    """The state shown for a task (`yaml2dag run`, tests): Airflow's, or the Kestra state it recorded.

    A task records a state Airflow cannot show: WARNING (Airflow: success), or the state an Exit
    ended it in (an Exit, or a flowable holding it: KILLED, CANCELLED, FAILED). Lower case, as
    Airflow spells states.
    """
    state = recorded_state(recorded)
    allowed = ("success",) if state is KestraState.WARNING else ("success", "failed")
    if state is None or str(airflow_state) not in allowed:
        return str(airflow_state)
    return state.value.lower()


def failure_reason(states: Mapping[str, object]) -> str | None:
    """Why a scope whose tasks are in these Airflow states is FAILED, or None when it is not.

    A task that has not ended counts as failed: a scope's end runs after its tasks, so this only
    happens when the run was ended around a running task (a user marked the run failed).
    """
    failed = sorted(task for task, state in states.items() if str(state) == "failed")
    if failed or any(str(state) == "upstream_failed" for state in states.values()):
        return f"{', '.join(f'`{task}`' for task in failed) or 'a task'} failed"
    unfinished = sorted(
        f"`{task}` ({state})" for task, state in states.items() if str(state) not in ENDED_AIRFLOW_STATES
    )
    if unfinished:
        return f"{', '.join(unfinished)} had not finished when the run was ended"
    return None


def scope_state(states: Mapping[str, object], recorded: Mapping[str, object]) -> tuple[KestraState, str]:
    """A scope's Kestra state (FAILED, WARNING, SUCCESS) from its tasks' Airflow states and records, and why.

    `recorded`: task id → its `STATE_XCOM_KEY` value. Kestra's rule: FAILED when a task failed,
    else WARNING when one ended WARNING, else SUCCESS.
    """
    reason = failure_reason(states)
    if reason:
        return KestraState.FAILED, reason
    for task_id, value in recorded.items():
        state = recorded_state(value)
        if state is not None and state is not KestraState.WARNING:
            return KestraState.FAILED, f"`{task_id}` ended {state.value}"
    for task_id, value in recorded.items():
        if is_warning(value):
            return KestraState.WARNING, f"`{task_id}` ended WARNING"
    return KestraState.SUCCESS, "every child succeeded or was skipped"
