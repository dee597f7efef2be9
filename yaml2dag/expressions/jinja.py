"""Generate Jinja source from a Pebble AST.

Every operation whose meaning differs between Pebble and Jinja (lookups, `==`, `contains`,
arithmetic, truthiness, `??`, tests, filters) becomes a call to a `__k_*` helper defined in
`yaml2dag.expressions.helpers`, so the generated template only uses Jinja for variables,
control flow and output.

Pebble's tolerant forms (`is defined`, `??`, `???`, `default`) swallow a missing value raised
*anywhere* inside their operand. Their operand is generated in *safe* mode: lookups give the
`MISSING` sentinel instead of failing, and every operation on a `MISSING` operand gives
`MISSING` again (`__k_p` wraps calls, `and`/`or`/ternary have safe variants), so the sentinel
reaches the tolerant form exactly when Pebble would have thrown.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re

from yaml2dag.errors import ExpressionError
from yaml2dag.expressions import ast
from yaml2dag.expressions.jqprograms import refused_use
from yaml2dag.expressions.library import (
    FILTERS,
    FUNCTIONS,
    SAFE_FILTERS,
    TESTS,
    UNSUPPORTED_FILTERS,
    UNSUPPORTED_FUNCTIONS,
    Spec,
)
from yaml2dag.expressions.limits import MAX_NESTING

_ARITHMETIC = {"+", "-", "*", "/", "%"}
_COMPARISONS = {"<", ">", "<=", ">="}
_HELPERS_FOR = {"==": "__k_eq", "equals": "__k_eq", "!=": "__k_ne", "contains": "__k_contains"}
_HELPERS_FOR |= {"~": "__k_concat", "..": "__k_range", "isIn": "__k_is_in"}
#: Binary operators computed by a `__k_*` helper: a left-leaning chain of them (`a ~ b ~ c`,
#: `a + b - c`, `a == b == c`) is generated as one `__k_fold` call instead of nested calls.
FOLDED = frozenset({*_ARITHMETIC, *_COMPARISONS, *_HELPERS_FOR})
_JINJA_WORDS = {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "loop", "self", "recursive"}
_RAW_UNSAFE = re.compile(r"\{%[-+]?\s*endraw|\r")


def jinja_name(name: str) -> str:
    """A Jinja-safe identifier for a Pebble variable name (keywords and non-ASCII names are encoded)."""
    if name.isascii() and name.isidentifier() and name not in _JINJA_WORDS and not keyword.iskeyword(name):
        return name
    return "__k_n" + name.encode("utf-8").hex()


def _text(text: str) -> str:
    """Jinja source that outputs `text` verbatim."""
    if "{" not in text and "\r" not in text:
        return text
    if not _RAW_UNSAFE.search(text):
        return f"{{% raw %}}{text}{{% endraw %}}"
    return "{{ " + repr(text) + " }}"


def chain(node: ast.Binary) -> tuple[ast.Node, list[tuple[str, ast.Node]]]:
    """The operands of the left-leaning chain that ends at `node`, generated flat (one nesting level).

    `a or b or c` and `a ?? b ?? c` chain the same operator; `a + b ~ c == d` chains any
    operators of `FOLDED`, which Pebble applies left to right.
    """
    rest: list[tuple[str, ast.Node]] = []
    current: ast.Node = node
    while isinstance(current, ast.Binary) and (current.op == node.op or (node.op in FOLDED and current.op in FOLDED)):
        rest.append((current.op, current.right))
        current = current.left
    rest.reverse()
    return current, rest


def _balanced(items: list[str], operator: str) -> str:
    """`(a op b op c ...)` grouped as a balanced tree, for an associative `and`/`or`."""
    if len(items) == 1:
        return items[0]
    middle = len(items) // 2
    return f"({_balanced(items[:middle], operator)} {operator} {_balanced(items[middle:], operator)})"


def _children(node: ast.Node) -> list[ast.Node]:
    """The nodes directly inside `node`, a chain's operands counting as direct children."""
    if isinstance(node, ast.Binary):
        first, rest = chain(node)
        return [first, *(operand for _, operand in rest)]
    if isinstance(node, ast.GetAttr):
        return [node.obj]
    if isinstance(node, ast.GetItem):
        return [node.obj, node.key]
    if isinstance(node, ast.Call):
        return [*node.args, *(value for _, value in node.kwargs)]
    if isinstance(node, ast.Filter):
        return [node.value, *node.args, *(value for _, value in node.kwargs)]
    if isinstance(node, ast.Unary):
        return [node.operand]
    if isinstance(node, ast.Test):
        return [node.value, *node.args]
    if isinstance(node, ast.Ternary):
        return [node.condition, node.then, node.otherwise]
    if isinstance(node, ast.ListLiteral):
        return list(node.items)
    if isinstance(node, ast.MapLiteral):
        return [item for pair in node.pairs for item in pair]
    if isinstance(node, ast.Interpolation):
        return list(node.parts)
    if isinstance(node, ast.Print):
        return [node.expr]
    if isinstance(node, ast.If):
        return [
            *(condition for condition, _ in node.branches),
            *_flat(body for _, body in node.branches),
            *node.otherwise,
        ]
    if isinstance(node, ast.For):
        return [node.iterable, *node.body, *node.otherwise]
    if isinstance(node, ast.Set):
        return [node.value]
    if isinstance(node, ast.FilterBlock):
        return [*node.filters, *node.body]
    if isinstance(node, ast.Template):
        return list(node.body)
    return []


