"""Read a flow file into plain Python data, and find the line/column of any path in it.

Loading uses PyYAML's C loader (safe: it never builds Python objects from tags). Positions are
only needed to report errors, so they are recovered lazily by re-composing the node tree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from yaml2dag.errors import FlowError, FlowValidationError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: A path into the document: mapping keys (str) and list indexes (int).
DocPath = Sequence[str | int]

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_NODES = 200_000


class _FlowLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that refuses duplicate keys, as Kestra does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # noqa: D102
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key `{key}`", key_node.start_mark)
            try:
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                ) from None
        return super().construct_mapping(node, deep=deep)


def _core_schema_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """YAML 1.2 core-schema scalars: only `true`/`false` are booleans, no sexagesimal or octal ints.

    PyYAML follows YAML 1.1, where `on`, `off`, `yes`, `no` are booleans, `12:30` is 750 and
    `2024-01-01` a date; Kestra reads such values as the text written, so yaml2dag does too.
    """
    replaced = {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
    }
    resolvers = {
        first: [(tag, pattern) for tag, pattern in entries if tag not in replaced]
        for first, entries in _BaseLoader.yaml_implicit_resolvers.items()
    }
    core = [
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$", "-+0123456789"),
        (
            "tag:yaml.org,2002:float",
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            "-+0123456789.",
        ),
    ]
    for tag, pattern, first_chars in core:
        compiled = re.compile(pattern)
        for char in first_chars:
            resolvers.setdefault(char, []).append((tag, compiled))
    return resolvers


_FlowLoader.yaml_implicit_resolvers = _core_schema_resolvers()


def read_flow_text(path: str | Path) -> str:
    """Read a flow file as UTF-8 text, with a located error for bad bytes or huge files."""
    return decode_flow_bytes(Path(path).read_bytes(), str(path))


def decode_flow_bytes(data: bytes, filename: str) -> str:
    """Decode a flow file's bytes as UTF-8, with a located error for bad bytes or huge files."""
    if len(data) > MAX_FILE_BYTES:
        raise FlowValidationError([FlowError(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", filename)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FlowValidationError(
            [
                FlowError(
                    f"invalid UTF-8 byte 0x{data[exc.start]:02x}",
                    filename,
                    line,
                    column,
                    hint="save the file as UTF-8",
                )
            ]
        ) from None


def load_yaml(text: str, filename: str = "<string>") -> Any:
    """Parse YAML text into plain data; syntax errors become a located `FlowValidationError`."""
    if "\t" in text:
        _reject_tab_indentation(text, filename)
    loader = _FlowLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise FlowValidationError(
            [
                FlowError(
                    f"YAML syntax error: {problem}",
                    filename,
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                    hint=_yaml_hint(problem),
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise FlowValidationError([FlowError(f"YAML error: {exc}", filename)]) from None
    finally:
        loader.dispose()
    _check_expanded_size(data, filename)
    return data


def _check_expanded_size(data: Any, filename: str) -> None:
    """Refuse documents whose aliases expand to more than MAX_NODES values (alias bombs)."""
    budget = MAX_NODES
    stack = [data]
    while stack:
        value = stack.pop()
        budget -= 1
        if budget < 0:
            raise FlowValidationError(
                [
                    FlowError(
                        f"document expands to more than {MAX_NODES} values",
                        filename,
                        hint="YAML anchors/aliases may be nested too deeply; write the flow out",
                    )
                ]
            )
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _reject_tab_indentation(text: str, filename: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            raise FlowValidationError(
                [
                    FlowError(
                        "tab character used for indentation",
                        filename,
                        number,
                        len(line) - len(stripped) + 1,
                        hint="indent with spaces",
                    )
                ]
            )


def _yaml_hint(problem: str) -> str:
    if "duplicate key" in problem:
        return "each key may appear once in a mapping; remove or rename one"
    if "mapping values are not allowed" in problem:
        return "quote the value if it contains ': '"
    if "found character '\\t'" in problem:
        return "indent with spaces, not tabs"
    return ""


class PositionIndex:
    """Finds the line and column (1-based) of a document path, composing the YAML on demand."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._root: yaml.Node | None = None
        self._composed = False

    def _node(self) -> yaml.Node | None:
        if not self._composed:
            self._composed = True
            try:
                self._root = yaml.compose(self._text, Loader=_BaseLoader)
            except yaml.YAMLError:
                self._root = None
        return self._root

    def locate(self, path: DocPath, prefer_key: bool = True) -> tuple[int | None, int | None]:
        """Line and column of `path`: the key's mark for mapping entries, else the value's.

        A path that goes deeper than the document (a missing key) resolves to the deepest
        existing node, which is where the user has to add something.
        """
        node = self._node()
        if node is None:
            return None, None
        mark = node.start_mark
        for part in path:
            found = _child(node, part)
            if found is None:
                break
            key_node, node = found
            mark = key_node.start_mark if (key_node is not None and prefer_key) else node.start_mark
        return mark.line + 1, mark.column + 1

    def value_mark(self, path: DocPath) -> tuple[int | None, int | None]:
        """Line and column of the first character of the value at `path` (inside its quotes)."""
        line, column = self.locate(path, prefer_key=False)
        node = self._node()
        for part in path:
            found = _child(node, part) if node is not None else None
            node = found[1] if found else None
        if column is not None and isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
            column += 1
        return line, column


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                return key_node, value_node
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def format_path(path: DocPath) -> str:
    """Render a document path the way users read it: `tasks[2].message`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
