"""Flowable tasks (Sequential, Parallel, If, Switch, ForEach, Dag, AllowFailure, Exit) on real DAG runs.

Every test runs the flow with `dag.test()` and checks each task's state, the run's state and
outputs, as Kestra would end them (spec §3.3–§3.5, §4.7, §4.9).
"""

from __future__ import annotations

import textwrap

import pytest
from conftest import states

from yaml2dag.errors import FlowValidationError
from yaml2dag.flowfile import parse_flow_text
from yaml2dag.validation import parse_flow

LOG = "io.kestra.plugin.core.log.Log"
FAIL = "io.kestra.plugin.core.execution.Fail"
RETURN = "io.kestra.plugin.core.debug.Return"
FLOW = "io.kestra.plugin.core.flow"


def flow(body: str, flow_id: str = "flowables") -> str:
    """A flow document with `body` (tasks, errors, finally) under a fixed id and namespace."""
    return f"id: {flow_id}\nnamespace: test.flowables\n" + textwrap.dedent(body)


def test_nested_flowables_run_their_branches_and_expose_outputs(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: group
            type: {FLOW}.Sequential
            tasks:
              - id: check
                type: {FLOW}.If
                condition: "{{{{ 1 == 1 }}}}"
                then:
                  - id: chosen
                    type: {RETURN}
                    format: yes
                else:
                  - id: not_chosen
                    type: {LOG}
                    message: never
          - id: pick
            type: {FLOW}.Switch
            value: "{{{{ outputs.chosen.value }}}}"
            cases:
              "yes":
                - id: case_yes
                  type: {RETURN}
                  format: matched
              "no":
                - id: case_no
                  type: {LOG}
                  message: never
          - id: after
            type: {LOG}
            message: >-
              {{{{ outputs.check.evaluationResult }}}} {{{{ outputs.pick.value }}}} {{{{ outputs.case_yes.value }}}}
        """)
    )
    assert result.state == "success"
    assert states(result) == {
        "group": "success",
        "check": "success",
        "chosen": "success",
        "not_chosen": "skipped",
        "pick": "success",
        "case_yes": "success",
        "case_no": "skipped",
        "after": "success",
    }
    assert result.tasks["check"].outputs == {"evaluationResult": True}
    assert result.tasks["pick"].outputs == {"value": "yes", "defaults": False}
    assert "true yes matched" in result.tasks["after"].log_text()


def test_failed_child_runs_local_errors_and_finally_and_fails_the_flowable(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: group
            type: {FLOW}.Sequential
            tasks:
              - id: boom
                type: {FAIL}
              - id: never_child
                type: {LOG}
                message: never
            errors:
              - id: local_error
                type: {LOG}
                message: "local errors"
            finally:
              - id: local_finally
                type: {LOG}
                message: "local finally"
          - id: never_sibling
            type: {LOG}
            message: never
        errors:
          - id: flow_error
            type: {LOG}
            message: "flow errors"
        """)
    )
    assert result.state == "failed"
    task_states = states(result)
    assert task_states["boom"] == "failed"
    assert task_states["never_child"] == "upstream_failed"
    assert task_states["local_error"] == "success"
    assert task_states["local_finally"] == "success"
    assert task_states["group"] == "failed"  # local errors never rescue the flowable
    assert task_states["never_sibling"] == "upstream_failed"
    assert task_states["flow_error"] == "success"  # the failure goes up to the flow's errors
    assert result.tasks["local_error"].end <= result.tasks["local_finally"].start


def test_flowable_after_a_failure_never_starts_its_errors_or_finally(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: boom
            type: {FAIL}
          - id: group
            type: {FLOW}.Sequential
            tasks:
              - id: child
                type: {LOG}
                message: never
            errors:
              - id: local_error
                type: {LOG}
                message: never
            finally:
              - id: local_finally
                type: {LOG}
                message: never
        """)
    )
    assert result.state == "failed"
    task_states = states(result)
    assert task_states["child"] == "upstream_failed"
    # Airflow's setup rule: tasks in the scope of a start that never succeeded are upstream_failed.
    assert task_states["local_error"] == "upstream_failed"
    assert task_states["local_finally"] == "upstream_failed"
    # Never started, like any task after a failure (Kestra: no task run); not FAILED itself.
    assert task_states["group"] == "upstream_failed"


def test_allow_failure_turns_a_failed_child_into_a_warning(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: tolerant
            type: {FLOW}.AllowFailure
            tasks:
              - id: boom
                type: {FAIL}
          - id: next
            type: {LOG}
            message: goes on
        """)
    )
    assert states(result) == {"tolerant": "warning", "boom": "failed", "next": "success"}
    assert result.state == "warning"


