"""A flow's typed `inputs` as data (spec §1.1): the input types and the `FlowInput` model.

Below the flow model and the task types (Pause's `onResume` entries are flow inputs too); the
checks are in `yaml2dag.inputs`, the Airflow Params in `yaml2dag.inputs.build_params`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from yaml2dag.properties import KestraModel, Text

INPUT_ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"

INPUT_TYPES = (
    "STRING", "ENUM", "SELECT", "MULTISELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME",
    "DATE", "TIME", "DURATION", "FILE", "JSON", "YAML", "URI", "SECRET", "ARRAY", "EMAIL",
)  # fmt: skip
#: Input types yaml2dag can turn into Airflow Params (a FILE input is a URI, see docs/files.md).
SUPPORTED_INPUT_TYPES = frozenset(INPUT_TYPES)


class InputDependency(KestraModel):
    """An input's `dependsOn` block."""

    inputs: list[str] = Field(default_factory=list, description="Ids of the inputs this input depends on.")
    condition: str | None = Field(default=None, description="Expression that must render true to show this input.")


class FlowInput(KestraModel):
    """One entry of `inputs` (spec §1.1); becomes an Airflow Param on the trigger form."""

    id: str = Field(pattern=INPUT_ID_PATTERN, description="Input id, read as `inputs.<id>` in expressions.")

    type: Literal[INPUT_TYPES] = Field(  # type: ignore[valid-type]
        description="Input type: how the value is parsed and checked."
    )
    description: str | None = Field(default=None, description="Help text shown with the input.")
    displayName: str | None = Field(default=None, description="Label shown instead of the id on the trigger form.")
    required: bool = Field(default=True, description="A run cannot start without a value (Kestra's default: true).")
    defaults: Any = Field(default=None, description="Value used when none is given.")
    prefill: Any = Field(
        default=None, description="Value filled into the trigger form, which the user may clear; not a default."
    )
    dependsOn: InputDependency | None = Field(default=None, description="Show this input only when others are set.")
    validator: str | None = Field(default=None, description="STRING: regular expression the whole value must match.")
    values: list[Text] | None = Field(default=None, description="ENUM, SELECT, MULTISELECT: the allowed values.")
    options: list[Text] | None = Field(default=None, description="MULTISELECT: deprecated alias of `values`.")
    expression: str | None = Field(default=None, description="SELECT, MULTISELECT: expression listing the values.")
    allowCustomValue: bool = Field(default=False, description="SELECT, MULTISELECT: accept values not listed.")
    isRadio: bool = Field(default=False, description="SELECT: show radio buttons instead of a drop-down.")
    autoSelectFirst: bool = Field(default=False, description="SELECT: default to the first value.")
    itemType: str | None = Field(default=None, description="ARRAY: type of the items (STRING, INT, FLOAT, BOOLEAN).")
    min: Any = Field(default=None, description="INT, FLOAT: smallest value allowed.")
    max: Any = Field(default=None, description="INT, FLOAT: largest value allowed.")
    after: str | None = Field(default=None, description="DATETIME, DATE, TIME: the value must be later than this.")
    before: str | None = Field(default=None, description="DATETIME, DATE, TIME: the value must be earlier than this.")
    extension: str | None = Field(default=None, description="FILE: expected file extension (deprecated).")

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset({"expression", "after", "before", "extension"})

    _scheduled_default: Any = PrivateAttr(default=None)
    _checked_at_start: bool = PrivateAttr(default=False)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_name(cls, data: Any) -> Any:
        # Kestra still reads inputs declared with the deprecated `name` instead of `id`.
        if isinstance(data, dict) and "id" not in data and "name" in data:
            data = {("id" if key == "name" else key): value for key, value in data.items()}
        return data

    @field_validator("type", "itemType", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def scheduled_default(self) -> Any:
        """The value scheduled runs give a required input without `defaults` (its Param default), or None."""
        return self._scheduled_default

    def set_scheduled_default(self, value: Any) -> None:
        """Record the value the Schedule triggers give this input (set while the flow is validated)."""
        self._scheduled_default = value

    @property
    def checked_at_start(self) -> bool:
        """True for a required input that a trigger's runs may lack.

        Its Param accepts null (so Airflow can schedule the flow); a run without a value fails at start.
        """
        return self._checked_at_start

    def set_checked_at_start(self) -> None:
        """Record that a trigger cannot give this required input (set while the flow is validated)."""
        self._checked_at_start = True
