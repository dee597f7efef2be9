"""The `yaml2dag` command: run, validate, compile and eval Kestra flows; list the task types; print the schema."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yaml2dag.errors import FlowError, FlowValidationError

if TYPE_CHECKING:
    from yaml2dag.inputs import ParamSpec
    from yaml2dag.plan import DagPlan, PlannedTask
    from yaml2dag.runner import LogLine, RunResult
    from yaml2dag.triggers import AssetCondition, ScheduleSpec

EXIT_SUCCESS, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
_COLOURS = {"success": "32", "warning": "33", "failed": "31", "upstream_failed": "33", "skipped": "90", "error": "31"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `yaml2dag` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:  # Ctrl-C before or after a run (a run itself handles it): no traceback
        print(file=sys.stderr)
        return 128 + signal.SIGINT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yaml2dag", description="Compile Kestra flows (YAML) into Apache Airflow 3 DAGs and run them."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run one flow on Airflow in this process",
        description="Compile FLOW and run it once on Airflow (dag.test()), printing each task's log lines "
        "and state as it ends, then a table with outputs and the error of each failed task. Exit 0 when "
        "the run succeeded, 1 when it failed, 2 when the flow does not compile or an input is invalid, "
        "130/143 when interrupted by SIGINT/SIGTERM (the running task fails; errors/finally run). "
        "Uses a throw-away AIRFLOW_HOME unless AIRFLOW_HOME is set.",
    )
    run.add_argument("flow", type=Path, help="the flow file (.yaml)")
    run.add_argument(
        "--input", "-i", action="append", default=[], metavar="NAME=VALUE", help="a flow input (repeatable)"
    )
    run.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a flow variable, e.g. --var host=127.0.0.1 (repeatable)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object with the run's result")
    run.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also show Airflow's own output; log lines and errors in full (default: one line each)",
    )
    run.set_defaults(handler=_run)

    validate = commands.add_parser(
        "validate",
        help="check flow files and folders, printing every error",
        description="Validate flow files (folders are searched for *.yaml / *.yml). Exit 1 if any error.",
    )
    validate.add_argument("paths", nargs="+", type=Path, help="flow files or folders")
    validate.add_argument("--json", action="store_true", help="print the errors as a JSON list")
    validate.set_defaults(handler=_validate)

    evaluate = commands.add_parser(
        "eval",
        help="render one expression with a context, as a task would see it",
        description='Render EXPRESSION (Kestra/Pebble syntax, e.g. "{{ inputs.name | upper }}") '
        "with the variables of --context. Exit 1 with the error message if it cannot be rendered.",
    )
    evaluate.add_argument("expression", help="the template to render")
    evaluate.add_argument("--context", type=Path, help="a JSON file with the variables (flow, inputs, outputs, ...)")
    evaluate.set_defaults(handler=_eval)

    compile_ = commands.add_parser(
        "compile",
        help="show the Airflow DAG a flow compiles to",
        description="Compile FLOW and print the DAG's structure: dag id, schedule, params and each task "
        "with its operator, trigger rule, group, teardown flag and upstream tasks. Exit 2 when the flow "
        "does not compile. Nothing runs; no database is needed.",
    )
    compile_.add_argument("flow", type=Path, help="the flow file (.yaml)")
    compile_.add_argument("--json", action="store_true", help="print the structure as one JSON object")
    compile_.set_defaults(handler=_compile)

    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of flow files, for editors",
        description="Print the JSON Schema (draft-07) of the flow format yaml2dag compiles: every supported "
        "task type with its properties, defaults and descriptions. Point your editor at it for completion "
        "and checks as you type (see docs/editors.md): yaml2dag schema > kestra-flow.schema.json",
    )
    schema.set_defaults(handler=_schema)

    types = commands.add_parser(
        "types",
        help="list the supported task types",
        description="List the task types yaml2dag compiles, one per line: the Kestra type name, its Kestra "
        "docs page, the legacy names (aliases) accepted for it and, for task types of installed packages "
        "(`yaml2dag.task_types` entry points, docs/plugins.md), the package.",
    )
    types.add_argument(
        "--json", action="store_true", help="print a JSON list of {type, aliases, summary, docs, origin}"
    )
    types.set_defaults(handler=_types)
    return parser


def _colour(text: str, state: str, stream: Any = None) -> str:
    stream = stream or sys.stdout
    if not stream.isatty() or os.environ.get("NO_COLOR"):
        return text
    return f"\033[{_COLOURS.get(state, '0')}m{text}\033[0m"


def _print_errors(errors: list[FlowError], as_json: bool) -> None:
    if as_json:
        print(json.dumps([error.to_dict() for error in errors], indent=2))
        return
    for error in errors:
        print(_colour(str(error), "error", sys.stderr), file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from yaml2dag.runner import coerce_inputs, ensure_database, prepare_airflow_home

    throw_away = "AIRFLOW_HOME" not in os.environ
    prepare_airflow_home()
    try:
        return _run_in_home(args, coerce_inputs, ensure_database)
    finally:
        if throw_away:
            shutil.rmtree(os.environ["AIRFLOW_HOME"], ignore_errors=True)


def _run_in_home(args: argparse.Namespace, coerce_inputs: Any, ensure_database: Any) -> int:
    from yaml2dag.dagfolder import override_variables
    from yaml2dag.flowfile import read_flow
    from yaml2dag.runner import run_flow

    try:
        flow = read_flow(args.flow)
        inputs = coerce_inputs(flow, dict(_split_pair("--input", item) for item in args.input))
        variables = dict(_split_pair("--var", item) for item in args.var)
        override_variables(flow, variables, str(args.flow))
    except (FlowValidationError, ValueError) as exc:
        errors = exc.errors if isinstance(exc, FlowValidationError) else [FlowError(str(exc), "command line")]
        _print_errors(errors, args.json)
        return EXIT_INVALID
    except OSError as exc:
        _print_errors([FlowError(f"cannot read file: {exc.strerror}", str(args.flow))], args.json)
        return EXIT_INVALID
    from yaml2dag.runner import quiet_console

    with quiet_console(not args.verbose):
        ensure_database()

    def task_done(task_id: str, state: str) -> None:
        if not args.json:
            print(f"{task_id:<30} {_colour(state, state)}", flush=True)

    def log_line(task_id: str, line: LogLine) -> None:
        if not args.json and line.from_task():
            print(f"{task_id:<30} {line.level:<7} {_one_line(line.message, args.verbose)}", flush=True)

    try:
        result = run_flow(
            args.flow, inputs, variables, on_task_done=task_done, on_log_line=log_line, quiet=not args.verbose
        )
    except FlowValidationError as exc:
        _print_errors(exc.errors, args.json)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        _print_table(result, args.verbose)
    if result.signum is not None:
        return 128 + result.signum
    return EXIT_SUCCESS if result.state in ("success", "warning") else EXIT_FAILED


#: The longest log line or error printed without --verbose.
_LINE_LIMIT = 300


def _one_line(text: str, verbose: bool) -> str:
    """`text` in full with --verbose; otherwise its first line, cut at _LINE_LIMIT characters, `…` marking a cut."""
    if verbose:
        return text
    first, _, rest = text.strip().partition("\n")
    if len(first) > _LINE_LIMIT or rest.strip():
        return first[:_LINE_LIMIT] + " …"
    return first


def _split_pair(option: str, item: str) -> tuple[str, str]:
    name, separator, value = item.partition("=")
    if not separator or not name:
        raise ValueError(f"{option} needs NAME=VALUE, got `{item}`")
    return name, value


def _print_table(result: RunResult, verbose: bool) -> None:
    print()
    print(f"{'TASK':<30} {'STATE':<16} OUTPUTS")
    for task_id, task in result.tasks.items():
        outputs = json.dumps(task.outputs, default=str) if task.outputs else ""
        print(f"{task_id:<30} {_colour(f'{task.state:<16}', task.state)} {outputs}".rstrip())
        if task.error:
            print(f"{'':<30} {_colour('error:', 'error')} {_one_line(task.error, verbose)}")
    interrupted = f" (interrupted by {signal.Signals(result.signum).name})" if result.signum else ""
    print(f"\n{result.dag_id}: run {_colour(result.state, result.state)} in {result.duration:.1f}s{interrupted}")


def _validate(args: argparse.Namespace) -> int:
    from yaml2dag.dagfolder import find_flow_files
    from yaml2dag.flowfile import read_flow

    errors: list[FlowError] = []
    checked = 0
    for path in args.paths:
        files = find_flow_files(path) if path.is_dir() else [path]
        for file in files:
            checked += 1
            try:
                read_flow(file)
            except FlowValidationError as exc:
                errors.extend(exc.errors)
            except OSError as exc:
                errors.append(FlowError(f"cannot read file: {exc.strerror}", str(file)))
    if args.json:
        _print_errors(errors, True)
    else:
        _print_errors(errors, False)
        bad = len({error.file for error in errors})
        print(f"{checked} file(s) checked, {bad} with errors, {len(errors)} error(s)")
    return EXIT_FAILED if errors else EXIT_SUCCESS


def _eval(args: argparse.Namespace) -> int:
    from yaml2dag.errors import RenderError
    from yaml2dag.expressions import evaluate

    context: dict[str, Any] = {}
    if args.context:
        try:
            context = json.loads(args.context.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"cannot read context {args.context}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    try:
        rendered = evaluate(args.expression, context)
    except RenderError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    # The value exactly as rendered when piped (`$(yaml2dag eval ...)` sees no added newline); on a
    # terminal always end with one, so that the shell prompt starts on its own line.
    if sys.stdout.isatty() and not rendered.endswith("\n"):
        rendered += "\n"
    try:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head -c1`): quiet, like a tool killed by SIGPIPE (exit 128 + 13).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return EXIT_SUCCESS


def _schema(args: argparse.Namespace) -> int:
    from yaml2dag.schema import flow_schema

    try:
        print(json.dumps(flow_schema(), indent=2), flush=True)
    except BrokenPipeError:
        # `yaml2dag schema | head`: the reader closed the pipe. Exit quietly with 141 (128 + SIGPIPE),
        # what a shell reports for a tool killed by SIGPIPE, so `set -o pipefail` still sees the
        # output was cut short. Point stdout at /dev/null so the interpreter's final flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return EXIT_SUCCESS


def _types(args: argparse.Namespace) -> int:
    from yaml2dag.typelist import supported_types

    found = supported_types()
    try:
        if args.json:
            print(json.dumps([item.to_dict() for item in found], indent=2), flush=True)
        else:
            for item in found:
                aliases = f"  (aliases: {', '.join(item.aliases)})" if item.aliases else ""
                origin = f"  [{item.origin}]" if item.origin != "built-in" else ""
                print(f"{item.name}  {item.docs_url}{aliases}{origin}", flush=True)
    except BrokenPipeError:  # `yaml2dag types | head`: quiet, as `schema` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return EXIT_SUCCESS


def _compile(args: argparse.Namespace) -> int:
    from yaml2dag.flowfile import read_flow
    from yaml2dag.plan import plan_flow

    try:
        flow = read_flow(args.flow)
    except FlowValidationError as exc:
        _print_errors(exc.errors, args.json)
        return EXIT_INVALID
    except OSError as exc:
        _print_errors([FlowError(f"cannot read file: {exc.strerror}", str(args.flow))], args.json)
        return EXIT_INVALID
    structure = _plan_structure(plan_flow(flow, str(args.flow)))
    if args.json:
        print(json.dumps(structure, indent=2, default=str))
    else:
        _print_structure(structure)
    return EXIT_SUCCESS


def _plan_structure(plan: DagPlan) -> dict[str, Any]:
    """What a flow's DAG is made of, as plain data (the `compile` command's output), from its plan."""
    order = {task_id: index for index, task_id in enumerate(plan.tasks)}
    children = {"child_dags": [_plan_structure(child) for child in plan.children]} if plan.children else {}
    return {
        "dag_id": plan.dag_id,
        "description": plan.description,
        "schedule": _schedule_structure(plan.schedule),
        "max_active_runs": plan.max_active_runs,
        "tags": sorted(plan.tags),
        "params": {name: _param_structure(spec) for name, spec in plan.params.items()},
        "tasks": [_task_structure(task, order) for task in plan.tasks.values()],
        **children,  # the DAGs of the ForEach nested in a ForEach body
    }


def _schedule_structure(schedule: ScheduleSpec | None) -> dict[str, Any] | None:
    if schedule is None:
        return None
    if schedule.crons and schedule.assets is not None:
        timetable = "AssetOrTimeSchedule"
    elif schedule.assets is not None:
        timetable = "AssetTriggeredTimetable"
    elif schedule.conditional:
        timetable = "KestraScheduleTimetable"
    else:
        timetable = "CronTriggerTimetable" if len(schedule.crons) == 1 else "MultipleCronTriggerTimetable"
    structure: dict[str, Any] = {"timetable": timetable}
    if schedule.conditional:  # crons with Kestra conditions
        structure.update(cron=[item["cron"] for item in schedule.conditional], timezone=schedule.timezone)
        structure["conditions"] = [
            [condition["type"].rsplit(".", 1)[-1] for condition in item["conditions"]] for item in schedule.conditional
        ]
    elif schedule.crons:
        structure.update(cron=list(schedule.crons), timezone=schedule.timezone)
    if schedule.assets is not None:
        structure["assets"] = _asset_text(schedule.assets)
    if schedule.watchers:
        structure["polling"] = [
            {"asset": watcher.uri, "trigger": watcher.kwargs["trigger_type"], "interval": watcher.kwargs["interval"]}
            for watcher in schedule.watchers
        ]
    return structure


def _asset_text(condition: AssetCondition) -> str:
    """An asset condition as text: URIs joined by `|` (any of) and `&` (all of), nested in parentheses."""
    if isinstance(condition, str):
        return condition
    kind, items = condition
    return "(" + (" | " if kind == "any" else " & ").join(_asset_text(item) for item in items) + ")"


def _param_structure(spec: ParamSpec) -> dict[str, Any]:
    result: dict[str, Any] = {"required": not spec.has_default, "schema": dict(spec.schema)}
    if spec.has_default:
        result["default"] = spec.default
    if spec.description:
        result["description"] = spec.description
    return result


def _task_structure(task: PlannedTask, order: dict[str, int]) -> dict[str, Any]:
    from yaml2dag.retries import retry_arguments_of

    retry = retry_arguments_of(task.retry) if task.retry is not None else {}
    timeout = task.arguments.get("execution_timeout")
    return {
        "task_id": task.task_id,
        "operator": task.operator.replace(":", "."),
        "kestra_type": task.arguments.get("kestra_type"),
        "trigger_rule": task.trigger_rule,
        "group": task.group,
        "teardown": task.role == "teardown",
        "fails_run": task.fails_run,
        "upstream": sorted({*task.upstream, *task.setups}, key=order.__getitem__),
        "retries": retry.get("retries", 0),
        "retry_delay": retry["retry_delay"].total_seconds() if retry.get("retries") else None,
        "execution_timeout": timeout.total_seconds() if timeout else None,
    }


def _print_structure(structure: dict[str, Any]) -> None:
    print(f"DAG {structure['dag_id']}")
    schedule = structure["schedule"]
    parts = []
    if schedule and "cron" in schedule:
        parts.append(f"{', '.join(schedule['cron'])} ({schedule['timezone'] or 'Airflow default time zone'})")
        if any(schedule.get("conditions") or []):
            parts[-1] += " when " + "; ".join(" and ".join(kinds) or "always" for kinds in schedule["conditions"])
    if schedule and "assets" in schedule:
        parts.append(f"when these flows end: {schedule['assets']}")
    for polled in (schedule or {}).get("polling") or []:
        parts.append(
            f"events of {polled['asset']}, polled every {polled['interval']:g}s by the triggerer ({polled['trigger']})"
        )
    when = "; or ".join(parts) or "none (triggered by hand)"
    print(f"  schedule:        {when}")
    print(f"  max active runs: {structure['max_active_runs'] or 'Airflow default'}")
    print(f"  tags:            {', '.join(structure['tags']) or '-'}")
    print("  params:" + ("" if structure["params"] else "          -"))
    for name, param in structure["params"].items():
        kind = param["schema"].get("type", "any")
        kind = "|".join(kind) if isinstance(kind, list) else kind
        value = "required" if param["required"] else f"default {json.dumps(param['default'], default=str)}"
        about = f" ({param['description']})" if param.get("description") else ""
        print(f"    {name}: {kind}, {value}{about}")
    rows = [("TASK", "OPERATOR", "TRIGGER RULE", "GROUP", "UPSTREAM", "")]
    for task in structure["tasks"]:
        notes = [note for flag, note in (("teardown", "teardown"), ("fails_run", "fails the run")) if task[flag]]
        if task["retries"]:
            notes.append(f"retries {task['retries']} every {task['retry_delay']:g}s")
        if task["execution_timeout"]:
            notes.append(f"timeout {task['execution_timeout']:g}s")
        operator = task["operator"].rsplit(".", 1)[-1]
        upstream = ", ".join(task["upstream"]) or "-"
        rows.append((task["task_id"], operator, task["trigger_rule"], task["group"] or "-", upstream, "; ".join(notes)))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    print(f"  tasks ({len(structure['tasks'])}):")
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print(("    " + "  ".join([*cells, row[5]])).rstrip())
    for child in structure.get("child_dags", []):  # a ForEach nested in a ForEach body: its child DAG
        print()
        _print_structure(child)


if __name__ == "__main__":
    sys.exit(main())