def test_parallel_runs_every_child_and_fails_when_one_fails(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: fan
            type: {FLOW}.Parallel
            concurrent: 2
            tasks:
              - id: one
                type: {LOG}
                message: one
              - id: two
                type: {FAIL}
              - id: three
                type: {LOG}
                message: three
          - id: never
            type: {LOG}
            message: never
        """)
    )
    task_states = states(result)
    assert task_states["one"] == "success"
    assert task_states["two"] == "failed"
    assert task_states["fan"] == "failed"
    assert task_states["never"] == "upstream_failed"
    assert result.state == "failed"


def test_if_false_runs_else_and_run_if_false_skips_the_whole_flowable(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: check
            type: {FLOW}.If
            condition: "{{{{ 'a' == 'b' }}}}"
            then:
              - id: then_task
                type: {LOG}
                message: never
            else:
              - id: else_task
                type: {LOG}
                message: else ran
          - id: switched_off
            type: {FLOW}.Sequential
            runIf: "false"
            tasks:
              - id: inside
                type: {LOG}
                message: never
          - id: next
            type: {LOG}
            message: goes on
        """)
    )
    assert result.state == "success"
    task_states = states(result)
    assert task_states["then_task"] == "skipped"
    assert task_states["else_task"] == "success"
    assert task_states["inside"] == "skipped"
    assert task_states["switched_off"] == "skipped"
    assert task_states["next"] == "success"
    assert result.tasks["check"].outputs == {"evaluationResult": False}


def test_switch_uses_defaults_and_fails_without_a_match(run_flow):
    body = f"""
        tasks:
          - id: pick
            type: {FLOW}.Switch
            value: "{{{{ inputs.choice }}}}"
            cases:
              1:
                - id: case_one
                  type: {LOG}
                  message: one
            {{defaults}}
        inputs:
          - id: choice
            type: STRING
        """
    with_defaults = body.replace(
        "{defaults}",
        f"defaults:\n              - id: fallback\n                type: {LOG}\n                message: fb",
    )
    result = run_flow(flow(with_defaults), inputs={"choice": "other"})
    assert states(result) == {"pick": "success", "case_one": "skipped", "fallback": "success"}
    assert result.tasks["pick"].outputs == {"value": "other", "defaults": True}

    matched = run_flow(flow(with_defaults), inputs={"choice": "1"})  # YAML key 1 is the text "1"
    assert states(matched) == {"pick": "success", "case_one": "success", "fallback": "skipped"}

    no_match = run_flow(flow(body.replace("{defaults}", ""), "no_match"), inputs={"choice": "other"})
    assert no_match.state == "failed"
    assert states(no_match)["case_one"] in ("skipped", "upstream_failed")


def test_for_each_maps_tasks_over_distinct_values_keyed_by_value(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: loop
            type: {FLOW}.ForEach
            values: '{{{{ ["b", "a", 3, "b"] | json }}}}'
            concurrencyLimit: 0
            tasks:
              - id: each
                type: {RETURN}
                format: "value {{{{ taskrun.value }}}}"
              - id: nested
                type: {FLOW}.Sequential
                tasks:
                  - id: deeper
                    type: {RETURN}
                    format: "{{{{ parent.taskrun.value }}}}!"
          - id: after
            type: {LOG}
            message: "{{{{ outputs.each['a'].value }}}} / {{{{ outputs.deeper['3'].value }}}}"
        """)
    )
    assert result.state == "success"
    assert result.tasks["each"].outputs == {
        "b": {"value": "value b"},
        "a": {"value": "value a"},
        "3": {"value": "value 3"},
    }
    assert result.tasks["deeper"].outputs["3"] == {"value": "3!"}
    assert "value a / 3!" in result.tasks["after"].log_text()


def test_for_each_fails_when_one_iteration_fails(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: loop
            type: {FLOW}.ForEach
            values: ["ok", "bad", "fine"]
            tasks:
              - id: check
                type: {FAIL}
                condition: "{{{{ taskrun.value == 'bad' }}}}"
          - id: never
            type: {LOG}
            message: never
        """)
    )
    assert result.state == "failed"
    assert states(result)["check"] == "failed"
    assert states(result)["loop"] == "failed"
    assert states(result)["never"] == "upstream_failed"


