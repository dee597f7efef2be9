"""Property-based tests: translation either succeeds or raises `ExpressionError` with an offset
inside the source; rendering only ever raises `RenderError`; and generated Jinja always compiles."""

from __future__ import annotations

from cases import CONTEXT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yaml2dag.errors import ExpressionError, RenderError
from yaml2dag.expressions import render, translate
from yaml2dag.expressions.library import FILTERS, FUNCTIONS, TESTS
from yaml2dag.expressions.runtime import _ENVIRONMENT

FRAGMENTS = [
    "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", " ", "\n", "\r",
    "if ", "elseif ", "else", "endif", "for ", " in ", "endfor", "set ", "=", "raw", "endraw",
    "verbatim", "endverbatim", "filter ", "endfilter", "macro", "block",
    "s", "l", "m", "n", "i", "f", "e", "zz", "loop", "outputs", "inputs", ".", "[", "]", "(", ")",
    "{", "}", ",", ":", "?", "'", '"', "\\", "#{", "|", "~", "+", "-", "*", "/", "%", "..",
    "==", "!=", "<", ">=", "??", "???", "and", "or", "not", "is", "is not", "contains", "isIn",
    "equals", "defined", "null", "empty", "true", "1", "0", "2.5", "7L", "99999999999999999999",
    "upper", "default", "date", "length", "json", "jq", "range", "render", "now", "__class__", "é",
]  # fmt: skip


soup = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=30).map("".join)


def _check_translation(source: str) -> str | None:
    try:
        jinja_source = translate(source)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(source), (source, exc.offset)
        assert exc.source == source
        return None
    _ENVIRONMENT.parse(jinja_source)  # the generator only emits valid Jinja
    return jinja_source


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soup)
def test_any_text_translates_or_fails_with_a_position(source: str) -> None:
    _check_translation(source)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soup)
def test_rendering_any_text_only_raises_render_error(source: str) -> None:
    try:
        output = render(source, CONTEXT)
    except RenderError:
        return
    assert isinstance(output, str)


# --- a grammar of well-formed Pebble expressions -------------------------------------------------

NAMES = ["s", "n", "i", "f", "l", "m", "e", "blank", "zz", "inputs", "outputs", "execution", "json", "loop"]
NO_ARG_FILTERS = sorted(name for name, spec in FILTERS.items() if spec.required == 0 and name != "render")
literals = st.one_of(
    st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1).map(lambda v: str(v) if v >= 0 else f"({v})"),
    st.floats(min_value=0, max_value=1e12, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["true", "false", "null", "'a'", "''", "'1'", '"#{s}"', "[]", "{}", "[1, 'b']", "{'k': 1}"]),
)
atoms = st.one_of(literals, st.sampled_from(NAMES), st.sampled_from(["inputs.name", "outputs.t1.list[1]", "m.a"]))


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "%", "~", "==", "!=", "<", ">=", "and", "or", "contains",
                              "??", "???", "isIn", "..", "equals"])  # fmt: skip
    return st.one_of(
        st.tuples(children, binary, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["not ", "-", "+"]), children).map("".join),
        st.tuples(children, st.sampled_from(NO_ARG_FILTERS)).map(lambda t: f"{t[0]} | {t[1]}"),
        st.tuples(children, st.sampled_from(sorted(TESTS)), st.booleans()).map(
            lambda t: f"({t[0]} is {'not ' if t[2] else ''}{t[1]})"
        ),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(children, children).map(lambda t: f"[{t[0]}, {t[1]}]"),
        st.tuples(children, children).map(lambda t: f"{{'a': {t[0]}, 'b': {t[1]}}}"),
        st.tuples(children, st.sampled_from(["'a'", "0", "s", "zz"])).map(lambda t: f"({t[0]})[{t[1]}]"),
        st.tuples(st.sampled_from(["max", "min", "range", "json", "fromJson"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}{', ' + t[2] if t[0] != 'json' and t[0] != 'fromJson' else ''})"
        ),
    )


expressions = st.recursive(atoms, _extend, max_leaves=12)
templates = st.one_of(
    expressions.map(lambda e: "{{ " + e + " }}"),
    st.tuples(expressions, expressions).map(lambda t: "{% if " + t[0] + " %}a{% else %}{{ " + t[1] + " }}{% endif %}"),
    st.tuples(expressions, expressions).map(
        lambda t: "{% for x in " + t[0] + " %}{{ loop.index }}{{ x }}{% else %}{{ " + t[1] + " }}{% endfor %}"
    ),
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates)
def test_well_formed_expressions_translate_and_render_or_raise_render_error(template: str) -> None:
    assert _check_translation(template) is not None, template
    try:
        output = render(template, CONTEXT)
    except RenderError:
        return
    assert isinstance(output, str)


@settings(max_examples=500, deadline=None)
@given(expressions)
def test_a_missing_value_inside_a_tolerant_form_never_fails(expression: str) -> None:
    # `??`, `is defined` and `default` swallow a missing value raised anywhere in their operand.
    template = "{{ (" + expression + " ~ zz.missing) ?? 'fallback' }}"
    try:
        assert render(template, CONTEXT) == "fallback"
    except RenderError as exc:
        assert "Unable to find" not in str(exc), (template, exc)
    try:
        assert render("{{ (zz.missing ~ " + expression + ") is defined }}", CONTEXT) == "false"
    except RenderError as exc:
        assert "Unable to find" not in str(exc), (template, exc)


def test_functions_table_is_consistent() -> None:
    for name, spec in {**FILTERS, **FUNCTIONS}.items():
        assert callable(spec.function), name
        assert spec.params is None or spec.required <= len(spec.params), name
