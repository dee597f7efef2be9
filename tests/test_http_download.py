"""`io.kestra.plugin.core.http.Download` into yaml2dag's storage, and storage files sent by Request and MailSend."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

import pytest
from conftest import states
from http_support import LoopbackServer, start_server
from test_mail import SmtpServer, _authenticator, _free_port, _start

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    state, httpd = start_server()
    yield state
    httpd.shutdown()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    state = SmtpServer(_free_port())
    controller = _start(state, authenticator=_authenticator(state), auth_require_tls=False)
    yield state
    controller.stop()


def _read(uri: str) -> bytes:
    from yaml2dag import storage

    with storage.open_read(uri) as source:
        return source.read()


def test_download_names_the_file_and_feeds_request_and_mail(run_flow, server, smtp):
    result = run_flow(
        f"""
        id: download
        namespace: tests.http
        tasks:
          - id: report
            type: io.kestra.plugin.core.http.Download
            uri: "{server.url}/report"
          - id: json
            type: io.kestra.plugin.fs.http.Download
            uri: "{server.url}/json"
            saveAs: hello.json
          - id: upload
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            method: POST
            contentType: multipart/form-data
            formData:
              kind: report
              file: "{{{{ outputs.report.uri }}}}"
              renamed:
                name: renamed.json
                content: "{{{{ outputs.json.uri }}}}"
          - id: size
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ outputs.report.length }}}} {{{{ read(outputs.json.uri) }}}}"
          - id: mail
            type: io.kestra.plugin.email.MailSend
            host: 127.0.0.1
            port: {smtp.port}
            transportStrategy: SMTP
            from: a@example.org
            to: b@example.org
            subject: the report
            htmlTextContent: "<p>attached</p>"
            attachments:
              - name: report.csv
                uri: "{{{{ outputs.report.uri }}}}"
                contentType: text/csv
              - name: hello.json
                uri: "{{{{ outputs.json.uri }}}}"
        """
    )
    assert set(states(result).values()) == {"success"}
    report = result.tasks["report"].outputs
    assert report["uri"].startswith("kestra:///tests/http/download/executions/")
    assert report["uri"].endswith("/report.csv")
    assert report["code"] == 200 and report["length"] == 20
    assert report["headers"]["Content-Disposition"] == ['attachment; filename="report.csv"']
    assert _read(report["uri"]) == b"id,amount\n1,10\n2,20\n"
    assert result.tasks["json"].outputs["uri"].endswith("/hello.json")
    assert result.tasks["size"].outputs == {"value": '20 { "hello": "world" }'}
    echoed = json.loads(result.tasks["upload"].outputs["body"])["body"]
    assert 'name="file"; filename="report.csv"' in echoed and "id,amount\r\n" not in echoed
    assert "id,amount\n1,10\n2,20\n" in echoed
    assert 'name="renamed"; filename="renamed.json"' in echoed and '{ "hello": "world" }' in echoed
    assert 'name="kind"\r\n\r\nreport' in echoed
    ((_, _, message),) = smtp.messages
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert attachments["report.csv"].get_content_type() == "text/csv"
    assert attachments["report.csv"].get_payload(decode=True) == b"id,amount\n1,10\n2,20\n"
    assert attachments["hello.json"].get_content_type() == "application/octet-stream"
    assert attachments["hello.json"].get_payload(decode=True) == b'{ "hello": "world" }'


def _traced_download(run_flow, url: str) -> tuple[object, int]:
    """Run a one-Download flow with Python's allocations traced: (the result, peak bytes)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = run_flow(
            f"""
            id: bigdownload
            namespace: tests.http
            tasks:
              - id: big
                type: io.kestra.plugin.core.http.Download
                uri: "{url}"
            """
        )
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_download_of_200_mb_is_streamed_with_bounded_memory(run_flow, server):
    from yaml2dag import storage

    size = 200 * 1024 * 1024
    _traced_download(run_flow, f"{server.url}/bytes/1024")  # Airflow's start-up, outside the comparison
    small, small_peak = _traced_download(run_flow, f"{server.url}/bytes/1048576")
    result, peak = _traced_download(run_flow, f"{server.url}/bytes/{size}")
    assert states(result) == {"big": "success"}
    outputs = result.tasks["big"].outputs
    assert outputs["length"] == size
    assert storage.file_size(outputs["uri"]) == size
    # The 200 MB run allocates about what a 1 MB run does (a read into memory would add > 200 MB).
    assert peak < small_peak + 32 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB vs {small_peak / 1e6:.0f} MB for 1 MB"
    storage.delete(outputs["uri"])
    storage.delete(small.tasks["big"].outputs["uri"])


def test_download_failures(run_flow, server):
    result = run_flow(
        f"""
        id: baddownload
        namespace: tests.http
        tasks:
          - id: empty_allowed
            type: io.kestra.plugin.core.http.Download
            uri: "{server.url}/empty"
            failOnEmptyResponse: false
        finally:
          - id: empty
            type: io.kestra.plugin.core.http.Download
            uri: "{server.url}/empty"
          - id: truncated
            type: io.kestra.plugin.core.http.Download
            uri: "{server.url}/truncated"
          - id: not_found
            type: io.kestra.plugin.core.http.Download
            uri: "{server.url}/status/404"
          - id: missing_attachment
            type: io.kestra.plugin.core.http.Request
            uri: "{server.url}/echo"
            method: POST
            contentType: multipart/form-data
            formData:
              file: kestra:///tests/http/nothing/here.csv
        """
    )
    assert states(result) == {
        "empty_allowed": "success",
        "empty": "failed",
        "truncated": "failed",
        "not_found": "failed",
        "missing_attachment": "failed",
    }
    assert result.tasks["empty_allowed"].outputs["length"] == 0
    assert "No response from server" in result.tasks["empty"].log_text()
    assert "download to http://127.0.0.1:" in result.tasks["truncated"].log_text()
    assert "with response code '404'" in result.tasks["not_found"].log_text()
    assert "formData file `kestra:///tests/http/nothing/here.csv`: no such file" in (
        result.tasks["missing_attachment"].log_text()
    )
