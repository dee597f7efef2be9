"""`_trigger_check`: the first task of a flow whose Flow trigger needs more than Airflow's asset schedule.

Airflow starts a DAG when an asset it is scheduled on gets an event; it cannot filter events on
labels, expressions or a namespace suffix, nor ignore the flow's own events when it listens to a
whole namespace. So such a flow starts with this task: it tests every triggering event against the
flow's Flow triggers (`yaml2dag.triggers.event_mismatch`, Kestra's condition semantics) and, when no
event fires any trigger, skips every other task of the run — teardowns included, so `finally` does
not run and `_flow_event` announces nothing: the run ends successful with every task skipped, and
the log says why. Runs not started by an asset event (manual, scheduled) go on untouched, as do
runs started by a polling trigger (HTTP, S3: the trigger itself decided to fire).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.bases.skipmixin import SkipMixin

from yaml2dag.polling import polling_variables
from yaml2dag.states import INTERNAL_UI_COLOR, INTERNAL_UI_FGCOLOR
from yaml2dag.triggers import TRIGGER_CHECK_TASK_ID, event_mismatch

__all__ = ["TRIGGER_CHECK_TASK_ID", "FlowTriggerCheckOperator"]


class FlowTriggerCheckOperator(BaseOperator, SkipMixin):
    """Skips the run when none of its triggering events fires one of the flow's Flow triggers.

    Returns the accepted event's `trigger` variables (XCom), or None when the run was skipped or not
    started by a Flow trigger.

    :param namespace: The flow's namespace.
    :param flow_id: The flow's id (its own executions never trigger it).
    :param triggers: `yaml2dag.triggers.trigger_check_specs` of the flow.
    """

    ui_color = INTERNAL_UI_COLOR
    ui_fgcolor = INTERNAL_UI_FGCOLOR

    def __init__(self, *, namespace: str, flow_id: str, triggers: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace
        self.flow_id = flow_id
        self.triggers = triggers

    def execute(self, context: Any) -> dict[str, Any] | None:  # noqa: D102
        run_type = str(getattr(context["dag_run"], "run_type", "")).lower()
        if not run_type.endswith("asset_triggered"):
            self.log.info("Run not started by a Flow trigger (%s): nothing to check", run_type or "unknown")
            return None
        polled = _polling_event(context)
        if polled is not None:
            self.log.info("Run started by the polling trigger `%s`: nothing to check", polled.get("triggerId"))
            return None
        events = _upstream_events(context)
        reasons = []
        for event in events:
            for spec in self.triggers:
                reason = event_mismatch(spec, event, (self.namespace, self.flow_id), _render)
                if reason is None:
                    self.log.info(
                        "Trigger `%s` fires on %s.%s (run %s, %s)",
                        spec["id"],
                        event.get("namespace"),
                        event.get("flowId"),
                        event.get("executionId"),
                        event.get("state"),
                    )
                    return event
                reasons.append(f"{event.get('namespace')}.{event.get('flowId')} {event.get('executionId')}: {reason}")
        self.log.info(
            "No triggering event matches the Flow trigger conditions; the run does nothing (Kestra would not "
            "have started it): %s",
            "; ".join(dict.fromkeys(reasons)) or "no event from a yaml2dag flow",
        )
        self.skip(ti=context["ti"], tasks=list(context["task"].get_flat_relatives(upstream=False)))
        return None


def _polling_event(context: Any) -> dict[str, Any] | None:
    """The payload of a polling trigger's event among the run's triggering events, or None."""
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = dict(getattr(event, "extra", None) or {})
            if polling_variables(extra) is not None:
                return dict(extra["payload"])
    return None


def _upstream_events(context: Any) -> list[dict[str, Any]]:
    """The extras of the run's triggering events from yaml2dag flows, one per upstream run, latest first."""
    found: dict[Any, tuple[Any, dict[str, Any]]] = {}
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = dict(getattr(event, "extra", None) or {})
            if extra.get("flowId"):
                found[(extra.get("executionId"), extra.get("namespace"), extra.get("flowId"))] = (
                    event.timestamp,
                    extra,
                )
    return [extra for _, extra in sorted(found.values(), key=lambda item: item[0], reverse=True)]


def _render(text: str, variables: dict[str, Any]) -> str:
    from yaml2dag.expressions import render

    return render(text, variables)
