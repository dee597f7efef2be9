"""Generate Jinja source from a Pebble AST.

Every operation whose meaning differs between Pebble and Jinja (lookups, `==`, `contains`,
arithmetic, truthiness, `??`, tests, filters) becomes a call to a `__k_*` helper defined in
`yaml2dag.expressions.runtime`, so the generated template only uses Jinja for variables,
control flow and output. Lookups that must tolerate missing values (`is defined`, `??`,
`???`, `default`) are generated in *safe* mode, where a missing value becomes a sentinel
instead of an error.
"""

from __future__ import annotations

import difflib

from yaml2dag.errors import ExpressionError
from yaml2dag.expressions import ast
from yaml2dag.expressions.library import FILTERS, FUNCTIONS, SAFE_FILTERS, TESTS

_ARITHMETIC = {"+", "-", "*", "/", "%"}
_COMPARISONS = {"<", ">", "<=", ">="}


class JinjaGenerator:
    """Turns one parsed template into Jinja source; `source` is used for error offsets."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.loop_depth = 0

    def template(self, node: ast.Template) -> str:
        """Jinja source for a whole template."""
        return "".join(self.statement(child) for child in node.body)

    def statement(self, node: ast.Node) -> str:
        if isinstance(node, ast.Text):
            return f"{{% raw %}}{node.text}{{% endraw %}}" if "{" in node.text else node.text
        if isinstance(node, ast.Print):
            return "{{ " + self.expr(node.expr) + " }}"
        if isinstance(node, ast.Raw):
            return f"{{% raw %}}{node.text}{{% endraw %}}"
        if isinstance(node, ast.If):
            parts = []
            for index, (condition, body) in enumerate(node.branches):
                keyword = "if" if index == 0 else "elif"
                parts.append(f"{{% {keyword} __k_bool({self.expr(condition)}) %}}")
                parts.extend(self.statement(child) for child in body)
            if node.otherwise:
                parts.append("{% else %}")
                parts.extend(self.statement(child) for child in node.otherwise)
            parts.append("{% endif %}")
            return "".join(parts)
        if isinstance(node, ast.For):
            header = f"{{% for {node.target} in __k_iter({self.expr(node.iterable)}) %}}"
            self.loop_depth += 1
            body = "".join(self.statement(child) for child in node.body)
            self.loop_depth -= 1
            otherwise = ""
            if node.otherwise:
                otherwise = "{% else %}" + "".join(self.statement(child) for child in node.otherwise)
            return header + body + otherwise + "{% endfor %}"
        if isinstance(node, ast.Set):
            return f"{{% set {node.name} = {self.expr(node.value)} %}}"
        raise ExpressionError(f"unsupported construct {type(node).__name__}", self.source, node.offset)

    def expr(self, node: ast.Node, safe: bool = False) -> str:
        """Jinja expression for `node`; in safe mode missing values give `__k_MISSING`."""
        method = getattr(self, "_" + type(node).__name__)
        return method(node, safe)

    # --- one method per node type ------------------------------------------------------------
    def _Literal(self, node: ast.Literal, safe: bool) -> str:
        value = node.value
        if value is True:
            return "true"
        if value is False:
            return "false"
        if value is None:
            return "none"
        return repr(value)

    def _Name(self, node: ast.Name, safe: bool) -> str:
        if node.name == "loop" and self.loop_depth:
            return "__k_loop(loop)"
        if safe:
            return f"__k_var_safe({node.name})"
        return f"__k_var({node.name}, {node.name!r})"

    def _GetAttr(self, node: ast.GetAttr, safe: bool) -> str:
        obj = self.expr(node.obj, safe)
        if safe:
            return f"__k_attr_safe({obj}, {node.name!r})"
        return f"__k_attr({obj}, {node.name!r}, {node.path!r})"

    def _GetItem(self, node: ast.GetItem, safe: bool) -> str:
        obj = self.expr(node.obj, safe)
        key = self.expr(node.key)
        if safe:
            return f"__k_attr_safe({obj}, {key})"
        return f"__k_attr({obj}, {key}, {node.path!r})"

    def _Call(self, node: ast.Call, safe: bool) -> str:
        self._known(node.name, FUNCTIONS, "function", node.offset)
        return f"__kfn_{node.name}({self._arguments(node.args, node.kwargs)})"

    def _Filter(self, node: ast.Filter, safe: bool) -> str:
        self._known(node.name, FILTERS, "filter", node.offset)
        value = self.expr(node.value, safe=node.name in SAFE_FILTERS)
        arguments = self._arguments(node.args, node.kwargs)
        return f"__kf_{node.name}({value}{', ' + arguments if arguments else ''})"

    def _Unary(self, node: ast.Unary, safe: bool) -> str:
        operand = self.expr(node.operand)
        if node.op == "not":
            return f"(not __k_bool({operand}))"
        return f"__k_unary({node.op!r}, {operand})"

    def _Binary(self, node: ast.Binary, safe: bool) -> str:
        op = node.op
        if op in ("??", "???"):
            return self._coalesce(node)
        left, right = self.expr(node.left), self.expr(node.right)
        if op in ("and", "or"):
            return f"(__k_bool({left}) {op} __k_bool({right}))"
        if op in ("==", "equals"):
            return f"__k_eq({left}, {right})"
        if op == "!=":
            return f"(not __k_eq({left}, {right}))"
        if op in _COMPARISONS:
            return f"__k_compare({op!r}, {left}, {right})"
        if op in _ARITHMETIC:
            return f"__k_arith({op!r}, {left}, {right})"
        if op == "contains":
            return f"__k_contains({left}, {right})"
        if op == "~":
            return f"__k_concat({left}, {right})"
        if op == "..":
            return f"__k_range({left}, {right})"
        if op == "isIn":
            return f"__k_is_in({left}, {right})"
        raise ExpressionError(f"unsupported operator `{op}`", self.source, node.offset)

    def _coalesce(self, node: ast.Binary) -> str:
        # `??` falls back on missing or null, `???` on missing only; the right side is only
        # evaluated when needed, so it may itself be undefined when the left side is present.
        left = self.expr(node.left, safe=True)
        right = self.expr(node.right)
        check = "__k_present" if node.op == "??" else "__k_exists"
        if isinstance(node.right, ast.Literal):
            return f"__k_coalesce({left}, {right}, {check == '__k_present'})"
        return f"({left} if {check}({left}) else {right})"

    def _Test(self, node: ast.Test, safe: bool) -> str:
        self._known(node.name, TESTS, "test", node.offset)
        tolerant = node.name == "defined"
        value = self.expr(node.value, safe=tolerant)
        arguments = self._arguments(node.args, ())
        call = f"__kt_{node.name}({value}{', ' + arguments if arguments else ''})"
        return f"(not {call})" if node.negated else call

    def _Ternary(self, node: ast.Ternary, safe: bool) -> str:
        condition = self.expr(node.condition)
        return f"({self.expr(node.then)} if __k_bool({condition}) else {self.expr(node.otherwise)})"

    def _ListLiteral(self, node: ast.ListLiteral, safe: bool) -> str:
        return "[" + ", ".join(self.expr(item) for item in node.items) + "]"

    def _MapLiteral(self, node: ast.MapLiteral, safe: bool) -> str:
        pairs = (f"{self.expr(key)}: {self.expr(value)}" for key, value in node.pairs)
        return "{" + ", ".join(pairs) + "}"

    def _Interpolation(self, node: ast.Interpolation, safe: bool) -> str:
        return "__k_concat(" + ", ".join(self.expr(part) for part in node.parts) + ")"

    # --- helpers ------------------------------------------------------------------------------
    def _arguments(self, args: tuple[ast.Node, ...], kwargs: tuple[tuple[str, ast.Node], ...]) -> str:
        parts = [self.expr(arg) for arg in args]
        parts += [f"{name}={self.expr(value)}" for name, value in kwargs]
        return ", ".join(parts)

    def _known(self, name: str, table: dict[str, object], kind: str, offset: int) -> None:
        if name not in table:
            close = difflib.get_close_matches(name, table, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise ExpressionError(f"unknown {kind} `{name}`{hint}", self.source, offset)


def generate(template: ast.Template, source: str) -> str:
    """Jinja source equivalent to the parsed Pebble `template`."""
    return JinjaGenerator(source).template(template)
