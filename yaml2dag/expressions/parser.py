"""Parse Pebble template source into the AST of `yaml2dag.expressions.ast`.

Binary precedences are Pebble's (higher binds tighter), with Kestra's `??`, `???` and `isIn`;
unary `not`, `-` and `+` bind tightest of all, as in Pebble 3.
"""

from __future__ import annotations

import re

from yaml2dag.errors import ExpressionError
from yaml2dag.expressions import ast
from yaml2dag.expressions.lexer import StringPart, Token, tokenize
from yaml2dag.expressions.limits import MAX_NESTING

BINARY_PRECEDENCE = {
    "or": 10,
    "and": 15,
    "is": 20,
    "contains": 20,
    "==": 30,
    "!=": 30,
    "<": 30,
    ">": 30,
    "<=": 30,
    ">=": 30,
    "equals": 30,
    "+": 40,
    "-": 40,
    "*": 60,
    "/": 60,
    "%": 60,
    "|": 100,
    "~": 110,
    "..": 120,
    "??": 120,
    "???": 120,
    "isIn": 120,
}
WORD_OPERATORS = {"or", "and", "is", "contains", "equals", "isIn"}
UNARY_PRECEDENCE = 500
KEYWORD_LITERALS = {
    **{word: True for word in ("true", "TRUE")},
    **{word: False for word in ("false", "FALSE")},
    **{word: None for word in ("null", "NULL", "none", "NONE")},
}
#: Pebble tags that Kestra keeps but yaml2dag does not translate.
UNSUPPORTED_TAGS = {
    "macro": "macros are not supported",
    "block": "blocks are not supported (there is no template inheritance in a flow)",
    "import": "Kestra removes the `import` tag",
    "include": "Kestra removes the `include` tag",
    "extends": "Kestra removes the `extends` tag",
}
#: How deep the parser itself may recurse: brackets and precedence climbing add levels that leave no
#: trace in the tree, whose own depth (`MAX_NESTING`) the generator checks.
MAX_PARSER_DEPTH = 4 * MAX_NESTING
_OPENERS = re.compile(r"\{[{%#]")
# Kestra extracts `{% raw %}...{% endraw %}` before Pebble sees the template, so the `-` of these
# tags trims nothing; yaml2dag also accepts raw blocks that span several lines.
_RAW = re.compile(r"\{%-*\s*raw\s*-*%\}(.*?)\{%-*\s*endraw\s*-*%\}", re.DOTALL)
_VERBATIM = re.compile(r"\{%(-?)\s*verbatim\s*(-?)%\}(.*?)\{%(-?)\s*endverbatim\s*(-?)%\}", re.DOTALL)


def parse_template(source: str) -> ast.Template:
    """Parse a whole template (text with `{{ }}`, `{% %}` and `{# #}`)."""
    parser = _TemplateParser(source)
    body, closing = parser.parse_body(stop=())
    assert closing is None
    return ast.Template(0, tuple(body))


