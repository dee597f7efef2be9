"""Kestra's functions (`now()`, `render()`, `secret()`, `uuid()`, `errorLogs()`, ...) as one table.

Functions that need the template's variables are marked with `jinja2.pass_context`. Airflow is
imported only inside `secret()` and `kv()`, so translating a flow never loads it.
"""

from __future__ import annotations

import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from jinja2 import pass_context
from jinja2.runtime import Context

from yaml2dag.errors import RenderError
from yaml2dag.expressions.dates import DATE_PARAMS, now
from yaml2dag.expressions.files import FILE_FUNCTIONS
from yaml2dag.expressions.sequences import number_range
from yaml2dag.expressions.serialization import DATA_FUNCTIONS
from yaml2dag.expressions.values import compare, java_string

#: Context key under which the run-time information of a task is found (see `operators.context`).
RUN_INFO_KEY = "__kestra_run"
#: How deep `render()` may go before Kestra gives up.
MAX_RENDERING_AMOUNT = 100
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def variables(context: Context) -> dict[str, Any]:
    """The Kestra variables of a rendering (without yaml2dag's internal helpers)."""
    return {name: value for name, value in context.get_all().items() if not name.startswith("__k")}


def _extreme(largest: bool) -> Callable[..., Any]:
    def extreme(*items: Any) -> Any:
        if not items:
            raise RenderError(f"`{'max' if largest else 'min'}` needs at least one argument")
        best = items[0]
        for item in items[1:]:
            if compare(">" if largest else "<", item, best):
                best = item
        return best

    extreme.__doc__ = "The largest argument." if largest else "The smallest argument."
    return extreme


class NestedRenderer(Protocol):
    """What `render()` needs from the Jinja environment: `runtime.KestraEnvironment` provides it.

    Reaching the renderer through the environment keeps this module below `runtime` (no import cycle).
    """

    def render_nested(self, value: Any, values: Mapping[str, Any]) -> Any:
        """Render every string leaf of `value` with these variables."""


def _render_once(context: Context, source: Any, values: Mapping[str, Any], recursive: bool) -> Any:
    environment = cast(NestedRenderer, context.environment)
    result = environment.render_nested(source, values)
    if not recursive:
        return result
    for _ in range(MAX_RENDERING_AMOUNT):
        again = environment.render_nested(result, values)
        if again == result:
            return result
        result = again
    raise RenderError("Too many rendering attempts")


@pass_context
def render_function(context: Context, source: Any = None, recursive: Any = None) -> Any:
    """`render(str, recursive=true)`: render a string (or every string of a list/map) with the same variables."""
    if recursive is not None and not isinstance(recursive, bool):
        raise RenderError("The 'render' function expects an optional argument 'recursive' with type boolean.")
    return _render_once(context, source, variables(context), recursive is not False)


@pass_context
def render_once(context: Context, source: Any = None) -> Any:
    """`renderOnce(str)`: `render(str, recursive=false)`."""
    return _render_once(context, source, variables(context), False)


def _airflow_variable(key: str) -> str:
    from airflow.sdk import Variable

    try:
        return str(Variable.get(key))
    except Exception as exc:  # noqa: BLE001 - Airflow raises several types for a missing variable
        raise RenderError(f"Cannot find secret for key '{key}' (an Airflow Variable or secrets backend entry)") from exc


def secret(key: Any = None, namespace: Any = None, subkey: Any = None) -> str:
    """`secret('KEY', namespace?, subkey?)`: an Airflow Variable (or secrets backend entry), masked in logs."""
    if not isinstance(key, str):
        raise RenderError("The 'secret' function expects an argument 'key'.")
    value = _airflow_variable(key)
    if subkey:
        import json

        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            raise RenderError(f"Failed to read secret sub-key '{subkey}' from secret '{key}'.") from None
        if not isinstance(document, dict) or subkey not in document:
            raise RenderError(f"Cannot find secret sub-key '{subkey}' in secret '{key}'.")
        item = document[subkey]
        value = item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow is always installed with yaml2dag
        return value
    mask_secret(value)  # whatever its name: Airflow would skip names it does not find sensitive
    return value


@pass_context
def kv(context: Context, key: Any = None, namespace: Any = None, error_on_missing: Any = None) -> Any:
    """`kv('key', namespace?, errorOnMissing=true)`: a value of Kestra's KV store (`yaml2dag.kvstore`).

    Without `namespace` the flow's namespace is searched, then its parents. A key found nowhere
    falls back to a plain Airflow Variable named `key` (yaml2dag's own addition).
    """
    from yaml2dag import kvstore

    if not isinstance(key, str):
        raise RenderError("The 'kv' function expects an argument 'key'.")
    if error_on_missing is not None and not isinstance(error_on_missing, bool):
        raise RenderError("The 'kv' function expects an argument 'errorOnMissing' with type boolean.")
    flow = context.get("flow")
    flow_namespace = flow.get("namespace") if isinstance(flow, Mapping) else None
    entry = None
    try:
        if isinstance(namespace, str):
            entry = kvstore.get(namespace, key)
        elif flow_namespace:
            entry = kvstore.get_inherited(str(flow_namespace), key)
    except kvstore.KVError as exc:
        if error_on_missing is False:
            return None
        raise RenderError(str(exc)) from None
    if entry is not None:
        return entry.value
    try:
        value = _airflow_variable(key)
    except RenderError:
        if error_on_missing is False:
            return None
        where = namespace or flow_namespace or "of the flow"
        raise RenderError(f"The key '{key}' does not exist in the namespace '{where}'.") from None
    import json

    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(reversed(digits)).rjust(width, "0")


