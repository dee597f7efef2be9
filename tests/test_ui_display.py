"""What the Airflow UI shows of a flow run: mapped items labelled by value, WARNING notes, internal tasks.

Each flow runs on real Airflow (`dag.test()`); the assertions read what the UI and the REST API
read — the metadata database rows of the task instances and the run (rendered map index, notes)
and the serialized operators (colours, docs).
"""

from __future__ import annotations

import textwrap
from typing import Any

FLOW = "io.kestra.plugin.core.flow"
LOG = "io.kestra.plugin.core.log.Log"
FAIL = "io.kestra.plugin.core.execution.Fail"
RETURN = "io.kestra.plugin.core.debug.Return"


def flow(body: str, flow_id: str) -> str:
    """A flow document with `body` under the namespace `test.ui`."""
    return f"id: {flow_id}\nnamespace: test.ui\n" + textwrap.dedent(body)


def task_instances(result: Any) -> list[Any]:
    """The task-instance rows of a run (what the grid and `/api/v2/.../taskInstances` list)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == result.dag_id, TaskInstance.run_id == result.run_id)
        ).all()
        for row in rows:
            _ = row.note  # loaded while the session is open
        session.expunge_all()
    return list(rows)


def test_for_each_items_are_labelled_by_their_value(run_flow):
    long_value = "x" * 300
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: loop
                type: {FLOW}.ForEach
                values: ["eu-west", "us-east", {{"region": "ap"}}, "{long_value}"]
                concurrencyLimit: 0
                tasks:
                  - id: each
                    type: {RETURN}
                    format: "{{{{ taskrun.value }}}}"
                  - id: nested
                    type: {FLOW}.Sequential
                    tasks:
                      - id: deeper
                        type: {LOG}
                        message: "{{{{ parent.taskrun.value }}}}"
            """,
            "labels",
        )
    )
    assert result.state == "success"
    rows = task_instances(result)
    labels = {
        task_id: {row.map_index: row.rendered_map_index for row in rows if row.task_id == task_id}
        for task_id in ("each", "deeper", "nested.end")
    }
    expected = {0: "eu-west", 1: "us-east", 2: '{"region":"ap"}', 3: "x" * 197 + "..."}
    assert labels == {"each": expected, "deeper": expected, "nested.end": expected}
    # Tasks outside the loop are not mapped and keep no label.
    assert {row.task_id: row.rendered_map_index for row in rows if row.map_index < 0}["loop.start"] is None


def dag_run_note(result: Any) -> str | None:
    """The run's note (what the run page and `/api/v2/dags/{id}/dagRuns/{run}` show)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == result.dag_id, DagRun.run_id == result.run_id)
        ).one()
        return run.note


def test_warning_tasks_and_run_carry_a_kestra_state_note(run_flow):
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: tolerated
                type: {FAIL}
                errorMessage: tolerated failure
                allowFailure: true
              - id: guarded
                type: {FLOW}.AllowFailure
                tasks:
                  - id: inner
                    type: {FAIL}
                    errorMessage: inner failure
              - id: fine
                type: {LOG}
                message: fine
            """,
            "warning_notes",
        )
    )
    assert result.state == "warning"
    rows = {row.task_id: row for row in task_instances(result)}
    # allowFailure: the task succeeds in Airflow (green), and its note says WARNING.
    assert rows["tolerated"].state == "success"
    assert rows["tolerated"].note.startswith("Kestra state: WARNING.")
    # AllowFailure: its child failed (as in Kestra), the group's end holds WARNING.
    assert rows["inner"].state == "failed" and rows["inner"].note is None
    assert rows["guarded.end"].state == "success"
    assert rows["guarded.end"].note.startswith("Kestra state: WARNING.")
    assert rows["fine"].note is None and rows["_flow_state"].note is None
    assert rows["tolerated"].task_instance_note.user_id == "yaml2dag"
    # The Airflow run is success; its note gives the flow's Kestra state.
    assert dag_run_note(result).startswith("Kestra state: WARNING.")


def test_successful_run_gets_no_note(run_flow):
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: fine
                type: {LOG}
                message: fine
            """,
            "no_notes",
        )
    )
    assert result.state == "success"
    assert [row.note for row in task_instances(result)] == [None, None, None]
    assert dag_run_note(result) is None


def test_internal_tasks_are_pale_and_documented_as_internal(flow_file):
    from yaml2dag.compiler import compile_flow
    from yaml2dag.flowfile import read_flow

    dag = compile_flow(
        read_flow(
            flow_file(
                flow(
                    f"""
                    tasks:
                      - id: group
                        type: {FLOW}.Sequential
                        tasks:
                          - id: work
                            type: {LOG}
                            message: work
                    """,
                    "internal",
                )
            )
        )
    )
    internal = {"group.start", "group.end", "_flow_state", "_flow_event"}
    for task in dag.tasks:
        if task.task_id in internal:
            assert (task.ui_color, task.ui_fgcolor) == ("#f5f5f5", "#757575"), task.task_id
            assert task.doc_md.startswith("*Internal task added by yaml2dag*"), task.task_id
        else:
            assert task.ui_fgcolor == "#000" and task.ui_color != "#f5f5f5", task.task_id
    assert "the failed task of the flow is the one to read" in dag.get_task("_flow_state").doc_md
    # The start of a Sequential is still an EmptyOperator: the scheduler completes it without a worker.
    assert dag.get_task("group.start").inherits_from_empty_operator
