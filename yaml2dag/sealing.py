"""SECRET inputs are stored sealed in a run's `conf`: encrypted with Airflow's Fernet key, never in clear.

Airflow stores a run's `conf` as it is given and shows it to anyone who can read the run (UI run
Details → Conf, `GET /api/v2/dags/{id}/dagRuns/{run}`). `install()` registers a SQLAlchemy
`before_flush` hook: when a DagRun is inserted — by the trigger form, the REST API, a backfill, a
Subflow (the execution API) or `yaml2dag run` — after Airflow has checked the Params and before the
row is written, each value of a Param marked `x-yaml2dag-secret` is replaced by
`yaml2dag-sealed:v1:<Fernet token>` (`[core] fernet_key`, the key Airflow encrypts Connections with),
and validators Airflow cannot check safely (`x-yaml2dag-validator`) are checked, in bounded time.
Tasks open sealed values with the same key (`unseal`). The yaml2dag Airflow plugin calls `install()`
when Airflow loads it; `yaml2dag run` calls it before `dag.test()`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

SEALED_PREFIX = "yaml2dag-sealed:v1:"
#: Param schema keys yaml2dag reads where a run is created; JSON Schema ignores them.
SECRET_MARK = "x-yaml2dag-secret"
VALIDATOR_KEY = "x-yaml2dag-validator"

_installed: list[bool] = []


def is_sealed(value: object) -> bool:
    """Whether `value` is a sealed SECRET value (`yaml2dag-sealed:v1:<token>`)."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal(value: str) -> str:
    """`value` encrypted with Airflow's Fernet key; `ValueError` when Airflow has no key (Kestra refuses too)."""
    from airflow.models.crypto import get_fernet  # where runs are created: Airflow core's configuration

    fernet = get_fernet()
    if not fernet.is_encrypted:
        raise ValueError(
            "a SECRET input needs encryption: set Airflow's [core] fernet_key (AIRFLOW__CORE__FERNET_KEY), "
            "the key Airflow encrypts Connections with"
        )
    return SEALED_PREFIX + fernet.encrypt(value.encode("utf-8")).decode("ascii")


def unseal(value: str, name: str) -> str:
    """The clear text of a sealed value of the SECRET input `name`; `ValueError` if this key cannot open it."""
    from airflow.sdk.crypto import get_fernet
    from airflow.sdk.exceptions import AirflowException
    from cryptography.fernet import InvalidToken

    try:
        return get_fernet().decrypt(value[len(SEALED_PREFIX) :].encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, AirflowException):
        raise ValueError(
            f"the SECRET input `{name}` was sealed with another Airflow fernet_key: this worker cannot open it "
            "(give every Airflow component the same [core] fernet_key; keep the old key in the list when rotating)"
        ) from None


def seal_conf(conf: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`conf` with each SECRET value sealed, after checking the validators left to yaml2dag.

    `schemas` maps Param names to their JSON Schemas. Raises `ValueError` naming the input when a value
    does not match its validator (the trigger then answers 400, as for any invalid Param).
    """
    sealed = dict(conf)
    for name, schema in schemas.items():
        value = sealed.get(name)
        if not isinstance(value, str) or is_sealed(value):
            continue
        validator = schema.get(VALIDATOR_KEY)
        if validator and not matches_validator(str(validator), value):
            shown = "the value" if schema.get(SECRET_MARK) else f"`{value}`"
            raise ValueError(f"Invalid input `{name}`: must match the validator `{validator}`: {shown} does not")
        if schema.get(SECRET_MARK) and value:
            sealed[name] = seal(value)
    return sealed


def matches_validator(validator: str, text: str) -> bool:
    """Whether `text` matches the whole `validator`, in bounded time; `ValueError` when it cannot say.

    A pattern that may backtrack without end runs in the expressions' isolated worker, with its time
    budget (`expressions.limits.ISOLATED_SECONDS`), as `split`/`replace` patterns do.
    """
    from yaml2dag.errors import RenderError
    from yaml2dag.expressions.isolation import regex_spans
    from yaml2dag.expressions.strings import is_linear

    try:
        if is_linear(validator):
            return re.fullmatch(validator, text) is not None
        return bool(regex_spans(rf"\A(?:{validator})\Z", text))
    except re.error as exc:  # reported on `validator` itself when the flow is checked
        raise ValueError(f"cannot be checked: the validator is not a regular expression ({exc})") from None
    except RenderError as exc:
        raise ValueError(f"cannot be checked against the validator `{validator}`: {exc}") from None


def install() -> None:
    """Seal SECRET inputs of every DagRun this process inserts (idempotent)."""
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    event.listen(Session, "before_flush", _seal_new_runs)
    _installed.append(True)


def _seal_new_runs(session: Any, flush_context: object, instances: object) -> None:
    """`before_flush`: seal the conf of each new DagRun whose DAG has SECRET or yaml2dag-checked inputs."""
    for instance in list(session.new):
        if type(instance).__name__ != "DagRun" or not isinstance(getattr(instance, "conf", None), dict):
            continue
        if not instance.conf:
            continue
        with session.no_autoflush:
            schemas = _checked_params(instance)
        if schemas:
            instance.conf = seal_conf(instance.conf, schemas)


def _checked_params(dag_run: Any) -> dict[str, Mapping[str, Any]]:
    """Schemas of the run's Params that yaml2dag seals or checks, read from the DAG version the run uses."""
    version = getattr(dag_run, "created_dag_version", None)
    serialized = getattr(version, "serialized_dag", None)
    if serialized is None:
        return {}
    params = serialized.dag.params
    schemas: dict[str, Mapping[str, Any]] = {}
    for name in params:
        schema = getattr(params.get_param(name), "schema", None) or {}
        if schema.get(SECRET_MARK) or schema.get(VALIDATOR_KEY):
            schemas[name] = schema
    return schemas