def test_dag_runs_tasks_after_their_dependencies(run_flow):
    result = run_flow(
        flow(f"""
        tasks:
          - id: graph
            type: {FLOW}.Dag
            tasks:
              - task:
                  id: last
                  type: {LOG}
                  message: last
                dependsOn: [left, right]
              - task:
                  id: left
                  type: {LOG}
                  message: left
                dependsOn: [root]
              - task:
                  id: right
                  type: {LOG}
                  message: right
                dependsOn: [root]
              - task:
                  id: root
                  type: {LOG}
                  message: root
        """)
    )
    assert result.state == "success"
    tasks = result.tasks
    assert tasks["root"].end <= tasks["left"].start
    assert tasks["root"].end <= tasks["right"].start
    assert max(tasks["left"].end, tasks["right"].end) <= tasks["last"].start


@pytest.mark.parametrize(("exit_state", "run_state"), [("WARNING", "warning"), ("FAILED", "failed")])
def test_exit_ends_the_run_at_once_without_errors_or_finally(run_flow, exit_state, run_state):
    result = run_flow(
        flow(
            f"""
        tasks:
          - id: first
            type: {LOG}
            message: first
          - id: stop
            type: io.kestra.plugin.core.execution.Exit
            state: {exit_state}
          - id: never
            type: {LOG}
            message: never
        errors:
          - id: on_error
            type: {LOG}
            message: never
        finally:
          - id: cleanup
            type: {LOG}
            message: never
        """,
            f"exit_{exit_state.lower()}",
        )
    )
    assert result.state == run_state
    task_states = states(result)
    assert task_states["first"] == "success"
    assert task_states["never"] == "skipped"
    assert task_states["on_error"] == "skipped"
    assert task_states["cleanup"] == "skipped"


def test_graph_nests_task_groups_named_after_flowables(tmp_path):
    from yaml2dag.compiler import compile_flow
    from yaml2dag.loader import load_yaml

    text = flow(f"""
        tasks:
          - id: outer
            type: {FLOW}.Sequential
            tasks:
              - id: inner
                type: {FLOW}.Parallel
                tasks:
                  - id: leaf
                    type: {LOG}
                    message: leaf
        """)
    dag = compile_flow(parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text))
    outer = dag.task_group.children["outer"]
    inner = outer.children["inner"]
    assert "leaf" in inner.children
    assert {"outer.start", "outer.end"} <= set(outer.children)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            f"""
            tasks:
              - id: graph
                type: {FLOW}.Dag
                tasks:
                  - task: {{id: a, type: {LOG}, message: a}}
                    dependsOn: [b]
                  - task: {{id: b, type: {LOG}, message: b}}
                    dependsOn: [a]
            """,
            "circular dependency in Dag `graph`: a → b → a",
        ),
        (
            f"""
            tasks:
              - id: graph
                type: {FLOW}.Dag
                tasks:
                  - task: {{id: a, type: {LOG}, message: a}}
                    dependsOn: [missing]
            """,
            "`dependsOn` names `missing`, which is not a task of Dag `graph`",
        ),
        (
            f"""
            tasks:
              - id: loop
                type: {FLOW}.ForEach
                values: [1]
                tasks:
                  - id: inner
                    type: {FLOW}.ForEach
                    values: [2]
                    tasks: [{{id: t, type: io.kestra.plugin.core.execution.Exit}}]
            """,
            "`Exit` inside a ForEach is not supported by yaml2dag yet",
        ),
        (
            f"""
            tasks:
              - id: group
                type: {FLOW}.Sequential
                tasks:
                  - id: twice
                    type: {LOG}
                    message: a
              - id: twice
                type: {LOG}
                message: b
            """,
            "duplicate task id `twice`",
        ),
        (
            f"""
            tasks:
              - id: group
                type: {FLOW}.Sequential
                tasks:
                  - id: child
                    type: {LOG}
                    mesage: typo
            """,
            "unknown property `mesage`",
        ),
    ],
)
def test_invalid_flowables_are_located_compile_errors(body, message):
    from yaml2dag.loader import load_yaml

    text = flow(body)
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(load_yaml(text, "flow.yaml"), "flow.yaml", text)
    errors = caught.value.errors
    assert any(message in error.message for error in errors), [str(error) for error in errors]
    assert all(error.line is not None for error in errors)


