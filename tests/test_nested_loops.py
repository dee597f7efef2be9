"""A ForEach inside a ForEach (at any depth) on real DAG runs: a child DAG run per iteration.

Every test runs the flow with `dag.test()` — the child DAGs' runs included, run in line by the
task of the nested ForEach — and checks each task's state, the run's state and the outputs
against Kestra's own test flows and assertions (cited on each test).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import states

RETURN = "io.kestra.plugin.core.debug.Return"
FAIL = "io.kestra.plugin.core.execution.Fail"
LOG = "io.kestra.plugin.core.log.Log"
FLOW = "io.kestra.plugin.core.flow"

pytestmark = pytest.mark.airflow


def flow(body: str, flow_id: str) -> str:
    """A flow document with `body` under a fixed namespace."""
    return f"id: {flow_id}\nnamespace: test.nested\n" + textwrap.dedent(body)


def _child_runs(dag_id: str) -> list[tuple[str, dict]]:
    """(run state, conf) of every run of a child DAG, oldest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id))
        return [(str(run.state), dict(run.conf or {})) for run in runs]


def _instances(dag_id: str, run_id: str, task_id: str) -> dict[int, str]:
    """Map index → state of a task's instances in one run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        )
        return {ti.map_index: str(getattr(ti.state, "value", ti.state)) for ti in found}


def test_each_sequential_nested_matches_kestra(run_flow):
    # Kestra: core/src/test/resources/flows/valids/each-sequential-nested.yaml, asserted by
    # EachSequentialTest.sequentialNested: SUCCESS; 2_return contains 1-2-1_return[s1][a a];
    # 1-3_return[s1] contains 1-1_return[s1]; 1-2-2_return[s1][a a] contains "get " + 1-2-1_return[s1][a a].
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: 1_each
                type: {FLOW}.EachSequential
                value: ["s1", "s2", "s3"]
                tasks:
                  - id: 1-1_return
                    type: {RETURN}
                    format: "{{{{task.id}}}} > {{{{taskrun.value}}}}"
                  - id: 1-2_each
                    type: {FLOW}.EachSequential
                    value: '["a a", "b b"]'
                    tasks:
                      - id: 1-2-1_return
                        type: {RETURN}
                        format: "{{{{task.id}}}} > {{{{taskrun.value}}}}"
                      - id: 1-2-2_return
                        type: {RETURN}
                        format: >-
                          {{{{task.id}}}} > {{{{ outputs['1-2-1_return'].s1[taskrun.value].value }}}}
                          >> get {{{{ outputs['1-2-1_return']['s1'][taskrun.value].value }}}}
                  - id: 1-3_return
                    type: {RETURN}
                    format: "{{{{task.id}}}} > {{{{ outputs['1-1_return'][taskrun.value].value }}}}"
              - id: 2_return
                type: {RETURN}
                format: "{{{{task.id}}}} > {{{{outputs['1-2-1_return'].s1['a a'].value}}}}"
            """,
            "each-sequential-nested",
        )
    )
    assert result.state == "success"
    assert states(result) == dict.fromkeys(
        ["1_each", "1-1_return", "1-2_each", "1-2-1_return", "1-2-2_return", "1-3_return", "2_return"], "success"
    )
    outputs = {task_id: task.outputs for task_id, task in result.tasks.items()}
    assert outputs["1-1_return"] == {f"s{i}": {"value": f"1-1_return > s{i}"} for i in (1, 2, 3)}
    assert outputs["1-2-1_return"] == {
        f"s{i}": {v: {"value": f"1-2-1_return > {v}"} for v in ("a a", "b b")} for i in (1, 2, 3)
    }
    # Every iteration of 1-2-2_return reads s1's outputs (the iteration that ended first, as in Kestra).
    assert outputs["1-2-2_return"] == {
        f"s{i}": {v: {"value": f"1-2-2_return > 1-2-1_return > {v} >> get 1-2-1_return > {v}"} for v in ("a a", "b b")}
        for i in (1, 2, 3)
    }
    assert outputs["1-3_return"]["s1"] == {"value": "1-3_return > 1-1_return > s1"}
    assert outputs["2_return"] == {"value": "2_return > 1-2-1_return > a a"}
    assert outputs["1_each"] is None and outputs["1-2_each"] is None  # a ForEach has no outputs
    # One child run per outer value, in order (EachSequential: one iteration at a time).
    runs = _child_runs("test.nested.each-sequential-nested__1-2_each")[-3:]
    assert [state for state, _ in runs] == ["success"] * 3
    assert [conf["yaml2dag_parent"]["values"] for _, conf in runs] == [["s1"], ["s2"], ["s3"]]
    assert [conf["yaml2dag_parent"]["iterations"] for _, conf in runs] == [[0], [1], [2]]


