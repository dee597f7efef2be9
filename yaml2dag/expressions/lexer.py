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
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?[lLdDfF]?")
_SPACE = re.compile(r"\s+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "#": "#"}


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
    while True:
        match = _SPACE.match(source, pos)
        if match:
            pos = match.end()
        if pos >= length:
            raise ExpressionError(f"unclosed tag, expected `{closer}`", source, start)
        if source.startswith("-" + closer, pos):
            tokens.append(Token("END", closer, pos))
            return tokens, pos + len(closer) + 1, True
        if source.startswith(closer, pos):
            tokens.append(Token("END", closer, pos))
            return tokens, pos + len(closer), False
        char = source[pos]
        if char in "'\"":
            parts, pos = _read_string(source, pos)
            tokens.append(Token("STRING", parts, pos))
            continue
        match = _NUMBER.match(source, pos)
        if match and char.isdigit():
            text = match.group(0).rstrip("lLdDfF")
            value: object = float(text) if any(c in text for c in ".eE") else int(text)
            tokens.append(Token("NUMBER", value, pos))
            pos = match.end()
            continue
        match = _NAME.match(source, pos)
        if match:
            tokens.append(Token("NAME", match.group(0), pos))
            pos = match.end()
            continue
        for operator in OPERATORS:
            if source.startswith(operator, pos):
                tokens.append(Token("OP", operator, pos))
                pos += len(operator)
                break
        else:
            raise ExpressionError(f"unexpected character `{char}`", source, pos)


def _read_string(source: str, start: int) -> tuple[tuple[StringPart, ...], int]:
    """Read a quoted string; double-quoted strings may contain `#{expr}` interpolations."""
    quote = source[start]
    pos = start + 1
    parts: list[StringPart] = []
    buffer: list[str] = []
    buffer_start = pos
    while pos < len(source):
        char = source[pos]
        if char == "\\" and pos + 1 < len(source):
            buffer.append(_ESCAPES.get(source[pos + 1], "\\" + source[pos + 1]))
            pos += 2
            continue
        if char == quote:
            if buffer or not parts:
                parts.append(StringPart("".join(buffer), False, buffer_start))
            return tuple(parts), pos + 1
        if quote == '"' and source.startswith("#{", pos):
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