# --- Kestra's states, wherever a flowable sits ------------------------------------------------


def test_flowables_in_errors_and_finally_run_their_children(run_flow):
    # Oracle: Kestra core/src/test/resources/flows/valids/errors.yaml (Parallels nesting Parallels
    # nesting a Log in `errors`; every task runs, the execution is FAILED).
    result = run_flow(
        flow(f"""
        tasks:
          - id: failed
            type: {FAIL}
        errors:
          - id: t2
            type: {LOG}
            message: errors run
          - id: t3
            type: {FLOW}.Parallel
            tasks:
              - id: t3-t1
                type: {FLOW}.Parallel
                tasks:
                  - id: t3-t1-t1
                    type: {FLOW}.Parallel
                    tasks:
                      - id: t3-t1-t1-last
                        type: {RETURN}
                        format: "last {{{{ task.id }}}}"
        finally:
          - id: f1
            type: {FLOW}.Sequential
            tasks:
              - id: f1a
                type: {LOG}
                message: a
              - id: f1if
                type: {FLOW}.If
                condition: "{{{{ false }}}}"
                then:
                  - id: f1b
                    type: {LOG}
                    message: never
        """)
    )
    assert result.state == "failed"
    assert states(result) == {
        "failed": "failed",
        "t2": "success",
        "t3": "success",
        "t3-t1": "success",
        "t3-t1-t1": "success",
        "t3-t1-t1-last": "success",
        "f1": "success",
        "f1a": "success",
        "f1if": "success",
        "f1b": "skipped",
    }
    assert result.tasks["t3-t1-t1-last"].outputs == {"value": "last t3-t1-t1-last"}


def test_errors_flowables_stay_skipped_and_a_failing_finally_flowable_keeps_the_run_state(run_flow):
    # Oracle: Kestra's rule (spec §3.4, ExecutableUtils / FlowableUtils): errors run only after a
    # failure; finally task runs never change the execution state.
    result = run_flow(
        flow(f"""
        tasks:
          - id: ok
            type: {LOG}
            message: fine
        errors:
          - id: e1
            type: {FLOW}.Sequential
            tasks:
              - id: e1a
                type: {LOG}
                message: never
          - id: e2
            type: {FLOW}.Parallel
            tasks:
              - id: e2a
                type: {LOG}
                message: never
        finally:
          - id: f1
            type: {FLOW}.Parallel
            tasks:
              - id: f1fail
                type: {FAIL}
              - id: f1b
                type: {LOG}
                message: b
        """)
    )
    assert result.state == "success"
    assert states(result) == {
        "ok": "success",
        "e1": "skipped",
        "e1a": "skipped",
        "e2": "skipped",
        "e2a": "skipped",
        "f1": "failed",
        "f1fail": "failed",
        "f1b": "success",
    }


@pytest.mark.parametrize(
    ("exit_state", "run_state", "reported"), [("WARNING", "warning", "warning"), ("KILLED", "failed", "killed")]
)
def test_exit_inside_flowables_gives_its_state_to_itself_and_its_parents(run_flow, exit_state, run_state, reported):
    # Oracle: Kestra flows/valids/exit.yaml and exit-killed.yaml with ExitTest.java: the execution
    # ends WARNING / KILLED, the If and the Exit task runs end in that state, `end` never runs.
    result = run_flow(
        flow(
            f"""
        tasks:
          - id: if
            type: {FLOW}.If
            condition: "{{{{ 1 == 2 }}}}"
            then:
              - id: hello
                type: {LOG}
                message: never
            else:
              - id: seq
                type: {FLOW}.Sequential
                tasks:
                  - id: exit
                    type: io.kestra.plugin.core.execution.Exit
                    state: {exit_state}
          - id: end
            type: {LOG}
            message: never
        """,
            f"exit_nested_{exit_state.lower()}",
        )
    )
    assert result.state == run_state
    assert states(result) == {"if": reported, "hello": "skipped", "seq": reported, "exit": reported, "end": "skipped"}


