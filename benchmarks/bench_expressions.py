"""Benchmark of the expression translator: translation (cold and cached) and rendering throughput.

Run: `python benchmarks/bench_expressions.py` — prints one table. Figures are compared as ratios
measured in the same run, so they hold across machines.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jinja2  # noqa: E402

from yaml2dag.expressions import render, translate  # noqa: E402
from yaml2dag.expressions.runtime import _compiled  # noqa: E402

CONTEXT = {
    "flow": {"id": "bench", "namespace": "company.team"},
    "execution": {"id": "run", "startDate": dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)},
    "inputs": {"name": "World", "count": 3, "items": ["a", "b", "c"]},
    "outputs": {"extract": {"value": "hi", "rows": [{"id": i, "name": f"n{i}"} for i in range(20)]}},
    "vars": {"bucket": "data-{{ flow.namespace }}"},
}

EXPRESSIONS = {
    "variable": "{{ inputs.name }}",
    "text + 2 variables": "Hello {{ inputs.name }} from {{ flow.namespace }}.{{ flow.id }}",
    "filter chain": "{{ inputs.name | lower | replace({'w': 'W'}) | upper }}",
    "arithmetic + compare": "{{ inputs.count * 2 + 1 > 5 }}",
    "?? fallback": "{{ outputs.missing.value ?? inputs.name ?? 'none' }}",
    "is defined ternary": "{{ outputs.extract.value is defined ? outputs.extract.value : 'none' }}",
    "date format": "{{ execution.startDate | date('yyyy-MM-dd HH:mm') }}",
    "dateAdd": "{{ execution.startDate | dateAdd(1, 'DAYS', format='iso_local_date') }}",
    "toJson of a list": "{{ outputs.extract.rows | toJson }}",
    "for loop (20 rows)": "{% for row in outputs.extract.rows %}{{ loop.index }}={{ row.name }},{% endfor %}",
    "if / elseif": "{% if inputs.count > 5 %}many{% elseif inputs.count > 1 %}some{% else %}one{% endif %}",
    "render() of a variable": "{{ render(vars.bucket) }}",
}


def _per_call(function: Callable[[], object], minimum: float = 0.2) -> float:
    """Seconds per call: the best of 5 batches of at least `minimum` seconds each."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= minimum / 5:
            break
        calls *= 2
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - start) / calls)
    return min(samples)


def _cold_translation(source: str) -> float:
    def once() -> None:
        translate.cache_clear()
        translate(source)

    return _per_call(once)


def _cold_compile(source: str) -> float:
    def once() -> None:
        translate.cache_clear()
        _compiled.cache_clear()
        _compiled(source)

    return _per_call(once, minimum=0.5)


def main() -> None:
    """Measure every expression and print the table."""
    plain = jinja2.Environment().from_string("{{ name }}")
    baseline = _per_call(lambda: plain.render(name="World"))
    rows = []
    for label, source in EXPRESSIONS.items():
        cold = _cold_translation(source)
        translate(source)
        cached = _per_call(lambda source=source: translate(source))
        compile_cold = _cold_compile(source)
        render(source, CONTEXT)
        rendering = _per_call(lambda source=source: render(source, CONTEXT))
        rows.append((label, cold, cached, compile_cold, rendering))

    columns = ("expression", "translate cold", "cached", "cold/cached", "+compile", "render", "renders/s", "vs jinja")
    header = "{:<24} {:>15} {:>9} {:>12} {:>10} {:>10} {:>10} {:>9}".format(*columns)
    print(header)
    print("-" * len(header))
    for label, cold, cached, compile_cold, rendering in rows:
        print(
            f"{label:<24} {cold * 1e6:>12.1f} µs {cached * 1e9:>6.0f} ns {cold / cached:>11.0f}x"
            f" {compile_cold * 1e6:>7.0f} µs {rendering * 1e6:>7.1f} µs {1 / rendering:>10,.0f}"
            f" {rendering / baseline:>8.1f}x"
        )
    cold = statistics.median(row[1] for row in rows)
    cached = statistics.median(row[2] for row in rows)
    rendering = statistics.median(row[4] for row in rows)
    print("-" * len(header))
    print(f"median: cold translation {cold * 1e6:.1f} µs, cached {cached * 1e9:.0f} ns ({cold / cached:.0f}x faster)")
    print(
        f"median render {rendering * 1e6:.1f} µs = {rendering / baseline:.1f}x a plain Jinja"
        f" `{{{{ name }}}}` render ({baseline * 1e6:.1f} µs) = {rendering / cold:.2f}x a cold translation"
    )
    count = 200
    print(
        f"a dags-folder parse of a flow with {count} expressions: "
        f"{count * cold * 1e3:.1f} ms cold, {count * cached * 1e3:.3f} ms cached"
    )


if __name__ == "__main__":
    main()
