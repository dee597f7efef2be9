"""The task that gives a compiled flow Kestra's final state.

Airflow decides a run's state from its leaf tasks; Kestra from the main `tasks` only (errors
and finally never change it). This teardown runs once the main tasks are done — also when a
user marks the run failed, since Airflow never skips teardowns — reads their states, and fails
(failing the run, through `on_failure_fail_dagrun`) exactly when Kestra would end FAILED.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.context import STATE_XCOM_KEY

STATE_TASK_ID = "_flow_state"
_FAILED = ("failed", "upstream_failed")


class FlowStateOperator(BaseOperator):
    """Fails when a main task failed, so the Airflow run ends in the flow's Kestra state.

    Its XCom `state` is the flow's Kestra state: FAILED, WARNING (a main task ended WARNING, which
    Airflow shows as success) or SUCCESS.

    :param main_task_ids: Airflow task ids of the flow's main `tasks`.
    """

    ui_color = "#dddddd"

    def __init__(self, *, main_task_ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.main_task_ids = list(main_task_ids)

    def execute(self, context: Any) -> dict[str, str]:  # noqa: D102
        task_instance = context["ti"]
        run_id = context["dag_run"].run_id
        states = task_instance.get_task_states(
            dag_id=task_instance.dag_id, run_ids=[run_id], task_ids=self.main_task_ids
        ).get(run_id, {})
        failed = [task_id for task_id in self.main_task_ids if str(states.get(task_id)) == "failed"]
        if failed or any(str(states.get(task_id)) in _FAILED for task_id in self.main_task_ids):
            names = ", ".join(f"`{task_id}`" for task_id in failed) or "a main task"
            task_instance.xcom_push(key="return_value", value={"state": "FAILED"})
            raise TaskFailure(f"Flow FAILED: {names} failed (errors and finally tasks never change the flow state)")
        warned = [
            task_id
            for task_id in self.main_task_ids
            if task_instance.xcom_pull(task_ids=task_id, key=STATE_XCOM_KEY) == "WARNING"
        ]
        if warned:
            names = ", ".join(f"`{task_id}`" for task_id in warned)
            self.log.warning("Flow WARNING: %s ended WARNING (allowFailure); the Airflow run succeeds", names)
            return {"state": "WARNING"}
        self.log.info("Flow SUCCESS: every main task succeeded or was skipped")
        return {"state": "SUCCESS"}
