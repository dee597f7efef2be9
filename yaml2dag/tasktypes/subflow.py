"""Kestra tasks that wait on something outside the task: Subflow (another flow's run) and Pause (a person)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from yaml2dag.flowinputs import SUPPORTED_INPUT_TYPES, FlowInput
from yaml2dag.tasktypes.base import DurationText, TaskBase, Text, choice, parse_duration, rendered

_OPERATORS = "yaml2dag.operators"


class Subflow(TaskBase):
    """Run another flow (the DAG `<namespace>.<flowId>`) and, by default, wait for its end."""

    TYPES: ClassVar = (
        "io.kestra.plugin.core.flow.Subflow",
        "io.kestra.core.tasks.flows.Subflow",
        "io.kestra.core.tasks.flows.Flow",
    )
    OPERATOR: ClassVar = f"{_OPERATORS}.subflow:SubflowOperator"

    namespace: Text = rendered(description="Namespace of the flow to run.")
    flowId: Text = rendered(description="Id of the flow to run; the DAG run is `<namespace>.<flowId>`.")
    inputs: dict[str, Any] = rendered(
        default_factory=dict, description="Inputs of the flow to run (rendered); checked by its input types."
    )
    wait: bool = Field(default=True, description="Wait for the run to end; false: succeed once it is created.")
    transmitFailed: bool = Field(
        default=True, description="When waiting: end FAILED / WARNING when the run does; false: always SUCCESS."
    )
    revision: int | None = Field(default=None, description="Revision of the flow to run (default: the latest).")
    labels: dict[str, Any] | list[Any] | None = Field(default=None, description="Labels of the run it creates.")
    inheritLabels: bool = Field(default=False, description="Give the run the labels of this run.")
    scheduleDate: str | None = Field(default=None, description="Start the run at this date instead of now.")
    restartBehavior: choice("RETRY_FAILED", "NEW_EXECUTION") | None = Field(  # type: ignore[valid-type]
        default=None, description="On restart: retry the failed run (RETRY_FAILED) or start a new one."
    )
    outputs: dict[str, Any] | None = Field(default=None, description="Deprecated: outputs computed from the run.")

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | frozenset(
        {"revision", "labels", "inheritLabels", "scheduleDate", "restartBehavior", "outputs"}
    )

    @property
    def target_dag_id(self) -> str:
        """The DAG id of the flow to run (the same rule as `Flow.dag_id`)."""
        return f"{self.namespace}.{self.flowId}"


def _supported_input(flow_input: FlowInput) -> FlowInput:
    # A FILE given when resuming would have to be copied into the run's storage as run inputs are.
    if flow_input.type not in SUPPORTED_INPUT_TYPES or flow_input.type == "FILE":
        raise ValueError(f"input type `{flow_input.type}` is not supported by yaml2dag yet")
    return flow_input


#: An `onResume` entry: a flow input, of a type yaml2dag supports.
ResumeInput = Annotated[FlowInput, AfterValidator(_supported_input)]


class Pause(TaskBase):
    """Pause the run until a person resumes it (Airflow's Required Actions) or `pauseDuration` elapses."""

    TYPES: ClassVar = ("io.kestra.plugin.core.flow.Pause", "io.kestra.core.tasks.flows.Pause")
    OPERATOR: ClassVar = f"{_OPERATORS}.pause:PauseOperator"

    pauseDuration: DurationText | None = rendered(
        None, description="Resume by itself after this long (ISO-8601); `behavior` then applies."
    )
    delay: DurationText | None = rendered(None, description="Deprecated alias of `pauseDuration`.")
    behavior: choice("RESUME", "WARN", "FAIL", "CANCEL") = rendered(  # type: ignore[valid-type]
        "RESUME",
        description="When pauseDuration elapses: RESUME (success), WARN (warning), FAIL, or CANCEL the run.",
    )
    onResume: list[ResumeInput] = Field(
        default_factory=list, description="Inputs asked when resuming (like flow inputs); output `onResume`."
    )
    onPause: dict[str, Any] | None = Field(default=None, description="A task run when the pause starts.")
    tasks: list[Any] | None = Field(default=None, description="Deprecated: tasks run after the resume.")
    errors: list[Any] | None = Field(default=None, description="Tasks run when the pause fails.")
    finally_: list[Any] | None = Field(default=None, alias="finally", description="Tasks run after the pause.")

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | frozenset({"onPause", "tasks", "errors", "finally_"})

    @model_validator(mode="after")
    def _one_duration(self) -> Pause:
        if self.pauseDuration is not None and self.delay is not None:
            raise ValueError("set `pauseDuration` or its deprecated alias `delay`, not both")
        return self

    def operator_arguments(self) -> dict[str, Any]:  # noqa: D102
        # `delay` is the deprecated name of `pauseDuration`: the operator reads one of them.
        arguments = super().operator_arguments()
        arguments["pauseDuration"] = arguments.pop("delay") or arguments["pauseDuration"]
        return arguments

    def timeout_arguments(self) -> dict[str, Any]:
        """`timeout` is the longest wait for a person, applied by the operator (not `execution_timeout`)."""
        return {"resume_timeout": parse_duration(self.timeout)} if self.timeout else {}


TASK_TYPES: tuple[type[TaskBase], ...] = (Subflow, Pause)
