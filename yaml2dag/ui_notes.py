"""Kestra states Airflow cannot show, written as notes on the task instances and the run.

Airflow has no WARNING state: a task that ends WARNING in Kestra succeeds in Airflow (green) and
records its Kestra state in the XCom `kestra_state` (see `yaml2dag.states`). So that the UI shows
it without opening logs or XComs, this Airflow listener (registered by the `yaml2dag` plugin) runs
in the scheduler when a run of a compiled flow ends and adds a note to

- every task instance whose Kestra state differs from Airflow's (WARNING, or the state of an Exit):
  ``Kestra state: WARNING``, and
- the run, when the flow's Kestra state is not the one Airflow's run state reads as
  (``Kestra state: WARNING`` on a successful run).

Notes are what the grid marks and the task-instance and run pages show (the REST API's `note`).
A note someone already wrote is never replaced. The notes are written in the scheduler's own
database session, in the transaction that records the run's end: no extra connection, no lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

from yaml2dag.states import STATE_TASK_ID, STATE_XCOM_KEY, KestraState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The note's author: shown where the UI shows who wrote a note.
NOTE_AUTHOR = "yaml2dag"
#: Notes by Kestra state; other states get "Kestra state: <STATE>".
_EXPLAINED = {
    KestraState.WARNING: (
        "Kestra state: WARNING. Airflow has no WARNING state: the task is shown as success so the flow "
        "went on, as Kestra does (allowFailure, AllowFailure, Exit, warningOnRetry). Its log says why."
    ),
}
#: The Kestra run states an Airflow run state already says.
_SAID_BY_AIRFLOW = {"success": KestraState.SUCCESS, "failed": KestraState.FAILED}


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """A run ended successfully: note its WARNING tasks (and the run, when it ended WARNING)."""
    annotate_run(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """A run failed: note the tasks whose Kestra state Airflow cannot show."""
    annotate_run(dag_run)


def annotate_run(dag_run: Any) -> None:
    """Write the Kestra-state notes of an ended run of a compiled flow (other DAGs are left alone).

    In the scheduler the run belongs to the scheduler's session: the notes join its transaction.
    A run outside any session (`dag.test()` hands a detached run) is read again in a new session.
    """
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        _annotate(session, dag_run, str(dag_run.state))
        return
    from airflow.utils.session import create_session

    with create_session() as own:
        attached = own.get(type(dag_run), dag_run.id)
        if attached is not None:
            _annotate(own, attached, str(dag_run.state))


def _annotate(session: Session, dag_run: Any, run_state: str) -> None:
    by_key = {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances(session=session)}
    if (STATE_TASK_ID, -1) not in by_key:
        return  # not a compiled flow
    recorded = _recorded_states(session, dag_run.dag_id, dag_run.run_id)
    for key, state in recorded.items():
        task_instance = by_key.get(key)
        if key[0] != STATE_TASK_ID and task_instance is not None and state is not None:
            _note(task_instance, state)
    flow_state = recorded.get((STATE_TASK_ID, -1))
    if flow_state is not None and _SAID_BY_AIRFLOW.get(run_state) != flow_state:
        _note(dag_run, flow_state)


def note_text(state: KestraState) -> str:
    """The note of a task instance or run whose Kestra state is `state`."""
    return _EXPLAINED.get(state, f"Kestra state: {state.value}.")


def _note(row: Any, state: KestraState) -> None:
    """Give a task instance or run the note of `state`, unless it has a note already."""
    note = row.task_instance_note if hasattr(row, "task_instance_note") else row.dag_run_note
    if note is None:
        row.note = (note_text(state), NOTE_AUTHOR)
    elif not note.content:  # a note emptied in the UI: its row remains
        note.content, note.user_id = note_text(state), NOTE_AUTHOR


def _recorded_states(session: Session, dag_id: str, run_id: str) -> dict[tuple[str, int], KestraState | None]:
    """(task id, map index) → the Kestra state a task recorded; `_flow_state` → the flow's state."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import or_, select

    rows = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            or_(
                XComModel.key == STATE_XCOM_KEY,
                (XComModel.task_id == STATE_TASK_ID) & (XComModel.key == "return_value"),
            ),
        )
    )
    states: dict[tuple[str, int], KestraState | None] = {}
    for row in rows:
        value = XComModel.deserialize_value(row)
        if row.task_id == STATE_TASK_ID:
            value = value.get("state") if isinstance(value, dict) else None
        states[(row.task_id, row.map_index)] = _state_of(value)
    return states


def _state_of(value: Any) -> KestraState | None:
    try:
        return KestraState.read(str(value))
    except ValueError:
        return None
