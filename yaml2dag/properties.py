"""Property types every model of a flow shares: base model, text, flags, durations, `rendered`.

`rendered` marks a property Kestra renders before the task runs. The lowest stage of the flow
model: flow inputs, task types and the flow import it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
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


def literal_or_expression(schema: dict[str, Any]) -> WithJsonSchema:
    """The JSON Schema of a property taking a literal matching `schema`, or an expression rendering to one.

    Put it in the `Annotated` of a type whose validator refuses more than its Python type does, so
    that editors (and the schema-driven fuzzing tests) accept exactly what validation accepts.
    """
    return WithJsonSchema({"anyOf": [schema, EXPRESSION_JSON_SCHEMA]})


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


#: Airflow stores counts (retries, concurrency limits) in 32-bit database columns, as Java's Integer.
MAX_INT32 = 2**31 - 1
#: The longest timer Airflow can set for a task's timeout (`signal.setitimer`), about 68 years; also
#: the bound on other durations Airflow adds to dates (retry waits), which overflow past year 9999.
MAX_TIMER_SECONDS = 2**31 - 1


def bounded_duration(text: str, *, positive: bool = False) -> dt.timedelta:
    """`parse_duration(text)` no longer than `MAX_TIMER_SECONDS` (and more than zero when `positive`)."""
    delta = parse_duration(text)
    if positive and delta <= dt.timedelta(0):
        raise ValueError(f"`{text}` must be a positive duration such as PT30S")
    if abs(delta.total_seconds()) > MAX_TIMER_SECONDS:
        raise ValueError(
            f"`{text}` is longer than the longest Airflow supports here ({MAX_TIMER_SECONDS} seconds, about 68 years)"
        )
    return delta


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
