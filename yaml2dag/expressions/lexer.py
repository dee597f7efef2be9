"""Split Pebble template source into text and delimiters, and expressions into tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from yaml2dag.errors import ExpressionError

# Longest operators first so that `???` wins over `??` and `==` over `=`.
OPERATORS = (
    "???", "??", "==", "!=", "<=", ">=", "..", "<", ">", "+", "-", "*", "/", "%", "~", "|",
    "?", ":", ".", ",", "(", ")", "[", "]", "{", "}", "=",
)  # fmt: skip
# Pebble: identifiers are letters (any script), digits and `_`; numbers have no exponent, `L` marks a long.
_NAME = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"[0-9]+(L|\.[0-9]+)?")
_SPACE = re.compile(r"\s+")
_SINGLE_QUOTED = re.compile(r"'([^'\\]*(?:\\.[^'\\]*)*)'", re.DOTALL)
_LONG_MAX = 2**63 - 1


@dataclass(frozen=True)
class Token:
    """One token of an expression: `kind` is NAME, NUMBER, STRING, OP or END."""

    kind: str
    value: object
    offset: int


@dataclass(frozen=True)
class StringPart:
    """A piece of a string literal: text, or the source of a `#{...}` interpolation."""

    text: str
    is_expression: bool
    offset: int


def tokenize(source: str, start: int, closer: str) -> tuple[list[Token], int, bool]:
    """Tokenize from `start` up to `closer` (`}}` or `%}`).

    Returns the tokens (ending with END), the offset just after the closer, and whether the
    closer carried a `-` (trim the whitespace that follows).
    """
    tokens: list[Token] = []
    pos = start
    length = len(source)
    depth = 0  # open brackets: like Pebble, `}}` inside `{'a': {}}` does not close the tag
    while True:
        match = _SPACE.match(source, pos)
        if match:
            pos = match.end()
        if pos >= length:
            raise ExpressionError(f"unclosed tag, expected `{closer}`", source, start)
        if depth == 0 and source.startswith("-" + closer, pos):
            tokens.append(Token("END", closer, pos))
            return tokens, pos + len(closer) + 1, True
        if depth == 0 and source.startswith(closer, pos):
            tokens.append(Token("END", closer, pos))
            return tokens, pos + len(closer), False
        token, pos = _next_token(source, pos)
        tokens.append(token)
        if token.kind == "OP" and token.value in ("(", "[", "{"):
            depth += 1
        elif token.kind == "OP" and token.value in (")", "]", "}") and depth:
            depth -= 1


def _next_token(source: str, pos: int) -> tuple[Token, int]:
    """The token starting at `pos` (no white space there), and the offset after it."""
    if source[pos] in "'\"":
        parts, end = _read_string(source, pos)
        return Token("STRING", parts, pos), end
    match = _NUMBER.match(source, pos)
    if match:
        return Token("NUMBER", _number(match.group(0), source, pos), pos), match.end()
    match = _NAME.match(source, pos)
    if match:
        return Token("NAME", match.group(0), pos), match.end()
    for operator in OPERATORS:
        if source.startswith(operator, pos):
            return Token("OP", operator, pos), pos + len(operator)
    raise ExpressionError(f"unexpected character `{source[pos]}`", source, pos)


def _number(text: str, source: str, offset: int) -> int | float:
    if "." in text:
        return float(text)
    value = int(text.rstrip("L"))
    if value > _LONG_MAX:
        raise ExpressionError(f"number `{text}` is too large for a long", source, offset)
    return value


def _read_string(source: str, start: int) -> tuple[tuple[StringPart, ...], int]:
    r"""Read a quoted string as Pebble does.

    Only the escaped quote (`\\'` or `\\"`) is unescaped; other backslashes stay as they are.
    Double-quoted strings may contain `#{expr}` interpolations; a double-quoted string holding
    a `#` keeps its backslashes verbatim (Pebble lexes it as an interpolated string).
    """
    if source[start] == "'":
        match = _SINGLE_QUOTED.match(source, start)
        if not match:
            raise ExpressionError("unterminated string literal", source, start)
        return (StringPart(match.group(1).replace("\\'", "'"), False, start + 1),), match.end()
    pos = start + 1
    parts: list[StringPart] = []
    buffer: list[str] = []
    buffer_start = pos
    while pos < len(source):
        char = source[pos]
        if char == "\\" and pos + 1 < len(source):
            buffer.append(source[pos : pos + 2])
            pos += 2
            continue
        if char == '"':
            if buffer or not parts:
                parts.append(StringPart("".join(buffer), False, buffer_start))
            if "#" not in source[start:pos]:
                parts = [StringPart(parts[0].text.replace('\\"', '"'), False, parts[0].offset)]
            return tuple(parts), pos + 1
        if source.startswith("#{", pos):
            end = _matching_brace(source, pos + 1)
            if buffer:
                parts.append(StringPart("".join(buffer), False, buffer_start))
                buffer = []
            parts.append(StringPart(source[pos + 2 : end], True, pos + 2))
            pos = end + 1
            buffer_start = pos
            continue
        buffer.append(char)
        pos += 1
    raise ExpressionError("unterminated string literal", source, start)


def _matching_brace(source: str, open_pos: int) -> int:
    depth = 0
    pos = open_pos
    while pos < len(source):
        if source[pos] == "{":
            depth += 1
        elif source[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos
        elif source[pos] in "'\"":
            _, pos = _read_string(source, pos)
            continue
        pos += 1
    raise ExpressionError("unterminated `#{` interpolation", source, open_pos - 1)
