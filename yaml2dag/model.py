"""The flow top level: inputs, triggers, labels, plugin defaults and the task lists (spec §1)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, WithJsonSchema, field_validator

from yaml2dag.flowinputs import (
    INPUT_ID_PATTERN,
    INPUT_TYPES,
    SUPPORTED_INPUT_TYPES,
    FlowInput,
    InputDependency,
)
from yaml2dag.states import KestraState
from yaml2dag.tasktypes import TaskBase
from yaml2dag.tasktypes.base import DurationText, KestraModel, Retry, Text

FLOW_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
TRIGGER_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
__all__ = ["INPUT_TYPES", "SUPPORTED_INPUT_TYPES", "FlowInput", "InputDependency"]  # defined in flowinputs

#: System labels a flow may set itself (Kestra: `system.readOnly` locks the flow in the UI).
ALLOWED_SYSTEM_LABELS = frozenset({"system.readOnly"})
SCHEDULE_TYPES = ("io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule")
FLOW_TRIGGER_TYPES = ("io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow")
WEBHOOK_TYPES = ("io.kestra.plugin.core.trigger.Webhook", "io.kestra.core.models.triggers.types.Webhook")
#: Trigger types yaml2dag compiles.
TRIGGER_TYPES = (*SCHEDULE_TYPES, *FLOW_TRIGGER_TYPES, *WEBHOOK_TYPES)
#: Kestra execution states (`State.Type`), as a Flow trigger filters on them.
EXECUTION_STATES = tuple(state.value for state in KestraState)
ExecutionState = Literal[EXECUTION_STATES]  # type: ignore[valid-type]

_SCALAR = {"type": ["string", "number", "boolean", "null"]}
#: JSON Schema of `labels` as written: a map, or a list of `{key, value}` (the validator turns both into a map).
LABELS_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "object", "additionalProperties": _SCALAR, "propertyNames": {"not": {"pattern": "^system\\."}}},
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"key": _SCALAR, "value": _SCALAR},
                "required": ["key", "value"],
                "additionalProperties": False,
            },
        },
    ]
}


class UpstreamFlow(KestraModel):
    """A flow whose executions a Flow trigger waits for (`preconditions.flows[]`, `dependsOn[]`)."""

    namespace: str | None = Field(default=None, description="Namespace of the upstream flow.")
    flowId: str | None = Field(default=None, description="Id of the upstream flow.")
    states: list[ExecutionState] | None = Field(
        default=None, description="Final states of the upstream execution that count (default: any)."
    )
    labels: dict[str, Any] | None = Field(default=None, description="Labels the upstream execution must carry.")
    when: str | None = Field(default=None, description="Expression that must render true for the execution to count.")


class Preconditions(KestraModel):
    """A Flow trigger's `preconditions`: every listed flow must end in one of its states."""

    id: str | None = Field(default=None, description="Id of the precondition.")
    flows: list[UpstreamFlow] = Field(default_factory=list, description="The upstream flows, all required.")
    where: list[Any] | None = Field(default=None, description="Filters on any execution (namespace, labels, ...).")
    timeWindow: dict[str, Any] | None = Field(default=None, description="Period within which all must happen.")
    resetOnSuccess: bool = Field(default=True, description="Start waiting afresh once the trigger fired.")

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset({"timeWindow"})


