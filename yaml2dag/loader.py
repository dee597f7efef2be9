"""Read a flow file into plain Python data, and find the line/column of any path in it.

Loading uses PyYAML's C loader (safe: it never builds Python objects from tags). Positions are
only needed to report errors, so they are recovered lazily by re-composing the node tree.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import re
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from yaml2dag.errors import FlowError, FlowValidationError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: A path into the document: mapping keys (str) and list indexes (int).
DocPath = Sequence[str | int]

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_NODES = 200_000
#: Deepest nesting of lists and maps accepted (Airflow's own serialization recurses per level too).
MAX_DEPTH = 100
_TOO_DEEP = (f"values nested more than {MAX_DEPTH} levels deep", "flatten the data")
#: Tags whose values are not JSON data (dates, bytes, sets, pairs): refused, as no flow needs them.
_NON_JSON_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("timestamp", "binary", "set", "omap", "pairs"))
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool"))


class _LimitExceeded(yaml.MarkedYAMLError):
    """The document nests too deeply or holds too many values; raised while composing it."""


class _FlowLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that refuses duplicate keys, as Kestra does, and documents too deep or too big.

    The C composer recurses once per nesting level, so a document nested a few hundred thousand
    levels deep would overflow the C stack; it also builds a node per value before any check runs.
    Both limits are enforced while composing, in `descend_resolver`, which it calls for every node.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def descend_resolver(self, current_node: yaml.Node | None, current_index: Any) -> None:  # noqa: D102
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
            mark = current_node.start_mark if current_node is not None else None
            if self._depth > MAX_DEPTH:
                problem, hint = _TOO_DEEP
            else:
                problem, hint = f"the document holds more than {MAX_NODES} values", "move the data out of the flow"
            raise _LimitExceeded(None, None, problem, mark, hint)
        if self.yaml_path_resolvers:
            super().descend_resolver(current_node, current_index)

    def ascend_resolver(self) -> None:  # noqa: D102
        self._depth -= 1
        if self.yaml_path_resolvers:
            super().ascend_resolver()

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # noqa: D102
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, but found {node.id}", node.start_mark
            )
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key `{key}`", key_node.start_mark)
            seen.add(key)
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


def _checked_scalar(construct: Callable[[Any, yaml.Node], Any], tag: str) -> Callable[[Any, yaml.Node], Any]:
    """Wrap a scalar constructor so a bad explicitly tagged value (`!!int abc`) is a located error."""

    def checked(loader: Any, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, KeyError, IndexError):
            raise yaml.constructor.ConstructorError(
                None, None, f"`{node.value}` is not a valid !!{tag.rsplit(':', 1)[-1]}", node.start_mark
            ) from None

    return checked


_FlowLoader.yaml_implicit_resolvers = _core_schema_resolvers()
_FlowLoader.yaml_constructors = {
    tag: _checked_scalar(construct, tag) if tag in _SCALAR_TAGS else construct
    for tag, construct in _BaseLoader.yaml_constructors.items()
    if tag not in _NON_JSON_TAGS
}


def read_flow_text(path: str | Path, root: str | Path | None = None) -> str:
    """Read a flow file as UTF-8 text, with a located error for bad bytes, huge or special files.

    With `root` (the flows folder), a symlink resolving outside it is refused.
    """
    return decode_flow_bytes(read_flow_bytes(path, root), str(path))


def read_flow_bytes(path: str | Path, root: str | Path | None = None) -> bytes:
    """The bytes of the flow file `path`, read safely: a regular file, at most `MAX_FILE_BYTES` + 1 bytes.

    FIFOs, devices and sockets are refused before they are opened (a FIFO would block, `/dev/zero`
    would never end); the file is opened non-blocking and checked again, so one swapped in between
    is refused too. With `root`, a path (symlink) resolving outside that folder is refused.
    Raises `FlowValidationError` for what the user must fix, `OSError` when the file cannot be read.
    """
    filename = str(path)
    if root is not None and not _inside(Path(path), Path(root)):
        raise FlowValidationError(
            [
                FlowError(
                    "the file is a symlink to a file outside the flows folder",
                    filename,
                    hint="copy the flow into the flows folder instead of linking to it",
                )
            ]
        )
    _require_regular(os.stat(path).st_mode, filename)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        _require_regular(os.fstat(descriptor).st_mode, filename)
        chunks: list[bytes] = []
        remaining = MAX_FILE_BYTES + 1  # one byte more than allowed tells a file over the limit
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(descriptor)
    return b"".join(chunks)


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, symlinks resolved, is under the folder `root` (symlinks resolved too)."""
    absolute, base = os.path.abspath(path), os.path.abspath(root)
    if absolute.startswith(base.rstrip(os.sep) + os.sep):  # fast path: no symlink between root and file
        current = absolute
        while current != base and not os.path.islink(current):
            current = os.path.dirname(current)
        if current == base:
            return True
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def _require_regular(mode: int, filename: str) -> None:
    """Refuse anything but a regular file (FIFO, device, socket, directory)."""
    if not stat.S_ISREG(mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise FlowValidationError(
            [FlowError(f"not a regular file ({kind}): not read", filename, hint="flow files must be plain files")]
        )


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


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


@functools.cache
def loader_fingerprint() -> str:
    """What decides `load_yaml`'s result besides the text: this module, PyYAML and Python's marshal format.

    Data parsed earlier (the bundle's generated DAG files keep it) is reused only under the same one.
    """
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{yaml.__version__} {_BaseLoader.__name__} {sys.version_info[:2]} {marshal.version}".encode())
    return digest.hexdigest()[:16]


def dump_parsed(data: Any) -> bytes | None:
    """`load_yaml`'s result in marshal format (parsed again ~10× faster than YAML), or None if it cannot be."""
    try:
        return marshal.dumps(data)
    except ValueError:
        return None


def load_parsed(dumped: bytes) -> Any:
    """The data `dump_parsed` wrote."""
    return marshal.loads(dumped)


def load_yaml(text: str, filename: str = "<string>") -> Any:
    """Parse YAML text into plain data; syntax errors become a located `FlowValidationError`."""
    loader = None
    try:
        loader = _FlowLoader(text)
        data = loader.get_single_data()
    except _LimitExceeded as exc:
        raise _located(exc.problem or "", filename, exc.problem_mark, exc.note or "") from None
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        if "tab character" in problem or _character_at(text, mark) == "\t":
            # Tabs are fine inside block scalars; the parser only fails on those used as indentation.
            raise _located("tab character used for indentation", filename, mark, "indent with spaces") from None
        if "exceeded maximum nesting depth" in problem:
            # libyaml's own limit (PyYAML >= 6.0.4), far above MAX_DEPTH: the scanner reaches it
            # in `[[[…` before the composer checks the first levels.
            too_deep, hint = _TOO_DEEP
            raise _located(too_deep, filename, mark, hint) from None
        raise _syntax_error(exc, text, filename) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, filename) from None
    except UnicodeEncodeError as exc:  # lone surrogates: the text cannot be UTF-8
        line, column = _line_column(text, exc.start)
        message = f"invalid character U+{ord(text[exc.start]):04X} (not valid Unicode text)"
        raise FlowValidationError([FlowError(message, filename, line, column, hint="save the file as UTF-8")]) from None
    except yaml.YAMLError as exc:
        raise FlowValidationError([FlowError(f"YAML error: {exc}", filename)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if "&" in text:  # only anchors/aliases can make the data bigger or deeper than the text
        _check_expanded_size(data, filename)
    return data


def _character_at(text: str, mark: Any) -> str:
    """The character a parser mark points at ('' when it is past the end)."""
    if mark is None:
        return ""
    lines = text.splitlines()
    if mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    return line[mark.column] if mark.column < len(line) else ""


def _located(message: str, filename: str, mark: Any, hint: str) -> FlowValidationError:
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    return FlowValidationError([FlowError(message, filename, line, column, hint=hint)])


def _describe(problem: str) -> str:
    """The message for a YAML problem: tags are named the way they are written (`!!timestamp`)."""
    tag = re.fullmatch(r"could not determine a constructor for the tag '(.*)'", problem, re.DOTALL)
    if tag:
        name = tag.group(1)
        if name == "tag:yaml.org,2002:merge":
            return "YAML merge keys (`<<`) are not supported"
        written = "!!" + name.removeprefix("tag:yaml.org,2002:") if name.startswith("tag:yaml.org,2002:") else name
        return f"unsupported YAML tag `{written}`"
    return f"YAML syntax error: {problem}"


def _reader_error(exc: yaml.reader.ReaderError, text: str, filename: str) -> FlowValidationError:
    """A character YAML does not allow (control characters): located, since the C reader counts bytes."""
    prefix = text.encode("utf-8", "surrogatepass")[: exc.position].decode("utf-8", "ignore")
    line, column = _line_column(prefix, len(prefix))
    character = exc.character if isinstance(exc.character, int) else ord(exc.character or "\0")
    return FlowValidationError(
        [
            FlowError(
                f"character U+{character:04X} is not allowed in YAML",
                filename,
                line,
                column,
                hint=f'remove it, or write it as the escape "\\u{character:04x}" inside a double-quoted string',
            )
        ]
    )


def _line_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at `index`."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _check_expanded_size(data: Any, filename: str) -> None:
    """Refuse documents whose aliases expand to more than MAX_NODES values or MAX_DEPTH levels."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > MAX_DEPTH:
            limit = f"more than {MAX_NODES} values" if budget < 0 else f"more than {MAX_DEPTH} levels deep"
            raise FlowValidationError(
                [
                    FlowError(
                        f"document expands to {limit}",
                        filename,
                        hint="YAML anchors/aliases may be nested too deeply; write the flow out",
                    )
                ]
            )
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


#: The line breaks the YAML reader counts (`str.splitlines` also splits on form feeds and others).
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, filename: str) -> FlowValidationError:
    """A YAML syntax error located where the user has to look, naming both of PyYAML's marks.

    PyYAML reports where it gave up (the problem mark: for an unclosed quote, the end of the
    file) and what it was reading (the context mark: where that quote opens). The error is
    located at the opening when the file ended inside it or it is a quote or bracket; else where
    PyYAML gave up. The other mark goes into the message.
    """
    problem = exc.problem or exc.context or "invalid YAML"
    context, problem_mark, context_mark = exc.context, exc.problem_mark, exc.context_mark
    opens = context is not None and any(word in context for word in ("quoted scalar", "flow sequence", "flow mapping"))
    at_context = context_mark is not None and (opens or "end of stream" in problem or problem_mark is None)
    mark, other = (context_mark, problem_mark) if at_context else (problem_mark or context_mark, context_mark)
    message = _describe(problem)
    if context and context.startswith("while ") and exc.problem and other is not None and other is not mark:
        where = f"line {other.line + 1}, column {other.column + 1}"
        message += f" at {where} ({context})" if at_context else f" ({context} that starts at {where})"
    return _located(message, filename, mark, _yaml_hint(problem, context, text, problem_mark, context_mark))


#: A YAML problem's text → what to change, for the problems whose fix does not depend on where they are.
_FIXED_HINTS = (
    ("tag:yaml.org,2002:merge", "write the keys out"),
    ("could not determine a constructor", "flows are plain YAML: write the value without the tag"),
    ("is not a valid", "remove the tag, or write a value of that type"),
    ("duplicate key", "each key may appear once in a mapping; remove or rename one"),
    ("found character '\\t'", "indent with spaces, not tabs"),
)


def _yaml_hint(problem: str, context: str | None = None, text: str = "", mark: Any = None, start: Any = None) -> str:
    """What to change for a YAML problem (`mark`: where PyYAML gave up, `start`: what it was reading)."""
    context = context or ""
    opened = f" at line {start.line + 1}, column {start.column + 1}" if start is not None else ""
    fixed = next((hint for found, hint in _FIXED_HINTS if found in problem), None)
    if fixed is not None:
        return fixed
    if "quoted scalar" in context:
        return "close the quote opened here, or escape the quote characters inside the value"
    if "flow sequence" in context or "flow mapping" in context:
        bracket = "]" if "sequence" in context else "}"
        return f"close the bracket opened here with `{bracket}`, or quote the value if it is text"
    if "mapping values are not allowed" in problem:
        if _colon_value_before(text, mark):
            return "quote the value if it contains ': '"
        return "check the indentation: this key is indented more than the keys of its mapping"
    if "expected '-' indicator" in problem:
        return (
            f"check the indentation: a line of the list{opened} either starts an item (`- `) in the column "
            "of its first item or lines up with the keys of its item"
        )
    if "expected key" in problem or "expected <block end>" in problem:
        return f"check the indentation: keys of this mapping start in the column of its first key{opened}"
    if "could not find expected ':'" in problem:
        line = f"line {start.line + 1}" if start is not None else "the line"
        return f"write {line} as `key: value`, or indent it under the key it continues"
    return ""


def _colon_value_before(text: str, mark: Any) -> bool:
    """Whether the line of `mark` already holds `key: ` before it (`a: b: c`), rather than being mis-indented."""
    if mark is None:
        return True
    lines = _LINE_BREAK.split(text)
    if mark.line >= len(lines):
        return True
    before = lines[mark.line][: mark.column].lstrip(" -")
    return ": " in before or before.endswith(":")


class PositionIndex:
    """Finds the line and column (1-based) of a document path, composing the YAML on demand."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._root: yaml.Node | None = None
        self._composed = False
        self._empty = False

    def _node(self) -> yaml.Node | None:
        if not self._composed:
            self._composed = True
            try:
                self._root = yaml.compose(self._text, Loader=_FlowLoader)
                self._empty = self._root is None
            except (yaml.YAMLError, UnicodeEncodeError):
                self._root = None
        return self._root

    def locate(self, path: DocPath, prefer_key: bool = True) -> tuple[int | None, int | None]:
        """Line and column of `path`: the key's mark for mapping entries, else the value's.

        A path that goes deeper than the document (a missing key) resolves to the deepest
        existing node, which is where the user has to add something.
        """
        node = self._node()
        if node is None:
            return (1, 1) if self._empty else (None, None)  # an empty document: point at its start
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
