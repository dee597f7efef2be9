"""The dags folder as Airflow sees it: one DAG per flow, isolated errors, the compiled structure."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO

from yaml2dag.dagfolder import find_flow_files, load_flows

LOADER = REPO / "dags" / "yaml2dag_flows.py"
LOG_TASK = "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def flow_text(flow_id: str, namespace: str) -> str:
    return f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n{LOG_TASK}"


def dagbag(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def test_dagbag_loads_one_dag_per_flow_and_isolates_a_broken_file(tmp_path, airflow_db):
    shutil.copy(LOADER, tmp_path / LOADER.name)
    write(tmp_path, "a.yaml", flow_text("same", "team.one"))
    write(tmp_path, "nested/deeper/b.yml", flow_text("same", "team.two"))
    write(tmp_path, "broken.yaml", "id: broken\nnamespace: t\ntasks:\n  - id: x\n    type: nope\n")
    bag = dagbag(tmp_path)
    assert sorted(bag.dag_ids) == ["team.one.same", "team.two.same"]
    assert bag.import_errors == {}
    dag = bag.get_dag("team.two.same")
    assert dag.fileloc == str(tmp_path / LOADER.name)
    assert "team.two" in dag.tags


def test_new_yaml_file_appears_at_the_next_parse(tmp_path, airflow_db):
    shutil.copy(LOADER, tmp_path / LOADER.name)
    write(tmp_path, "first.yaml", flow_text("first", "team"))
    assert dagbag(tmp_path).dag_ids == ["team.first"]
    write(tmp_path, "second.yaml", flow_text("second", "team"))
    assert sorted(dagbag(tmp_path).dag_ids) == ["team.first", "team.second"]


def test_same_namespace_and_id_in_two_files_is_an_error_naming_both(tmp_path):
    first = write(tmp_path, "one.yaml", flow_text("dup", "team"))
    second = write(tmp_path, "two.yaml", flow_text("dup", "team"))
    result = load_flows(find_flow_files(tmp_path))
    assert list(result.dags) == ["team.dup"]
    [error] = result.errors[str(second)]
    assert str(first) in error.message
    assert error.file == str(second)
    assert "another `id` or `namespace`" in error.hint


def test_broken_file_error_names_file_line_and_column(tmp_path):
    broken = write(tmp_path, "broken.yaml", "id: x\nnamespace: t\ntasks:\n  - id: a\n    type: nope\n")
    with pytest.warns(UserWarning, match="broken.yaml: flow not loaded"):
        result = load_flows([broken])
    [error] = result.errors[str(broken)]
    assert (error.line, error.column, error.path) == (5, 11, "tasks[0].type")


def test_hidden_folders_and_other_files_are_ignored(tmp_path):
    write(tmp_path, ".git/x.yaml", flow_text("hidden", "t"))
    write(tmp_path, "notes.txt", "not a flow")
    write(tmp_path, "flow.yaml", flow_text("shown", "t"))
    assert [path.name for path in find_flow_files(tmp_path)] == ["flow.yaml"]


def test_compiled_structure_mirrors_the_flow():
    from yaml2dag.compiler import compile_flow
    from yaml2dag.flowfile import read_flow

    dag = compile_flow(read_flow(EXAMPLES / "finally_example.yaml"))
    assert dag.dag_id == "company.team.finally_example"
    fail, alert, cleanup, state = (dag.get_task(t) for t in ("fail", "send_alert", "cleanup_task", "_flow_state"))
    assert alert.trigger_rule == "one_failed" and alert.upstream_task_ids == {"fail"}
    assert alert.task_group.group_id == "errors"
    assert cleanup.is_teardown and not cleanup.on_failure_fail_dagrun
    assert cleanup.upstream_task_ids == {"fail", "send_alert"}
    assert cleanup.task_group.group_id == "finally"
    assert state.is_teardown and state.on_failure_fail_dagrun and state.upstream_task_ids == {"fail"}
    assert type(dag.timetable).__name__ == "NullTimetable"


def test_sequences_inside_blocks_and_group_names_that_do_not_clash(tmp_path):
    from yaml2dag.compiler import compile_flow
    from yaml2dag.flowfile import read_flow

    path = write(
        tmp_path,
        "flow.yaml",
        """
        id: blocks
        namespace: t
        description: |
          First line shown in the DAG list.

          More *markdown* here.
        labels:
          team: data
        tasks:
          - id: errors
            type: io.kestra.plugin.core.log.Log
            message: a task called errors
          - id: b
            type: io.kestra.plugin.core.log.Log
            message: b
        errors:
          - id: e1
            type: io.kestra.plugin.core.log.Log
            message: e1
          - id: e2
            type: io.kestra.plugin.core.log.Log
            message: e2
        finally:
          - id: f1
            type: io.kestra.plugin.core.log.Log
            message: f1
          - id: f2
            type: io.kestra.plugin.core.log.Log
            message: f2
        triggers:
          - id: nightly
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 2 * * *"
            timezone: Europe/Paris
        """,
    )
    dag = compile_flow(read_flow(path), str(path))
    assert dag.get_task("b").trigger_rule == "none_failed"
    assert dag.get_task("e1").task_group.group_id == "errors_"
    assert dag.get_task("e2").trigger_rule == "none_skipped" and dag.get_task("e2").upstream_task_ids == {"e1"}
    assert dag.get_task("f2").upstream_task_ids == {"f1"} and dag.get_task("f2").is_teardown
    assert dag.description == "First line shown in the DAG list."
    assert "More *markdown* here." in dag.doc_md and str(path) in dag.doc_md
    assert set(dag.tags) == {"t", "team:data"}
    timetable = dag.timetable
    assert type(timetable).__name__ == "CronTriggerTimetable"
    assert (timetable.expression, str(timetable.timezone)) == ("0 2 * * *", "Europe/Paris")


def test_inputs_become_typed_params(tmp_path):
    from yaml2dag.compiler import compile_flow
    from yaml2dag.flowfile import read_flow

    path = write(
        tmp_path,
        "flow.yaml",
        """
        id: params
        namespace: t
        inputs:
          - id: name
            type: STRING
            displayName: Your name
            validator: "[a-z]+"
          - id: size
            type: INT
            min: 1
            max: 10
            defaults: 3
          - id: mode
            type: SELECT
            values: [fast, slow]
            defaults: fast
          - id: optional
            type: BOOLEAN
            required: false
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            message: hi
        """,
    )
    params = compile_flow(read_flow(path)).params
    assert params.get_param("name").schema == {"type": "string", "title": "Your name", "pattern": "^(?:[a-z]+)$"}
    assert params["size"] == 3 and params.get_param("size").schema["maximum"] == 10
    assert params.get_param("mode").schema["enum"] == ["fast", "slow"]
    assert params.get_param("optional").schema["type"] == ["boolean", "null"]


def test_all_example_flows_compile():
    result = load_flows(find_flow_files(EXAMPLES))
    assert result.errors == {} or set(result.errors) == {str(EXAMPLES / "docker_redis.yaml")}
    assert "company.team.finally_example" in result.dags


def test_worker_parse_compiles_only_the_dag_it_runs(tmp_path, monkeypatch):
    write(tmp_path, "a.yaml", flow_text("wanted", "team"))
    write(tmp_path, "b.yaml", flow_text("other", "team"))
    write(
        tmp_path,
        "quoted.yaml",
        "id: 'wanted'  # same id, another namespace\nnamespace: \"team.two\"\ntasks:\n" + LOG_TASK,
    )
    write(tmp_path, "broken.yaml", "id: broken\nnamespace: team\ntasks: not a list\n")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "team.wanted")
    result = load_flows(find_flow_files(tmp_path))
    assert list(result.dags) == ["team.wanted"]
    assert result.errors == {}, "files of other DAGs are not even validated on a worker"
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "team.two.wanted")
    assert list(load_flows(find_flow_files(tmp_path)).dags) == ["team.two.wanted"]
