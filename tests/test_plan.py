"""Golden plans: a flow snippet → the DAG it is planned as, one task per line (no Airflow involved).

Each line reads `task_id rule [role] [fails-run] <- upstream @group`, where `rule` is the Airflow
trigger rule. The table covers every flowable, errors/finally at every level, disabled tasks,
runIf, allowFailure and retries.
"""

from __future__ import annotations

import textwrap

import pytest

from yaml2dag.flowfile import parse_flow_text
from yaml2dag.plan import DagPlan, plan_flow

LOG = "io.kestra.plugin.core.log.Log"
FLOW = "io.kestra.plugin.core.flow."
STATE = [
    "_flow_state all_done_setup_success teardown fails-run <- {last}",
    "_flow_event all_done_setup_success teardown <- {last}",
]


def lines(plan: DagPlan) -> list[str]:
    rows = []
    for task in plan.tasks.values():
        parts = [task.task_id, task.trigger_rule]
        parts += [task.role] if task.role != "task" else []
        parts += ["fails-run"] if task.fails_run else []
        parts += [f"<- {','.join(task.upstream)}"] if task.upstream else []
        parts += [f"@{task.group}"] if task.group else []
        rows.append(" ".join(parts))
    return rows


def _expanded(body: str) -> str:
    return textwrap.dedent(body).replace("type: Log", f"type: {LOG}").replace("type: flow.", f"type: {FLOW}")


def planned(body: str) -> DagPlan:
    return plan_flow(parse_flow_text("id: golden\nnamespace: tests.plan\n" + _expanded(body)))


def state(last: str) -> list[str]:
    return [line.format(last=last) for line in STATE]


