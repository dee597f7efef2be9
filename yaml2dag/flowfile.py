"""Read one flow file (or text) into a validated `Flow`."""

from __future__ import annotations

from pathlib import Path

from yaml2dag.loader import load_yaml, read_flow_text
from yaml2dag.model import Flow
from yaml2dag.validation import parse_flow

FLOW_SUFFIXES = (".yaml", ".yml")


def read_flow(path: str | Path, root: str | Path | None = None) -> Flow:
    """Load and validate the flow in `path`; raises `FlowValidationError` with located errors.

    Only a regular file is read, and at most the size limit; with `root` (the flows folder),
    a symlink resolving outside it is refused.
    """
    text = read_flow_text(path, root)
    return parse_flow_text(text, str(path))


def parse_flow_text(text: str, filename: str = "<string>") -> Flow:
    """Load and validate flow YAML given as text."""
    return parse_flow(load_yaml(text, filename), filename, text)