class Trigger(KestraModel):
    """One entry of `triggers`: Schedule (a timetable), Flow (Airflow assets) or Webhook (the REST API)."""

    model_config = KestraModel.model_config | {"extra": "allow"}

    id: str = Field(pattern=TRIGGER_ID_PATTERN, description="Trigger id, unique in the flow.")
    type: str = Field(description="Trigger type: Schedule, Flow or Webhook.")
    description: str | None = Field(default=None, description="Free text.")
    disabled: bool = Field(default=False, description="A disabled trigger does not start runs.")
    cron: str | None = Field(
        default=None,
        description="Schedule: cron expression, 5 fields (`0 9 * * 1-5`) or @hourly, @daily, @midnight, @weekly, "
        "@monthly, @yearly, @annually; 6 fields (seconds first) with `withSeconds`.",
    )
    timezone: str | None = Field(
        default=None, description="Schedule: IANA time zone of the cron (default: Airflow's default time zone)."
    )
    withSeconds: bool = Field(
        default=False, description="Schedule: the cron has 6 fields, seconds first (yaml2dag: seconds `0` only)."
    )
    inputs: dict[str, Any] | None = Field(
        default=None, description="Schedule: input values of the runs it starts (may use `{{ trigger.date }}`)."
    )
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = Field(
        default=None, description="Schedule: runs missed while down: ALL (default), LAST; NONE is not supported."
    )
    conditions: list[Any] | None = Field(
        default=None,
        description="Flow: conditions on the upstream execution (ExecutionFlow, ExecutionStatus, ExecutionNamespace, "
        "ExecutionLabels, Expression, Not, Or, MultipleCondition); Schedule: conditions on the fire time.",
    )
    stopAfter: list[str] | None = Field(default=None, description="Disable the trigger after a run in these states.")
    lateMaximumDelay: DurationText | None = Field(
        default=None, description="Schedule: skip a run that would start later than this after its date."
    )
    states: list[ExecutionState] | None = Field(
        default=None, description="Flow: upstream execution states that fire it (default: every final state)."
    )
    preconditions: Preconditions | None = Field(default=None, description="Flow: the upstream flows to wait for.")
    dependsOn: list[UpstreamFlow] | None = Field(
        default=None, description="Flow (newer name of `preconditions.flows`): the upstream flows to wait for."
    )
    mode: Literal["ALL", "ANY", "AT_LEAST"] = Field(
        default="ALL", description="Flow: with `dependsOn`, wait for ALL upstream flows or ANY of them."
    )
    minSatisfied: int | None = Field(default=None, description="Flow: with mode AT_LEAST, how many are needed.")
    window: dict[str, Any] | None = Field(default=None, description="Flow: period within which all must happen.")
    key: str | None = Field(default=None, max_length=256, description="Webhook: secret part of the webhook URL.")
    wait: bool = Field(default=False, description="Webhook: the call waits for the run to end.")
    returnOutputs: bool = Field(default=False, description="Webhook: with `wait`, return the flow outputs.")

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset({"stopAfter", "lateMaximumDelay", "minSatisfied", "window"})