CASES = [
    (
        "sequence",
        """
        tasks:
          - {id: a, type: Log, message: x}
          - {id: b, type: Log, message: x}
        """,
        ["a all_success", "b none_failed <- a", *state("b")],
    ),
    (
        "flow outputs: the event task waits for the state task, which renders them",
        """
        tasks:
          - {id: a, type: Log, message: x}
        outputs:
          - {id: said, type: STRING, value: "{{ outputs.a }}"}
        """,
        [
            "a all_success",
            "_flow_state all_done_setup_success teardown fails-run <- a",
            "_flow_event all_done_setup_success teardown <- _flow_state",
        ],
    ),
    (
        "disabled tasks are not planned",
        """
        tasks:
          - {id: a, type: Log, message: x}
          - {id: off, type: Log, message: x, disabled: true}
          - {id: b, type: Log, message: x}
        """,
        ["a all_success", "b none_failed <- a", *state("b")],
    ),
    (
        "errors and finally",
        """
        tasks:
          - {id: a, type: Log, message: x}
        errors:
          - {id: e1, type: Log, message: x}
          - {id: e2, type: Log, message: x}
        finally:
          - {id: f1, type: Log, message: x}
          - {id: f2, type: Log, message: x}
        """,
        [
            "a all_success",
            "e1 one_failed <- a @errors",
            "e2 none_skipped <- e1 @errors",
            "f1 all_done_setup_success teardown <- a,e2 @finally",
            "f2 all_done_setup_success teardown <- f1 @finally",
            *state("a"),
        ],
    ),
    (
        "a task named errors moves the group id",
        """
        tasks:
          - {id: errors, type: Log, message: x}
        errors:
          - {id: e1, type: Log, message: x}
        """,
        ["errors all_success", "e1 one_failed <- errors @errors_", *state("errors")],
    ),
    (
        "parallel with two lanes",
        """
        tasks:
          - id: p
            type: flow.Parallel
            concurrent: 2
            tasks:
              - {id: a, type: Log, message: x}
              - {id: b, type: Log, message: x}
              - {id: c, type: Log, message: x}
        """,
        [
            "p.start all_success setup @p",
            "a all_success <- p.start @p",
            "b all_success <- p.start @p",
            "c none_failed <- a @p",
            "p.end all_done_setup_success teardown fails-run <- b,c @p",
            *state("p.end"),
        ],
    ),
    (
        "sequential with runIf, local errors and finally",
        """
        tasks:
          - id: s
            type: flow.Sequential
            runIf: "{{ true }}"
            tasks:
              - {id: a, type: Log, message: x}
            errors:
              - {id: e, type: Log, message: x}
            finally:
              - {id: f, type: Log, message: x}
        """,
        [
            "s.start all_success setup @s",
            "a all_success <- s.start @s",
            "e one_failed <- a @s_errors",
            "f all_done_setup_success teardown <- a,e @s_finally",
            "s.end all_done_setup_success teardown fails-run <- a,e,f @s",
            *state("s.end"),
        ],
    ),
    (
        "if with then and else",
        """
        tasks:
          - id: i
            type: flow.If
            condition: "{{ true }}"
            then:
              - {id: t, type: Log, message: x}
            else:
              - {id: f, type: Log, message: x}
        """,
        [
            "i.start all_success setup @i",
            "t all_success <- i.start @i",
            "f all_success <- i.start @i",
            "i.end all_done_setup_success teardown fails-run <- t,f @i",
            *state("i.end"),
        ],
    ),
    (
        "switch with cases and defaults",
        """
        tasks:
          - id: s
            type: flow.Switch
            value: x
            cases:
              x:
                - {id: a, type: Log, message: x}
            defaults:
              - {id: d, type: Log, message: x}
        """,
        [
            "s.start all_success setup @s",
            "a all_success <- s.start @s",
            "d all_success <- s.start @s",
            "s.end all_done_setup_success teardown fails-run <- a,d @s",
            *state("s.end"),
        ],
    ),
    (
        "foreach body mapped over the start's values",
        """
        tasks:
          - id: each
            type: flow.ForEach
            values: [1, 2]
            tasks:
              - {id: a, type: Log, message: x}
              - {id: b, type: Log, message: x}
        """,
        [
            "each.start all_success setup @each",
            "a all_success <- each.start @each_each",
            "b none_failed <- a @each_each",
            "each.end all_done_setup_success teardown fails-run <- b @each",
            *state("each.end"),
        ],
    ),
    (
        "sequential inside a foreach body",
        """
        tasks:
          - id: each
            type: flow.ForEach
            values: [1, 2]
            tasks:
              - {id: a, type: Log, message: x}
              - id: s
                type: flow.Sequential
                tasks:
                  - {id: b, type: Log, message: x}
        """,
        [
            "each.start all_success setup @each",
            "a all_success <- each.start @each_each",
            "s.start none_failed setup <- a @s",
            "b all_success <- s.start @s",
            "s.end all_done_setup_success teardown fails-run <- b @s",
            "each.end all_done_setup_success teardown fails-run <- s.end @each",
            *state("each.end"),
        ],
    ),
    (
        "dag by dependsOn",
        """
        tasks:
          - id: d
            type: flow.Dag
            tasks:
              - task: {id: a, type: Log, message: x}
              - task: {id: b, type: Log, message: x}
                dependsOn: [a]
              - task: {id: c, type: Log, message: x}
                dependsOn: [a]
        """,
        [
            "d.start all_success setup @d",
            "a all_success <- d.start @d",
            "b none_failed <- a @d",
            "c none_failed <- a @d",
            "d.end all_done_setup_success teardown fails-run <- b,c @d",
            *state("d.end"),
        ],
    ),
    (
        "allowFailure group and exit",
        """
        tasks:
          - id: af
            type: flow.AllowFailure
            tasks:
              - {id: a, type: Log, message: x}
          - {id: stop, type: io.kestra.plugin.core.execution.Exit, state: WARNING}
        """,
        [
            "af.start all_success setup @af",
            "a all_success <- af.start @af",
            "af.end all_done_setup_success teardown fails-run <- a @af",
            "stop none_failed <- af.end",
            *state("stop"),
        ],
    ),
    (
        "flowables in errors and finally (every task of finally a teardown)",
        """
        tasks:
          - {id: a, type: Log, message: x}
        errors:
          - {id: e1, type: Log, message: x}
          - id: p
            type: flow.Parallel
            tasks:
              - {id: pa, type: Log, message: x}
              - {id: pb, type: Log, message: x}
        finally:
          - id: f
            type: flow.Sequential
            tasks:
              - {id: fa, type: Log, message: x}
              - id: fi
                type: flow.If
                condition: "{{ true }}"
                then:
                  - {id: fb, type: Log, message: x}
        """,
        [
            "a all_success",
            "e1 one_failed <- a @errors",
            "p.start none_skipped setup <- e1 @p",
            "pa all_success <- p.start @p",
            "pb all_success <- p.start @p",
            "p.end all_done_setup_success teardown fails-run <- pa,pb @p",
            "f.start all_done_setup_success teardown <- a,p.end @f",
            "fa all_done_setup_success teardown <- f.start @f",
            "fi.start all_done_setup_success teardown <- fa @fi",
            "fb all_done_setup_success teardown <- fi.start @fi",
            "fi.end all_done_setup_success teardown <- fb @fi",
            "f.end all_done_setup_success teardown <- fi.end @f",
            *state("a"),
        ],
    ),
    (
        "a flowable first in errors",
        """
        tasks:
          - {id: a, type: Log, message: x}
        errors:
          - id: s
            type: flow.Sequential
            tasks:
              - {id: sa, type: Log, message: x}
        """,
        [
            "a all_success",
            "s.start one_failed setup <- a @s",
            "sa all_success <- s.start @s",
            "s.end all_done_setup_success teardown fails-run <- sa @s",
            *state("a"),
        ],
    ),
    (
        "foreach whose children are all disabled",
        """
        tasks:
          - id: each
            type: flow.ForEach
            values: [1, 2]
            tasks:
              - {id: a, type: Log, message: x, disabled: true}
          - {id: b, type: Log, message: x}
        """,
        [
            "each.start all_success setup @each",
            "each.end all_done_setup_success teardown fails-run <- each.start @each",
            "b none_failed <- each.end",
            *state("b"),
        ],
    ),
    (
        "flowables in a foreach body",
        """
        tasks:
          - id: each
            type: flow.ForEach
            values: [1, 2]
            concurrencyLimit: 2
            tasks:
              - id: s
                type: flow.Sequential
                tasks:
                  - {id: a, type: Log, message: x}
              - id: af
                type: flow.AllowFailure
                tasks:
                  - {id: b, type: Log, message: x}
        """,
        [
            "each.start all_success setup @each",
            "s.start all_success setup <- each.start @s",
            "a all_success <- s.start @s",
            "s.end all_done_setup_success teardown fails-run <- a @s",
            "af.start none_failed setup <- s.end @af",
            "b all_success <- af.start @af",
            "af.end all_done_setup_success teardown fails-run <- b @af",
            "each.end all_done_setup_success teardown fails-run <- af.end @each",
            *state("each.end"),
        ],
    ),
    (
        "deprecated EachParallel: the tasks of one value in parallel",
        """
        tasks:
          - id: each
            type: flow.EachParallel
            value: [1, 2]
            concurrent: 2
            tasks:
              - {id: a, type: Log, message: x}
              - {id: b, type: Log, message: x}
        """,
        [
            "each.start all_success setup @each",
            "a all_success <- each.start @each_each",
            "b all_success <- each.start @each_each",
            "each.end all_done_setup_success teardown fails-run <- a,b @each",
            *state("each.end"),
        ],
    ),
    (
        "afterExecution after the state task, errors and finally (teardowns)",
        """
        tasks:
          - {id: a, type: Log, message: x}
        errors:
          - {id: e, type: Log, message: x}
        finally:
          - {id: f, type: Log, message: x}
        afterExecution:
          - {id: z, type: Log, message: x}
        """,
        [
            "a all_success",
            "e one_failed <- a @errors",
            "f all_done_setup_success teardown <- a,e @finally",
            *state("a"),
            "z all_done_setup_success teardown <- _flow_state,e,f @afterExecution",
        ],
    ),
    (
        "empty flowable after disabling its only child",
        """
        tasks:
          - id: s
            type: flow.Sequential
            tasks:
              - {id: a, type: Log, message: x, disabled: true}
        """,
        [
            "s.start all_success setup @s",
            "s.end all_done_setup_success teardown fails-run <- s.start @s",
            *state("s.end"),
        ],
    ),
]