def test_for_each_and_if_whose_children_are_all_disabled_end_success(run_flow):
    # Oracle: Kestra flows/valids/each-disabled-tasks.yaml: the ForEach ends SUCCESS and `2_end` runs.
    result = run_flow(
        flow(f"""
        tasks:
          - id: 1_each
            type: {FLOW}.ForEach
            values: ["1", "2"]
            tasks:
              - id: 1-1
                type: {RETURN}
                disabled: true
                format: never
          - id: if
            type: {FLOW}.If
            condition: "{{{{ true }}}}"
            then:
              - id: t
                type: {LOG}
                message: never
                disabled: true
          - id: 2_end
            type: {RETURN}
            format: "{{{{ task.id }}}}"
        """)
    )
    assert result.state == "success"
    assert states(result) == {"1_each": "success", "if": "success", "2_end": "success"}


def test_for_each_over_a_null_value_is_failed_itself(run_flow):
    # Oracle: Kestra flows/valids/each-null.yaml (ForEachTest: the ForEach task run FAILED, no child
    # ran, the execution FAILED).
    result = run_flow(
        flow(f"""
        tasks:
          - id: 1_each
            type: {FLOW}.ForEach
            values: '[1, null, {{"key": "my-key", "value": "my-value"}}]'
            tasks:
              - id: 1-1
                type: {RETURN}
                format: "{{{{ task.id }}}} > {{{{ taskrun.value }}}}"
          - id: 2_end
            type: {RETURN}
            format: never
        """)
    )
    assert result.state == "failed"
    assert states(result) == {"1_each": "failed", "1-1": "skipped", "2_end": "upstream_failed"}
    assert "null" in result.tasks["1_each"].log_text()


def test_taskrun_iteration_inside_for_each(run_flow):
    # Oracle: Kestra's ForEach sets `taskrun.iteration` to the value's index (0-based).
    result = run_flow(
        flow(f"""
        tasks:
          - id: loop
            type: {FLOW}.ForEach
            values: ["a", "b"]
            tasks:
              - id: it
                type: {RETURN}
                format: "{{{{ taskrun.value }}}} {{{{ taskrun.iteration }}}}"
        """)
    )
    assert result.state == "success"
    assert result.tasks["it"].outputs == {"a": {"value": "a 0"}, "b": {"value": "b 1"}}


def test_switch_that_ran_a_case_succeeds_though_a_flowable_sits_in_a_case_not_taken(run_flow):
    # Oracle: Kestra flows/valids/switch.yaml (SwitchTest: input SECOND runs t2 and t2_sub, the
    # Switch SUCCESS); `defaults: null` is accepted as no defaults.
    result = run_flow(
        flow(f"""
        tasks:
          - id: parent-seq
            type: {FLOW}.Switch
            value: SECOND
            cases:
              FIRST:
                - id: t1
                  type: {RETURN}
                  format: "{{{{ task.id }}}}"
              SECOND:
                - id: t2
                  type: {RETURN}
                  format: "{{{{ task.id }}}}"
                - id: t2_sub
                  type: {RETURN}
                  format: "{{{{ task.id }}}}"
              THIRD:
                - id: t3
                  type: {FLOW}.Sequential
                  tasks:
                    - id: failed
                      type: {FAIL}
                  errors:
                    - id: error-t1
                      type: {RETURN}
                      format: never
            defaults: null
          - id: after
            type: {RETURN}
            format: "{{{{ outputs.t2_sub.value }}}}"
        """)
    )
    assert result.state == "success"
    assert states(result) == {
        "parent-seq": "success",
        "t1": "skipped",
        "t2": "success",
        "t2_sub": "success",
        "t3": "skipped",
        "failed": "skipped",
        "error-t1": "skipped",
        "after": "success",
    }
    assert result.tasks["after"].outputs == {"value": "t2_sub"}


# --- validation: every stage in one pass ------------------------------------------------------


