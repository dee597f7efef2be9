"""The task base: the properties every Kestra task has, its `retry`, and what its operator takes.

The property types (`Text`, `Flag`, `rendered`, ...) live in `yaml2dag.properties` and are
re-exported here, where task-type modules import them from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, WithJsonSchema, field_validator

from yaml2dag.properties import (
    DURATION_JSON_SCHEMA,
    DYNAMIC_KEY,
    EXPRESSION_JSON_SCHEMA,
    MAX_INT32,
    TASK_ID_PATTERN,
    DurationText,
    Flag,
    KestraModel,
    ScalarsAsText,
    Text,
    TextOrTextList,
    as_flag,
    bounded_duration,
    choice,
    is_expression,
    is_rendered,
    is_template_field,
    literal_or_expression,
    parse_duration,
    plain_data,
    rendered,
)

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

__all__ = [
    "literal_or_expression",
    "DURATION_JSON_SCHEMA",
    "DYNAMIC_KEY",
    "DurationText",
    "EXPRESSION_JSON_SCHEMA",
    "Flag",
    "KestraModel",
    "ScalarsAsText",
    "TASK_ID_PATTERN",
    "Text",
    "TextOrTextList",
    "as_flag",
    "choice",
    "is_expression",
    "is_rendered",
    "is_template_field",
    "parse_duration",
    "plain_data",
    "rendered",
]

#: Which retry types use each type-specific property (Kestra's `Constant`, `Exponential`, `Random`).
_RETRY_PROPERTY_TYPES: dict[str, tuple[str, ...]] = {
    "interval": ("constant", "exponential"),
    "minInterval": ("random",),
    "maxInterval": ("exponential", "random"),
    "delayFactor": ("exponential",),
}
#: Durations that must be shorter than another one: (shorter, longer) by retry type, as Kestra validates them.
_RETRY_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "constant": (("interval", "maxDuration"),),
    "exponential": (("interval", "maxDuration"), ("interval", "maxInterval")),
    "random": (("minInterval", "maxDuration"), ("maxInterval", "maxDuration"), ("minInterval", "maxInterval")),
}
_FIXED_DURATION = Annotated[str, WithJsonSchema(DURATION_JSON_SCHEMA)]


class Retry(KestraModel):
    """A task or flow `retry` block: when a failed task runs again (spec §2, Kestra's `AbstractRetry`).

    The properties are checked in the order they are declared, so each check can compare with the
    properties declared above it and report the error on the property that breaks the rule.
    """

    type: Literal["constant", "exponential", "random"] = Field(
        description="Retry policy: `constant` (same wait), `exponential` (growing wait) or `random`."
    )
    interval: _FIXED_DURATION | None = Field(
        default=None,
        validate_default=True,
        description="constant/exponential: wait between two attempts, an ISO-8601 duration such as PT30S.",
    )
    minInterval: _FIXED_DURATION | None = Field(
        default=None, validate_default=True, description="random: shortest wait."
    )
    maxInterval: _FIXED_DURATION | None = Field(
        default=None, validate_default=True, description="exponential/random: longest wait."
    )
    delayFactor: float | None = Field(
        default=None,
        description="exponential: growth of the wait, read as a whole number (default 2): "
        "the n-th retry waits interval × delayFactor × (n − 1).",
    )
    maxAttempts: int | None = Field(
        default=None, ge=1, le=MAX_INT32, description="Total attempts, the first one included; without it, no limit."
    )
    maxAttempt: int | None = Field(default=None, ge=1, le=MAX_INT32, description="Alias of `maxAttempts`.")
    maxDuration: _FIXED_DURATION | None = Field(
        default=None, description="Do not retry when the next attempt would start this long after the first one."
    )
    warningOnRetry: bool = Field(default=False, description="End in WARNING when a retry was needed to succeed.")
    behavior: Literal["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"] = Field(
        default="RETRY_FAILED_TASK",
        description="Retry the failed task (`RETRY_FAILED_TASK`); `CREATE_NEW_EXECUTION` is not supported.",
    )

    @field_validator("interval", "minInterval", "maxInterval", "maxDuration")
    @classmethod
    def _fixed_duration(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A duration Kestra reads as a plain `Duration`: no expressions; then the per-type rules."""
        name = info.field_name or ""
        if value is not None:
            if is_expression(value):
                raise ValueError(f"`{name}` must be a fixed duration: Kestra does not render expressions in `retry`")
            bounded_duration(value)
        kind = info.data.get("type")
        if kind is not None:
            _check_retry_property(kind, name, value)
            _check_retry_order(kind, name, value, info.data)
        return value

    @field_validator("delayFactor")
    @classmethod
    def _exponential_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        """`delayFactor` belongs to `exponential` retries."""
        kind = info.data.get("type")
        if kind is not None:
            _check_retry_property(kind, "delayFactor", value)
        return value

    @field_validator("maxAttempt")
    @classmethod
    def _one_attempt_limit(cls, value: int | None, info: ValidationInfo) -> int | None:
        """`maxAttempt` is an alias: setting both names is ambiguous."""
        if value is not None and info.data.get("maxAttempts") is not None:
            raise ValueError("set `maxAttempts` or its alias `maxAttempt`, not both")
        return value

    @field_validator("behavior")
    @classmethod
    def _retry_failed_task_only(cls, value: str) -> str:
        """A new execution per retry has no Airflow counterpart in one DAG run."""
        if value == "CREATE_NEW_EXECUTION":
            raise ValueError(
                "retry behavior `CREATE_NEW_EXECUTION` is not supported by yaml2dag yet: "
                "use `RETRY_FAILED_TASK` (the default), which retries the failed task in the same run"
            )
        return value

    @property
    def attempts(self) -> int | None:
        """Total attempts including the first one (`maxAttempts`, alias `maxAttempt`); None: no limit."""
        return self.maxAttempts or self.maxAttempt


def _check_retry_property(kind: str, name: str, value: Any) -> None:
    """A type-specific property is required by (and only allowed on) the retry types that use it."""
    used_by = _RETRY_PROPERTY_TYPES.get(name)
    if used_by is None:
        return
    if value is None and kind in used_by and name != "delayFactor":
        raise ValueError(f"`{kind}` retry needs `{name}`")
    if value is not None and kind not in used_by:
        raise ValueError(f"`{name}` is not a property of `{kind}` retry (only of {' and '.join(used_by)})")


def _check_retry_order(kind: str, name: str, value: str | None, data: dict[str, Any]) -> None:
    """Kestra's `…RetryValidation`: e.g. `interval` must be shorter than `maxDuration` and `maxInterval`."""
    if value is None:
        return
    for shorter, longer in _RETRY_ORDER[kind]:
        other = data.get(shorter)
        if longer == name and other is not None and parse_duration(other) >= parse_duration(value):
            raise ValueError(f"`{longer}` ({value}) must be longer than `{shorter}` ({other})")


class TaskBase(KestraModel):
    """Properties every Kestra task has (spec §2)."""

    #: Kestra type names this class accepts: the current name first, then legacy aliases.
    TYPES: ClassVar[tuple[str, ...]] = ()
    #: `module:Class` of the Airflow operator that runs it, imported only when compiling a DAG.
    OPERATOR: ClassVar[str] = ""
    #: Properties Kestra renders (YAML names), derived from the `rendered` declarations.
    DYNAMIC: ClassVar[tuple[str, ...]] = ()
    #: Fields that shape the DAG (child task lists, concurrency) rather than configure the operator.
    STRUCTURAL: ClassVar[frozenset[str]] = frozenset()

    # Kestra allows 256 characters; Airflow refuses task ids longer than 250.
    id: Text = Field(
        pattern=TASK_ID_PATTERN,
        max_length=250,
        description="Task id, unique in the flow (letters, digits, `_`, `-`); outputs are read as `outputs.<id>`.",
    )
    type: str = Field(description="The task type: which Kestra task this is.")
    description: str | None = Field(default=None, description="Free text; shown as the Airflow task's docs.")
    disabled: bool = Field(default=False, description="Remove the task from the flow: it does not run at all.")
    timeout: DurationText | None = Field(
        default=None, description="Longest duration of one attempt (ISO-8601, e.g. PT10M); the attempt then fails."
    )
    retry: Retry | None = Field(default=None, description="Run the task again when it fails.")
    allowFailure: bool = Field(default=False, description="A failure of this task does not fail the flow.")
    allowWarning: bool = Field(default=False, description="A warning of this task counts as a success.")
    runIf: Text | None = Field(
        default=None, description="Expression: the task is skipped when it renders `false`, `0` or an empty string."
    )
    logLevel: choice("TRACE", "DEBUG", "INFO", "WARN", "ERROR") | None = Field(  # type: ignore[valid-type]
        default=None, description="Lowest level of the log lines kept."
    )
    logToFile: bool = Field(default=False, description="Store the task's logs in a file.")
    workerGroup: dict[str, Any] | None = Field(default=None, description="Worker group to run on (Enterprise).")
    taskCache: dict[str, Any] | None = Field(
        default=None, description="Reuse the outputs of an earlier run (`enabled`, `ttl`)."
    )
    version: str | None = Field(default=None, description="Version of the plugin to use.")

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset({"logLevel", "logToFile", "workerGroup", "taskCache", "version"})

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: str | None) -> str | None:
        """As Kestra: a timeout is more than zero; and Airflow's timer cannot run longer than about 68 years."""
        if value is not None and not is_expression(value):
            bounded_duration(value, positive=True)
        return value

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Derive `DYNAMIC` (YAML names of the rendered properties) from the declarations."""
        super().__pydantic_init_subclass__(**kwargs)
        cls.DYNAMIC = tuple(field.alias or name for name, field in cls.model_fields.items() if is_rendered(field))

    @classmethod
    def operator_properties(cls) -> dict[str, FieldInfo]:
        """The properties its operator takes: the type's own, supported, non-structural fields.

        Keys are the Python field names (`errorMessage`, `from_`): the operator's attributes.
        """
        common = TaskBase.model_fields
        return {
            name: field
            for name, field in cls.model_fields.items()
            if name not in common and name not in cls.UNSUPPORTED and name not in cls.STRUCTURAL
        }

    def operator_arguments(self) -> dict[str, Any]:
        """Keyword arguments for this task's operator: each property as plain data (maps, lists, text)."""
        return {name: plain_data(getattr(self, name)) for name in self.operator_properties()}

    def timeout_arguments(self) -> dict[str, Any]:
        """The operator's arguments for `timeout`: Airflow's `execution_timeout` ends the attempt."""
        return {"execution_timeout": parse_duration(self.timeout)} if self.timeout else {}