@pytest.mark.parametrize(("body", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_golden_plan(body, expected):
    assert lines(planned(body)) == expected


@pytest.mark.airflow
@pytest.mark.parametrize("body", [case[1] for case in CASES], ids=[case[0] for case in CASES])
def test_emitted_dag_has_exactly_the_planned_tasks_edges_rules_and_roles(body, airflow_db):
    from yaml2dag.compiler import compile_flow

    flow = parse_flow_text("id: golden\nnamespace: tests.plan\n" + _expanded(body))
    plan, dag = plan_flow(flow), compile_flow(flow)
    assert list(dag.task_dict) == list(plan.tasks)
    for task_id, task in plan.tasks.items():
        operator = dag.get_task(task_id)
        assert operator.upstream_task_ids == {*task.upstream, *task.setups}, task_id
        assert str(getattr(operator.trigger_rule, "value", operator.trigger_rule)) == task.trigger_rule, task_id
        assert (operator.is_setup, operator.is_teardown) == (task.role == "setup", task.role == "teardown"), task_id
        group = operator.task_group
        assert (None if group is None or group.is_root else group.group_id) == task.group, task_id


def test_plan_is_pure_and_repeatable():
    body = CASES[2][1]
    assert planned(body) == planned(body)


def test_task_arguments_carry_run_if_allow_failure_and_retries():
    plan = planned(
        """
        retry: {type: constant, interval: PT1S, maxAttempts: 2}
        tasks:
          - id: own
            type: Log
            message: x
            retry: {type: constant, interval: PT2S, maxAttempts: 3, warningOnRetry: true}
          - {id: inherits, type: Log, message: x, runIf: "{{ true }}", timeout: PT5S}
          - {id: tolerant, type: Log, message: x, allowFailure: true}
        """
    )
    own, inherits, tolerant = (plan.tasks[name] for name in ("own", "inherits", "tolerant"))
    assert own.retry is not None and own.retry.interval == "PT2S" and own.arguments["warning_on_retry"] is True
    assert inherits.retry is not None and inherits.retry.interval == "PT1S"
    assert inherits.arguments["run_if"] == "{{ true }}" and inherits.arguments["execution_timeout"].total_seconds() == 5
    # An allowFailure task takes no inherited retry: its failure ends WARNING at once, as in Kestra.
    assert tolerant.retry is None and tolerant.arguments["allow_failure"] is True
    assert own.arguments == {"kestra_type": LOG, "message": "x", "level": "INFO", "warning_on_retry": True}


def test_flowable_starts_know_their_branches_errors_their_scope_and_loops_their_values():
    plan = planned(
        """
        tasks:
          - id: i
            type: flow.If
            condition: "{{ true }}"
            then:
              - {id: t, type: Log, message: x}
          - id: each
            type: flow.ForEach
            values: [1]
            concurrencyLimit: 3
            tasks:
              - {id: a, type: Log, message: x}
        errors:
          - {id: e, type: Log, message: x}
        """
    )
    assert plan.tasks["i.start"].arguments["branches"] == {"then": ["t"], "else": []}
    assert plan.tasks["i.start"].arguments["inner_task_ids"] == ["i.end", "t"]
    assert plan.tasks["a"].arguments["loop_task_id"] == "each.start"
    assert plan.tasks["a"].arguments["max_active_tis_per_dagrun"] == 3
    assert plan.groups["each_each"].expand_over == "each.start"
    assert plan.tasks["e"].arguments["errors_of"] == ["i.end", "each.end"]
    assert plan.group_of("each_each") == "each"


def test_exit_knows_the_ends_of_its_parents_and_they_know_it():
    plan = planned(
        """
        tasks:
          - id: outer
            type: flow.Sequential
            tasks:
              - id: i
                type: flow.If
                condition: "{{ true }}"
                then:
                  - {id: stop, type: io.kestra.plugin.core.execution.Exit, state: KILLED}
        errors:
          - id: s
            type: flow.Sequential
            tasks:
              - {id: a, type: Log, message: x}
        """
    )
    assert plan.tasks["stop"].arguments["parent_end_ids"] == ["outer.end", "i.end"]
    assert plan.tasks["outer.end"].arguments["exit_task_ids"] == ["stop"]
    assert plan.tasks["i.end"].arguments["exit_task_ids"] == ["stop"]
    # The first flowable of an errors block starts with a Kestra task that checks its scope failed.
    assert plan.tasks["s.start"].operator == "yaml2dag.operators.flowable:FlowableStartOperator"
    assert plan.tasks["s.start"].arguments["errors_of"] == ["outer.end"]
    assert plan.tasks["s.end"].setups == ("s.start",)


def test_planning_imports_no_airflow():
    import subprocess
    import sys

    code = (
        "import sys; from yaml2dag.flowfile import read_flow; from yaml2dag.plan import plan_flow; "
        "plan_flow(read_flow('dags/examples/flowables.yaml')); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    from conftest import REPO

    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def plan_lines(plan: DagPlan) -> list[str]:
    """The lines of a plan and of its child DAGs (nested ForEach), each DAG under a `[dag id]` header."""
    from yaml2dag.plan import all_plans

    return [row for each in all_plans(plan) for row in [f"[{each.dag_id}]", *lines(each)]]


CHILD_STATE = "_flow_state all_done_setup_success teardown fails-run <- {last}"

NESTED_CASES = [
    (
        "foreach inside a foreach body: a child DAG run per iteration",
        """
        tasks:
          - id: outer
            type: flow.ForEach
            values: [a, b]
            concurrencyLimit: 0
            tasks:
              - {id: first, type: Log, message: x}
              - id: inner
                type: flow.ForEach
                values: "{{ [taskrun.value] }}"
                tasks:
                  - {id: leaf, type: Log, message: x}
              - {id: last, type: Log, message: x}
          - {id: after, type: Log, message: x}
        """,
        [
            "[tests.plan.golden]",
            "outer.start all_success setup @outer",
            "first all_success <- outer.start @outer_each",
            "inner none_failed <- first @outer_each",
            "last none_failed <- inner @outer_each",
            "outer.end all_done_setup_success teardown fails-run <- last @outer",
            "after none_failed <- outer.end",
            *state("after"),
            "[tests.plan.golden__inner]",
            "inner.start all_success setup @inner",
            "leaf all_success <- inner.start @inner_each",
            "inner.end all_done_setup_success teardown fails-run <- leaf @inner",
            CHILD_STATE.format(last="inner.end"),
        ],
    ),
    (
        "three levels: the child DAG has a child DAG",
        """
        tasks:
          - id: l1
            type: flow.ForEach
            values: [a]
            tasks:
              - id: l2
                type: flow.ForEach
                values: [b]
                tasks:
                  - id: s
                    type: flow.Sequential
                    tasks:
                      - id: l3
                        type: flow.ForEach
                        values: [c]
                        tasks:
                          - {id: leaf, type: Log, message: x}
        """,
        [
            "[tests.plan.golden]",
            "l1.start all_success setup @l1",
            "l2 all_success <- l1.start @l1_each",
            "l1.end all_done_setup_success teardown fails-run <- l2 @l1",
            *state("l1.end"),
            "[tests.plan.golden__l2]",
            "l2.start all_success setup @l2",
            "s.start all_success setup <- l2.start @s",
            "l3 all_success <- s.start @s",
            "s.end all_done_setup_success teardown fails-run <- l3 @s",
            "l2.end all_done_setup_success teardown fails-run <- s.end @l2",
            CHILD_STATE.format(last="l2.end"),
            "[tests.plan.golden__l2__l3]",
            "l3.start all_success setup @l3",
            "leaf all_success <- l3.start @l3_each",
            "l3.end all_done_setup_success teardown fails-run <- leaf @l3",
            CHILD_STATE.format(last="l3.end"),
        ],
    ),
    (
        "loop until: one child DAG run per iteration, the loop one task in a Sequential",
        """
        tasks:
          - id: seq
            type: flow.Sequential
            tasks:
              - id: loop
                type: flow.LoopUntil
                condition: "{{ outputs.check.value == '3' }}"
                checkFrequency: {interval: PT1S, maxIterations: 5}
                tasks:
                  - {id: work, type: Log, message: x}
                  - {id: check, type: io.kestra.plugin.core.debug.Return, format: x}
          - {id: after, type: Log, message: x}
        """,
        [
            "[tests.plan.golden]",
            "seq.start all_success setup @seq",
            "loop all_success <- seq.start @seq",
            "seq.end all_done_setup_success teardown fails-run <- loop @seq",
            "after none_failed <- seq.end",
            *state("after"),
            "[tests.plan.golden__loop]",
            "work all_success",
            "check none_failed <- work",
            CHILD_STATE.format(last="check"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [case[1:] for case in NESTED_CASES], ids=[case[0] for case in NESTED_CASES]
)
def test_golden_nested_plan(body, expected):
    assert plan_lines(planned(body)) == expected


def test_nested_foreach_layout_says_where_each_task_runs():
    plan = planned(NESTED_CASES[1][1])
    assert plan.layout is not None
    assert plan.layout.carried_by == {"s": "l2", "l3": "l2", "leaf": "l2"}
    assert plan.layout.loop_of == {"l2": "l1"}
    (child,) = plan.children
    assert child.layout is not None
    assert child.layout.task_ids == {"l2", "s", "l3"}
    assert child.layout.flowable_ids == {"l2", "s"}
    assert child.layout.carried_by == {"leaf": "l3"}
    assert child.layout.loop_of == {"s": "l2", "l3": "l2"}
    carrier = plan.tasks["l2"]
    assert carrier.operator == "yaml2dag.operators.loops:ForEachRunOperator"
    assert carrier.arguments["child_dag_id"] == "tests.plan.golden__l2"
    assert carrier.arguments["one_at_a_time"] is True


def test_loop_until_is_one_task_running_its_child_dag():
    plan = planned(NESTED_CASES[2][1])
    assert plan.layout is not None
    assert plan.layout.carried_by == {"work": "loop", "check": "loop"}
    assert plan.layout.loop_of == {} and "loop" not in plan.layout.flowable_ids
    loop = plan.tasks["loop"]
    assert loop.operator == "yaml2dag.operators.loops:LoopUntilOperator"
    # The declared properties of LoopUntil (as any task's), plus the child DAG it runs.
    assert dict(loop.arguments) == {
        "kestra_type": "io.kestra.plugin.core.flow.LoopUntil",
        "condition": "{{ outputs.check.value == '3' }}",
        "checkFrequency": {"interval": "PT1S", "maxIterations": 5},
        "failOnMaxReached": False,
        "child_dag_id": "tests.plan.golden__loop",
        "doc_md": loop.arguments["doc_md"],
    }


def test_loop_until_inside_a_foreach_is_refused():
    from yaml2dag.errors import FlowValidationError

    body = """
        tasks:
          - id: each
            type: flow.ForEach
            values: [a]
            tasks:
              - id: loop
                type: flow.LoopUntil
                condition: "true"
                tasks:
                  - {id: work, type: Log, message: x}
        """
    with pytest.raises(FlowValidationError, match="`LoopUntil` inside a ForEach is not supported by yaml2dag yet"):
        planned(body)


@pytest.mark.airflow
@pytest.mark.parametrize("body", [case[1] for case in NESTED_CASES], ids=[case[0] for case in NESTED_CASES])
def test_emitted_child_dags_have_exactly_the_planned_tasks(body, airflow_db):
    from yaml2dag.compiler import child_dags, compile_flow
    from yaml2dag.plan import all_plans

    flow = parse_flow_text("id: golden\nnamespace: tests.plan\n" + _expanded(body))
    dag = compile_flow(flow)
    dags = [dag, *child_dags(dag)]
    plans = all_plans(plan_flow(flow))
    assert [each.dag_id for each in dags] == [each.dag_id for each in plans]
    for emitted, plan in zip(dags, plans, strict=True):
        assert list(emitted.task_dict) == list(plan.tasks)
        for task_id, task in plan.tasks.items():
            operator = emitted.get_task(task_id)
            assert operator.upstream_task_ids == {*task.upstream, *task.setups}, task_id
            assert (operator.is_setup, operator.is_teardown) == (task.role == "setup", task.role == "teardown")