def test_validation_reports_every_error_of_every_stage_once_sorted_by_line():
    text = textwrap.dedent(f"""\
        id: every_stage
        namespace: test.flowables
        inputs:
          - id: x
            type: NOTATYPE
        tasks:
          - id: a
            type: {LOG}
            message: "{{{{ 1 + }}}}"
          - id: b
            type: io.kestra.plugin.nope.Missing
          - id: loop
            type: {FLOW}.ForEach
            values: [1]
            tasks:
              - id: loop2
                type: {FLOW}.ForEach
                values: [1]
                tasks:
                  - id: branch
                    type: {FLOW}.If
                    condition: "{{{{ true }}}}"
                    then:
                      - id: c
                        type: io.kestra.plugin.core.execution.Exit
                        state: WARNING
        triggers:
          - id: hook
            type: io.kestra.plugin.core.trigger.Webhook
            key: abc
            conditions: []
        """)
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(text, "every_stage.yaml")
    found = [(error.line, error.path, error.message) for error in caught.value.errors]
    # (The inner ForEach and the If are supported: one error, for the Exit under both ForEach.)
    assert [line for line, _, _ in found] == [5, 9, 11, 25, 31]
    paths = [path for _, path, _ in found]
    assert paths == [
        "inputs[0].type",
        "tasks[0].message",
        "tasks[1].type",
        "tasks[2].tasks[0].tasks[0].then[0].type",
        "triggers[0].conditions",
    ]
    assert "invalid expression" in found[1][2]
    assert found[-1][2] == "property `conditions` of a Webhook trigger is not supported by yaml2dag yet"


def test_required_input_without_default_loads_with_only_a_flow_trigger():
    # Kestra loads it: runs the Flow trigger starts fail at start (missing required input).
    text = textwrap.dedent(f"""\
        id: flow_triggered
        namespace: test.flowables
        inputs:
          - id: name
            type: STRING
        tasks:
          - id: a
            type: {LOG}
            message: x
        triggers:
          - id: upstream
            type: io.kestra.plugin.core.trigger.Flow
            preconditions:
              id: upstream
              flows:
                - namespace: test.flowables
                  flowId: other
                  states: [SUCCESS]
        """)
    assert parse_flow_text(text, "flow_triggered.yaml").inputs[0].checked_at_start


def test_if_switch_and_run_if_inside_for_each_choose_per_iteration(run_flow):
    # Oracle: Kestra flows/valids/each-switch.yaml (a Switch on `taskrun.value` inside a ForEach
    # runs one case per value; outputs keyed by value), without its inner ForEach.
    result = run_flow(
        flow(f"""
        tasks:
          - id: loop
            type: {FLOW}.ForEach
            values: ["a", "b", "c"]
            concurrencyLimit: 0
            tasks:
              - id: check
                type: {FLOW}.If
                condition: "{{{{ taskrun.value == 'b' }}}}"
                then:
                  - id: is_b
                    type: {RETURN}
                    format: "b! {{{{ taskrun.value }}}}"
                else:
                  - id: not_b
                    type: {RETURN}
                    format: "not b {{{{ taskrun.value }}}}"
              - id: sw
                type: {FLOW}.Switch
                value: "{{{{ taskrun.value }}}}"
                cases:
                  a:
                    - id: case_a
                      type: {RETURN}
                      format: "a {{{{ parent.taskrun.value }}}}"
                defaults:
                  - id: other
                    type: {FLOW}.Sequential
                    tasks:
                      - id: other_inner
                        type: {RETURN}
                        format: "other {{{{ taskrun.value }}}} {{{{ taskrun.iteration }}}}"
              - id: maybe
                type: {FLOW}.Sequential
                runIf: "{{{{ taskrun.value != 'c' }}}}"
                tasks:
                  - id: maybe_inner
                    type: {RETURN}
                    format: "maybe {{{{ taskrun.value }}}}"
          - id: after
            type: {RETURN}
            format: >-
              {{{{ outputs.is_b['b'].value }}}} {{{{ outputs.check['a'].evaluationResult }}}}
              {{{{ outputs.sw['c'].defaults }}}}
        """)
    )
    assert result.state == "success"
    assert result.tasks["check"].outputs == {
        "a": {"evaluationResult": False},
        "b": {"evaluationResult": True},
        "c": {"evaluationResult": False},
    }
    assert result.tasks["is_b"].outputs == {"b": {"value": "b! b"}}
    assert result.tasks["not_b"].outputs == {"a": {"value": "not b a"}, "c": {"value": "not b c"}}
    assert result.tasks["case_a"].outputs == {"a": {"value": "a a"}}
    assert result.tasks["other_inner"].outputs == {"b": {"value": "other b 1"}, "c": {"value": "other c 2"}}
    assert result.tasks["maybe_inner"].outputs == {"a": {"value": "maybe a"}, "b": {"value": "maybe b"}}
    assert result.tasks["after"].outputs == {"value": "b! b false true"}
    assert all(task.state == "success" for task in result.tasks.values())


