"""Nodes of a parsed Pebble template: plain dataclasses, one per construct."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    """Base of all nodes; `offset` is the character index in the template source."""

    offset: int


# --- expressions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal(Node):
    """A string, number, boolean or null literal."""

    value: Any


@dataclass(frozen=True)
class Name(Node):
    """A variable reference such as `outputs` or `loop`."""

    name: str


@dataclass(frozen=True)
class GetAttr(Node):
    """`obj.name` — a map key lookup in Kestra's data model."""

    obj: Node
    name: str
    path: str


@dataclass(frozen=True)
class GetItem(Node):
    """`obj[key]` — a map key or list index lookup."""

    obj: Node
    key: Node
    path: str


@dataclass(frozen=True)
class Call(Node):
    """A function call `name(args, key=value)`."""

    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Filter(Node):
    """`value | name(args)`."""

    value: Node
    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Unary(Node):
    """`not x`, `-x`, `+x`."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    """A binary operator such as `==`, `and`, `contains`, `~`, `??`, `..`."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Test(Node):
    """`value is [not] name(args)`."""

    value: Node
    name: str
    args: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True)
class Ternary(Node):
    """`condition ? then : otherwise`."""

    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class ListLiteral(Node):
    """`[a, b, c]`."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapLiteral(Node):
    """`{key: value, ...}`."""

    pairs: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Interpolation(Node):
    """A double-quoted string with `#{expr}` parts, concatenated as strings."""

    parts: tuple[Node, ...]


# --- template structure ------------------------------------------------------------------------


@dataclass(frozen=True)
class Text(Node):
    """Literal text between tags."""

    text: str


@dataclass(frozen=True)
class Print(Node):
    """`{{ expr }}`."""

    expr: Node


@dataclass(frozen=True)
class Raw(Node):
    """`{% raw %}...{% endraw %}`: text emitted verbatim."""

    text: str


@dataclass(frozen=True)
class If(Node):
    """`{% if %}...{% elseif %}...{% else %}...{% endif %}`."""

    branches: tuple[tuple[Node, tuple[Node, ...]], ...]
    otherwise: tuple[Node, ...] = ()


@dataclass(frozen=True)
class For(Node):
    """`{% for x in items %}...{% else %}...{% endfor %}`."""

    target: str
    iterable: Node
    body: tuple[Node, ...]
    otherwise: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Set(Node):
    """`{% set name = expr %}`."""

    name: str
    value: Node


@dataclass(frozen=True)
class FilterBlock(Node):
    """`{% filter upper | trim %}...{% endfilter %}`: the body's output passed through filters."""

    filters: tuple[Filter, ...]
    body: tuple[Node, ...]


@dataclass(frozen=True)
class Template(Node):
    """A whole template: its top-level nodes."""

    body: tuple[Node, ...] = field(default_factory=tuple)
