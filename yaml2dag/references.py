"""Compile-time check that expressions name inputs, variables and tasks the flow has.

`{{ inputs.nme }}`, `{{ vars.typo }}` and `{{ outputs.missing.x }}` would only fail when the task
renders them (Kestra's strict variables); they are reported when the flow is compiled instead,
located at the expression, with the closest name the flow does have.

Only references that cannot be right are reported, so no flow Kestra runs is refused:

- a name written out (`inputs.name`, `outputs['my-task']`), never a computed key (`outputs[x]`);
- not under Pebble's tolerant forms, which accept a missing value on purpose: the left side of
  `??` / `???`, the value of `| default(...)`, of `is defined` / `is null` / `is empty`;
- not in a template that binds the name itself (`{% set vars = ... %}`, `{% for outputs in ... %}`);
- task ids are every `id` of a task-like mapping anywhere in the flow's task blocks (disabled
  tasks, tasks that did not parse and tasks inside any flowable included).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from yaml2dag.expressions import ast

#: Tests and filters that accept a missing value: references under them are never reported.
_TOLERANT_TESTS = frozenset({"defined", "null", "empty"})
_TOLERANT_FILTERS = frozenset({"default"})
_TOLERANT_OPERATORS = frozenset({"??", "???"})


@dataclass(frozen=True)
class KnownNames:
    """What a flow declares, by the variable that reads it; None where it cannot be known."""

    inputs: frozenset[str] | None
    vars: frozenset[str] | None
    outputs: frozenset[str] | None

    @classmethod
    def of(cls, data: Mapping[str, Any], task_blocks: tuple[str, ...]) -> KnownNames:
        """The names declared in a flow document (read from the YAML data, so a part that did not parse counts)."""
        inputs = data.get("inputs", [])
        variables = data.get("variables", {})
        return cls(
            inputs=_with_prefixes(_input_ids(inputs)) if isinstance(inputs, list) else None,
            vars=_with_prefixes(str(key) for key in variables) if isinstance(variables, dict) else None,
            outputs=frozenset(_task_ids([data.get(block) for block in task_blocks])),
        )


def _input_ids(inputs: list[Any]) -> Iterator[str]:
    """The ids of the declared inputs (`id`, or Kestra's deprecated `name`)."""
    for item in inputs:
        if isinstance(item, dict):
            for key in ("id", "name"):
                if key in item:
                    yield str(item[key])


def _with_prefixes(names: Iterator[str]) -> frozenset[str]:
    """The names, and the first part of dotted ones: Kestra reads input `request.name` as `inputs.request.name`."""
    found: set[str] = set()
    for name in names:
        found.update((name, name.split(".", 1)[0]))
    return frozenset(found)


@dataclass(frozen=True)
class UnknownReference:
    """A reference to a name the flow does not declare; `offset` is where it starts in the template."""

    offset: int
    message: str
    hint: str


_KINDS = {"inputs": "input", "vars": "variable", "outputs": "task"}
_DECLARED = {"inputs": "flow inputs", "vars": "flow variables", "outputs": "tasks"}


def unknown_references(template: ast.Template, known: KnownNames) -> list[UnknownReference]:
    """The references of a parsed template to inputs, variables or task outputs the flow lacks."""
    bound = {node.name for node in _nodes(template, tolerant=True) if isinstance(node, ast.Set)}
    bound |= {
        name.strip() for node in _nodes(template, tolerant=True) if isinstance(node, ast.For) for name in _targets(node)
    }
    found: list[UnknownReference] = []
    for node in _nodes(template, tolerant=False):
        reference = _reference(node)
        if reference is None or reference[0] in bound:
            continue
        root, name, offset = reference
        declared = getattr(known, root)
        if declared is None or name in declared or (root == "outputs" and _generated_by_kestra(name, declared)):
            continue
        close = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
        listed = ", ".join(f"`{item}`" for item in sorted(declared)[:20]) or "none"
        hint = f"did you mean `{close[0]}`?" if close else f"{_DECLARED[root]}: {listed}"
        found.append(UnknownReference(offset, f"unknown {_KINDS[root]} `{name}` in `{root}.{name}`", hint))
    return found


def _reference(node: ast.Node) -> tuple[str, str, int] | None:
    """(`inputs` / `vars` / `outputs`, the name, the offset) when `node` reads a declared name written out."""
    if isinstance(node, ast.GetAttr):
        obj, name = node.obj, node.name
    elif isinstance(node, ast.GetItem) and isinstance(node.key, ast.Literal) and isinstance(node.key.value, str):
        obj, name = node.obj, node.key.value
    else:
        return None
    if isinstance(obj, ast.Name) and obj.name in _KINDS:
        return obj.name, name, obj.offset
    return None


def _generated_by_kestra(name: str, task_ids: frozenset[str]) -> bool:
    """Task runs Kestra adds next to a task (ForEachItem's `<id>_split`, `<id>_items`, `<id>_merge`)."""
    base, _, suffix = name.rpartition("_")
    return suffix in ("split", "items", "merge") and base in task_ids


def _targets(node: ast.For) -> list[str]:
    return node.target.split(",")


def _nodes(node: ast.Node, tolerant: bool) -> Iterator[ast.Node]:
    """Every node under `node`; with `tolerant` False, not the ones a tolerant form guards."""
    yield node
    if not tolerant and _guards(node):
        return
    for field in dataclasses.fields(node):
        yield from _children(getattr(node, field.name), tolerant)


def _guards(node: ast.Node) -> bool:
    """Whether `node` accepts a missing value in (some of) its operands: its operands are not checked."""
    return (
        (isinstance(node, ast.Binary) and node.op in _TOLERANT_OPERATORS)
        or (isinstance(node, ast.Test) and node.name in _TOLERANT_TESTS)
        or (isinstance(node, ast.Filter) and node.name in _TOLERANT_FILTERS)
    )


def _children(value: Any, tolerant: bool) -> Iterator[ast.Node]:
    if isinstance(value, ast.Node):
        yield from _nodes(value, tolerant)
    elif isinstance(value, tuple):
        for item in value:
            yield from _children(item, tolerant)


def _task_ids(value: Any) -> Iterator[str]:
    """Every `id` of a mapping that also has a `type` (a task), at any depth of the task blocks."""
    if isinstance(value, dict):
        if isinstance(value.get("id"), str) and "type" in value:
            yield value["id"]
        for item in value.values():
            yield from _task_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _task_ids(item)
