"""Task `retry` blocks: checked when the flow is validated, and turned into Airflow retry arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yaml2dag.tasktypes.base import Retry, parse_duration

if TYPE_CHECKING:
    from yaml2dag.validation import Collector


def check_retry(retry: Retry, path: tuple[str | int, ...], collector: Collector) -> None:
    """Add an error when `retry` uses a policy yaml2dag cannot run."""
    if retry.type != "constant":
        collector.add(
            (*path, "type"),
            f"`{retry.type}` retry is not supported by yaml2dag yet",
            "use `type: constant`",
            prefer_key=False,
        )


def retry_arguments(retry: Retry) -> dict[str, Any]:
    """Operator keyword arguments (`retries`, `retry_delay`) for a task's `retry` block."""
    arguments: dict[str, Any] = {}
    if retry.attempts:
        arguments["retries"] = retry.attempts - 1
        if retry.interval:
            arguments["retry_delay"] = parse_duration(retry.interval)
    return arguments
