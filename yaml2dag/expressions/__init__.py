"""Kestra's expression language (Pebble) on Jinja: parse, translate, check and render."""

from __future__ import annotations

from yaml2dag.expressions.runtime import evaluate, needs_rendering, render, render_value, translate
from yaml2dag.expressions.values import is_truthy_text, to_text

__all__ = ["evaluate", "is_truthy_text", "needs_rendering", "render", "render_value", "to_text", "translate"]
