"""Redis list (ListPush, ListPop) and pub/sub (Publish) tasks on a real redis-server."""

from __future__ import annotations

import json
import time

import pytest
from conftest import states

from docker_redis.support import wait_for

pytestmark = [pytest.mark.airflow, pytest.mark.redis]


def test_list_push_then_pop_in_batches(run_flow, redis_server, redis_db):
    url = redis_server.url()
    result = run_flow(
        f"""
        id: lists
        namespace: tests.redis
        tasks:
          - id: push
            type: io.kestra.plugin.redis.list.ListPush
            url: "{url}"
            key: queue
            from: [a, b, "{{{{ 'c' }}}}", d, e]
            batchSize: 2
          - id: pop
            type: io.kestra.plugin.redis.list.ListPop
            url: "{url}"
            key: queue
            count: 2
            maxRecords: 3
          - id: use
            type: io.kestra.plugin.core.log.Log
            message: "first={{{{ outputs.pop.items[0] }}}} count={{{{ outputs.pop.count }}}}"
        """
    )
    assert states(result) == {"push": "success", "pop": "success", "use": "success"}
    assert result.tasks["push"].outputs == {"count": 5}
    # LPUSH puts each value at the head; maxRecords is checked after each batch of `count`, as in Kestra.
    assert result.tasks["pop"].outputs == {"count": 4, "items": ["e", "d", "c", "b"]}
    assert redis_db.lrange("queue", 0, -1) == ["a"]
    assert "first=e count=4" in result.tasks["use"].log_text()


def test_json_lists_round_trip_through_a_pop_and_a_push(run_flow, redis_server, redis_db):
    url = redis_server.url()
    result = run_flow(
        f"""
        id: jsonlists
        namespace: tests.redis
        tasks:
          - id: push
            type: io.kestra.plugin.redis.ListPush
            url: "{url}"
            key: source
            serdeType: JSON
            from: '[{{"k": 1}}, [2, 3], 4]'
          - id: pop
            type: io.kestra.plugin.redis.ListPop
            url: "{url}"
            key: source
            serdeType: JSON
            maxRecords: 10
          - id: copy
            type: io.kestra.plugin.redis.list.ListPush
            url: "{url}"
            key: copy
            serdeType: JSON
            from: "{{{{ outputs.pop.items }}}}"
        """
    )
    assert states(result) == {"push": "success", "pop": "success", "copy": "success"}
    assert result.tasks["pop"].outputs == {"count": 3, "items": [4, [2, 3], {"k": 1}]}
    assert result.tasks["copy"].outputs == {"count": 3}
    assert [json.loads(item) for item in redis_db.lrange("copy", 0, -1)] == [{"k": 1}, [2, 3], 4]
    assert redis_db.exists("source") == 0


def test_list_pop_on_an_empty_list_returns_at_once(run_flow, redis_server, redis_db):
    started = time.monotonic()
    result = run_flow(
        f"""
        id: emptypop
        namespace: tests.redis
        tasks:
          - id: pop
            type: io.kestra.plugin.redis.list.ListPop
            url: "{redis_server.url()}"
            key: nothing
            maxDuration: PT60S
        """
    )
    assert states(result) == {"pop": "success"}
    assert result.tasks["pop"].outputs == {"count": 0, "items": []}
    assert time.monotonic() - started < 30


def test_list_push_refuses_a_string_that_is_not_a_json_list(run_flow, redis_server, redis_db):
    result = run_flow(
        f"""
        id: badfrom
        namespace: tests.redis
        tasks:
          - id: push
            type: io.kestra.plugin.redis.list.ListPush
            url: "{redis_server.url()}"
            key: k
            from: "{{{{ 'kestra://some/file.ion' }}}}"
        """
    )
    assert states(result) == {"push": "failed"}
    assert "it must be a JSON list (kestra:// files are not supported)" in result.tasks["push"].log_text()


def test_publish_sends_each_value(run_flow, redis_server, redis_db):
    subscriber = redis_server.client().pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("news")
    url = redis_server.url()
    try:
        result = run_flow(
            f"""
            id: publishes
            namespace: tests.redis
            tasks:
              - id: text
                type: io.kestra.plugin.redis.pubsub.Publish
                url: "{url}"
                channel: news
                from: [hello, "{{{{ flow.id }}}}"]
              - id: json
                type: io.kestra.plugin.redis.Publish
                url: "{url}"
                channel: "{{{{ 'ne' ~ 'ws' }}}}"
                serdeType: JSON
                from: '[{{"a": 1}}]'
            """
        )
        assert states(result) == {"text": "success", "json": "success"}
        assert result.tasks["text"].outputs == {"count": 2}
        assert result.tasks["json"].outputs == {"count": 1}
        received: list[str] = []

        def three_messages() -> bool:
            message = subscriber.get_message(timeout=0.1)
            if message:
                received.append(message["data"])
            return len(received) == 3

        wait_for(three_messages, what="the published messages")
        assert received == ["hello", "publishes", '{"a":1}']
    finally:
        subscriber.close()
