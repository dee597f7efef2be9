"""Redis string tasks (Set, Get, Delete, Increment, Ttl) on a real redis-server, and how they connect."""

from __future__ import annotations

import json

import pytest
from conftest import states

from docker_redis.support import SECRET, free_port

pytestmark = [pytest.mark.airflow, pytest.mark.redis]


def test_set_then_get_a_string_and_a_missing_key(run_flow, redis_server, redis_db):
    url = redis_server.url()
    result = run_flow(
        f"""
        id: strings
        namespace: tests.redis
        tasks:
          - id: set
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: "greeting_{{{{ flow.id }}}}"
            value: "hello {{{{ flow.namespace }}}}"
            serdeType: STRING
          - id: get
            type: io.kestra.plugin.redis.string.Get
            url: "{url}"
            key: "greeting_{{{{ flow.id }}}}"
          - id: missing
            type: io.kestra.plugin.redis.Get
            url: "{url}"
            key: nothing_here
          - id: check
            type: io.kestra.plugin.core.execution.Assert
            conditions:
              - "{{{{ outputs.get.data == 'hello tests.redis' }}}}"
              - "{{{{ (outputs.missing contains 'data') == false }}}}"
              - "{{{{ outputs.missing.key == 'nothing_here' }}}}"
        """
    )
    assert result.state == "success"
    assert states(result) == {"set": "success", "get": "success", "missing": "success", "check": "success"}
    assert redis_db.get("greeting_strings") == "hello tests.redis"
    assert result.tasks["set"].outputs is None
    assert result.tasks["get"].outputs == {"data": "hello tests.redis", "key": "greeting_strings"}
    assert result.tasks["missing"].outputs == {"key": "nothing_here"}
    assert f"SET greeting_strings on Redis at 127.0.0.1:{redis_server.port}/0" in result.tasks["set"].log_text()
    assert "GET nothing_here" in result.tasks["missing"].log_text()


def test_get_fails_on_a_missing_key_when_asked(run_flow, redis_server, redis_db):
    result = run_flow(
        f"""
        id: strictget
        namespace: tests.redis
        tasks:
          - id: get
            type: io.kestra.plugin.redis.string.Get
            url: "{redis_server.url()}"
            key: absent
            failedOnMissing: true
        """
    )
    assert result.state == "failed"
    assert states(result) == {"get": "failed"}
    assert "Missing keys 'absent'" in result.tasks["get"].log_text()


def test_json_serde_stores_json_and_parses_it_back(run_flow, redis_server, redis_db):
    url = redis_server.url()
    redis_db.set("not_json", "plain text")
    result = run_flow(
        f"""
        id: jsonserde
        namespace: tests.redis
        tasks:
          - id: setMap
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: map
            serdeType: JSON
            value:
              name: "{{{{ flow.id }}}}"
              tags: [x, y]
              n: 1
          - id: setText
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: text
            serdeType: JSON
            value: '{{"raw": true}}'
          - id: setPlain
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: plainmap
            value: {{a: 1}}
          - id: get
            type: io.kestra.plugin.redis.string.Get
            url: "{url}"
            key: map
            serdeType: JSON
          - id: use
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ outputs.get.data.name }}}} {{{{ outputs.get.data.tags[1] }}}} {{{{ outputs.get.data.n+1 }}}}"
        finally:
          - id: badValue
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: bad
            serdeType: JSON
            value: not json
          - id: badStored
            type: io.kestra.plugin.redis.string.Get
            url: "{url}"
            key: not_json
            serdeType: JSON
        """
    )
    assert states(result) == {
        "setMap": "success",
        "setText": "success",
        "setPlain": "success",
        "get": "success",
        "use": "success",
        "badValue": "failed",
        "badStored": "failed",
    }
    assert redis_db.get("map") == '{"name":"jsonserde","tags":["x","y"],"n":1}'
    assert redis_db.get("text") == '{"raw": true}'
    assert redis_db.get("plainmap") == '{"a":1}'
    assert result.tasks["get"].outputs["data"] == {"name": "jsonserde", "tags": ["x", "y"], "n": 1}
    assert "jsonserde y 2" in result.tasks["use"].log_text()
    assert "serdeType JSON: `not json` is not valid JSON" in result.tasks["badValue"].log_text()
    assert "serdeType JSON: stored value `plain text` is not valid JSON" in result.tasks["badStored"].log_text()
    assert redis_db.exists("bad") == 0


def test_set_with_get_outputs_the_old_value(run_flow, redis_server, redis_db):
    redis_db.set("existing", "before")
    url = redis_server.url()
    result = run_flow(
        f"""
        id: setget
        namespace: tests.redis
        tasks:
          - id: replace
            type: io.kestra.plugin.redis.Set
            url: "{url}"
            key: existing
            value: after
            get: true
          - id: fresh
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: brand_new
            value: 42
            get: "{{{{ true }}}}"
        """
    )
    assert states(result) == {"replace": "success", "fresh": "success"}
    assert result.tasks["replace"].outputs == {"oldValue": "before"}
    assert result.tasks["fresh"].outputs is None
    assert redis_db.get("existing") == "after"
    assert redis_db.get("brand_new") == "42"


