"""Turn loaded YAML data into a validated `Flow`, or raise every problem found, located."""

from __future__ import annotations

import copy
import difflib
import re
import typing
from collections.abc import Iterator
from typing import Any

import pydantic
from pydantic import BaseModel

from yaml2dag.defaults import apply_plugin_defaults
from yaml2dag.diagnostics import Collector
from yaml2dag.errors import ExpressionError, FlowError, FlowValidationError
from yaml2dag.expressions import needs_rendering
from yaml2dag.expressions.jinja import generate
from yaml2dag.expressions.parser import parse_template
from yaml2dag.flowables import check_flowable
from yaml2dag.inputs import check_input_list, check_inputs
from yaml2dag.loader import DocPath, format_path
from yaml2dag.model import Flow, Trigger
from yaml2dag.polling import check_polling, is_polling
from yaml2dag.references import KnownNames, unknown_references
from yaml2dag.tasktypes import KNOWN_UNSUPPORTED, TASK_TYPES, TaskBase
from yaml2dag.tasktypes.base import KestraModel, is_expression
from yaml2dag.tasktypes.flowable import FlowableBase, SlotPath, walk_task
from yaml2dag.tasktypes.subflow import Pause
from yaml2dag.triggers import check_triggers, has_schedule

TASK_BLOCKS = ("tasks", "errors", "finally", "afterExecution")
#: Airflow's limit on DAG and task ids.
AIRFLOW_ID_LENGTH = 250
_PATTERN_MESSAGES = {
    r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$": "must start with a letter or digit and use only letters, digits, `_` and `-`",
    r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$": "must start with a letter or digit and use only letters, digits, `.`, `_` and `-`",
    r"^[a-z0-9][a-z0-9._-]*$": "must be lower case: start with a letter or digit, then a-z, 0-9, `.`, `_`, `-`",
    r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$": "must start with a letter or digit and use only letters, digits, `.`, `_` and `-`",
}


def parse_flow(data: Any, filename: str = "<string>", text: str = "") -> Flow:
    """Validate loaded YAML data as a Kestra flow; raise `FlowValidationError` listing every problem."""
    collector = Collector(filename, text)
    if not isinstance(data, dict):
        collector.add((), "a flow must be a YAML mapping with `id`, `namespace` and `tasks`")
        raise FlowValidationError(collector.errors)
    data = apply_plugin_defaults(data, collector)

    task_lists: dict[str, list[TaskBase]] = {}
    #: Every task that parsed (with its children), by block and index: checked even when others did not.
    parsed: dict[str, list[tuple[int, TaskBase]]] = {}
    failed_blocks: set[str] = set()
    for block in TASK_BLOCKS:
        raw = data.get(block)
        if raw is None:
            continue
        if not isinstance(raw, list):
            collector.add((block,), f"`{block}` must be a list of tasks")
            failed_blocks.add(block)
            continue
        tasks = [_parse_task(item, (block, index), collector) for index, item in enumerate(raw)]
        parsed[block] = [(index, task) for index, task in enumerate(tasks) if task is not None]
        task_lists[block] = [task for task in tasks if task is not None]
        if len(task_lists[block]) != len(raw):
            failed_blocks.add(block)

    top_level = {key: value for key, value in data.items() if key not in failed_blocks}
    top_level.update({block: tasks for block, tasks in task_lists.items() if block not in failed_blocks})
    if "tasks" in failed_blocks:
        top_level["tasks"] = [_PLACEHOLDER_TASK]
    flow: Flow | None = None
    try:
        flow = Flow.model_validate(top_level)
    except pydantic.ValidationError as exc:
        _add_pydantic_errors(exc, (), Flow, data, collector)
        # Errors of the top-level model: the first location item is a field name.
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        flow = _flow_without(top_level, bad)
        failed_blocks.update(bad & set(TASK_BLOCKS))
        for block in bad & set(TASK_BLOCKS):
            parsed.pop(block, None)
    if flow is not None:
        # Every stage in one pass: inputs, triggers, flow properties and the tasks that parsed are
        # checked even when another task did not parse.
        _check_flow(flow, data, collector, parsed if failed_blocks else None)
    if collector.errors:
        raise FlowValidationError(_sorted_unique(collector.errors))
    assert flow is not None
    return flow


