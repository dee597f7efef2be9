"""Secrets stay secret whatever they are called: in task logs, in stored outputs and error messages."""

from __future__ import annotations

import pytest


def states(result):
    return {task_id: task.state for task_id, task in result.tasks.items()}


@pytest.mark.airflow
def test_secret_input_and_secret_function_are_masked_whatever_their_names(run_flow, monkeypatch):
    # `dbConn` and `DB_CONN` are names Airflow's masker does not find sensitive by itself.
    monkeypatch.setenv("AIRFLOW_VAR_DB_CONN", "postgres://app:pa55-w0rd-x@db/app")
    result = run_flow(
        """
        id: secrets
        namespace: tests.secrets
        inputs:
          - id: dbConn
            type: SECRET
        tasks:
          - id: show
            type: io.kestra.plugin.core.log.Log
            message:
              - "input {{ inputs.dbConn }}"
              - "variable {{ secret('DB_CONN') }}"
          - id: keep
            type: io.kestra.plugin.core.output.OutputValues
            values:
              conn: "{{ inputs.dbConn }}"
              other: "{{ secret('DB_CONN') }}"
              plain: visible
          - id: fail
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: "cannot connect with {{ inputs.dbConn }} / {{ secret('DB_CONN') }}"
        errors:
          - id: report
            type: io.kestra.plugin.core.output.OutputValues
            values:
              error: "{{ errorLogs()[0].message }}"
        """,
        inputs={"dbConn": "jdbc:hunter2-top-secret"},
    )
    assert states(result) == {"show": "success", "keep": "success", "fail": "failed", "report": "success"}
    everything = " ".join(task.log_text() for task in result.tasks.values()) + repr(
        {task_id: task.outputs for task_id, task in result.tasks.items()}
    )
    assert "hunter2-top-secret" not in everything
    assert "pa55-w0rd-x" not in everything
    assert "input ***" in result.tasks["show"].log_text()
    assert result.tasks["keep"].outputs == {"values": {"conn": "***", "other": "***", "plain": "visible"}}
    # errorLogs() reads the stored message: masked too.
    assert result.tasks["report"].outputs == {"values": {"error": "cannot connect with *** / ***"}}