def test_set_options_expire_and_guard_writes(run_flow, redis_server, redis_db):
    url = redis_server.url()
    redis_db.set("guarded", "original")
    redis_db.set("ttl_kept", "old", ex=1000)
    redis_db.set("ttl_dropped", "old", ex=1000)
    result = run_flow(
        f"""
        id: setoptions
        namespace: tests.redis
        tasks:
          - id: duration
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: expires_soon
            value: v
            options:
              expirationDuration: PT60S
          - id: date
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: expires_2099
            value: v
            options:
              expirationDate: "2099-01-01T00:00:00Z"
          - id: notExisting
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: guarded
            value: overwritten
            options:
              mustNotExist: true
          - id: existing
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: never_created
            value: v
            options:
              mustExist: true
          - id: keepTtl
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: ttl_kept
            value: new
            options:
              keepTtl: true
          - id: plain
            type: io.kestra.plugin.redis.string.Set
            url: "{url}"
            key: ttl_dropped
            value: new
        """
    )
    assert result.state == "success"
    assert 0 < redis_db.pttl("expires_soon") <= 60_000
    assert redis_db.expiretime("expires_2099") == 4_070_908_800
    assert redis_db.get("guarded") == "original"
    assert "Key guarded was not set: it already exists (mustNotExist)" in result.tasks["notExisting"].log_text()
    assert redis_db.exists("never_created") == 0
    assert "Key never_created was not set: it does not exist (mustExist)" in result.tasks["existing"].log_text()
    assert redis_db.get("ttl_kept") == "new" and 0 < redis_db.ttl("ttl_kept") <= 1000
    assert redis_db.get("ttl_dropped") == "new" and redis_db.ttl("ttl_dropped") == -1


def test_delete_counts_keys_and_can_fail_on_missing_ones(run_flow, redis_server, redis_db):
    url = redis_server.url()
    redis_db.mset({"a": "1", "b": "2"})
    result = run_flow(
        f"""
        id: deletes
        namespace: tests.redis
        tasks:
          - id: delete
            type: io.kestra.plugin.redis.string.Delete
            url: "{url}"
            keys: [a, b, c]
          - id: again
            type: io.kestra.plugin.redis.Delete
            url: "{url}"
            keys: [a]
            failedOnMissing: true
        """
    )
    assert states(result) == {"delete": "success", "again": "failed"}
    assert result.tasks["delete"].outputs == {"count": 2}
    assert "DEL a b c" in result.tasks["delete"].log_text()
    assert "Missing keys, only 0 key deleted" in result.tasks["again"].log_text()
    assert redis_db.exists("a", "b") == 0


def test_increment_and_ttl(run_flow, redis_server, redis_db):
    url = redis_server.url()
    result = run_flow(
        f"""
        id: counters
        namespace: tests.redis
        tasks:
          - id: incr
            type: io.kestra.plugin.redis.string.Increment
            url: "{url}"
            key: counter
          - id: incrBy
            type: io.kestra.plugin.redis.string.Increment
            url: "{url}"
            key: counter
            amount: 5
            options:
              expirationDuration: PT100S
          - id: incrByFloat
            type: io.kestra.plugin.redis.string.Increment
            url: "{url}"
            key: counter
            amount: 1.5
          - id: fromExpression
            type: io.kestra.plugin.redis.string.Increment
            url: "{url}"
            key: other
            amount: "{{{{ outputs.incrBy.value - 10 }}}}"
            options:
              expirationDate: "2099-01-01T00:00:00+00:00"
          - id: ttl
            type: io.kestra.plugin.redis.string.Ttl
            url: "{url}"
            key: counter
          - id: ttlMissing
            type: io.kestra.plugin.redis.string.Ttl
            url: "{url}"
            key: nothing
        """
    )
    assert result.state == "success"
    outputs = {task_id: task.outputs for task_id, task in result.tasks.items()}
    assert outputs["incr"] == {"value": 1, "key": "counter"}
    assert outputs["incrBy"] == {"value": 6, "key": "counter"}
    assert outputs["incrByFloat"] == {"value": 7.5, "key": "counter"}
    assert outputs["fromExpression"] == {"value": -4, "key": "other"}
    assert 0 < outputs["ttl"]["ttl"] <= 100 and outputs["ttl"]["key"] == "counter"
    assert outputs["ttlMissing"] == {"ttl": -2, "key": "nothing"}
    assert redis_db.get("counter") == "7.5"
    assert redis_db.expiretime("other") == 4_070_908_800