def test_inner_values_computed_at_run_time_with_if_parents_and_iteration(run_flow):
    # Kestra: nested loops key outputs by each parent's value (`outputs.t[outer][inner]`). `parents`
    # lists the ancestor task runs with a value, closest first: a direct child of the inner ForEach
    # (the If) has the inner ForEach's run first, whose value is the outer value; a task under the
    # If has the If's run (the inner value), then the inner ForEach's (each-parallel-nested.yaml
    # reads parents[0].taskrun.value under a Sequential).
    result = run_flow(
        flow(
            f"""
            inputs:
              - id: suffix
                type: STRING
                defaults: "-x"
            tasks:
              - id: regions
                type: {RETURN}
                format: '["eu", "us"]'
              - id: outer
                type: {FLOW}.ForEach
                values: "{{{{ outputs.regions.value }}}}"
                concurrencyLimit: 0
                tasks:
                  - id: inner
                    type: {FLOW}.ForEach
                    values: '["{{{{ taskrun.value }}}}-1", "{{{{ taskrun.value }}}}-2"]'
                    concurrencyLimit: 2
                    tasks:
                      - id: check
                        type: {FLOW}.If
                        condition: "{{{{ taskrun.value == parents[0].taskrun.value ~ '-1' }}}}"
                        then:
                          - id: first
                            type: {RETURN}
                            format: >-
                              {{{{ parents[0].taskrun.value }}}}|{{{{ parents[1].taskrun.value }}}}|{{{{
                              taskrun.iteration }}}}{{{{ inputs.suffix }}}}
                        else:
                          - id: second
                            type: {RETURN}
                            format: "{{{{ taskrun.value }}}}|{{{{ taskrun.iteration }}}}"
              - id: summary
                type: {RETURN}
                format: "{{{{ outputs.first.eu['eu-1'].value }}}} {{{{ outputs.second.us['us-2'].value }}}}"
            """,
            "runtime_values",
        ),
        inputs={"suffix": "!"},
    )
    assert result.state == "success"
    assert states(result) == dict.fromkeys(
        ["regions", "outer", "inner", "check", "first", "second", "summary"], "success"
    )
    outputs = {task_id: task.outputs for task_id, task in result.tasks.items()}
    assert outputs["first"] == {"eu": {"eu-1": {"value": "eu-1|eu|0!"}}, "us": {"us-1": {"value": "us-1|us|0!"}}}
    assert outputs["second"] == {"eu": {"eu-2": {"value": "eu-2|1"}}, "us": {"us-2": {"value": "us-2|1"}}}
    assert outputs["check"] == {
        region: {f"{region}-1": {"evaluationResult": True}, f"{region}-2": {"evaluationResult": False}}
        for region in ("eu", "us")
    }
    assert outputs["summary"] == {"value": "eu-1|eu|0! us-2|1"}


def test_three_levels_key_outputs_by_every_parent_value(run_flow):
    # Kestra: outputs of a task under three loops are `outputs.t[v1][v2][v3]`; a direct child of
    # l3 has parents [l3's run (value of l2), l2's run (value of l1)]; execution.id is the flow's
    # execution in every iteration (one execution).
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: l1
                type: {FLOW}.ForEach
                values: [a, b]
                tasks:
                  - id: l2
                    type: {FLOW}.ForEach
                    values: [x]
                    tasks:
                      - id: l3
                        type: {FLOW}.ForEach
                        values: ["1", "2"]
                        concurrencyLimit: 0
                        tasks:
                          - id: leaf
                            type: {RETURN}
                            format: >-
                              {{{{ parents[0].taskrun.value }}}}{{{{ parents[1].taskrun.value
                              }}}}{{{{ taskrun.value }}}}
                          - id: run_id
                            type: {RETURN}
                            format: "{{{{ execution.id }}}}"
              - id: read
                type: {RETURN}
                format: "{{{{ outputs.leaf.b.x['2'].value }}}}"
            """,
            "three_levels",
        )
    )
    assert result.state == "success"
    assert states(result) == dict.fromkeys(["l1", "l2", "l3", "leaf", "run_id", "read"], "success")
    leaf = result.tasks["leaf"].outputs
    assert leaf == {v1: {"x": {v3: {"value": f"x{v1}{v3}"} for v3 in ("1", "2")}} for v1 in ("a", "b")}
    assert result.tasks["read"].outputs == {"value": "xb2"}
    run_ids = result.tasks["run_id"].outputs
    assert run_ids == {v1: {"x": {v3: {"value": result.run_id} for v3 in ("1", "2")}} for v1 in ("a", "b")}
    grandchildren = _child_runs("test.nested.three_levels__l2__l3")[-2:]
    assert [conf["yaml2dag_parent"]["values"] for _, conf in grandchildren] == [["a", "x"], ["b", "x"]]
    assert [len(conf["yaml2dag_parent"]["runs"]) for _, conf in grandchildren] == [2, 2]


def test_failure_in_one_inner_iteration_fails_every_parent_and_runs_errors(run_flow):
    # Kestra (spec §3.4): a failed task run fails its ForEach, which fails the ForEach holding it;
    # the flow's errors run and the next main task never starts.
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: outer
                type: {FLOW}.ForEach
                values: [ok, bad]
                tasks:
                  - id: inner
                    type: {FLOW}.ForEach
                    values: ["1", "2"]
                    tasks:
                      - id: s
                        type: {FLOW}.Sequential
                        tasks:
                          - id: maybe
                            type: {FAIL}
                            runIf: "{{{{ parents[1].taskrun.value == 'bad' and parents[0].taskrun.value == '2' }}}}"
                            errorMessage: "boom {{{{ parents[1].taskrun.value }}}}"
              - id: never
                type: {LOG}
                message: not reached
            errors:
              - id: alert
                type: {LOG}
                message: "failed: {{{{ errorLogs()[0].message }}}}"
            """,
            "inner_failure",
        )
    )
    assert result.state == "failed"
    found = states(result)
    assert found["outer"] == found["inner"] == found["s"] == found["maybe"] == "failed"
    assert found["alert"] == "success"
    assert found["never"] == "upstream_failed"
    assert "boom bad" in (result.tasks["maybe"].error or "")
    runs = _child_runs("test.nested.inner_failure__inner")[-2:]
    assert [state for state, _ in runs] == ["success", "failed"]


