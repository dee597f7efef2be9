"""A dependency-free `kestra` module for scripts run by yaml2dag (`from kestra import Kestra`).

It speaks the same protocol as Kestra's `kestra` package on PyPI: one `::{json}::` line on stdout
per message. yaml2dag puts this directory first on the script's PYTHONPATH (Process runner) or
copies this file into the container and points PYTHONPATH at it (Docker runner). Kestra's package
also has `Flow` (start executions through Kestra's API) and `Kestra.read` (Ion files): not here.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["Kestra"]


class Kestra:
    """Send outputs, metrics and log lines to the task that runs this script."""

    _logger: logging.Logger | None = None

    @staticmethod
    def format(message: dict[str, Any]) -> str:
        """The line Kestra reads: `::` + JSON + `::`."""
        return "::" + json.dumps(message, default=str) + "::"

    @staticmethod
    def _send(message: dict[str, Any]) -> None:
        print(Kestra.format(message), flush=True)

    @staticmethod
    def _metrics(name: str, type_: str, value: float, tags: dict[str, Any] | None = None) -> None:
        Kestra._send({"metrics": [{"name": name, "type": type_, "value": value, "tags": tags or {}}]})

    @staticmethod
    def outputs(outputs: dict[str, Any]) -> None:
        """Add `outputs` to the task's `vars` output."""
        Kestra._send({"outputs": outputs})

    @staticmethod
    def assets(assets: dict[str, Any]) -> None:
        """Declare assets (yaml2dag logs them)."""
        Kestra._send({"assets": assets})

    @staticmethod
    def counter(name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        """Record a counter metric."""
        Kestra._metrics(name, "counter", value, tags)

    @staticmethod
    def timer(name: str, duration: float | Callable[[], Any], tags: dict[str, Any] | None = None) -> None:
        """Record a timer metric, in seconds: a number, or the time a callable takes."""
        if callable(duration):
            start = time.monotonic()
            duration()
            duration = time.monotonic() - start
        Kestra._metrics(name, "timer", duration, tags)

    @staticmethod
    def gauge(name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        """Record a gauge metric."""
        Kestra._metrics(name, "gauge", value, tags)

    @staticmethod
    def logger() -> logging.Logger:
        """A logger whose records reach the task log at their level."""
        if Kestra._logger is None:
            logger = logging.getLogger("Kestra")
            logger.setLevel(logging.DEBUG)
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(_JsonFormatter())
            logger.addHandler(handler)
            logger.propagate = False
            Kestra._logger = logger
        return Kestra._logger


class _JsonFormatter(logging.Formatter):
    """Format a record as a Kestra `logs` message."""

    _LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN"}

    def format(self, record: logging.LogRecord) -> str:
        level = self._LEVELS.get(record.levelno, "ERROR" if record.levelno > logging.WARNING else "TRACE")
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        message = f"{when.replace('+00:00', 'Z')} - {record.getMessage()}"
        return Kestra.format({"logs": [{"level": level, "message": message}]})