def test_password_in_the_url_is_masked_and_never_logged(run_flow, redis_secure, airflow_db):
    result = run_flow(
        f"""
        id: secret
        namespace: tests.redis
        tasks:
          - id: set
            type: io.kestra.plugin.redis.string.Set
            url: "{redis_secure.url()}"
            key: k
            value: v
          - id: get
            type: io.kestra.plugin.redis.string.Get
            url: "redis://:{{{{ '{SECRET[:4]}' ~ '{SECRET[4:]}' }}}}@127.0.0.1:{redis_secure.port}/0"
            key: k
        """
    )
    assert states(result) == {"set": "success", "get": "success"}
    assert result.tasks["get"].outputs == {"data": "v", "key": "k"}
    for task in result.tasks.values():
        assert SECRET not in task.log_text()
    for task_id in ("set", "get"):
        fields = rendered_fields(result, task_id)
        assert SECRET not in json.dumps(fields)
        # (`redis`, the seed flow's password, may be masked too when that flow ran first in this process.)
        assert fields["url"].endswith(f"://:***@127.0.0.1:{redis_secure.port}/0")


def test_a_literal_password_is_masked_even_when_the_url_cannot_be_rendered(run_flow):
    from airflow.sdk._shared.secrets_masker import redact

    result = run_flow(
        """
        id: unrenderable
        namespace: tests.redis
        tasks:
          - id: get
            type: io.kestra.plugin.redis.string.Get
            url: "redis://:Render-Fail-Pw1@{{ outputs.never.host }}:6379/0"
            key: k
          - id: never
            type: io.kestra.plugin.core.log.Log
            message: disabled, so it has no outputs and the url cannot render
            disabled: true
        """
    )
    assert states(result) == {"get": "failed"}
    assert "cannot render `url`" in result.tasks["get"].log_text()
    # The error quotes the template; Airflow's masker (which redacts real task logs) already knows the password.
    assert redact("password Render-Fail-Pw1 here") == "password *** here"


def test_wrong_or_missing_password_fails_without_leaking_it(run_flow, redis_secure):
    result = run_flow(
        f"""
        id: badauth
        namespace: tests.redis
        tasks:
          - id: wrong
            type: io.kestra.plugin.redis.string.Get
            url: "redis://:Wr0ng-Password@127.0.0.1:{redis_secure.port}/0"
            key: k
        finally:
          - id: none
            type: io.kestra.plugin.redis.string.Get
            url: "redis://127.0.0.1:{redis_secure.port}/0"
            key: k
        """
    )
    assert states(result) == {"wrong": "failed", "none": "failed"}
    wrong = result.tasks["wrong"].log_text()
    assert f"Redis at 127.0.0.1:{redis_secure.port}/0 refused the credentials" in wrong
    assert "Wr0ng-Password" not in wrong
    assert (
        f"Redis at 127.0.0.1:{redis_secure.port}/0 requires a password and none was given"
        in result.tasks["none"].log_text()
    )


def test_airflow_connection_instead_of_url(run_flow, redis_secure, monkeypatch):
    connection = {"conn_type": "redis", "host": "127.0.0.1", "port": redis_secure.port, "password": SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_Y2D_REDIS", json.dumps({**connection, "extra": {"db": 2}}))
    result = run_flow(
        """
        id: byconnection
        namespace: tests.redis
        tasks:
          - id: set
            type: io.kestra.plugin.redis.string.Set
            connId: y2d_redis
            key: via_connection
            value: "{{ flow.id }}"
        finally:
          - id: missing
            type: io.kestra.plugin.redis.string.Get
            connId: y2d_no_such_connection
            key: k
        """
    )
    assert states(result) == {"set": "success", "missing": "failed"}
    assert redis_secure.client(db=2).get("via_connection") == "byconnection"
    assert "cannot use Airflow connection `y2d_no_such_connection`" in result.tasks["missing"].log_text()
    assert SECRET not in result.tasks["set"].log_text()


def test_tls_url_and_unreachable_server(run_flow, redis_tls):
    port = free_port()
    result = run_flow(
        f"""
        id: tls
        namespace: tests.redis
        tasks:
          - id: set
            type: io.kestra.plugin.redis.string.Set
            url: "{redis_tls.url()}"
            key: over_tls
            value: secure
        finally:
          - id: nowhere
            type: io.kestra.plugin.redis.string.Get
            url: "redis://127.0.0.1:{port}/0"
            key: k
        """
    )
    assert states(result) == {"set": "success", "nowhere": "failed"}
    assert redis_tls.client().get("over_tls") == "secure"
    assert f"cannot connect to Redis at 127.0.0.1:{port}/0" in result.tasks["nowhere"].log_text()


def rendered_fields(result, task_id: str) -> dict:
    """The rendered template fields Airflow stored for a task (what the UI's Rendered tab shows)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(
            select(Rendered.rendered_fields).where(
                Rendered.dag_id == result.dag_id, Rendered.run_id == result.run_id, Rendered.task_id == task_id
            )
        )
