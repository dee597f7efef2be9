"""Shared pieces of the flow model: the base model, durations, dynamic values and the task base."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

if TYPE_CHECKING:
    from pydantic import GetJsonSchemaHandler
    from pydantic.fields import FieldInfo

TASK_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
_DURATION = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<days>[-+]?\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>[-+]?\d+(?:\.\d+)?)H)?(?:(?P<minutes>[-+]?\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>[-+]?\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_AMOUNT = r"[-+]?[0-9]+(?:\.[0-9]+)?"
#: JSON Schema of a value Kestra renders: a string holding `{{ ... }}` or `{% ... %}`.
EXPRESSION_JSON_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"\{\{|\{%"}
#: JSON Schema of an ISO-8601 duration (the syntax `parse_duration` reads, for editors).
DURATION_JSON_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": rf"^\s*[-+]?[Pp](?:{_AMOUNT}[Dd])?(?:[Tt](?:{_AMOUNT}[Hh])?(?:{_AMOUNT}[Mm])?(?:{_AMOUNT}[Ss])?)?\s*$",
}


#: JSON Schema key marking a property Kestra renders as an expression before the task runs.
DYNAMIC_KEY = "x-kestra-dynamic"


def rendered(default: Any = ..., *, by_task: bool = False, **field: Any) -> Any:
    """Declare a task property that Kestra renders (`{{ }}`) just before the task runs.

    Takes what pydantic's `Field` takes. The mark makes the property an Airflow template field of
    the task's operator (rendered before `execute`, shown in the UI's Rendered Template tab), allows
    expressions in it at validation, and shows in the schema. `by_task`: the operator renders it
    itself, when and as often as it needs (Assert's conditions, one at a time).
    """
    extra = {**field.pop("json_schema_extra", {}), DYNAMIC_KEY: "by-task" if by_task else True}
    if default is not ...:
        field["default"] = default
    return Field(json_schema_extra=extra, **field)


def is_rendered(field: FieldInfo) -> bool:
    """Whether a property was declared with `rendered` (Kestra renders it)."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(DYNAMIC_KEY))


def is_template_field(field: FieldInfo) -> bool:
    """Whether the operator renders the property before it runs (declared `rendered`, not `by_task`)."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get(DYNAMIC_KEY) is True


class KestraModel(BaseModel):
    """Base of every flow-model class: unknown properties are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    #: Properties that parse but that yaml2dag cannot run yet: setting one is a compile error.
    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset()


def plain_data(value: Any) -> Any:
    """A property value as JSON-like data: nested models become maps (YAML names, nulls dropped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True, by_alias=True)
    if isinstance(value, list | tuple):
        return [plain_data(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_data(item) for key, item in value.items()}
    return value


def is_expression(value: Any) -> bool:
    """True for a string that Kestra would render (it contains `{{` or `{%`)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def parse_duration(text: str) -> dt.timedelta:
    """Parse an ISO-8601 duration the way Java's `Duration.parse` does (`PT1S`, `P1DT2H`, `PT0.5S`)."""
    match = _DURATION.match(text.strip())
    if not match or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"`{text}` is not an ISO-8601 duration such as PT30S, PT5M or P1D")
    parts = {name: float(value) for name, value in match.groupdict().items() if value and name != "sign"}
    try:
        delta = dt.timedelta(
            days=parts.get("days", 0),
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        )
    except OverflowError:
        raise ValueError(f"`{text}` is longer than the longest duration supported (999999999 days)") from None
    return -delta if match.group("sign") == "-" else delta


def _duration_or_expression(value: Any) -> Any:
    if is_expression(value):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 duration string such as PT30S")
    parse_duration(value)
    return value


def _choice(values: tuple[str, ...]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if is_expression(value):
            return value
        if not isinstance(value, str) or value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return value

    return check


def _string_or_string_list(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ValueError("must be a string or a list of strings")


def _scalar_string(value: Any) -> Any:
    # Kestra's dynamic string properties accept YAML scalars and read them as text, the Java way.
    if isinstance(value, bool | int | float):
        from yaml2dag.expressions.values import java_string

        return java_string(value)
    return value


class ScalarsAsText:
    """JSON Schema marker for string types that also take YAML numbers and booleans (read as text).

    Put it in the `Annotated` of such a type, after its validator: the schema becomes the string's
    own (with any pattern or length) or a number or boolean, so editors accept what yaml2dag accepts.
    """

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"anyOf": [handler(core_schema), {"type": ["number", "boolean"]}]}


#: An ISO-8601 duration, or an expression rendering to one.
DurationText = Annotated[
    str,
    AfterValidator(_duration_or_expression),
    WithJsonSchema({"anyOf": [DURATION_JSON_SCHEMA, EXPRESSION_JSON_SCHEMA]}),
]
#: A string property: YAML numbers and booleans are read as their text, as Kestra does.
Text = Annotated[str, BeforeValidator(_scalar_string), ScalarsAsText()]
#: `message`-style properties: one string or a list of strings.
TextOrTextList = Annotated[
    Any,
    AfterValidator(_string_or_string_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


def _flag(value: Any) -> Any:
    if isinstance(value, bool) or is_expression(value):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("must be true or false (or an expression rendering to one)")


def as_flag(value: Any, name: str) -> bool:
    """A rendered `Flag` property as a bool; raises ValueError naming the property otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"`{name}` rendered `{value}`: it must be true or false")
    return text == "true"


#: A boolean property: `true`/`false`, or an expression rendering to one (Kestra's `Property<Boolean>`).
Flag = Annotated[bool | str, BeforeValidator(_flag)]


def choice(*values: str) -> Any:
    """A string limited to `values` (or an expression that will render to one of them)."""
    return Annotated[
        str,
        AfterValidator(_choice(values)),
        WithJsonSchema({"anyOf": [{"enum": list(values)}, EXPRESSION_JSON_SCHEMA]}),
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
        default=None, ge=1, description="Total attempts, the first one included; without it, no limit."
    )
    maxAttempt: int | None = Field(default=None, ge=1, description="Alias of `maxAttempts`.")
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
            parse_duration(value)
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
