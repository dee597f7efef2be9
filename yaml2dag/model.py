"""The flow top level: inputs, triggers, labels, plugin defaults and the task lists (spec §1)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from yaml2dag.tasktypes import TaskBase
from yaml2dag.tasktypes.base import DurationText, KestraModel, Retry, Text

FLOW_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
INPUT_ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"
TRIGGER_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
RESERVED_FLOW_IDS = frozenset(
    {"pause", "resume", "force-run", "change-status", "kill", "executions", "search", "source", "disable", "enable"}
)

INPUT_TYPES = (
    "STRING", "ENUM", "SELECT", "MULTISELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME",
    "DATE", "TIME", "DURATION", "FILE", "JSON", "YAML", "URI", "SECRET", "ARRAY", "EMAIL",
)  # fmt: skip
#: Input types yaml2dag can turn into Airflow Params today.
SUPPORTED_INPUT_TYPES = frozenset(INPUT_TYPES) - {"FILE", "SECRET", "YAML"}

SCHEDULE_TYPES = ("io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule")


class InputDependency(KestraModel):
    """An input's `dependsOn` block."""

    inputs: list[str] = Field(default_factory=list)
    condition: str | None = None


class FlowInput(KestraModel):
    """One entry of `inputs` (spec §1.1); becomes an Airflow Param on the trigger form."""

    id: str = Field(pattern=INPUT_ID_PATTERN)
    type: Literal[INPUT_TYPES]  # type: ignore[valid-type]
    description: str | None = None
    displayName: str | None = None
    required: bool = True
    defaults: Any = None
    prefill: Any = None
    dependsOn: InputDependency | None = None
    validator: str | None = None
    values: list[Any] | None = None
    options: list[Any] | None = None
    expression: str | None = None
    allowCustomValue: bool = False
    isRadio: bool = False
    autoSelectFirst: bool = False
    itemType: str | None = None
    min: Any = None
    max: Any = None
    after: str | None = None
    before: str | None = None
    extension: str | None = None

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset(
        {"prefill", "dependsOn", "expression", "allowCustomValue", "after", "before", "extension"}
    )

    @field_validator("type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Trigger(KestraModel):
    """One entry of `triggers`; Schedule is compiled to an Airflow timetable."""

    model_config = KestraModel.model_config | {"extra": "allow"}

    id: str = Field(pattern=TRIGGER_ID_PATTERN)
    type: str
    description: str | None = None
    disabled: bool = False
    cron: str | None = None
    timezone: str | None = None
    withSeconds: bool = False
    inputs: dict[str, Any] | None = None
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = None
    conditions: list[Any] | None = None
    stopAfter: list[str] | None = None
    lateMaximumDelay: DurationText | None = None

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset(
        {"inputs", "conditions", "stopAfter", "lateMaximumDelay", "withSeconds", "recoverMissedSchedules"}
    )


class PluginDefault(KestraModel):
    """One entry of `pluginDefaults` (alias `taskDefaults`)."""

    type: str
    forced: bool = False
    values: dict[str, Any] = Field(default_factory=dict)


class Concurrency(KestraModel):
    """The flow's `concurrency` block: at most `limit` runs at once."""

    limit: int = Field(ge=1)
    behavior: Literal["QUEUE", "CANCEL", "FAIL"] = "QUEUE"


class FlowOutput(KestraModel):
    """One entry of the flow-level `outputs`."""

    id: str = Field(pattern=INPUT_ID_PATTERN)
    type: str
    value: Any = None
    description: str | None = None
    displayName: str | None = None
    required: bool = True


class Flow(KestraModel):
    """A whole Kestra flow, validated. Task lists hold typed task models."""

    id: Text = Field(pattern=FLOW_ID_PATTERN, min_length=1, max_length=100)
    namespace: Text = Field(pattern=NAMESPACE_PATTERN, min_length=1, max_length=150)
    revision: int | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    inputs: list[FlowInput] = Field(default_factory=list)
    tasks: list[TaskBase] = Field(min_length=1)
    errors: list[TaskBase] = Field(default_factory=list)
    finally_: list[TaskBase] = Field(default_factory=list, alias="finally")
    afterExecution: list[Any] = Field(default_factory=list)
    listeners: list[Any] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    pluginDefaults: list[PluginDefault] = Field(default_factory=list)
    taskDefaults: list[PluginDefault] = Field(default_factory=list)
    disabled: bool = False
    retry: Retry | None = None
    concurrency: Concurrency | None = None
    outputs: list[FlowOutput] = Field(default_factory=list)
    sla: list[Any] = Field(default_factory=list)
    checks: list[Any] = Field(default_factory=list)
    workerGroup: dict[str, Any] | None = None
    tenantId: str | None = None
    deleted: bool = False

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset(
        {
            "afterExecution",
            "listeners",
            "pluginDefaults",
            "taskDefaults",
            "disabled",
            "retry",
            "outputs",
            "sla",
            "checks",
            "workerGroup",
            "tenantId",
            "deleted",
        }
    )

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
                if str(key).startswith("system."):
                    raise ValueError(f"label key `{key}` is reserved: keys may not start with `system.`")
            return {str(key): "" if item is None else _label_text(item) for key, item in value.items()}
        return value

    @property
    def dag_id(self) -> str:
        """The Airflow DAG id: `<namespace>.<id>`, so equal ids in two namespaces both load."""
        return f"{self.namespace}.{self.id}"

    def all_tasks(self) -> list[TaskBase]:
        """Every task of the flow, in file order: main tasks, errors, finally."""
        return [*self.tasks, *self.errors, *self.finally_]


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
