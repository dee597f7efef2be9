"""Known Jinja/SSTI template-injection payloads: a flow author can never reach Python internals.

Each payload must either be refused at compile time (`ExpressionError`) or fail at run time with
a `RenderError`, and must never produce output that reveals a Python object.
"""

from __future__ import annotations

import pytest
from cases import CONTEXT

from yaml2dag.errors import ExpressionError, RenderError
from yaml2dag.expressions import render, translate
from yaml2dag.expressions.runtime import KestraEnvironment

PAYLOADS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''['__class__'] }}",
    "{{ s['__class__']['__mro__'] }}",
    "{{ s.__class__.__base__.__subclasses__() }}",
    "{{ m.__class__ }}",
    "{{ m['__init__'] }}",
    "{{ l.pop }}",
    "{{ l.append(1) }}",
    "{{ m.update({'a': 1}) }}",
    "{{ s.format(s) }}",
    "{{ '{0.__class__}'.format(s) }}",
    "{{ '%s' | format(s.__class__) }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ self }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ range.__init__ }}",
    "{{ dict(a=1) }}",
    "{{ request.application.__globals__ }}",
    "{{ __builtins__ }}",
    "{{ __import__('os') }}",
    "{{ __k_attr }}",
    "{{ __kf_upper }}",
    "{{ __k_p(__k_attr, s, '__class__', 'x') }}",
    "{{ _ }}",
    "{{ self.__init__.__globals__ }}",
    "{% set x = ''.__class__ %}{{ x }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{% for c in s %}{{ c }}{% endfor %}",
    "{{ s | attr('__class__') }}",
    "{{ s | map('upper') }}",
    "{{ s | safe }}",
    "{% import 'os' as os %}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% macro m() %}{% endmacro %}",
    "{% call x() %}{% endcall %}",
    "{% with a = 1 %}{{ a }}{% endwith %}",
    "{% do l.append(1) %}",
    "{{ execution.startDate.tzinfo }}",
    "{{ execution.startDate.__class__ }}",
    "{{ execution.startDate['year'] }}",
    "{{ fetchContext().__class__ }}",
    "{{ fetchContext()['__kestra_run'] }}",
    "{{ render('{{ __class__ }}') }}",
    "{{ render(\"{{ ''.__class__ }}\") }}",
    "{{ render('{% raw %}{{ config }}{% endraw %}') }}",
    "{{ 'a' ~ ''.__class__ }}",
    "{{ (s).__class__ }}",
    "{{ s|string|attr('__class__') }}",
    "{{ loop.__class__ }}",
    "{% for x in [1] %}{{ loop.__class__ }}{{ loop.index0 }}{% endfor %}",
    "{% for x in [1] %}{{ loop._LoopContext__length }}{% endfor %}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ {}.__class__ }}",
    "{{ (1).__class__ }}",
    "{{ 1.__class__ }}",
    "{{ json('{\"__class__\": 1}').__class__ }}",
    "{{ json | jq('$__loc__') }}",
    "{{ yaml('!!python/object/apply:os.system [\"id\"]') }}",
    "{{ yaml('!!python/name:os.system') }}",
    "{{ '{{7*7}}' }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_payload_cannot_reach_python(payload: str) -> None:
    try:
        translate(payload)
    except ExpressionError:
        return  # refused at compile time
    try:
        output = render(payload, CONTEXT)
    except RenderError:
        return  # failed like any other missing value
    for leak in ("<class", "<built-in", "<function", "<module", "<bound", "__globals__", "object at 0x", "uid="):
        assert leak not in output, output


def test_payload_outputs_are_plain_data() -> None:
    # Strings that look like templates are data: rendering never re-renders them (no recursion).
    assert render("{{ '{{7*7}}' }}", CONTEXT) == "{{7*7}}"
    assert render("{{ s }}", {"s": "{{ 7 * 7 }}"}) == "{{ 7 * 7 }}"


def test_environment_has_no_jinja_globals_filters_or_tests() -> None:
    environment = KestraEnvironment()
    assert not [name for name in environment.globals if not name.startswith("__k")]
    assert not environment.filters
    assert not environment.tests


def test_sandbox_refuses_every_python_attribute() -> None:
    environment = KestraEnvironment()
    assert not environment.is_safe_attribute("", "upper", str.upper)
    with pytest.raises(Exception, match="unsafe|not safely|SecurityError|access"):
        environment.from_string("{{ x.__class__ }}").render(x="")


def test_yaml_function_cannot_build_python_objects() -> None:
    with pytest.raises(RenderError, match="Invalid yaml"):
        render("{{ yaml(y) }}", {"y": "!!python/object/apply:os.system ['echo pwned']"})