def test_allow_failure_on_the_inner_foreach_ends_warning(run_flow):
    # Kestra: allowFailure turns the failed ForEach into WARNING; its parent and the flow end WARNING.
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: outer
                type: {FLOW}.ForEach
                values: [a]
                tasks:
                  - id: inner
                    type: {FLOW}.ForEach
                    allowFailure: true
                    values: ["1"]
                    tasks:
                      - id: boom
                        type: {FAIL}
              - id: after
                type: {RETURN}
                format: after
            """,
            "inner_allowed",
        )
    )
    assert result.state == "warning"
    found = states(result)
    assert found["boom"] == "failed"
    assert found["inner"] == found["outer"] == "warning"
    assert found["after"] == "success"


def test_run_if_false_skips_the_nested_foreach_of_that_iteration_only(run_flow):
    # Kestra: a task whose runIf is false is SKIPPED and the flow goes on; the ForEach holding it
    # ends SUCCESS.
    result = run_flow(
        flow(
            f"""
            tasks:
              - id: outer
                type: {FLOW}.ForEach
                values: [a, b]
                tasks:
                  - id: inner
                    type: {FLOW}.ForEach
                    runIf: "{{{{ taskrun.value == 'a' }}}}"
                    values: ["1"]
                    tasks:
                      - id: leaf
                        type: {RETURN}
                        format: "{{{{ parents[0].taskrun.value }}}}"
                  - id: next
                    type: {RETURN}
                    format: "{{{{ taskrun.value }}}}"
            """,
            "inner_skipped",
        )
    )
    assert result.state == "success"
    assert states(result) == {
        "outer": "success",
        "inner": "success",  # merged over the iterations: a ran, b was skipped
        "leaf": "success",
        "next": "success",
    }
    assert result.tasks["leaf"].outputs == {"a": {"1": {"value": "a"}}}
    assert result.tasks["next"].outputs == {"a": {"value": "a"}, "b": {"value": "b"}}
    assert _instances("test.nested.inner_skipped", result.run_id, "inner") == {0: "success", 1: "skipped"}
    runs = _child_runs("test.nested.inner_skipped__inner")[-2:]
    assert [state for state, _ in runs] == ["success", "success"]


def test_loader_registers_the_child_dags(airflow_db, tmp_path: Path):
    from yaml2dag.dagfolder import _may_define, load_flows

    path = tmp_path / "nested.yaml"
    path.write_text(
        flow(
            f"""
            tasks:
              - id: outer
                type: {FLOW}.ForEach
                values: [a]
                tasks:
                  - id: inner
                    type: {FLOW}.ForEach
                    values: [b]
                    tasks:
                      - id: leaf
                        type: {LOG}
                        message: hi
            """,
            "loaded",
        )
    )
    namespace: dict = {}
    result = load_flows([path], namespace)
    assert sorted(result.dags) == ["test.nested.loaded", "test.nested.loaded__inner"]
    assert sorted(dag.dag_id for dag in namespace.values()) == sorted(result.dags)
    assert _may_define(path, "test.nested.loaded__inner")
    assert not _may_define(path, "test.nested.other")


def test_compile_command_lists_the_child_dags(flow_file):
    from yaml2dag.cli import _plan_structure
    from yaml2dag.flowfile import read_flow
    from yaml2dag.plan import plan_flow

    path = flow_file(
        flow(
            f"""
            tasks:
              - id: outer
                type: {FLOW}.ForEach
                values: [a]
                tasks:
                  - id: inner
                    type: {FLOW}.ForEach
                    values: [b]
                    tasks:
                      - id: leaf
                        type: {LOG}
                        message: hi
            """,
            "compiled",
        )
    )
    structure = _plan_structure(plan_flow(read_flow(path)))
    inner = next(task for task in structure["tasks"] if task["task_id"] == "inner")
    assert inner["operator"] == "yaml2dag.operators.loops.ForEachRunOperator"
    (child,) = structure["child_dags"]
    assert child["dag_id"] == "test.nested.compiled__inner"
    assert [task["task_id"] for task in child["tasks"]] == ["inner.start", "leaf", "inner.end", "_flow_state"]