def test_deprecated_each_sequential_and_each_parallel_loop_over_value(run_flow):
    # Oracle: Kestra flows/valids/each-parallel.yaml (EachParallel over a JSON `value`; its tasks
    # run for every value, in parallel) and each-sequential.yaml (EachSequential, one at a time).
    result = run_flow(
        flow(f"""
        tasks:
          - id: 1_each
            type: {FLOW}.EachParallel
            value: '["value 1", "value 2", "value 3"]'
            tasks:
              - id: 1-1
                type: {RETURN}
                format: "{{{{ task.id }}}} {{{{ taskrun.value }}}}"
              - id: 1-2
                type: {RETURN}
                format: "{{{{ task.id }}}} {{{{ taskrun.value }}}}"
          - id: 2_seq
            type: io.kestra.core.tasks.flows.EachSequential
            value: ["a", "b"]
            tasks:
              - id: 2-1
                type: {RETURN}
                format: "{{{{ taskrun.value }}}}"
          - id: 2_end
            type: {RETURN}
            format: "{{{{ task.id }}}}"
        """)
    )
    assert result.state == "success"
    assert all(task.state == "success" for task in result.tasks.values())
    assert result.tasks["1-2"].outputs == {
        "value 1": {"value": "1-2 value 1"},
        "value 2": {"value": "1-2 value 2"},
        "value 3": {"value": "1-2 value 3"},
    }
    assert result.tasks["2-1"].outputs == {"a": {"value": "a"}, "b": {"value": "b"}}


def test_input_declared_with_deprecated_name_and_the_system_read_only_label(run_flow):
    # Oracle: Kestra flows/valids/switch.yaml declares its input with `name:` (still read by Kestra);
    # Kestra lets a flow set the label `system.readOnly`.
    result = run_flow(
        f"""\
id: named_input
namespace: test.flowables
labels:
  system.readOnly: "true"
inputs:
  - name: string
    type: STRING
    defaults: SECOND
tasks:
  - id: sw
    type: {FLOW}.Switch
    value: "{{{{ inputs.string }}}}"
    cases:
      SECOND:
        - id: t2
          type: {RETURN}
          format: "{{{{ inputs.string }}}} {{{{ labels.system.readOnly }}}}"
"""
    )
    assert result.state == "success"
    assert states(result) == {"sw": "success", "t2": "success"}
    assert result.tasks["t2"].outputs == {"value": "SECOND true"}


@pytest.mark.parametrize(("fail", "final"), [(False, "SUCCESS"), (True, "FAILED")])
def test_after_execution_tasks_see_the_final_state_and_never_change_it(run_flow, fail, final):
    # Oracle: Kestra flows/valids/after-execution.yaml (AfterExecutionTest: `end` outputs
    # state SUCCESS); afterExecution failures never change the execution's state (Kestra docs).
    boom = f"\n  - id: boom\n    type: {FAIL}" if fail else ""
    result = run_flow(
        f"""\
id: after_execution_{final.lower()}
namespace: test.flowables
tasks:
  - id: hello
    type: {LOG}
    message: Hello World!{boom}
finally:
  - id: fin
    type: {RETURN}
    format: "{{{{ execution.state }}}}"
afterExecution:
  - id: end
    type: io.kestra.plugin.core.output.OutputValues
    values:
      state: "{{{{ execution.state }}}}"
  - id: seq
    type: {FLOW}.Sequential
    tasks:
      - id: inner
        type: {RETURN}
        format: "{{{{ execution.state }}}}"
      - id: broken
        type: {FAIL}
"""
    )
    assert result.state == final.lower()
    assert result.tasks["fin"].outputs == {"value": "RUNNING"}
    assert result.tasks["end"].outputs == {"values": {"state": final}}
    assert result.tasks["inner"].outputs == {"value": final}
    assert states(result)["broken"] == "failed"
    assert states(result)["seq"] == "failed"
