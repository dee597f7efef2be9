"""Conformance table: Pebble templates and what Kestra prints for them (see `cases.py`)."""

from __future__ import annotations

import pytest
from cases import CASES, COMPILE_ERRORS, CONTEXT, ERRORS

from yaml2dag.errors import ExpressionError, RenderError
from yaml2dag.expressions import evaluate, render, translate


@pytest.mark.parametrize(("template", "expected"), CASES, ids=[case[0][:60] for case in CASES])
def test_renders_like_kestra(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize(("template", "message"), ERRORS, ids=[case[0][:60] for case in ERRORS])
def test_fails_like_kestra(template: str, message: str) -> None:
    translate(template)  # the expression itself is valid: the failure happens at run time
    with pytest.raises(RenderError) as caught:
        render(template, CONTEXT)
    assert message in str(caught.value)


@pytest.mark.parametrize(("template", "message", "offset"), COMPILE_ERRORS, ids=[c[0][:60] for c in COMPILE_ERRORS])
def test_refused_at_compile_time(template: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        translate(template)
    assert message in caught.value.message
    assert caught.value.offset == offset
    assert 0 <= caught.value.offset <= len(template)


def test_table_has_enough_cases() -> None:
    assert len(CASES) >= 200
    assert len({case[0] for case in CASES}) == len(CASES), "duplicate cases"


def test_evaluate_reports_compile_errors_with_their_position() -> None:
    with pytest.raises(RenderError, match=r"invalid expression: unknown filter `nope` .* at character 8"):
        evaluate("{{ s | nope }}", CONTEXT)
    assert evaluate("{{ s | upper }}", CONTEXT) == "HELLO"
    assert evaluate("no braces") == "no braces"
