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


def stored_conf(dag_id: str, run_id: str) -> dict:
    """The run's `conf` as the metadata database holds it (what the UI and the REST API show)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return dict(session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one().conf)


SEALED_FLOW = """
id: sealed
namespace: tests.secrets
inputs:
  - id: apiToken
    type: SECRET
    validator: "s3cr3t-[a-z]+-[0-9]+"
  - id: who
    type: STRING
tasks:
  - id: check
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.apiToken == 's3cr3t-token-123' }} {{ inputs.apiToken | length }} {{ inputs.who }}"
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "token {{ inputs.apiToken }}"
"""


@pytest.mark.airflow
def test_a_secret_input_is_stored_sealed_in_the_run_conf_and_tasks_read_its_value(run_flow):
    from yaml2dag.sealing import SEALED_PREFIX, unseal

    result = run_flow(SEALED_FLOW, inputs={"apiToken": "s3cr3t-token-123", "who": "ana"})
    assert states(result) == {"check": "success", "show": "success"}
    assert result.tasks["check"].outputs == {"value": "true 16 ana"}
    assert "token ***" in result.tasks["show"].log_text()
    conf = stored_conf(result.dag_id, result.run_id)
    assert conf["who"] == "ana"
    assert conf["apiToken"].startswith(SEALED_PREFIX)
    assert "s3cr3t" not in repr(conf)
    assert unseal(conf["apiToken"], "apiToken") == "s3cr3t-token-123"


@pytest.mark.airflow
def test_a_secret_input_is_checked_against_its_validator_before_the_run_starts(run_flow):
    from yaml2dag.errors import FlowValidationError

    with pytest.raises(FlowValidationError) as raised:
        run_flow(SEALED_FLOW, inputs={"apiToken": "not-the-format", "who": "ana"})
    assert "apiToken" in str(raised.value)
    assert "not-the-format" not in str(raised.value)


@pytest.mark.airflow
def test_sealing_checks_validators_and_seals_only_secret_params():
    from yaml2dag.sealing import is_sealed, seal_conf, unseal

    schemas = {
        "token": {"type": "string", "x-yaml2dag-secret": True, "x-yaml2dag-validator": "[a-z]+"},
        "name": {"type": "string", "x-yaml2dag-validator": "(a+)+b"},
    }
    sealed = seal_conf({"token": "abc", "name": "aab", "other": "x"}, schemas)
    assert is_sealed(sealed["token"])
    assert unseal(sealed["token"], "token") == "abc"
    assert sealed["name"] == "aab"
    assert sealed["other"] == "x"
    assert seal_conf(sealed, schemas) == sealed  # a sealed value is never sealed twice
    with pytest.raises(ValueError, match="Invalid input `token`: must match the validator `\\[a-z\\]\\+`: the value"):
        seal_conf({"token": "ABC"}, schemas)
    with pytest.raises(ValueError, match="`name`"):
        seal_conf({"name": "aaac"}, schemas)


@pytest.mark.airflow
def test_a_value_sealed_with_another_key_is_a_clear_error():
    from cryptography.fernet import Fernet

    from yaml2dag.sealing import SEALED_PREFIX, unseal

    foreign = SEALED_PREFIX + Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with pytest.raises(ValueError, match="`apiToken` was sealed with another Airflow fernet_key"):
        unseal(foreign, "apiToken")


@pytest.mark.airflow
def test_a_secret_value_without_a_fernet_key_is_refused_naming_the_setting(monkeypatch):
    """As Kestra, which refuses SECRET inputs when no encryption key is configured."""
    from airflow.models.crypto import get_fernet

    from yaml2dag.sealing import seal

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    get_fernet.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"a SECRET input needs encryption: set Airflow's \[core\] fernet_key"):
            seal("s3cr3t")
    finally:
        monkeypatch.undo()
        get_fernet.cache_clear()