def _flat(groups: object) -> list[ast.Node]:
    return [node for group in groups for node in group]  # type: ignore[attr-defined]


def check_nesting(template: ast.Template, source: str) -> None:
    """`ExpressionError` when the template nests more than `MAX_NESTING` levels (walked without recursion)."""
    deepest, deepest_node = 0, template
    stack: list[tuple[ast.Node, int]] = [(child, 1) for child in template.body]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest, deepest_node = depth, node
        is_text = isinstance(node, ast.Text | ast.Raw | ast.Print | ast.Set)
        stack.extend((child, depth if is_text else depth + 1) for child in _children(node))
    if deepest > MAX_NESTING:
        raise ExpressionError(
            f"expression nests {deepest} levels deep; at most {MAX_NESTING}", source, deepest_node.offset
        )


class JinjaGenerator:
    """Turns one parsed template into Jinja source; `source` is used for error offsets."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.loop_depth = 0
        self.counter = 0
        self.depth = 0

    def template(self, node: ast.Template) -> str:
        """Jinja source for a whole template."""
        return "".join(self.statement(child) for child in node.body)

    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"__k_{prefix}{self.counter}"

    def statement(self, node: ast.Node) -> str:
        """Jinja source for one template node (text, print, tag); a block tag is one nesting level."""
        if not isinstance(node, ast.If | ast.For | ast.FilterBlock):
            return self._statement(node)
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _TooDeep
        try:
            return self._statement(node)
        finally:
            self.depth -= 1

    def _statement(self, node: ast.Node) -> str:
        if isinstance(node, ast.Text | ast.Raw):
            return _text(node.text)
        if isinstance(node, ast.Print):
            return "{{ " + self.expr(node.expr) + " }}"
        if isinstance(node, ast.If):
            return self._if(node)
        if isinstance(node, ast.For):
            return self._for(node)
        if isinstance(node, ast.Set):
            return f"{{% set {jinja_name(node.name)} = {self.expr(node.value)} %}}"
        if isinstance(node, ast.FilterBlock):
            holder = self._fresh("fb")
            body = "".join(self.statement(child) for child in node.body)
            value = holder
            for flt in node.filters:
                spec = self._known(flt.name, FILTERS, UNSUPPORTED_FILTERS, "filter", flt.offset)
                value = f"__kf_{flt.name}({self._call_args(spec, flt, [value], False)})"
            return f"{{% set {holder} %}}{body}{{% endset %}}{{{{ {value} }}}}"
        raise ExpressionError(f"unsupported construct {type(node).__name__}", self.source, node.offset)

    def _if(self, node: ast.If) -> str:
        parts = []
        for index, (condition, body) in enumerate(node.branches):
            keyword_ = "if" if index == 0 else "elif"
            parts.append(f"{{% {keyword_} __k_if({self.expr(condition)}) %}}")
            parts.extend(self.statement(child) for child in body)
        if node.otherwise:
            parts.append("{% else %}")
            parts.extend(self.statement(child) for child in node.otherwise)
        parts.append("{% endif %}")
        return "".join(parts)

    def _for(self, node: ast.For) -> str:
        iterable = f"__k_iter({self.expr(node.iterable)})"
        prologue = ""
        if node.otherwise:  # Pebble renders nothing at all (not even `else`) when the value is null
            holder = self._fresh("it")
            prologue = f"{{% set {holder} = {iterable} %}}"
            iterable = holder
        self.loop_depth += 1
        body = "".join(self.statement(child) for child in node.body)
        self.loop_depth -= 1
        otherwise = ""
        if node.otherwise:
            inner = "".join(self.statement(child) for child in node.otherwise)
            otherwise = f"{{% else %}}{{% if not __k_is_null_iter({iterable}) %}}{inner}{{% endif %}}"
        return f"{prologue}{{% for {jinja_name(node.target)} in {iterable} %}}{body}{otherwise}{{% endfor %}}"

    def expr(self, node: ast.Node, safe: bool = False) -> str:
        """Jinja expression for `node`; in safe mode a missing value gives `__k_MISSING`."""
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(f"unsupported construct {type(node).__name__}", self.source, node.offset)
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _TooDeep
        try:
            return str(method(node, safe))
        finally:
            self.depth -= 1

    @staticmethod
    def _call(function: str, arguments: str, safe: bool) -> str:
        if safe:
            return f"__k_p({function}{', ' + arguments if arguments else ''})"
        return f"{function}({arguments})"

    # --- one method per node type ------------------------------------------------------------
    def _Literal(self, node: ast.Literal, safe: bool) -> str:
        value = node.value
        if value is True:
            return "true"
        if value is False:
            return "false"
        if value is None:
            return "none"
        if isinstance(value, float) and not math.isfinite(value):
            return f"__k_float({str(value)!r})"
        return repr(value)

    def _Name(self, node: ast.Name, safe: bool) -> str:
        if node.name == "loop" and self.loop_depth:
            return "__k_loop(loop)"
        name = jinja_name(node.name)
        return f"__k_var_safe({name})" if safe else f"__k_var({name}, {node.name!r})"

    def _GetAttr(self, node: ast.GetAttr, safe: bool) -> str:
        obj = self.expr(node.obj, safe)
        if safe:
            return f"__k_attr_safe({obj}, {node.name!r})"
        return f"__k_attr({obj}, {node.name!r}, {node.path!r})"

    def _GetItem(self, node: ast.GetItem, safe: bool) -> str:
        obj, key = self.expr(node.obj, safe), self.expr(node.key, safe)
        if safe:
            return f"__k_attr_safe({obj}, {key})"
        return f"__k_attr({obj}, {key}, {node.path!r})"

    def _Call(self, node: ast.Call, safe: bool) -> str:
        spec = self._known(node.name, FUNCTIONS, UNSUPPORTED_FUNCTIONS, "function", node.offset)
        return self._call(f"__kfn_{node.name}", self._call_args(spec, node, [], safe), safe)

    def _Filter(self, node: ast.Filter, safe: bool) -> str:
        spec = self._known(node.name, FILTERS, UNSUPPORTED_FILTERS, "filter", node.offset)
        if node.name == "jq":
            self._check_jq_program(node)
        tolerant = node.name in SAFE_FILTERS
        value = self.expr(node.value, safe=safe or tolerant)
        if tolerant:
            value = f"__k_nomiss({value})"
        return self._call(f"__kf_{node.name}", self._call_args(spec, node, [value], safe), safe)

    def _Unary(self, node: ast.Unary, safe: bool) -> str:
        operand = self.expr(node.operand, safe)
        if node.op == "not":
            return f"__k_not_s({operand})" if safe else f"__k_not({operand})"
        return self._call("__k_neg" if node.op == "-" else "__k_pos", operand, safe)

    def _Binary(self, node: ast.Binary, safe: bool) -> str:
        op = node.op
        first, rest = chain(node)
        if len(rest) > 1:
            return self._chain(op, first, rest, safe)
        if op in ("??", "???"):
            keep = "__k_keep" if op == "??" else "__k_keep_defined"
            left, right = self.expr(node.left, safe=True), self.expr(node.right, safe)
            return f"__k_unbox({keep}({left}) or __k_box({right}))"
        left, right = self.expr(node.left, safe), self.expr(node.right, safe)
        if op == "and":
            check = "__k_and_s" if safe else "__k_and"
            return f"({check}({left}) and {check}({right}))"
        if op == "or":
            if safe:
                return f"__k_flip(__k_nor_s({left}) and __k_nor_s({right}))"
            return f"(__k_or({left}) or __k_or({right}))"
        if op in _COMPARISONS or op in _ARITHMETIC:
            helper = "__k_cmp" if op in _COMPARISONS else "__k_arith"
            return self._call(helper, f"{op!r}, {left}, {right}", safe)
        if op in _HELPERS_FOR:
            return self._call(_HELPERS_FOR[op], f"{left}, {right}", safe)
        raise ExpressionError(f"unsupported operator `{op}`", self.source, node.offset)

    def _chain(self, op: str, first: ast.Node, rest: list[tuple[str, ast.Node]], safe: bool) -> str:
        """A chain of three or more operands as one flat Jinja expression (see `chain`).

        Jinja nests `a or b or c` as `(a or b) or c`, so `and`/`or` chains are grouped as a balanced
        tree: the same short-circuit order, nested only log2(n) levels deep.
        """
        if op in ("??", "???"):
            keep = "__k_keep" if op == "??" else "__k_keep_defined"
            kept = [self.expr(first, safe=True), *(self.expr(operand, safe=True) for _, operand in rest[:-1])]
            last = self.expr(rest[-1][1], safe)
            return f"__k_unbox({_balanced([*(f'{keep}({item})' for item in kept), f'__k_box({last})'], 'or')})"
        operands = [self.expr(first, safe), *(self.expr(operand, safe) for _, operand in rest)]
        if op == "and":
            check = "__k_and_s" if safe else "__k_and"
            return _balanced([f"{check}({item})" for item in operands], "and")
        if op == "or":
            if safe:
                return f"__k_flip({_balanced([f'__k_nor_s({item})' for item in operands], 'and')})"
            return _balanced([f"__k_or({item})" for item in operands], "or")
        pairs = (f"{operator!r}, {item}" for (operator, _), item in zip(rest, operands[1:], strict=True))
        return self._call("__k_fold", ", ".join([operands[0], *pairs]), safe)

    def _Test(self, node: ast.Test, safe: bool) -> str:
        if node.name not in TESTS:
            self._unknown(node.name, TESTS, {}, "test", node.offset)
        if node.args:
            raise ExpressionError(f"the `{node.name}` test takes no arguments", self.source, node.offset)
        if node.name == "defined":
            call = f"__kt_defined({self.expr(node.value, safe=True)})"
            return f"(not {call})" if node.negated else call
        call = self._call(f"__kt_{node.name}", self.expr(node.value, safe), safe)
        if node.negated:
            return f"__k_flip({call})" if safe else f"(not {call})"
        return call

    def _Ternary(self, node: ast.Ternary, safe: bool) -> str:
        condition = self.expr(node.condition, safe)
        then, otherwise = self.expr(node.then, safe), self.expr(node.otherwise, safe)
        if safe:  # the condition is evaluated twice here, only to let a missing value through
            return (
                f"(__k_MISSING if __k_is_missing({condition}) else ({then} if __k_cond({condition}) else {otherwise}))"
            )
        return f"({then} if __k_cond({condition}) else {otherwise})"

    def _ListLiteral(self, node: ast.ListLiteral, safe: bool) -> str:
        items = ", ".join(self.expr(item, safe) for item in node.items)
        return f"__k_p(__k_list, {items})" if safe and items else f"[{items}]"

    def _MapLiteral(self, node: ast.MapLiteral, safe: bool) -> str:
        pairs = ", ".join(f"{self.expr(key, safe)}, {self.expr(value, safe)}" for key, value in node.pairs)
        return self._call("__k_map", pairs, safe)

    def _Interpolation(self, node: ast.Interpolation, safe: bool) -> str:
        return self._call("__k_concat", ", ".join(self.expr(part, safe) for part in node.parts), safe)

    # --- helpers ------------------------------------------------------------------------------
    def _call_args(self, spec: Spec, node: ast.Call | ast.Filter, leading: list[str], safe: bool) -> str:
        """Bind positional and named arguments to the Pebble argument names of `spec`."""
        args = [self.expr(arg, safe) for arg in node.args]
        kind = "function" if isinstance(node, ast.Call) else "filter"
        if spec.params is None:
            if node.kwargs:
                raise ExpressionError(f"the `{node.name}` {kind} takes no named arguments", self.source, node.offset)
            return ", ".join(leading + args)
        if len(args) > len(spec.params):
            allowed = ", ".join(spec.params) or "no arguments"
            raise ExpressionError(
                f"the `{node.name}` {kind} takes at most {len(spec.params)} argument(s) ({allowed})",
                self.source,
                node.offset,
            )
        slots: list[str | None] = [*args, *([None] * (len(spec.params) - len(args)))]
        for name, value in node.kwargs:
            if name not in spec.params:
                raise ExpressionError(
                    f"the `{node.name}` {kind} has no argument `{name}` (it takes: {', '.join(spec.params) or 'none'})",
                    self.source,
                    value.offset,
                )
            index = spec.params.index(name)
            if slots[index] is not None:
                raise ExpressionError(f"argument `{name}` given twice", self.source, value.offset)
            slots[index] = self.expr(value, safe)
        for index in range(spec.required):
            if slots[index] is None:
                raise ExpressionError(
                    f"the `{node.name}` {kind} needs the argument `{spec.params[index]}`", self.source, node.offset
                )
        while slots and slots[-1] is None:
            slots.pop()
        return ", ".join(leading + [slot or "none" for slot in slots])

    def _check_jq_program(self, node: ast.Filter) -> None:
        """Refuse at compile time a literal jq program that `jq_filter` would refuse when run."""
        programs = [*node.args[:1], *(value for name, value in node.kwargs if name == "expression")]
        for program in programs:
            if isinstance(program, ast.Literal) and isinstance(program.value, str):
                refused = refused_use(program.value)
                if refused is not None:
                    raise ExpressionError(
                        f"the jq program uses {refused}, which is not allowed", self.source, program.offset
                    )

    def _known(self, name: str, table: dict[str, Spec], refused: dict[str, str], kind: str, offset: int) -> Spec:
        if name not in table:
            self._unknown(name, table, refused, kind, offset)
        return table[name]

    def _unknown(self, name: str, table: dict[str, object], refused: dict[str, str], kind: str, offset: int) -> None:
        if name in refused:
            raise ExpressionError(f"the `{name}` {kind} is not supported: {refused[name]}", self.source, offset)
        close = difflib.get_close_matches(name, table, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise ExpressionError(f"unknown {kind} `{name}`{hint}", self.source, offset)


class _TooDeep(Exception):
    """The generator went deeper than `MAX_NESTING`; `check_nesting` then says where and how deep."""


def generate(template: ast.Template, source: str) -> str:
    """Jinja source equivalent to the parsed Pebble `template`; refuses a template nested too deep for Jinja.

    The generator counts its own depth as `check_nesting` does, so the full walk runs only for a
    template that is too deep, to report its depth and place.
    """
    try:
        return JinjaGenerator(source).template(template)
    except _TooDeep:
        check_nesting(template, source)
        raise ExpressionError(f"expression nests more than {MAX_NESTING} levels deep", source, 0) from None
