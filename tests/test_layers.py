"""The package imports one way: no import cycles, and the parse-time stages import no run-time module.

Imports inside functions count too: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "yaml2dag"
#: Stages that build the plan from YAML: they never import Airflow-facing or run-time modules.
PLANNING = ("loader", "errors", "diagnostics", "states", "flowinputs", "tasktypes", "model", "validation", "plan")
RUN_TIME = ("yaml2dag.operators", "yaml2dag.compiler", "yaml2dag.runner", "yaml2dag.cli", "yaml2dag.bundle")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The yaml2dag modules `path` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the modules importing it runs first: its imports, and the packages holding them."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = imports_of(path, set(files))
        # Importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` first.
        targets |= {parent for target in targets for parent in _parents(target) if parent in files}
        graph[name] = {target for target in targets if target != name and not name.startswith(target + ".")}
    return graph


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:index]) for index in range(2, len(parts))]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_planning_stages_import_nothing_of_run_time():
    graph = import_graph()
    planning = [name for name in graph if name.removeprefix("yaml2dag.").split(".")[0] in PLANNING]
    offending = {name: sorted(target for target in graph[name] if target.startswith(RUN_TIME)) for name in planning}
    assert {name: targets for name, targets in offending.items() if targets} == {}