def _flow_without(top_level: dict[str, Any], bad: set[Any]) -> Flow | None:
    """The flow with its invalid top-level properties left out (reported already), to check the rest."""
    stand_ins = {"id": "placeholder", "namespace": "placeholder", "tasks": [_PLACEHOLDER_TASK]}
    rest = {key: value for key, value in top_level.items() if key not in bad}
    rest.update({key: stand_ins[key] for key in bad if key in stand_ins})
    try:
        return Flow.model_validate(rest)
    except pydantic.ValidationError:
        return None


def _sorted_unique(errors: list[FlowError]) -> list[FlowError]:
    """The errors by line and column (unlocated last), each reported once."""
    unique = list(dict.fromkeys(errors))
    return sorted(unique, key=lambda error: (error.line is None, error.line or 0, error.column or 0))


_PLACEHOLDER_TASK = TASK_TYPES["io.kestra.plugin.core.log.Log"].model_construct(id="placeholder")


def _parse_task(item: Any, path: DocPath, collector: Collector) -> TaskBase | None:
    if not isinstance(item, dict):
        collector.add(path, "a task must be a mapping with `id` and `type`")
        return None
    task_type = item.get("type")
    if not isinstance(task_type, str):
        collector.add(path, "task is missing `type`", hint="for example `type: io.kestra.plugin.core.log.Log`")
        return None
    task_class = TASK_TYPES.get(task_type)
    if task_class is None:
        collector.add((*path, "type"), *_unknown_type(task_type), prefer_key=False)
        return None
    children_ok = True
    if issubclass(task_class, FlowableBase):
        item, children_ok = _with_parsed_children(task_class, item, path, collector)
    try:
        task = task_class.model_validate(item)
    except pydantic.ValidationError as exc:
        _add_pydantic_errors(exc, tuple(path), task_class, item, collector)
        return None
    return task if children_ok else None


def _with_parsed_children(
    task_class: type[FlowableBase], item: dict[str, Any], path: DocPath, collector: Collector
) -> tuple[dict[str, Any], bool]:
    """A copy of a flowable's mapping with each child task parsed (a placeholder where one is invalid)."""
    parsed = copy.deepcopy(item)
    children_ok = True
    for slot, raw in task_class.task_slots(item):
        child = _parse_task(raw, (*path, *slot), collector)
        if child is None:
            children_ok = False
            child = _PLACEHOLDER_TASK
        container: Any = parsed
        for part in slot[:-1]:
            container = container[part]
        container[slot[-1]] = child
    return parsed, children_ok


def walk_tasks(
    flow: Flow, data: dict[str, Any], parsed: dict[str, list[tuple[int, TaskBase]]] | None = None
) -> Iterator[tuple[SlotPath, TaskBase, dict[str, Any]]]:
    """Every task of the flow at any depth, with its YAML path and raw mapping, in file order.

    `parsed` (block → (index, task)): walk these instead, when some tasks of the file did not parse.
    """
    for block in TASK_BLOCKS:
        tasks = parsed.get(block, []) if parsed is not None else list(enumerate(_block(flow, block)))
        for index, task in tasks:
            yield from walk_task((block, index), task, data[block][index])


def _unknown_type(task_type: str) -> tuple[str, str]:
    if task_type in KNOWN_UNSUPPORTED:
        hint = ""
        if task_type.startswith("io.kestra.plugin.dbt.cli."):
            command = task_type.rsplit(".", 1)[-1].lower()
            hint = f"use `io.kestra.plugin.dbt.cli.DbtCLI` with `commands: [dbt {command}]`"
        return f"task type `{task_type}` is not supported by yaml2dag yet", hint
    names = list(TASK_TYPES)
    close = difflib.get_close_matches(task_type, names, n=1, cutoff=0.85)
    if not close:
        short = task_type.rsplit(".", 1)[-1].lower()
        close = [name for name in names if name.rsplit(".", 1)[-1].lower() == short][:1]
    hint = f"did you mean `{close[0]}`?" if close else "run `yaml2dag types` to list the supported types"
    return f"unknown task type `{task_type}`", hint


