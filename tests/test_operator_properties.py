"""How operators take their Kestra properties, and the DAG arguments read from Airflow's configuration."""

from __future__ import annotations

import textwrap

import pytest
from conftest import EXAMPLES

from yaml2dag.compiler import compile_flow
from yaml2dag.flowfile import read_flow
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.core import LogOperator
from yaml2dag.operators.docker import DockerStopOperator


@pytest.fixture(scope="module")
def compiled():
    return compile_flow(read_flow(EXAMPLES / "finally_example.yaml"))


def test_properties_come_from_the_task_type_declaration():
    assert LogOperator.kestra_properties == {"message": True, "level": False}
    # The shared Docker properties first (declared on the common base model), then Stop's own.
    assert DockerStopOperator.kestra_properties == {
        "host": False,
        "connId": False,
        "credentials": False,
        "containerId": True,
        "kill": False,
        "delete": False,
    }
    assert DockerStopOperator.template_fields == ("run_if", "host", "credentials", "containerId", "kill", "delete")
    assert "run_if" not in LogOperator.kestra_properties  # KestraOperator's own arguments are not properties


def test_given_properties_are_set_and_defaults_stay_on_the_class(compiled):
    log = compiled.get_task("send_alert")
    assert isinstance(log, LogOperator)
    assert log.message == "alert on failure"
    assert log.level == "INFO" and "level" not in vars(log)
    assert compiled.get_task("fail").errorMessage == "Test downstream tasks"
    made = LogOperator(task_id="made", flow=log.flow, kestra_type="Log", message="hi", level="WARN")
    assert (made.message, made.level) == ("hi", "WARN")


def test_a_missing_required_property_is_named(compiled):
    flow = compiled.get_task("send_alert").flow
    with pytest.raises(TypeError, match="LogOperator needs the keyword argument\\(s\\) message"):
        LogOperator(task_id="bad", flow=flow, kestra_type="Log")


def test_an_unknown_argument_is_refused_by_airflow(compiled):
    flow = compiled.get_task("send_alert").flow
    with pytest.raises(TypeError, match="mesage"):
        LogOperator(task_id="bad", flow=flow, kestra_type="Log", message="hi", mesage="typo")


def test_a_subclass_with_its_own_init_is_refused():
    with pytest.raises(TypeError, match="Custom defines __init__"):

        class Custom(KestraOperator):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)


def test_dag_limits_follow_airflow_configuration_and_flow_concurrency(tmp_path):
    from airflow.sdk.configuration import conf

    flow = tmp_path / "limited.yaml"
    flow.write_text(
        textwrap.dedent(
            """\
            id: limited
            namespace: company.team
            concurrency:
              limit: 2
            tasks:
              - id: a
                type: io.kestra.plugin.core.log.Log
                message: hi
            """
        )
    )
    limited = compile_flow(read_flow(flow))
    plain = compile_flow(read_flow(EXAMPLES / "finally_example.yaml"))
    assert limited.max_active_runs == 2
    assert plain.max_active_runs == conf.getint("core", "max_active_runs_per_dag")
    for dag in (limited, plain):
        assert dag.max_active_tasks == conf.getint("core", "max_active_tasks_per_dag")
        assert dag.max_consecutive_failed_dag_runs == conf.getint("core", "max_consecutive_failed_dag_runs_per_dag")
        assert dag.disable_bundle_versioning == conf.getboolean("dag_processor", "disable_bundle_versioning")
