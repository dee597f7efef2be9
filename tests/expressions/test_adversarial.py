"""Hostile expressions: each ends as a clear error (or the right result), bounded in time and memory.

A flow author writes expressions, so a short one must neither read the worker's environment or
files (jq), nor exhaust its memory or time, nor crash the process (a jq C stack overflow aborts
it), nor pass validation and then fail with a raw `RecursionError` when a task renders it.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

from yaml2dag.errors import ExpressionError, FlowValidationError, RenderError
from yaml2dag.expressions import isolation, limits, render, translate
from yaml2dag.expressions.isolation import run_jq
from yaml2dag.expressions.jqprograms import refused_use
from yaml2dag.expressions.limits import MAX_LOOP_ITEMS, MAX_NESTING, MAX_TEXT
from yaml2dag.flowfile import parse_flow_text

pytestmark = pytest.mark.timeout(60)

# --- 1. jq cannot reach outside its input --------------------------------------------------------

REFUSED_JQ = [
    ("env", "`env`"),
    ("env.PATH", "`env`"),
    ("$ENV", "`$ENV`"),
    ("$ENV.HOME", "`$ENV`"),
    ("$ ENV", "`$ENV`"),
    ('import "x" as $c {search: "/etc"}; $c', "`import`"),
    ('include "x" {search: "/tmp"}; .', "`include`"),
    ('"x" | modulemeta', "`modulemeta`"),
    ("input_filename", "`input_filename`"),
    ("$__loc__", "`$__loc__`"),
    ("input", "`input`"),
    ("[inputs]", "`inputs`"),
    ("debug", "`debug`"),
    ('"x" | stderr', "`stderr`"),
    ("get_search_list", "`get_search_list`"),
    ('"\\(env)"', "`env`"),  # an interpolation is code
    ('"a\\("b" + "\\(env)")"', "`env`"),  # nested interpolations
    ("{a: env}", "`env`"),
    ("{$ENV}", "`$ENV`"),
    ("{(env | keys[0]): 1}", "`env`"),
    ("[.[] | env]", "`env`"),
    ("halt_error", "`halt_error`"),
]

ALLOWED_JQ = [
    (".env", '{"env": 1}', [1]),
    ('."env"', '{"env": 2}', [2]),
    (".a.env", '{"a": {"env": 3}}', [3]),
    ('"env"', "null", ["env"]),
    ('"input \\(.a) env"', '{"a": 1}', ["input 1 env"]),
    ("{env: 1} | .env", "null", [1]),
    ("{input: 1, debug: 2} | keys", "null", [["debug", "input"]]),
    ('"\\\\(env)"', "null", ["\\(env)"]),  # an escaped backslash: no interpolation
    ("@base64", '"env"', ["ZW52"]),
    ("[.[] | select(. > 1)]", "[1, 2, 3]", [[2, 3]]),
]


@pytest.mark.parametrize(("program", "named"), REFUSED_JQ)
def test_jq_programs_reaching_outside_their_input_are_refused(program: str, named: str) -> None:
    refused = refused_use(program)
    assert refused is not None and refused.startswith(named)
    with pytest.raises(RenderError, match=rf"uses {named.replace('$', '[$]')} .*not allowed"):
        render("{{ data | jq(program) }}", {"data": {"a": 1}, "program": program})


@pytest.mark.parametrize(("program", "text", "expected"), ALLOWED_JQ)
def test_jq_names_that_are_fields_keys_or_strings_are_allowed(program: str, text: str, expected: list) -> None:
    assert refused_use(program) is None
    assert run_jq(program, text) == expected


def test_a_literal_jq_program_is_refused_at_compile_time() -> None:
    with pytest.raises(ExpressionError, match=r"uses `\$ENV` \(it would read the environment\), which is not allowed"):
        translate("{{ data | jq('$ENV.AWS_SECRET_ACCESS_KEY') }}")
    with pytest.raises(ExpressionError, match="uses `env`"):
        translate("{{ data | jq(expression='env') }}")
    translate("{{ data | jq('.env') }}")


def test_a_refused_jq_program_is_a_located_validation_error() -> None:
    flow = (
        "id: f\nnamespace: n\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: \"{{ inputs | jq('env') }}\"\n"
    )
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(flow, "flow.yaml")
    [error] = caught.value.errors
    assert "uses `env`" in error.message and error.line == 6


def test_the_jq_worker_has_no_environment_even_if_a_program_got_through() -> None:
    [environment] = run_jq("env", "null")  # straight to the worker, past the refusal
    assert not {"PATH", "HOME", "PYTHONPATH", "AIRFLOW_HOME"} & set(environment)


# --- 2. bounded resources ------------------------------------------------------------------------

YAML_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)

BOUNDED = [
    ("{{ 'a\nb' | indent(1000000000) }}", "`indent` would be"),
    ("{{ 'a\nb' | nindent(1000000, prefix='xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') }}", "`nindent` would be"),
    ("{{ 'a' | indent(1000000000) }}", "`indent` would be"),
    ("{{ '%999999999d' | format(1) }}", "wider than"),
    ("{{ '%.999999999f' | format(1.5) }}", "wider than"),
    ("{{ big | replace({'': 'xxxxxxxxxx'}) }}", "`replace` would be"),
    ("{{ big | replace({'a': '$0$0$0$0$0$0$0$0$0$0'}, regexp=true) }}", "too large|took more than"),
    ("{{ render(itself) }}", r"render\(\) is nested more than 8 levels deep"),
    # About 7 s of CPU: on a loaded machine the 60 s rendering budget can end it first.
    ("{{ render(doubling) }}", "more than 10,000 tags|characters|took more than 60 seconds"),
    ("{{ yaml(bomb) | toJson }}", "too large to print"),
    ("{{ yaml(bomb) }}", "too large to print"),
    ("{{ yaml(bomb) ~ '' }}", "too large to print"),
    ("{{ yaml(bomb) | jq('.') }}", "too large to print"),
    ("{{ yaml(bomb).i | join(',') }}", "too large to print"),
    ("{{ range(1, 100000000) }}", "range too large"),
    ("{{ 1..100000000 }}", "range too large"),
    ("{% set l = range(1, 1000000) %}{{ l + l + l + l }}", "items; at most"),
    ("{% for i in range(1, 1000000) %}{% for j in range(1, 1000000) %}{% endfor %}{% endfor %}", "loops would run"),
    ("{% for i in range(1, 100000) %}{{ big }}{% endfor %}", "rendered text would be"),
    ("{% filter upper %}{% for i in range(1, 100000) %}{{ big }}{% endfor %}{% endfilter %}", "would be"),
    ("{{ data | jq('[range(1e8)]') }}", "jq program"),
    ("{{ data | jq('[range(1e7)]') }}", "jq program|too large"),
]


@pytest.fixture
def hostile_context() -> dict[str, object]:
    return {
        "big": "a" * (MAX_TEXT // 4),
        "itself": "{{ render(itself) ~ render(itself) }}x",
        "doubling": "{{ doubling ~ doubling }}",
        "bomb": YAML_BOMB,
        "data": {"a": 1},
    }


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("expression", "message"), BOUNDED)
def test_short_expressions_cannot_exhaust_memory_or_time(
    expression: str, message: str, hostile_context: dict[str, object]
) -> None:
    with pytest.raises(RenderError, match=message):
        render(expression, hostile_context)


@pytest.fixture
def short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "ISOLATED_SECONDS", 1.0)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "program",
    [
        "def f: 1 + f; f",  # a C stack overflow: jq aborts (SIGABRT) the process it runs in
        "def f: [f]; f",
        "def f: f; f",  # loops for ever
        "[repeat(1)]",
        "last(range(1e12))",
        '[limit(100000000; repeat("x" * 1000))] | length',
        '"a" * 100000000 | test("(a+)+b")',
    ],
)
def test_jq_cannot_kill_the_process_or_run_for_ever(program: str, short_budget: None) -> None:
    with pytest.raises(RenderError, match="jq program (took more than 1 seconds|crashed or ran out of memory)|jq"):
        render("{{ data | jq(program) }}", {"data": {"a": 1}, "program": program})
    assert render("{{ data | jq('.a') | first }}", {"data": {"a": 1}}) == "1"  # a fresh worker


@pytest.mark.timeout(30)
def test_a_forked_process_gets_its_own_jq_worker() -> None:
    assert run_jq(".a", '{"a": 1}') == [1]  # the parent's worker is running
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        ok = run_jq(".a", '{"a": 2}') == [2] and run_jq(".a", '{"a": 3}') == [3]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run_jq(".a", '{"a": 4}') == [4]  # the parent's worker still answers the parent


REDOS = [
    "{{ s | split('(a+)+$') }}",
    "{{ s | split('(a|a)*$') }}",
    "{{ s | split('(a|aa)+$') }}",
    "{{ s | split('(.*a){41}') }}",  # 40 a's can never make 41 groups: every split is tried
    "{{ s | replace({'(a+)+$': 'x'}, regexp=true) }}",
    "{{ s | replace({'^(([a-z])+.)+[A-Z]([a-z])+$': 'x'}, regexp=true) }}",
    "{{ s | split('(x+x+)+y') }}",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("expression", REDOS)
def test_catastrophic_regular_expressions_end_within_the_budget(expression: str, short_budget: None) -> None:
    context = {"s": "a" * 40 + "!"} if "x+" not in expression else {"s": "x" * 40}
    with pytest.raises(RenderError, match="the regular expression took more than 1 seconds"):
        render(expression, context)


def test_regular_expressions_still_work_in_and_out_of_the_worker() -> None:
    context = {"s": "a, b;c  d"}
    assert render("{{ s | split(', ') }}", context) == '["a","b;c  d"]'  # linear: in this process
    assert render("{{ s | split('\\s+') }}", context) == '["a,","b;c","d"]'
    assert render("{{ s | split('[,;]\\s*') }}", context) == '["a","b","c  d"]'  # in the worker
    assert render("{{ s | replace({'(\\w)\\s+': '$1_'}, regexp=true) }}", context) == "a, b;c_d"
    assert render("{{ s | replace({'[a-c]': '<$0>'}, regexp=true) }}", context) == "<a>, <b>;<c>  d"
    with pytest.raises(RenderError, match="invalid regular expression in `split`"):
        render("{{ s | split('(') }}", context)


# --- 3. nesting: what validates renders ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{{ " + " or ".join(["x == 2"] * 40 + ["x == 1"]) + " }}", "true"),
        ("{{ " + " and ".join(["x == 1"] * 200) + " }}", "true"),
        ("{{ " + " ~ ".join(["'a'"] * 70) + " }}", "a" * 70),
        ("{{ " + " + ".join(["1"] * 80) + " }}", "80"),
        ("{{ " + " + ".join(["1"] * 40) + " - 10 * 2 + " + " + ".join(["2"] * 40) + " }}", "100"),
        ("{{ " + " ?? ".join(["missing.a"] * 100) + " ?? 'z' }}", "z"),
        ("{{ (" + " or ".join(["missing.a"] * 50) + " or true) is defined }}", "false"),
        ("{{ " + "(" * 60 + "1" + ")" * 60 + " }}", "1"),
        ("{{ 1 < 2 == true }}", "true"),
    ],
)
def test_long_operator_chains_render(expression: str, expected: str) -> None:
    translate(expression)
    assert render(expression, {"x": 1, "missing": None}) == expected


@pytest.mark.parametrize(
    ("expression", "depth"),
    [
        ("{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}", 1000),
        ("{{ " + "[" * 30 + "1" + "]" * 30 + " }}", 31),
        ("{{ x" + ".a" * 40 + " }}", 41),
        ("{{ 'a'" + " | upper" * 30 + " }}", 31),
        ("{{ " + "not " * 30 + "true }}", 31),
        ("{{ " + "x ? 1 : " * 30 + "2 }}", 31),
    ],
)
def test_deep_nesting_is_a_compile_error_with_its_depth(expression: str, depth: int) -> None:
    with pytest.raises(ExpressionError, match=rf"expression nests {depth} levels deep; at most {MAX_NESTING}"):
        translate(expression)
    with pytest.raises(RenderError, match="nests"):
        render(expression, {"x": 1})


def test_deeply_nested_tags_are_a_compile_error() -> None:
    with pytest.raises(ExpressionError, match=f"tags nest more than {MAX_NESTING} levels deep"):
        translate("{% if true %}" * 1000 + "x" + "{% endif %}" * 1000)


def test_deep_nesting_is_a_located_validation_error() -> None:
    flow = (
        "id: f\nnamespace: n\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        '    message: "{{ ' + "(" * 1000 + "1" + ")" * 1000 + ' }}"\n'
    )
    with pytest.raises(FlowValidationError) as caught:
        parse_flow_text(flow, "flow.yaml")
    [error] = caught.value.errors
    assert f"expression nests 1000 levels deep; at most {MAX_NESTING}" in error.message and error.line == 6


def _deep_call(depth: int, function: object) -> str:
    return _deep_call(depth - 1, function) if depth else function()  # type: ignore[operator]


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "{{ " + "x.a ?? (" * (n - 1) + "1" + ")" * (n - 1) + " }}",
        lambda n: "{{ (" + "x.q and (" * (n - 2) + "true" + ")" * (n - 2) + ") | default(1) }}",
        lambda n: "{{ (" + "x.q.r or (" * (n - 2) + "true" + ")" * (n - 2) + ") is defined }}",
        lambda n: "{{ (" + "x.q ? 1 : (" * (n - 2) + "2" + ")" * (n - 2) + ") ?? 3 }}",
        lambda n: "{{ " + "[" * (n - 1) + "1" + "]" * (n - 1) + " }}",
        lambda n: "{{ 'a'" + " | lower" * (n - 1) + " }}",
    ],
)
def test_the_deepest_accepted_expressions_render_even_from_a_deep_stack(make) -> None:  # type: ignore[no-untyped-def]
    for depth in range(MAX_NESTING + 2, 0, -1):
        expression = make(depth)
        try:
            translate(expression)
            break
        except ExpressionError:
            continue
    assert depth >= MAX_NESTING - 2
    _deep_call(500, lambda: render(expression, {"x": {"a": 1}}))  # as if called from deep inside Airflow


# --- 4. no import cycle in the package -----------------------------------------------------------


def _import_graph() -> dict[str, set[str]]:
    package = Path(sys.modules["yaml2dag.expressions"].__file__ or "").parent
    names = {path.stem for path in package.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for name in names:
        imported: set[str] = set()
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):  # function-local imports too
            if isinstance(node, ast.ImportFrom) and node.module == "yaml2dag.expressions":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("yaml2dag.expressions."):
                imported.add((node.module or "").split(".")[2])
            elif isinstance(node, ast.Import):
                imported |= {a.name.split(".")[2] for a in node.names if a.name.startswith("yaml2dag.expressions.")}
        graph[name] = imported & names
    return graph


def test_modules_of_the_expression_package_import_each_other_one_way_only() -> None:
    graph = _import_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, f"import cycle: {' -> '.join([*path, name])}"
        if name not in done:
            for imported in sorted(graph[name]):
                visit(imported, [*path, name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_limits_are_documented_constants() -> None:
    assert MAX_TEXT == 16 * 1024 * 1024 and MAX_NESTING == 24 and MAX_LOOP_ITEMS == 10_000_000
    assert isolation.WORKER_MEMORY == 1024**3