def _add_pydantic_errors(
    exc: pydantic.ValidationError,
    base: tuple[str | int, ...],
    model: type[BaseModel],
    data: Any,
    collector: Collector,
) -> None:
    seen: set[str] = set()
    for error in exc.errors():
        loc = _document_loc(data, error["loc"])
        path = (*base, *loc)
        key = format_path(path)
        if key in seen:
            continue
        seen.add(key)
        kind = error["type"]
        name = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            fields = _field_names(model, loc[:-1])
            close = difflib.get_close_matches(name, fields, n=1, cutoff=0.5)
            owner = _owner_name(model, data, loc)
            hint = f"did you mean `{close[0]}`?" if close else f"known properties: {', '.join(sorted(fields))}"
            collector.add(path, f"unknown property `{name}`{owner}", hint)
        elif kind == "missing":
            collector.add(path, f"missing required property `{name}`{_owner_name(model, data, loc)}")
        elif kind == "literal_error" and isinstance(error["input"], str):
            collector.add(path, _lower_first(error["msg"]), _closest_choice(error), prefer_key=False)
        elif kind == "string_pattern_mismatch":
            pattern = error.get("ctx", {}).get("pattern", "")
            message = _PATTERN_MESSAGES.get(pattern, f"must match {pattern}")
            collector.add(path, f"invalid value `{error['input']}`: {message}", prefer_key=False)
        else:
            message = error["msg"].removeprefix("Value error, ")
            collector.add(path, _lower_first(message), prefer_key=False)


def _closest_choice(error: Any) -> str:
    """A "did you mean" hint for a value that is not one of a choice's values (`INTT` → `INT`), or ""."""
    choices = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
    given = error["input"]
    by_upper = {choice.upper(): choice for choice in choices}
    close = difflib.get_close_matches(given.upper(), list(by_upper), n=1, cutoff=0.6)
    return f"did you mean `{by_upper[close[0]]}`?" if close else ""