class PluginDefault(KestraModel):
    """One entry of `pluginDefaults` (alias `taskDefaults`); applied to the raw flow by `yaml2dag.defaults`."""

    type: str = Field(min_length=1, description="Task or trigger type, or a prefix of types, the defaults apply to.")
    forced: bool = Field(default=False, description="The defaults win over values set on the task.")
    values: dict[str, Any] = Field(description="Property values to apply (maps are merged deeply).")

    @field_validator("values")
    @classmethod
    def _no_null(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Kestra refuses a default without a value."""
        for key, item in value.items():
            if item is None:
                raise ValueError(f"no value given for `{key}`")
        return value


class Concurrency(KestraModel):
    """The flow's `concurrency` block: at most `limit` runs at once."""

    limit: int = Field(
        ge=1, le=2**31 - 1, description="Most runs of this flow at the same time (Airflow's `max_active_runs`)."
    )
    behavior: Literal["QUEUE", "CANCEL", "FAIL"] = Field(
        default="QUEUE", description="What happens to a run over the limit: QUEUE, CANCEL or FAIL."
    )


class FlowOutput(KestraModel):
    """One entry of the flow-level `outputs`."""

    id: str = Field(pattern=INPUT_ID_PATTERN, description="Output id.")
    type: str = Field(description="Type the value is converted to (as for inputs).")
    value: Any = Field(default=None, description="Expression rendered at the end of the run.")
    description: str | None = Field(default=None, description="Free text.")
    displayName: str | None = Field(default=None, description="Label shown instead of the id.")
    required: bool = Field(default=True, description="The run fails when the value cannot be rendered.")


class Flow(KestraModel):
    """A whole Kestra flow, validated. Task lists hold typed task models."""

    id: Text = Field(
        pattern=FLOW_ID_PATTERN, min_length=1, max_length=100, description="Flow id; the DAG id is `<namespace>.<id>`."
    )
    namespace: Text = Field(
        pattern=NAMESPACE_PATTERN,
        min_length=1,
        max_length=150,
        description="Lower-case namespace such as `company.team`; also a DAG tag.",
    )
    revision: int | None = Field(default=None, description="Revision number, set by Kestra (`flow.revision`).")
    description: str | None = Field(
        default=None, description="Markdown description: the DAG's description (first line) and docs."
    )
    labels: Annotated[dict[str, str], WithJsonSchema(LABELS_JSON_SCHEMA)] = Field(
        default_factory=dict,
        description="Labels, a map or a list of `{key, value}`; each becomes a DAG tag `key:value`.",
    )
    variables: dict[str, Any] = Field(
        default_factory=dict, description="Constants read as `vars.<name>`; not rendered unless passed to `render()`."
    )
    inputs: list[FlowInput] = Field(default_factory=list, description="Typed inputs of a run (Airflow Params).")
    tasks: list[TaskBase] = Field(min_length=1, description="The tasks, run one after the other until one fails.")
    errors: list[TaskBase] = Field(
        default_factory=list, description="Tasks run one after the other when a task of `tasks` failed."
    )
    finally_: list[TaskBase] = Field(
        default_factory=list, alias="finally", description="Tasks run at the end of every run, whatever happened."
    )
    afterExecution: list[TaskBase] = Field(
        default_factory=list,
        description="Tasks run once the run has its final state (`execution.state`); they never change it.",
    )
    listeners: list[Any] = Field(default_factory=list, description="Deprecated: tasks run after the run.")
    triggers: list[Trigger] = Field(default_factory=list, description="What starts runs: Schedule, Flow, Webhook.")
    pluginDefaults: list[PluginDefault] = Field(default_factory=list, description="Default values of task properties.")
    taskDefaults: list[PluginDefault] = Field(default_factory=list, description="Deprecated alias of `pluginDefaults`.")
    disabled: bool = Field(default=False, description="A disabled flow cannot run.")
    retry: Retry | None = Field(
        default=None, description="Retry of every failed task that has no `retry` of its own (nor from a parent)."
    )
    concurrency: Concurrency | None = Field(default=None, description="Limit on runs of this flow at the same time.")
    outputs: list[FlowOutput] = Field(default_factory=list, description="Flow outputs, rendered at the end of a run.")
    sla: list[Any] = Field(default_factory=list, description="Service-level rules (maximum duration, assertions).")
    checks: list[Any] = Field(default_factory=list, description="Conditions checked before a run is created.")
    workerGroup: dict[str, Any] | None = Field(default=None, description="Worker group to run on (Enterprise).")
    tenantId: str | None = Field(default=None, description="Tenant, set by the Kestra server.")
    deleted: bool = Field(default=False, description="Set by the Kestra server on deleted flows.")

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset(
        {
            "listeners",
            "disabled",
            "sla",
            "checks",
            "workerGroup",
            "tenantId",
            "deleted",
        }
    )

    @field_validator("description")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        """A description of only blanks is no description (the DAG summary is its first line)."""
        return value if value is None or value.strip() else None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_map(cls, value: Any) -> Any:
        """Labels come as a map or as a list of `{key, value}`; values are read as strings."""
        if isinstance(value, list):
            pairs: dict[str, Any] = {}
            for item in value:
                if not (isinstance(item, dict) and set(item) == {"key", "value"}):
                    raise ValueError("each label in a list must be a map with `key` and `value`")
                pairs[str(item["key"])] = item["value"]
            value = pairs
        if isinstance(value, dict):
            for key in value:
                if str(key).startswith("system.") and str(key) not in ALLOWED_SYSTEM_LABELS:
                    raise ValueError(f"label key `{key}` is reserved: keys may not start with `system.`")
            return {str(key): "" if item is None else _label_text(item) for key, item in value.items()}
        return value

    @property
    def dag_id(self) -> str:
        """The Airflow DAG id: `<namespace>.<id>`, so equal ids in two namespaces both load."""
        return f"{self.namespace}.{self.id}"

    def loop_members(self) -> dict[str, str]:
        """Task id → id of the ForEach whose body it is in (tasks nested deeper included)."""
        from yaml2dag.tasktypes.flowable import ForEach

        members: dict[str, str] = {}
        for task in self.all_tasks():
            if isinstance(task, ForEach):
                members.update(dict.fromkeys((child.id for child in task.nested_tasks()), task.id))
        return members

    def all_tasks(self) -> list[TaskBase]:
        """Every task of the flow at any depth, in file order: main tasks, errors, finally, afterExecution.

        A flowable comes before the tasks nested in it.
        """
        from yaml2dag.tasktypes.flowable import FlowableBase

        found: list[TaskBase] = []
        for task in [*self.tasks, *self.errors, *self.finally_, *self.afterExecution]:
            found.append(task)
            if isinstance(task, FlowableBase):
                found.extend(task.nested_tasks())
        return found


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