def uuid7() -> str:
    """`uuid()`: a time-ordered UUID (version 7), as Kestra generates."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def random_int(lower: Any = None, upper: Any = None) -> int:
    """`randomInt(lower, upper)`: a random integer, lower included, upper excluded."""
    if not (isinstance(lower, int) and isinstance(upper, int)) or isinstance(lower, bool) or isinstance(upper, bool):
        raise RenderError("The 'randomInt()' function expects arguments lower and upper of type Long.")
    if upper < lower:
        raise RenderError("In 'randomInt()' upper is less than lower")
    return lower if upper == lower else random.randrange(lower, upper)


def random_port() -> int:
    """`randomPort()`: a free TCP port on this machine."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


@pass_context
def current_each_output(context: Context, outputs: Any = None) -> Any:
    """`currentEachOutput(outputs.task)`: the output of the current ForEach iteration."""
    if not isinstance(outputs, Mapping):
        raise RenderError("The 'currentEachOutput' function expects an argument 'outputs' with type map.")
    parents = context.get("parents") or []
    for parent in reversed(list(parents)):
        taskrun = parent.get("taskrun") if isinstance(parent, Mapping) else None
        if isinstance(taskrun, Mapping) and isinstance(outputs, Mapping):
            outputs = outputs.get(taskrun.get("value"))
    taskrun = context.get("taskrun")
    if not isinstance(taskrun, Mapping) or "value" not in taskrun:
        raise RenderError("currentEachOutput() can only be used inside a ForEach iteration (no `taskrun.value`)")
    return outputs.get(taskrun["value"]) if isinstance(outputs, Mapping) else None


@pass_context
def error_logs(context: Context) -> list[dict[str, Any]]:
    """`errorLogs()`: the ERROR log entries of this execution (`taskId`, `message`, ...)."""
    run_info = context.get(RUN_INFO_KEY)
    return list(run_info.error_logs()) if run_info is not None else []


@pass_context
def tasks_with_state(context: Context, state: Any = None) -> list[dict[str, Any]]:
    """`tasksWithState('FAILED')`: `{taskId, state}` of each task run in that state (read from `tasks`)."""
    if state is None:
        raise RenderError("The 'tasksWithState' function expects an argument 'state'.")
    wanted = java_string(state).upper()
    tasks = context.get("tasks")
    found: list[dict[str, Any]] = []
    if not isinstance(tasks, Mapping):
        return found
    for task_id, details in tasks.items():
        if not isinstance(details, Mapping):
            continue
        for key, item in details.items():
            if key == "state" and isinstance(item, str) and item.upper() == wanted:
                found.append({"taskId": task_id, "state": item.upper()})
            elif isinstance(item, Mapping) and str(item.get("state", "")).upper() == wanted:
                found.append({"taskId": task_id, "state": wanted, "value": key})
    return found


@pass_context
def fetch_context(context: Context) -> dict[str, Any]:
    """`fetchContext()` / `printContext()`: every variable of the rendering as a map."""
    return {name: value for name, value in variables(context).items() if name != RUN_INFO_KEY}


def _friendly_id() -> str:
    return _base62(uuid.uuid4().int, 22)


def _ksuid() -> str:
    stamp = (int(time.time()) - 1_400_000_000) & 0xFFFFFFFF
    return _base62(stamp << 128 | secrets.randbits(128), 27)


#: name → (function, Pebble argument names or None for any positional arguments, required count)
FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None, int]] = {
    **DATA_FUNCTIONS,
    **FILE_FUNCTIONS,
    "currentEachOutput": (current_each_output, ("outputs",), 1),
    "errorLogs": (error_logs, (), 0),
    "fetchContext": (fetch_context, (), 0),
    "id": (_friendly_id, (), 0),
    "ksuid": (_ksuid, (), 0),
    "kv": (kv, ("key", "namespace", "errorOnMissing"), 1),
    "max": (_extreme(largest=True), None, 0),
    "min": (_extreme(largest=False), None, 0),
    "now": (now, DATE_PARAMS, 0),
    "printContext": (fetch_context, (), 0),
    "randomInt": (random_int, ("lower", "upper"), 2),
    "randomPort": (random_port, (), 0),
    "range": (number_range, ("start", "end", "increment"), 2),
    "render": (render_function, ("toRender", "recursive"), 1),
    "renderOnce": (render_once, ("toRender",), 1),
    "secret": (secret, ("key", "namespace", "subkey"), 1),
    "tasksWithState": (tasks_with_state, ("state",), 1),
    "uuid": (uuid7, (), 0),
}

#: Kestra functions that cannot work on Airflow, with the reason given at compile time.
UNSUPPORTED_FUNCTIONS = {
    "encrypt": "not supported by yaml2dag",
    "decrypt": "not supported by yaml2dag",
    "http": "make HTTP calls in a task (io.kestra.plugin.core.http.Request), not in an expression",
    "block": "template blocks are not supported",
    "parent": "template inheritance is not supported",
    "i18n": "Kestra removes the `i18n` function",
}