def _document_loc(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Keep the parts of a pydantic `loc` that exist in the document (drop union branch names)."""
    result: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and 0 <= part < len(node)
        ):
            node = node[part]
            result.append(part)
        elif last and isinstance(part, str) and not _looks_like_type_tag(part):
            result.append(part)
    return tuple(result)


def _looks_like_type_tag(part: str) -> bool:
    return part in ("str", "int", "float", "bool") or "[" in part or part.startswith(("function-", "literal"))


def _field_names(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Property names accepted at `loc` inside `model` (for 'did you mean' hints)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    if not _is_model(current):
        return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if _is_model(annotation):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _owner_name(model: type[BaseModel], data: Any, loc: tuple[str | int, ...]) -> str:
    if issubclass(model, TaskBase) and len(loc) == 1 and isinstance(data, dict):
        return f" for task type `{data.get('type')}`"
    return ""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- semantic checks ---------------------------------------------------------------------------


def _check_flow(
    flow: Flow, data: dict[str, Any], collector: Collector, parsed: dict[str, list[tuple[int, TaskBase]]] | None
) -> None:
    if len(flow.dag_id) > AIRFLOW_ID_LENGTH:
        collector.add(
            ("id",),
            f"the DAG id `<namespace>.<id>` is {len(flow.dag_id)} characters long; Airflow allows {AIRFLOW_ID_LENGTH}",
            "shorten the id or the namespace",
            prefer_key=False,
        )
    _check_unique_ids(flow, data, collector, parsed)
    _check_unsupported(flow, (), collector)
    check_inputs(flow, has_schedule(flow), collector)
    _check_unique([item.id for item in flow.inputs], "inputs", "input", collector)
    _check_unique([item.id for item in flow.triggers], "triggers", "trigger", collector)
    check_triggers(flow, collector)
    _check_polling_triggers(flow, data, collector)
    known = KnownNames.of(data, TASK_BLOCKS)
    for path, task, raw in walk_tasks(flow, data, parsed):
        _check_unsupported(task, path, collector)
        _check_fixed_durations(task, path, collector)
        _check_expressions(task, raw, path, collector, known)
        if isinstance(task, FlowableBase):
            check_flowable(task, raw, path, collector)
        if isinstance(task, Pause) and task.onResume:
            check_input_list(list(task.onResume), (*path, "onResume"), collector)


def _check_polling_triggers(flow: Flow, data: dict[str, Any], collector: Collector) -> None:
    """A polling trigger's properties are those of the task it runs on each poll: check them as that task's."""
    found = data.get("triggers")
    raw_triggers: list[Any] = found if isinstance(found, list) else []
    for index, trigger in enumerate(flow.triggers):
        if not is_polling(trigger):
            continue
        path = ("triggers", index)
        task = check_polling(trigger, path, collector, _add_pydantic_errors)
        if task is not None:
            _check_unsupported(task, path, collector)
            raw = raw_triggers[index] if index < len(raw_triggers) and isinstance(raw_triggers[index], dict) else {}
            _check_expressions(task, raw, path, collector)


def _check_fixed_durations(task: TaskBase, path: tuple[str | int, ...], collector: Collector) -> None:
    """`timeout` becomes an operator argument when the DAG is built: no expression."""
    if is_expression(task.timeout):
        collector.add(
            (*path, "timeout"),
            "`timeout` must be a fixed duration: yaml2dag sets it when the DAG is built",
            "write an ISO-8601 duration such as PT30S",
            prefer_key=False,
        )


def _block(flow: Flow, block: str) -> list[TaskBase]:
    return flow.finally_ if block == "finally" else getattr(flow, block)


def _check_unique_ids(
    flow: Flow, data: dict[str, Any], collector: Collector, parsed: dict[str, list[tuple[int, TaskBase]]] | None
) -> None:
    first_seen: dict[str, DocPath] = {}
    for path, task, _ in walk_tasks(flow, data, parsed):
        if task.id in first_seen:
            other = first_seen[task.id]
            line, _ = collector.positions.locate((*other, "id"))
            collector.add(
                (*path, "id"),
                f"duplicate task id `{task.id}` (first used at line {line}, {format_path(other)})",
                "task ids must be unique in the whole flow, nested tasks included",
                prefer_key=False,
            )
        else:
            first_seen[task.id] = path


def _check_unique(ids: list[str], block: str, kind: str, collector: Collector) -> None:
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            collector.add((block, index, "id"), f"duplicate {kind} id `{item_id}`", prefer_key=False)
        seen.add(item_id)


def _check_unsupported(model: KestraModel, path: tuple[str | int, ...], collector: Collector) -> None:
    """Refuse properties that parse but are not implemented, in `model` and its nested blocks.

    Tasks nested in a flow are checked on their own (with their own path), not from the flow.
    """
    fields = type(model).model_fields
    for name in sorted(model.model_fields_set & fields.keys()):  # not the extras of a model that allows them
        key = fields[name].alias or name
        if name in _unsupported(model):
            collector.add((*path, key), f"property `{key}` is not supported by yaml2dag yet", "remove it")
            continue
        value = getattr(model, name)
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if isinstance(item, KestraModel) and not isinstance(item, TaskBase):
                _check_unsupported(item, (*path, key) if index is None else (*path, key, index), collector)


def _unsupported(model: KestraModel) -> frozenset[str]:
    """The properties `model` cannot take; a polling trigger honours `stopAfter` (`polling.STOP_AFTER`)."""
    if isinstance(model, Trigger) and is_polling(model):
        return model.UNSUPPORTED - {"stopAfter"}
    return model.UNSUPPORTED


def _check_expressions(
    task: TaskBase,
    raw: dict[str, Any],
    path: tuple[str | int, ...],
    collector: Collector,
    known: KnownNames | None = None,
) -> None:
    """Each expression of the task's rendered properties parses, and names inputs, variables and tasks that exist.

    Without `known` (a polling trigger's properties, which see `trigger.*`) only the parsing is checked.
    """
    for name in (*task.DYNAMIC, "runIf"):
        if name in raw:
            for leaf_path, text in _string_leaves(raw[name], (*path, name)):
                if not needs_rendering(text):
                    continue
                try:
                    template = parse_template(text)
                    generate(template, text)
                except ExpressionError as exc:
                    collector.add_at(leaf_path, f"invalid expression: {exc}", _column_offset(text, exc.offset))
                    continue
                for unknown in unknown_references(template, known) if known is not None else ():
                    collector.add_at(leaf_path, unknown.message, _column_offset(text, unknown.offset), unknown.hint)


def _string_leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, (*path, key))


def _column_offset(text: str, offset: int) -> int:
    """Column shift inside a one-line value (quoted values start one column later)."""
    return offset if "\n" not in text[:offset] else 0
