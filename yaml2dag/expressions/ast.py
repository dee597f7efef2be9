"""Nodes of a parsed Pebble template: plain dataclasses, one per construct.

Nodes are compared by identity and never changed after parsing; `eq=False` (no generated `__eq__`,
`__hash__` or frozen `__setattr__`) halves what building these classes costs at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Node:
    """Base of all nodes; `offset` is the character index in the template source."""

    offset: int


# --- expressions -------------------------------------------------------------------------------


@dataclass(eq=False)
class Literal(Node):
    """A string, number, boolean or null literal."""

    value: Any


@dataclass(eq=False)
class Name(Node):
    """A variable reference such as `outputs` or `loop`."""

    name: str


@dataclass(eq=False)
class GetAttr(Node):
    """`obj.name` — a map key lookup in Kestra's data model."""

    obj: Node
    name: str
    path: str


@dataclass(eq=False)
class GetItem(Node):
    """`obj[key]` — a map key or list index lookup."""

    obj: Node
    key: Node
    path: str


@dataclass(eq=False)
class Call(Node):
    """A function call `name(args, key=value)`."""

    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]


@dataclass(eq=False)
class Filter(Node):
    """`value | name(args)`."""

    value: Node
    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]


@dataclass(eq=False)
class Unary(Node):
    """`not x`, `-x`, `+x`."""

    op: str
    operand: Node


@dataclass(eq=False)
class Binary(Node):
    """A binary operator such as `==`, `and`, `contains`, `~`, `??`, `..`."""

    op: str
    left: Node
    right: Node


@dataclass(eq=False)
class Test(Node):
    """`value is [not] name(args)`."""

    value: Node
    name: str
    args: tuple[Node, ...]
    negated: bool


@dataclass(eq=False)
class Ternary(Node):
    """`condition ? then : otherwise`."""

    condition: Node
    then: Node
    otherwise: Node


@dataclass(eq=False)
class ListLiteral(Node):
    """`[a, b, c]`."""

    items: tuple[Node, ...]


@dataclass(eq=False)
class MapLiteral(Node):
    """`{key: value, ...}`."""

    pairs: tuple[tuple[Node, Node], ...]


@dataclass(eq=False)
class Interpolation(Node):
    """A double-quoted string with `#{expr}` parts, concatenated as strings."""

    parts: tuple[Node, ...]


# --- template structure ------------------------------------------------------------------------


@dataclass(eq=False)
class Text(Node):
    """Literal text between tags."""

    text: str


@dataclass(eq=False)
class Print(Node):
    """`{{ expr }}`."""

    expr: Node


@dataclass(eq=False)
class Raw(Node):
    """`{% raw %}...{% endraw %}`: text emitted verbatim."""

    text: str


@dataclass(eq=False)
class If(Node):
    """`{% if %}...{% elseif %}...{% else %}...{% endif %}`."""

    branches: tuple[tuple[Node, tuple[Node, ...]], ...]
    otherwise: tuple[Node, ...] = ()


@dataclass(eq=False)
class For(Node):
    """`{% for x in items %}...{% else %}...{% endfor %}`."""

    target: str
    iterable: Node
    body: tuple[Node, ...]
    otherwise: tuple[Node, ...] = ()


@dataclass(eq=False)
class Set(Node):
    """`{% set name = expr %}`."""

    name: str
    value: Node


@dataclass(eq=False)
class FilterBlock(Node):
    """`{% filter upper | trim %}...{% endfilter %}`: the body's output passed through filters."""

    filters: tuple[Filter, ...]
    body: tuple[Node, ...]


@dataclass(eq=False)
class Template(Node):
    """A whole template: its top-level nodes."""

    body: tuple[Node, ...] = field(default_factory=tuple)
