"""Every registered task type is declared once: its operator, schema and validation all derive from it."""

from __future__ import annotations

import importlib

import pytest

from yaml2dag.operators.base import KestraOperator
from yaml2dag.schema import flow_schema
from yaml2dag.tasktypes import TASK_TYPES
from yaml2dag.tasktypes.base import DYNAMIC_KEY, TaskBase, is_rendered, is_template_field
from yaml2dag.tasktypes.flowable import FlowableBase

DECLARATIONS = sorted(set(TASK_TYPES.values()), key=lambda task_type: task_type.__name__)


def operator_of(task_type: type[TaskBase]) -> type[KestraOperator]:
    module_name, class_name = task_type.OPERATOR.split(":")
    return getattr(importlib.import_module(module_name), class_name)


@pytest.fixture(scope="module")
def schema() -> dict:
    return flow_schema()


@pytest.mark.parametrize("task_type", DECLARATIONS, ids=lambda task_type: task_type.TYPES[0])
def test_operator_takes_exactly_the_declared_properties(task_type):
    operator = operator_of(task_type)
    declared = task_type.operator_properties()
    if operator.declaration is not None:
        assert issubclass(task_type, operator.declaration)
    own = {name: required for name, required in operator.kestra_properties.items() if name not in declared}
    # What the operator takes beyond the declaration are its own arguments, never a Kestra property again.
    assert not set(own) & set(TaskBase.model_fields)
    assert {name: operator.kestra_properties[name] for name in declared} == {
        name: field.is_required() for name, field in declared.items()
    }
    rendered = [name for name, field in declared.items() if is_template_field(field)]
    assert [name for name in operator.template_fields if name in declared] == rendered


@pytest.mark.parametrize("task_type", DECLARATIONS, ids=lambda task_type: task_type.TYPES[0])
def test_schema_has_every_declared_property_and_marks_the_rendered_ones(task_type, schema):
    definition = next(
        item
        for item in schema["definitions"].values()
        if item.get("properties", {}).get("type", {}).get("enum")
        and set(item["properties"]["type"]["enum"]) == set(task_type.TYPES)
    )
    properties = definition["properties"]
    for name, field in task_type.model_fields.items():
        key = field.alias or name
        assert key in properties, key
        if name in task_type.UNSUPPORTED:
            assert properties[key].get("doNotSuggest") is True
        elif is_rendered(field):
            assert properties[key].get(DYNAMIC_KEY), key
    assert sorted(task_type.DYNAMIC) == sorted(
        field.alias or name for name, field in task_type.model_fields.items() if is_rendered(field)
    )


@pytest.mark.parametrize("task_type", DECLARATIONS, ids=lambda task_type: task_type.TYPES[0])
def test_operator_arguments_are_plain_data_under_the_operator_names(task_type):
    operator = operator_of(task_type)
    structural = set(task_type.STRUCTURAL) if issubclass(task_type, FlowableBase) else set()
    assert not structural & set(operator.kestra_properties)
    for name in task_type.operator_properties():
        assert name in operator.kestra_properties


def test_a_property_named_like_a_base_operator_attribute_is_refused():
    from pydantic import Field

    class Clash(TaskBase):
        TYPES = ("test.Clash",)
        retries: int = Field(default=0)

    with pytest.raises(TypeError, match="retries, which BaseOperator already has"):

        class ClashOperator(KestraOperator, task_type=Clash):
            pass
