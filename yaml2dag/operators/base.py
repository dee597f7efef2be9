"""The base of every operator that runs a Kestra task: Kestra rendering, `runIf`, outputs as XCom."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from yaml2dag.errors import RenderError, TaskFailure
from yaml2dag.expressions import is_truthy_text, render, render_value
from yaml2dag.operators.context import ERROR_XCOM_KEY, STATE_XCOM_KEY, FlowInfo, build_context


class KestraOperator(BaseOperator):
    """Runs one Kestra task. Subclasses implement `run` and list their dynamic properties.

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
    """

    template_fields: Sequence[str] = ("run_if",)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        flow: FlowInfo,
        kestra_type: str,
        run_if: str | None = None,
        allow_failure: bool = False,
        allow_warning: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow = flow
        self.kestra_type = kestra_type
        self.run_if = run_if
        self.allow_failure = allow_failure
        self.allow_warning = allow_warning
        self._kestra_context: dict[str, Any] | None = None
        self._render_failure: TaskFailure | None = None

    def kestra_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The Kestra variables of this attempt (built once, then reused)."""
        if self._kestra_context is None:
            self._kestra_context = build_context(self.flow, self.task_id, self.kestra_type, context)
        return self._kestra_context

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render the dynamic properties with Kestra's expression language.

        A property that cannot be rendered fails the task when it executes, so that `allowFailure`
        applies to it as to any other failure.
        """
        self._kestra_context = None
        self._render_failure = None
        variables = self.kestra_context(context)
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

        try:
            if self._render_failure is not None:
                raise self._render_failure
            if self.run_if is not None and not is_truthy_text(self.run_if):
                raise AirflowSkipException(f"runIf rendered `{self.run_if}`: task skipped")
            return _without_nulls(self.run(context))
        except AirflowSkipException:
            raise
        except Exception as exc:
            _record_error(context, exc)
            if self.allow_failure and _last_attempt(context, self.retries):
                return self._allowed_failure(context, exc)
            raise

    def _allowed_failure(self, context: Any, error: Exception) -> None:
        state = "SUCCESS" if self.allow_warning else "WARNING"
        self.log.warning(
            "Task failed (%s: %s), but allowFailure is set: it ends %s and the flow goes on",
            type(error).__name__,
            error,
            state,
        )
        if state == "WARNING":
            context["ti"].xcom_push(key=STATE_XCOM_KEY, value=state)

    def run(self, context: Any) -> dict[str, Any] | None:
        """Do the task's work; return its outputs (`outputs.<taskId>.<field>`) or None."""
        raise NotImplementedError


def _last_attempt(context: Any, retries: int | None) -> bool:
    return int(context["ti"].try_number or 1) > int(retries or 0)


def _record_error(context: Any, error: BaseException) -> None:
    """Keep a failure's message where `errorLogs()` in `errors` tasks can read it."""
    # Reporting must never hide the task's own error.
    with contextlib.suppress(Exception):
        context["ti"].xcom_push(key=ERROR_XCOM_KEY, value=str(error))


def _without_nulls(outputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """Kestra drops null output fields, so they read as undefined, not null."""
    if not outputs:
        return None
    cleaned = {key: value for key, value in outputs.items() if value is not None}
    return cleaned or None
