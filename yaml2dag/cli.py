"""The `yaml2dag` command: run, validate and eval Kestra flows."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yaml2dag.errors import FlowError, FlowValidationError

EXIT_SUCCESS, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
_COLOURS = {"success": "32", "failed": "31", "upstream_failed": "33", "skipped": "90", "error": "31"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `yaml2dag` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yaml2dag", description="Compile Kestra flows (YAML) into Apache Airflow 3 DAGs and run them."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run one flow on Airflow in this process",
        description="Compile FLOW and run it once on Airflow (dag.test()). Exit 0 when the run "
        "succeeded, 1 when it failed, 2 when the flow does not compile or an input is invalid. "
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
    run.add_argument("--verbose", "-v", action="store_true", help="also show Airflow's own output")
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
        errors = exc.errors if isinstance(exc, FlowValidationError) else [FlowError(str(exc), str(args.flow))]
        _print_errors(errors, args.json)
        return EXIT_INVALID
    from yaml2dag.runner import quiet_console

    with quiet_console(not args.verbose):
        ensure_database()

    def task_done(task_id: str, state: str) -> None:
        if not args.json:
            print(f"{task_id:<30} {_colour(state, state)}", flush=True)

    try:
        result = run_flow(args.flow, inputs, variables, on_task_done=task_done, quiet=not args.verbose)
    except FlowValidationError as exc:
        _print_errors(exc.errors, args.json)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        _print_table(result)
    return EXIT_SUCCESS if result.state == "success" else EXIT_FAILED


def _split_pair(option: str, item: str) -> tuple[str, str]:
    name, separator, value = item.partition("=")
    if not separator or not name:
        raise ValueError(f"{option} needs NAME=VALUE, got `{item}`")
    return name, value


def _print_table(result: Any) -> None:
    print()
    print(f"{'TASK':<30} {'STATE':<16} OUTPUTS")
    for task_id, task in result.tasks.items():
        outputs = json.dumps(task.outputs, default=str) if task.outputs else ""
        print(f"{task_id:<30} {_colour(f'{task.state:<16}', task.state)} {outputs}")
    print(f"\n{result.dag_id}: run {_colour(result.state, result.state)} in {result.duration:.1f}s")


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
        sys.stdout.write(evaluate(args.expression, context))
    except RenderError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    if sys.stdout.isatty():
        sys.stdout.write("\n")
    return EXIT_SUCCESS


if __name__ == "__main__":
    sys.exit(main())