class _TemplateParser:
    """Walks template source, producing text/print/tag nodes; tags nest via `parse_body`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.trim_next = False
        self.blocks = 0

    def parse_body(self, stop: tuple[str, ...]) -> tuple[list[ast.Node], tuple[str, list[Token]] | None]:
        """Parse nodes until a tag named in `stop` (returned with its tokens) or the end."""
        nodes: list[ast.Node] = []
        source = self.source
        while self.pos < len(source):
            match = _OPENERS.search(source, self.pos)
            end = match.start() if match else len(source)
            raw = _RAW.match(source, end) if match else None
            text = source[self.pos : end]
            if self.trim_next:
                text = text.lstrip()
                self.trim_next = False
            if match and not raw and source.startswith("-", match.end()):
                text = text.rstrip()
            if text:
                nodes.append(ast.Text(self.pos, text))
            if not match:
                self.pos = len(source)
                break
            if raw:
                nodes.append(ast.Raw(end, raw.group(1)))
                self.pos = raw.end()
                continue
            verbatim = _VERBATIM.match(source, end)
            if verbatim:
                if verbatim.group(1) and nodes and isinstance(nodes[-1], ast.Text):
                    nodes[-1] = ast.Text(nodes[-1].offset, nodes[-1].text.rstrip())
                nodes.append(ast.Raw(end, _trimmed(verbatim.group(3), verbatim.group(2), verbatim.group(4))))
                self.pos = verbatim.end()
                self.trim_next = bool(verbatim.group(5))
                continue
            opener = match.group(0)
            start = match.end() + (1 if source.startswith("-", match.end()) else 0)
            if opener == "{#":
                close = source.find("#}", start)
                if close < 0:
                    raise ExpressionError("unclosed comment, expected `#}`", source, match.start())
                self.trim_next = source[close - 1] == "-"
                self.pos = close + 2
            elif opener == "{{":
                tokens, self.pos, self.trim_next = tokenize(source, start, "}}")
                parser = _ExpressionParser(source, tokens)
                if tokens[0].kind == "END":
                    raise ExpressionError("empty expression `{{ }}`", source, match.start())
                expr = parser.expression()
                parser.expect_end()
                nodes.append(ast.Print(match.start(), expr))
            else:
                tokens, self.pos, self.trim_next = tokenize(source, start, "%}")
                head = tokens[0]
                if head.kind != "NAME":
                    raise ExpressionError("expected a tag name after `{%`", source, head.offset)
                if head.value in stop:
                    return nodes, (str(head.value), tokens)
                nodes.append(self._tag(str(head.value), tokens, match.start()))
        if stop:
            raise ExpressionError(f"missing `{{% {stop[-1]} %}}`", source, len(source))
        return nodes, None

    def _tag(self, name: str, tokens: list[Token], offset: int) -> ast.Node:
        if name in ("if", "for", "filter"):
            self.blocks += 1
            try:
                return self._block(name, tokens, offset)
            finally:
                self.blocks -= 1
        return self._block(name, tokens, offset)

    def _block(self, name: str, tokens: list[Token], offset: int) -> ast.Node:
        if self.blocks > MAX_NESTING:
            raise ExpressionError(
                f"tags nest more than {MAX_NESTING} levels deep; at most {MAX_NESTING}", self.source, offset
            )
        parser = _ExpressionParser(self.source, tokens, index=1)
        if name == "if":
            return self._if(parser, offset)
        if name == "for":
            return self._for(parser, offset)
        if name == "set":
            target = parser.name()
            parser.expect_op("=")
            value = parser.expression()
            parser.expect_end()
            return ast.Set(offset, target, value)
        if name == "filter":
            return self._filter_block(parser, offset)
        if name in ("raw", "verbatim"):
            raise ExpressionError(f"missing `{{% end{name} %}}`", self.source, offset)
        if name in UNSUPPORTED_TAGS:
            raise ExpressionError(f"unsupported tag `{name}`: {UNSUPPORTED_TAGS[name]}", self.source, offset)
        if name in ("elseif", "else", "endif", "endfor", "endraw", "endverbatim", "endfilter"):
            raise ExpressionError(f"`{{% {name} %}}` without a matching opening tag", self.source, offset)
        if name == "elif":
            raise ExpressionError("unknown tag `elif` (Pebble writes `elseif`)", self.source, offset)
        raise ExpressionError(f"unsupported tag `{name}`", self.source, offset)

    def _if(self, parser: _ExpressionParser, offset: int) -> ast.If:
        condition = parser.expression()
        parser.expect_end()
        branches: list[tuple[ast.Node, tuple[ast.Node, ...]]] = []
        otherwise: tuple[ast.Node, ...] = ()
        while True:
            body, closing = self.parse_body(stop=("elseif", "else", "endif"))
            assert closing is not None
            tag, tokens = closing
            branches.append((condition, tuple(body)))
            tag_parser = _ExpressionParser(self.source, tokens, index=1)
            if tag == "endif":
                tag_parser.expect_end()
                break
            if tag == "else":
                tag_parser.expect_end()
                body, closing = self.parse_body(stop=("endif",))
                otherwise = tuple(body)
                break
            condition = tag_parser.expression()
            tag_parser.expect_end()
        return ast.If(offset, tuple(branches), otherwise)

    def _filter_block(self, parser: _ExpressionParser, offset: int) -> ast.FilterBlock:
        filters: list[ast.Filter] = []
        while True:
            token = parser.peek()
            filters.append(parser.filter(ast.Literal(token.offset, None), token))
            if not parser.accept_op("|"):
                break
        parser.expect_end()
        body, closing = self.parse_body(stop=("endfilter",))
        assert closing is not None
        _ExpressionParser(self.source, closing[1], index=1).expect_end()
        return ast.FilterBlock(offset, tuple(filters), tuple(body))

    def _for(self, parser: _ExpressionParser, offset: int) -> ast.For:
        target = parser.name()
        if not parser.accept_name("in"):
            raise ExpressionError("expected `in` in `{% for %}`", self.source, parser.peek().offset)
        iterable = parser.expression()
        parser.expect_end()
        body, closing = self.parse_body(stop=("else", "endfor"))
        assert closing is not None
        otherwise: tuple[ast.Node, ...] = ()
        if closing[0] == "else":
            rest, _ = self.parse_body(stop=("endfor",))
            otherwise = tuple(rest)
        return ast.For(offset, target, iterable, tuple(body), otherwise)


class _ExpressionParser:
    """Precedence-climbing parser over one tag's tokens."""

    def __init__(self, source: str, tokens: list[Token], index: int = 0, depth: int = 0) -> None:
        self.source = source
        self.tokens = tokens
        self.index = index
        self.depth = depth

    # token helpers ---------------------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, message: str, token: Token | None = None) -> ExpressionError:
        token = token or self.peek()
        return ExpressionError(message, self.source, token.offset)

    def accept_op(self, value: str) -> bool:
        token = self.peek()
        if token.kind == "OP" and token.value == value:
            self.index += 1
            return True
        return False

    def accept_name(self, value: str) -> bool:
        token = self.peek()
        if token.kind == "NAME" and token.value == value:
            self.index += 1
            return True
        return False

    def expect_op(self, value: str) -> Token:
        token = self.peek()
        if not (token.kind == "OP" and token.value == value):
            raise self.error(f"expected `{value}` but found {_describe(token)}")
        return self.advance()

    def expect_end(self) -> None:
        token = self.peek()
        if token.kind != "END":
            raise self.error(f"unexpected {_describe(token)}")

    def name(self) -> str:
        token = self.peek()
        if token.kind != "NAME":
            raise self.error(f"expected a name but found {_describe(token)}")
        self.advance()
        return _check_identifier(str(token.value), token, self)

    # grammar ---------------------------------------------------------------------------------
    def expression(self, min_precedence: int = 0) -> ast.Node:
        """Expression := unary (binary-op expression)* [? expression : expression]."""
        self.depth += 1
        if self.depth > MAX_PARSER_DEPTH:
            raise self._too_deep()
        try:
            return self._expression(min_precedence)
        finally:
            self.depth -= 1

    def _too_deep(self) -> ExpressionError:
        """The error for an expression too deep to parse, with its bracket depth when that is the cause."""
        depth = deepest = 0
        for token in self.tokens:
            if token.kind == "OP" and token.value in ("(", "[", "{"):
                depth += 1
                deepest = max(deepest, depth)
            elif token.kind == "OP" and token.value in (")", "]", "}"):
                depth -= 1
        levels = f"{deepest} levels" if deepest > MAX_NESTING else f"more than {MAX_NESTING} levels"
        return self.error(f"expression nests {levels} deep; at most {MAX_NESTING}")

    def _expression(self, min_precedence: int) -> ast.Node:
        left = self.unary()
        while True:
            token = self.peek()
            operator = _binary_operator(token)
            if operator is None:
                break
            precedence = BINARY_PRECEDENCE[operator]
            if precedence < min_precedence:
                break
            self.advance()
            if operator == "|":
                left = self.filter(left, token)
            elif operator == "is":
                negated = self.accept_name("not")
                name = self.name()
                args, _ = self.arguments() if self._at_op("(") else ((), ())
                left = ast.Test(token.offset, left, name, args, negated)
            else:
                right = self.expression(precedence + 1)
                left = ast.Binary(token.offset, operator, left, right)
        if min_precedence == 0 and self._at_op("?"):
            question = self.advance()
            then = self.expression()
            self.expect_op(":")
            otherwise = self.expression()
            left = ast.Ternary(question.offset, left, then, otherwise)
        return left

    def unary(self) -> ast.Node:
        token = self.peek()
        if token.kind == "NAME" and token.value == "not":
            self.advance()
            return ast.Unary(token.offset, "not", self.expression(UNARY_PRECEDENCE))
        if token.kind == "OP" and token.value in ("-", "+"):
            self.advance()
            return ast.Unary(token.offset, str(token.value), self.expression(UNARY_PRECEDENCE))
        node = self.primary()
        if isinstance(node, ast.ListLiteral | ast.MapLiteral):
            return node  # Pebble allows no `[i]` or `.key` right after a list or map literal
        return self.postfix(node)

    def filter(self, value: ast.Node, bar: Token) -> ast.Node:
        name_token = self.peek()
        name = self.name()
        args: tuple[ast.Node, ...] = ()
        kwargs: tuple[tuple[str, ast.Node], ...] = ()
        if self._at_op("("):
            args, kwargs = self.arguments()
        return ast.Filter(name_token.offset, value, name, args, kwargs)

    def primary(self) -> ast.Node:
        token = self.advance()
        if token.kind == "NUMBER":
            return ast.Literal(token.offset, token.value)
        if token.kind == "STRING":
            return self.string(token)
        if token.kind == "NAME":
            name = str(token.value)
            if name in KEYWORD_LITERALS:
                return ast.Literal(token.offset, KEYWORD_LITERALS[name])
            if name in WORD_OPERATORS or name == "not":
                raise self.error(f"unexpected operator `{name}`", token)
            _check_identifier(name, token, self)
            if self._at_op("("):
                args, kwargs = self.arguments()
                return ast.Call(token.offset, name, args, kwargs)
            return ast.Name(token.offset, name)
        if token.kind == "OP":
            if token.value == "(":
                inner = self.expression()
                self.expect_op(")")
                return self.postfix(inner)  # `([1, 2])[0]` is allowed, `[1, 2][0]` is not
            if token.value == "[":
                return self.list_literal(token)
            if token.value == "{":
                return self.map_literal(token)
        if token.kind == "END":
            raise self.error("expression ends too early", token)
        raise self.error(f"unexpected {_describe(token)}", token)

    def postfix(self, node: ast.Node) -> ast.Node:
        while True:
            token = self.peek()
            if token.kind == "OP" and token.value == ".":
                self.advance()
                name_token = self.advance()
                if name_token.kind == "NUMBER" and isinstance(name_token.value, int):
                    key = ast.Literal(name_token.offset, name_token.value)
                    node = ast.GetItem(token.offset, node, key, self._path(node, f"[{name_token.value}]"))
                    continue
                if name_token.kind != "NAME":
                    raise self.error("expected an attribute name after `.`", name_token)
                attribute = str(name_token.value)
                if self._at_op("("):
                    raise self.error(
                        f"Java method calls such as `.{attribute}()` are not supported; use a filter instead",
                        name_token,
                    )
                node = ast.GetAttr(token.offset, node, attribute, self._path(node, f".{attribute}"))
            elif token.kind == "OP" and token.value == "[":
                self.advance()
                key = self.expression()
                self.expect_op("]")
                node = ast.GetItem(token.offset, node, key, self._path(node, _subscript_text(key)))
            else:
                return node

    def arguments(self) -> tuple[tuple[ast.Node, ...], tuple[tuple[str, ast.Node], ...]]:
        self.expect_op("(")
        args: list[ast.Node] = []
        kwargs: list[tuple[str, ast.Node]] = []
        if self.accept_op(")"):
            return (), ()
        while True:
            token = self.peek()
            following = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
            if token.kind == "NAME" and following.kind == "OP" and following.value == "=":
                self.index += 2
                kwargs.append((str(token.value), self.expression()))
            else:
                if kwargs:
                    raise self.error("positional argument after a named one")
                args.append(self.expression())
            if self.accept_op(")"):
                return tuple(args), tuple(kwargs)
            self.expect_op(",")

    def list_literal(self, opener: Token) -> ast.Node:
        items: list[ast.Node] = []
        if not self.accept_op("]"):
            while True:
                items.append(self.expression())
                if self.accept_op("]"):
                    break
                self.expect_op(",")
        return ast.ListLiteral(opener.offset, tuple(items))

    def map_literal(self, opener: Token) -> ast.Node:
        pairs: list[tuple[ast.Node, ast.Node]] = []
        if not self.accept_op("}"):
            while True:
                key = self.expression()
                self.expect_op(":")
                pairs.append((key, self.expression()))
                if self.accept_op("}"):
                    break
                self.expect_op(",")
        return ast.MapLiteral(opener.offset, tuple(pairs))

    def string(self, token: Token) -> ast.Node:
        parts: tuple[StringPart, ...] = token.value  # type: ignore[assignment]
        if len(parts) == 1 and not parts[0].is_expression:
            return ast.Literal(token.offset, parts[0].text)
        nodes: list[ast.Node] = []
        for part in parts:
            if part.is_expression:
                inner_tokens, _, _ = tokenize(self.source[: part.offset + len(part.text)] + " }}", part.offset, "}}")
                inner = _ExpressionParser(self.source, inner_tokens, depth=self.depth)
                nodes.append(inner.expression())
                inner.expect_end()
            else:
                nodes.append(ast.Literal(part.offset, part.text))
        return ast.Interpolation(token.offset, tuple(nodes))

    def _at_op(self, value: str) -> bool:
        token = self.peek()
        return token.kind == "OP" and token.value == value

    def _path(self, node: ast.Node, suffix: str) -> str:
        if isinstance(node, ast.Name):
            return node.name + suffix
        if isinstance(node, ast.GetAttr | ast.GetItem):
            return node.path + suffix
        return "(...)" + suffix


def _trimmed(text: str, left: str, right: str) -> str:
    if left:
        text = text.lstrip()
    return text.rstrip() if right else text


def _binary_operator(token: Token) -> str | None:
    if token.kind == "OP" and token.value in BINARY_PRECEDENCE:
        return str(token.value)
    if token.kind == "NAME" and token.value in WORD_OPERATORS:
        return str(token.value)
    return None


def _check_identifier(name: str, token: Token, parser: _ExpressionParser) -> str:
    if name.startswith("__"):
        raise parser.error(f"names starting with `__` are not allowed: `{name}`", token)
    return name


def _subscript_text(key: ast.Node) -> str:
    if isinstance(key, ast.Literal):
        return f"[{key.value!r}]" if isinstance(key.value, str) else f"[{key.value}]"
    return "[...]"


def _describe(token: Token) -> str:
    if token.kind == "END":
        return f"end of tag `{token.value}`"
    if token.kind == "STRING":
        return "a string"
    return f"`{token.value}`"
