"""`io.kestra.plugin.core.http.Request` against real HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import states
from http_support import LoopbackServer, self_signed_certificate, start_server

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    yield state
    httpd.shutdown()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    state, httpd = start_server(self_signed_certificate(tmp_path_factory.mktemp("tls")))
    yield state
    httpd.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_get_json_outputs_code_headers_and_body_text(run_flow, server):
    result = run_flow(
        f"""
        id: get
        namespace: tests.http
        tasks:
          - id: req
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/json"
          - id: read
            type: io.kestra.plugin.core.debug.Return
            format: >-
              {{{{ fromJson(outputs.req.body).hello }}}} {{{{ outputs.req.code }}}}
              {{{{ outputs.req.headers['X-Custom'][0] }}}}
          - id: legacy
            type: io.kestra.plugin.fs.http.Request
            uri: "{server.url}/text"
        """
    )
    assert states(result) == {"req": "success", "read": "success", "legacy": "success"}
    outputs = result.tasks["req"].outputs
    assert outputs["code"] == 200
    assert outputs["body"] == '{ "hello": "world" }'  # text, as Kestra outputs it
    assert outputs["uri"] == f"{server.url}/json"
    assert outputs["headers"]["Content-Type"] == ["application/json"]
    assert result.tasks["read"].outputs == {"value": "world 200 one"}
    assert result.tasks["legacy"].outputs["body"] == "plain <b>text</b>, not JSON"


def test_post_body_form_multipart_headers_params_and_basic_auth(run_flow, server):
    result = run_flow(
        f"""
        id: post
        namespace: tests.http
        inputs:
          - id: title
            type: STRING
            defaults: Kestra Pen
        tasks:
          - id: json_body
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            method: POST
            headers:
              X-Trace: "{{{{ flow.id }}}}"
            body: |
              {{{{ {{"title": inputs.title, "n": 2}} }}}}
          - id: form
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            method: PUT
            contentType: application/x-www-form-urlencoded
            formData:
              user: John Doe
              n: 3
          - id: multipart
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            method: POST
            contentType: multipart/form-data
            formData:
              user: Jane
          - id: query_auth
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo?a=1"
            params:
              b: two
              c: [x, y]
            options:
              auth:
                type: BASIC
                username: admin
                password: s3cret-pass
        """
    )
    assert set(states(result).values()) == {"success"}
    echo = json.loads(result.tasks["json_body"].outputs["body"])
    assert echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"title": "Kestra Pen", "n": 2}
    assert echo["headers"]["Content-Type"] == "application/json; charset=UTF-8"
    assert echo["headers"]["X-Trace"] == "post"
    form = json.loads(result.tasks["form"].outputs["body"])
    assert form["method"] == "PUT"
    assert form["body"] == "user=John+Doe&n=3"
    assert form["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    multipart = json.loads(result.tasks["multipart"].outputs["body"])
    assert multipart["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert 'name="user"' in multipart["body"] and "Jane" in multipart["body"]
    query = json.loads(result.tasks["query_auth"].outputs["body"])
    assert query["path"] == "/echo?a=1&b=two&c=x&c=y"
    assert query["headers"]["Authorization"] == "***"  # the echoed credentials are masked in the output
    sent = [request.headers.get("Authorization") for request in server.received if request.path.startswith("/echo?a=1")]
    assert sent == ["Basic YWRtaW46czNjcmV0LXBhc3M="]
    assert "s3cret-pass" not in result.tasks["query_auth"].log_text()


def test_redirects_followed_or_not(run_flow, server):
    result = run_flow(
        f"""
        id: redirects
        namespace: tests.http
        tasks:
          - id: follow
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/redirect"
          - id: stay
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/redirect"
            options:
              followRedirects: false
        """
    )
    assert states(result) == {"follow": "success", "stay": "success"}
    assert result.tasks["follow"].outputs["code"] == 200
    assert result.tasks["follow"].outputs["body"] == '{ "hello": "world" }'
    assert result.tasks["stay"].outputs["code"] == 301
    assert result.tasks["stay"].outputs["headers"]["Location"] == ["/json"]


def test_error_codes_fail_unless_allowed(run_flow, server):
    result = run_flow(
        f"""
        id: codes
        namespace: tests.http
        tasks:
          - id: allowed
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/status/500"
            options:
              allowFailed: true
          - id: listed
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/status/404"
            options:
              allowedResponseCodes: [404]
          - id: not_listed
            type: io.kestra.plugin.core.http.Request
            allowFailure: true
            uri: "{server.url}/status/200"
            options:
              allowedResponseCodes: [201]
          - id: server_error
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/status/500"
        """
    )
    assert states(result) == {
        "allowed": "success",
        "listed": "success",
        "not_listed": "warning",
        "server_error": "failed",
    }
    assert result.tasks["allowed"].outputs["code"] == 500
    assert result.tasks["allowed"].outputs["body"] == '{"error": "boom"}'
    assert result.tasks["listed"].outputs["code"] == 404
    assert "response code '200' (allowed: 201)" in result.tasks["not_listed"].log_text()
    assert "with response code '500'" in result.tasks["server_error"].log_text()
    assert '{"error": "boom"}' in result.tasks["server_error"].log_text()


def test_chunked_body_and_read_timeout(run_flow, server):
    result = run_flow(
        f"""
        id: slow
        namespace: tests.http
        tasks:
          - id: chunked
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/chunked"
          - id: slow
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/slow"
            options:
              timeout:
                readIdleTimeout: PT0.5S
        """
    )
    assert states(result) == {"chunked": "success", "slow": "failed"}
    assert json.loads(result.tasks["chunked"].outputs["body"]) == {"parts": [1, 2, 3]}
    assert "no data from the server within the read timeout" in result.tasks["slow"].log_text()


def test_tls_self_signed_needs_insecure_trust(run_flow, tls_server):
    result = run_flow(
        f"""
        id: tls
        namespace: tests.http
        tasks:
          - id: verified
            type: io.kestra.plugin.core.http.Request
            allowFailure: true
            uri: "{tls_server.url}/json"
          - id: trusted
            type: io.kestra.plugin.core.http.Request
            uri: "{tls_server.url}/json"
            options:
              ssl:
                insecureTrustAllCertificates: true
          - id: deprecated_ssl
            type: io.kestra.plugin.core.http.Request
            uri: "{tls_server.url}/json"
            sslOptions:
              insecureTrustAllCertificates: "{{{{ true }}}}"
        """
    )
    assert states(result) == {"verified": "warning", "trusted": "success", "deprecated_ssl": "success"}
    assert result.tasks["verified"].outputs is None
    assert "TLS certificate verification failed" in result.tasks["verified"].log_text()
    assert result.tasks["trusted"].outputs["body"] == '{ "hello": "world" }'
    assert result.tasks["deprecated_ssl"].outputs["code"] == 200


def test_unreachable_host_and_header_injection_are_clear_errors(run_flow, server):
    port = _closed_port()
    result = run_flow(
        f"""
        id: bad
        namespace: tests.http
        inputs:
          - id: evil
            type: STRING
            defaults: "x\\r\\nX-Injected: yes"
        tasks:
          - id: unreachable
            type: io.kestra.plugin.core.http.Request
            uri: "http://127.0.0.1:{port}/json?token=abc"
        finally:
          - id: injected
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            headers:
              X-Name: "{{{{ inputs.evil }}}}"
          - id: text
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/text"
          - id: not_json
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ fromJson(outputs.text.body) }}}}"
        """
    )
    assert states(result) == {"unreachable": "failed", "injected": "failed", "text": "success", "not_json": "failed"}
    log = result.tasks["unreachable"].log_text()
    assert f"request to http://127.0.0.1:{port}: cannot connect" in log
    assert "header `X-Name`: its rendered value contains a line break or NUL" in result.tasks["injected"].log_text()
    assert not [request for request in server.received if "X-Injected" in request.headers]
    assert "token=abc" not in log
    assert "cannot render `format`" in result.tasks["not_json"].log_text()


def test_literal_header_with_line_break_and_bad_url_are_refused_when_compiling(flow_file):
    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import read_flow

    path = flow_file(
        """
        id: refused
        namespace: tests.http
        tasks:
          - id: req
            type: io.kestra.plugin.core.http.Request
            uri: ftp://example.org/file
            headers:
              X-Bad: "a\\r\\nX-Other: b"
        """
    )
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    text = str(caught.value)
    assert "flow.yaml:7:10: tasks[0].uri: must be an http:// or https:// URL" in text
    assert "header `X-Bad`: its value contains a line break or NUL" in text
    path = flow_file(
        """
        id: refused
        namespace: tests.http
        tasks:
          - id: req
            type: io.kestra.plugin.core.http.Request
            uri: http://127.0.0.1/
            encryptBody: true
            options:
              proxy:
                address: 127.0.0.1
        """
    )
    with pytest.raises(FlowValidationError) as caught:
        read_flow(path)
    text = str(caught.value)
    assert "tasks[0].encryptBody: property `encryptBody` is not supported by yaml2dag yet" in text
    assert "tasks[0].options.proxy: property `proxy` is not supported by yaml2dag yet" in text
    path = flow_file(
        """
        id: refused
        namespace: tests.http
        tasks:
          - id: sse
            type: io.kestra.plugin.core.http.SseRequest
            uri: http://127.0.0.1/
        """
    )
    with pytest.raises(FlowValidationError, match="task type `io.kestra.plugin.core.http.SseRequest` is not supported"):
        read_flow(path)


def test_response_larger_than_max_content_length_fails(run_flow, server, tmp_path: Path):
    result = run_flow(
        f"""
        id: big
        namespace: tests.http
        tasks:
          - id: big
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/bytes/300000"
            options:
              maxContentLength: 100000
        """
    )
    assert states(result) == {"big": "failed"}
    assert "larger than 100000 bytes (options.maxContentLength)" in result.tasks["big"].log_text()


def test_bearer_token_and_logged_headers_are_masked(run_flow, server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_API_TOKEN", "tok-SECRET-123456")
    result = run_flow(
        f"""
        id: bearer
        namespace: tests.http
        tasks:
          - id: req
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            options:
              auth:
                type: BEARER
                token: "{{{{ secret('API_TOKEN') }}}}"
              logs: [REQUEST_HEADERS, RESPONSE_HEADERS, RESPONSE_BODY]
          - id: legacy_basic
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            options:
              basicAuthUser: admin
              basicAuthPassword: legacy-SECRET-pass
              logLevel: DEBUG
        """
    )
    assert states(result) == {"req": "success", "legacy_basic": "success"}
    received = [request.headers.get("Authorization") for request in server.received if request.path == "/echo"]
    assert "Bearer tok-SECRET-123456" in received
    assert "Basic YWRtaW46bGVnYWN5LVNFQ1JFVC1wYXNz" in received
    # The server echoes the token: the output (XCom) masks it like the log does.
    assert json.loads(result.tasks["req"].outputs["body"])["headers"]["Authorization"] == "Bearer ***"
    log = result.tasks["req"].log_text()
    assert "Request headers:" in log and "Response headers:" in log and "Response body:" in log
    assert "tok-SECRET-123456" not in log
    legacy = json.loads(result.tasks["legacy_basic"].outputs["body"])
    assert legacy["headers"]["Authorization"] == "***"
    legacy_log = result.tasks["legacy_basic"].log_text()
    assert "Request headers:" in legacy_log and "YWRtaW46bGVnYWN5LVNFQ1JFVC1wYXNz" not in legacy_log
