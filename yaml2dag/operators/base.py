"""The base of every operator that runs a Kestra task: Kestra rendering, `runIf`, outputs as XCom."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from yaml2dag.errors import RenderError, TaskFailure
from yaml2dag.expressions import is_truthy_text, render, render_value
from yaml2dag.operators.context import FlowInfo, build_context
from yaml2dag.states import ERROR_XCOM_KEY, STATE_XCOM_KEY, KestraState

if TYPE_CHECKING:
    from yaml2dag.tasktypes.base import TaskBase

_NO_DEFAULT = object()


class KestraOperator(BaseOperator):
    """Runs one Kestra task. Subclasses name their task type and implement `run`.

    A subclass names the declaration of its task type (`class LogOperator(KestraOperator,
    task_type=Log)`) and defines no `__init__`: this one takes the declared properties as keyword
    arguments, under their Python field names. (Airflow merges the DAG's defaults and params again for every `__init__`
    in an operator's class chain, which is most of an operator's build time on every parse.)

    Properties named in `template_fields` are rendered with Kestra's expression language
    (not Airflow's Jinja context) just before the attempt runs, so the Airflow UI's "Rendered
    Template" tab shows what the task really used.

    :param flow: what the task knows about its flow (id, namespace, variables, task ids).
    :param kestra_type: the Kestra type name the task was written with.
    :param run_if: Kestra `runIf`: the task is skipped when it renders false, `0`, `-0` or empty.
    :param allow_failure: Kestra `allowFailure`: when the last attempt fails the task ends WARNING —
        in Airflow it succeeds (so the flow goes on and `errors` do not run), logs a warning and
        records XCom `kestra_state` = `WARNING`.
    :param allow_warning: Kestra `allowWarning`: a WARNING ends SUCCESS instead.
    :param warning_on_retry: Kestra `retry.warningOnRetry`: a success after a retry ends WARNING
        (XCom `kestra_state`), as `allowFailure` does. When and whether a failed attempt runs again
        is decided by `retry_policy` (a `yaml2dag.retries.KestraRetryPolicy`, see that module).
    :param loop_task_id: inside a ForEach, the task holding the loop's values (`taskrun.value`).
    :param loop_child: a direct child of that ForEach (its `parent` is the ForEach's own task run).
    :param errors_of: for the first task of an `errors` block, the tasks of its scope: the block
        runs only when one of them really failed (not when the scope never started).
    """

    #: The declaration of the task type this operator runs (None for the flowable helpers).
    declaration: ClassVar[type[TaskBase] | None] = None
    #: The operator's arguments beyond the common ones (name → required): the task type's
    #: properties, then the operator's own annotated class attributes.
    kestra_properties: ClassVar[dict[str, bool]] = {}
    template_fields: Sequence[str] = ("run_if",)
    ui_color = "#e8f0fe"
    # Defaults live on the class: BaseOperator's __setattr__ is costly and most tasks keep them
    # (thousands of operators are built on every parse of a DAG folder).
    run_if: str | None = None
    allow_failure: bool = False
    allow_warning: bool = False
    warning_on_retry: bool = False
    loop_task_id: str | None = None
    loop_child: bool = False
    errors_of: list[str] | None = None
    _kestra_context: dict[str, Any] | None = None
    _render_failure: TaskFailure | None = None

    def __init__(
        self,
        *,
        flow: FlowInfo,
        kestra_type: str,
        run_if: str | None = None,
        allow_failure: bool = False,
        allow_warning: bool = False,
        warning_on_retry: bool = False,
        loop_task_id: str | None = None,
        loop_child: bool = False,
        errors_of: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        properties = {name: kwargs.pop(name) for name in self.kestra_properties if name in kwargs}
        missing = [name for name, required in self.kestra_properties.items() if required and name not in properties]
        if missing:
            raise TypeError(f"{type(self).__name__} needs the keyword argument(s) {', '.join(missing)}")
        super().__init__(**kwargs)
        self.flow = flow
        self.kestra_type = kestra_type
        properties.update(
            run_if=run_if,
            allow_failure=allow_failure,
            allow_warning=allow_warning,
            warning_on_retry=warning_on_retry,
            loop_task_id=loop_task_id,
            loop_child=loop_child,
            errors_of=errors_of,
        )
        for name, value in properties.items():
            if value != getattr(type(self), name, _NO_DEFAULT):
                setattr(self, name, value)

    def __init_subclass__(cls, task_type: type[TaskBase] | None = None, **kwargs: Any) -> None:
        """Take the properties of the task type the subclass runs; refuse an `__init__`.

        `class LogOperator(KestraOperator, task_type=Log)`: each property declared on `Log` becomes
        a keyword argument and an attribute of the same name (its default on the class), and the
        properties declared `rendered` become template fields. Annotated class attributes of the
        operator add arguments of its own (not Kestra properties, e.g. Pause's `resume_timeout`).
        """
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            raise TypeError(f"{cls.__name__} defines __init__: declare its properties on its task type instead")
        if task_type is not None:
            _take_declaration(cls, task_type)
        chain = [klass for klass in reversed(cls.__mro__) if issubclass(klass, KestraOperator)][1:]
        properties = {name: required for name, required in cls.kestra_properties.items()}
        for klass in chain:
            for name, annotation in vars(klass).get("__annotations__", {}).items():
                if not name.startswith("_") and "ClassVar" not in str(annotation):
                    properties[name] = not any(name in vars(owner) for owner in chain)
        cls.kestra_properties = properties

    if TYPE_CHECKING:
        # The task type's properties are set from its declaration (see `__init_subclass__`);
        # their types are the declaration's, checked when the flow is validated.
        def __getattr__(self, name: str) -> Any: ...

    def kestra_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The Kestra variables of this attempt (built once, then reused)."""
        if self._kestra_context is None:
            self._kestra_context = build_context(
                self.flow,
                self.task_id,
                self.kestra_type,
                context,
                loop_task_id=self.loop_task_id,
                loop_child=self.loop_child,
            )
        return self._kestra_context

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render the dynamic properties with Kestra's expression language.

        A property that cannot be rendered fails the task when it executes, so that `allowFailure`
        applies to it as to any other failure.
        """
        self._kestra_context = None
        self._render_failure = None
        try:
            variables = self.kestra_context(context)
        except TaskFailure as exc:  # the run's inputs cannot be read (a required one is missing)
            self._render_failure = exc
            return
        for name in self.template_fields:
            value = getattr(self, name)
            if value is None:
                continue
            try:
                setattr(self, name, render_value(value, variables))
            except RenderError as exc:
                self._render_failure = TaskFailure(f"cannot render `{name}`: {exc}")
                return

    def render(self, text: str, context: Mapping[str, Any]) -> str:
        """Render one more expression at run time (for properties rendered lazily)."""
        return render(text, self.kestra_context(context))

    def execute(self, context: Any) -> Any:
        """Apply `runIf`, run the task, and return its non-null outputs (pushed as XCom).

        A failure's message is also pushed (XCom `kestra_error`) for Kestra's `errorLogs()`.
        """
        from airflow.sdk.exceptions import AirflowSkipException

        def attempt() -> Any:
            if policy is not None:
                policy.start_attempt(context)
            if self.errors_of and not _any_failed(context, self.errors_of):
                raise AirflowSkipException("no task of this scope failed (it never started): errors skipped")
            if self._render_failure is not None:
                raise self._render_failure
            if self.run_if is not None and not is_truthy_text(self.run_if):
                raise AirflowSkipException(f"runIf rendered `{self.run_if}`: task skipped")
            return self.run(context)

        policy = self._kestra_retry_policy()
        outputs = redacted(self.run_guarded(context, attempt))
        if policy is not None:
            policy.finish(context)
        if self.warning_on_retry and int(context["ti"].try_number or 1) > 1 and not self.allow_warning:
            self.log.warning("Task succeeded after a retry and retry.warningOnRetry is set: it ends WARNING")
            context["ti"].xcom_push(key=STATE_XCOM_KEY, value=KestraState.WARNING.value)
        return outputs

    def run_guarded(self, context: Any, work: Callable[[], dict[str, Any] | None]) -> Any:
        """Run `work` (the task's own work, also after a deferral) with Kestra's failure rules.

        Its non-null outputs are returned; a failure is recorded for `errorLogs()` and, on the
        last attempt, `allowFailure` turns it into WARNING — except an `AirflowFailException`,
        which stops the task whatever `allowFailure` says (Pause's CANCEL).
        """
        from airflow.sdk.exceptions import (
            AirflowFailException,
            AirflowSkipException,
            AirflowTaskTimeout,
            DownstreamTasksSkipped,
        )

        try:
            return _without_nulls(work())
        except (AirflowSkipException, DownstreamTasksSkipped):
            raise
        except AirflowFailException as exc:
            _record_error(context, exc)
            raise
        except AirflowTaskTimeout:
            # `timeout` ended the attempt (Kestra: FAILED); with `allowFailure` the last attempt ends WARNING.
            failure = TaskFailure(f"Timeout after {self.execution_timeout} (the task's `timeout`)")
            _record_error(context, failure)
            if self._will_retry(context) or not self.allow_failure:
                raise
            self.on_kill()  # what Airflow does for a timed-out task: stop its container, process, ...
            return self._allowed_failure(context, failure)
        except Exception as exc:
            safe = _without_secrets(exc)
            _record_error(context, safe)
            if not self._will_retry(context) and self.allow_failure:
                return self._allowed_failure(context, safe)
            if safe is not exc:
                raise safe from None
            raise

    def _kestra_retry_policy(self) -> Any:
        """The task's `KestraRetryPolicy`, or None (no `retry`)."""
        from yaml2dag.retries import KestraRetryPolicy

        policy = getattr(self, "retry_policy", None)
        return policy if isinstance(policy, KestraRetryPolicy) else None

    def _will_retry(self, context: Any) -> bool:
        """Whether this failed attempt runs again (Kestra's decision when the task has a `retry`)."""
        policy = self._kestra_retry_policy()
        if policy is None:
            return not _last_attempt(context, self.retries)
        wait = policy.next_delay(context)
        self.log.info("%s", policy.describe(int(context["ti"].try_number or 1), wait))
        return wait is not None

    def _allowed_failure(self, context: Any, error: Exception) -> None:
        state = KestraState.SUCCESS if self.allow_warning else KestraState.WARNING
        self.log.warning(
            "Task failed (%s: %s), but allowFailure is set: it ends %s and the flow goes on",
            type(error).__name__,
            error,
            state,
        )
        if state is KestraState.WARNING:
            context["ti"].xcom_push(key=STATE_XCOM_KEY, value=state.value)

    def run(self, context: Any) -> dict[str, Any] | list[str] | None:
        """Do the task's work; return its outputs (`outputs.<taskId>.<field>`) or None.

        (A ForEach's start returns its values: the list its body is mapped over.)
        """
        raise NotImplementedError


def _take_declaration(operator: type[KestraOperator], task_type: type[TaskBase]) -> None:
    """Give `operator` the properties of `task_type`: arguments, class defaults, template fields."""
    from yaml2dag.tasktypes.base import is_template_field, plain_data

    properties = task_type.operator_properties()
    clashes = sorted(name for name in properties if hasattr(BaseOperator, name))
    if clashes:
        raise TypeError(
            f"{task_type.__name__} declares {', '.join(clashes)}, which BaseOperator already has: "
            "give the field another Python name and the Kestra name as its alias"
        )
    for name, field in properties.items():
        if not field.is_required() and name not in vars(operator):
            setattr(operator, name, plain_data(field.get_default(call_default_factory=True)))
    operator.declaration = task_type
    operator.kestra_properties = {name: field.is_required() for name, field in properties.items()}
    rendered = tuple(name for name, field in properties.items() if is_template_field(field))
    operator.template_fields = tuple(dict.fromkeys((*operator.template_fields, *rendered)))


def _any_failed(context: Any, task_ids: list[str]) -> bool:
    """True when one of `task_ids` (or a map index of one) ended FAILED in this run."""
    task_instance = context["ti"]
    run_id = context["dag_run"].run_id
    states = task_instance.get_task_states(dag_id=task_instance.dag_id, run_ids=[run_id], task_ids=task_ids)
    return any(str(state) == "failed" for state in states.get(run_id, {}).values())


def _last_attempt(context: Any, retries: int | None) -> bool:
    return int(context["ti"].try_number or 1) > int(retries or 0)


def _record_error(context: Any, error: BaseException) -> None:
    """Keep a failure's message (secrets masked) where `errorLogs()` in `errors` tasks can read it."""
    # Reporting must never hide the task's own error.
    with contextlib.suppress(Exception):
        context["ti"].xcom_push(key=ERROR_XCOM_KEY, value=redacted(str(error)))


def _without_secrets(error: Exception) -> Exception:
    """`error`, or a TaskFailure with its message masked when the message holds a secret.

    The task log shows the exception's message; raising the masked one keeps secrets out of
    it whatever Airflow's log handlers do with exceptions.
    """
    message = str(error)
    masked = redacted(message)
    return error if masked == message else TaskFailure(masked)


def redacted(value: Any) -> Any:
    """`value` with every secret the task has seen (SECRET inputs, `secret()`, passwords) replaced by `***`.

    Applied to what a task stores (outputs, error messages): Airflow masks logs and rendered fields,
    not XCom values, which the UI, the REST API and the metadata database show as they are.
    """
    from airflow.sdk.log import redact

    return redact(value) if value is not None else None


def _without_nulls(outputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """Kestra drops null output fields, so they read as undefined, not null."""
    if not isinstance(outputs, dict):
        return outputs
    if not outputs:
        return None
    cleaned = {key: value for key, value in outputs.items() if value is not None}
    return cleaned or None
