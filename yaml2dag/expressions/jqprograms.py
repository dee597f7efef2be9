r"""Refuse jq programs that reach outside their input: the environment, files, other inputs, stderr.

The program is tokenized as jq does (strings with `\(...)` interpolations, comments, `.field`
accesses, `$variables`, object keys), so `.env`, `{env: 1}` and the string `"env"` stay allowed
while the builtin `env`, `$ENV`, `import`, `include`, `input_filename`, `$__loc__`, `input`,
`inputs`, `debug`, `stderr` and the like are refused.
"""

from __future__ import annotations

import re

#: jq builtins and keywords a flow may not use, with what they would reach.
REFUSED_NAMES = {
    "env": "the environment",
    "import": "module files",
    "include": "module files",
    "modulemeta": "module files",
    "get_search_list": "the module search path",
    "get_prog_origin": "the program's location",
    "get_jq_origin": "jq's location",
    "input": "further inputs",
    "inputs": "further inputs",
    "input_filename": "the input file name",
    "input_line_number": "the input position",
    "debug": "the worker's standard error",
    "stderr": "the worker's standard error",
    "halt": "the jq process",
    "halt_error": "the jq process",
}
#: jq variables a flow may not read.
REFUSED_VARIABLES = {"ENV": "the environment", "__loc__": "the program's location", "__prog_args": "jq's arguments"}

_IDENTIFIER = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*(?:::[a-zA-Z_][a-zA-Z0-9_]*)*")
_SPACE_OR_COMMENT = re.compile(r"(?:\s+|#[^\n]*)*")


def refused_use(program: str) -> str | None:
    """Why `program` is refused (naming the builtin or variable), or None when it may run."""
    pos = 0
    length = len(program)
    # Each entry is the number of open parentheses of an interpolation `\(` being read as code.
    interpolations: list[int] = []
    while pos < length:
        pos = _SPACE_OR_COMMENT.match(program, pos).end()  # type: ignore[union-attr]
        if pos >= length:
            break
        char = program[pos]
        if char == '"':
            pos, opened = _string(program, pos + 1)
            if opened:
                interpolations.append(0)
            continue
        if char == "(" and interpolations:
            interpolations[-1] += 1
        elif char == ")" and interpolations:
            if interpolations[-1] == 0:
                interpolations.pop()  # end of `\(...)`: the string goes on
                pos, opened = _string(program, pos + 1)
                if opened:
                    interpolations.append(0)
                continue
            interpolations[-1] -= 1
        if char == "$":
            pos = _SPACE_OR_COMMENT.match(program, pos + 1).end()  # type: ignore[union-attr]
            match = _IDENTIFIER.match(program, pos)
            if match:
                name = match.group(0)
                if name in REFUSED_VARIABLES:
                    return f"`${name}` (it would read {REFUSED_VARIABLES[name]})"
                pos = match.end()
            continue
        if char in ".@":  # `.field` and `@format`: a name that is not a call
            match = _IDENTIFIER.match(program, pos + 1)
            pos = match.end() if match else pos + 1
            continue
        match = _IDENTIFIER.match(program, pos)
        if match:
            name = match.group(0)
            after = _SPACE_OR_COMMENT.match(program, match.end()).end()  # type: ignore[union-attr]
            is_key = program.startswith(":", after) and not program.startswith("::", after)
            if name in REFUSED_NAMES and not is_key:
                return f"`{name}` (it would read {REFUSED_NAMES[name]})"
            pos = match.end()
            continue
        pos += 1
    return None


def _string(program: str, pos: int) -> tuple[int, bool]:
    r"""Skip a string's text from `pos`: the position after its end, or after a `\(` (then True)."""
    length = len(program)
    while pos < length:
        char = program[pos]
        if char == "\\":
            if program.startswith("(", pos + 1):
                return pos + 2, True
            pos += 2
            continue
        if char == '"':
            return pos + 1, False
        pos += 1
    return pos, False
