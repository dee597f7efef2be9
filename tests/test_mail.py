"""MailSend / MailExecution through a real SMTP server (`aiosmtpd`) on 127.0.0.1: plain, SMTPS, STARTTLS, login."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import states
from http_support import self_signed_certificate

pytestmark = pytest.mark.airflow

USER, PASSWORD = "mailer", "sm7p-Pa55word"


@dataclass
class SmtpServer:
    """A running aiosmtpd server and the messages it received."""

    port: int
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[attr-defined]
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[attr-defined]
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _authenticator(state: SmtpServer):  # noqa: ANN202 - aiosmtpd's callback type
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == USER and data.password.decode() == PASSWORD
        if ok:
            state.logins.append(USER)
        return AuthResult(success=ok, handled=False)

    return check


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    cert, key = self_signed_certificate(tmp_path)
    # The client verifies certificates with the default trust store; SSL_CERT_FILE makes it the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


def _start(state: SmtpServer, **kwargs: object) -> object:
    from aiosmtpd.controller import Controller

    controller = Controller(state, hostname="127.0.0.1", port=state.port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def plain_smtp() -> Iterator[SmtpServer]:
    state = SmtpServer(_free_port())
    controller = _start(state, authenticator=_authenticator(state), auth_require_tls=False)
    yield state
    controller.stop()


@pytest.fixture
def smtps(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    state = SmtpServer(_free_port())
    # Implicit TLS: aiosmtpd does not see the session as TLS, so AUTH is allowed explicitly.
    controller = _start(state, ssl_context=context, authenticator=_authenticator(state), auth_require_tls=False)
    yield state
    controller.stop()


@pytest.fixture
def starttls(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    state = SmtpServer(_free_port())
    controller = _start(
        state, tls_context=context, require_starttls=True, authenticator=_authenticator(state), auth_required=True
    )
    yield state
    controller.stop()


def test_mail_send_over_smtps_with_login_html_and_plain_text(run_flow, smtps, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_EMAIL_PASSWORD", PASSWORD)
    result = run_flow(
        f"""
        id: mail
        namespace: tests.mail
        tasks:
          - id: send
            type: io.kestra.plugin.email.MailSend
            host: 127.0.0.1
            port: {smtps.port}
            username: {USER}
            password: "{{{{ secret('EMAIL_PASSWORD') }}}}"
            from: kestra@example.org
            to: "ops@example.org; dev@example.org"
            cc: lead@example.org
            subject: "Report for {{{{ flow.id }}}}"
            htmlTextContent: "<h1>Report</h1><p>from {{{{ flow.namespace }}}}</p>"
            plainTextContent: Report in plain text
        """
    )
    assert states(result) == {"send": "success"}
    assert smtps.logins == [USER]
    ((sender, recipients, message),) = smtps.messages
    assert sender == "kestra@example.org"
    assert recipients == ["ops@example.org", "dev@example.org", "lead@example.org"]
    assert message["Subject"] == "Report for mail"
    assert message["To"] == "ops@example.org, dev@example.org"
    assert message["Cc"] == "lead@example.org"
    assert message.get_body(("plain",)).get_content().rstrip() == "Report in plain text"
    assert message.get_body(("html",)).get_content().rstrip() == "<h1>Report</h1><p>from tests.mail</p>"
    assert PASSWORD not in result.tasks["send"].log_text()


def test_mail_send_starttls_and_plain_smtp(run_flow, starttls, plain_smtp):
    result = run_flow(
        f"""
        id: transports
        namespace: tests.mail
        tasks:
          - id: starttls
            type: io.kestra.plugin.notifications.mail.MailSend
            host: 127.0.0.1
            port: {starttls.port}
            transportStrategy: SMTP_TLS
            username: {USER}
            password: {PASSWORD}
            from: a@example.org
            to: b@example.org
            subject: over STARTTLS
            htmlTextContent: <p>tls</p>
          - id: plain
            type: io.kestra.plugin.notifications.mail.MailSend
            host: 127.0.0.1
            port: {plain_smtp.port}
            transportStrategy: SMTP
            from: a@example.org
            to: [c@example.org]
            subject: plain
            plainTextContent: just text
        """
    )
    assert states(result) == {"starttls": "success", "plain": "success"}
    assert starttls.logins == [USER]
    assert starttls.messages[0][2]["Subject"] == "over STARTTLS"
    # Kestra's default plain-text alternative when only HTML is given.
    assert starttls.messages[0][2].get_body(("plain",)).get_content().startswith("Please view this email")
    assert plain_smtp.messages[0][2].get_content().rstrip() == "just text"
    assert PASSWORD not in result.tasks["starttls"].log_text()


def test_mail_errors_are_clear(run_flow, plain_smtp, smtps):
    closed = _free_port()
    result = run_flow(
        f"""
        id: mailerrors
        namespace: tests.mail
        inputs:
          - id: subject
            type: STRING
            defaults: "Hi\\r\\nBcc: victim@example.org"
        tasks:
          - id: wrong_password
            type: io.kestra.plugin.email.MailSend
            host: 127.0.0.1
            port: {plain_smtp.port}
            transportStrategy: SMTP
            username: {USER}
            password: not-the-Pa55word
            from: a@example.org
            to: b@example.org
        finally:
          - id: injected
            type: io.kestra.plugin.email.MailSend
            host: 127.0.0.1
            port: {plain_smtp.port}
            transportStrategy: SMTP
            from: a@example.org
            to: b@example.org
            subject: "{{{{ inputs.subject }}}}"
          - id: unreachable
            type: io.kestra.plugin.email.MailSend
            host: 127.0.0.1
            port: {closed}
            from: a@example.org
            to: b@example.org
          - id: plain_to_smtps
            type: io.kestra.plugin.email.MailSend
            host: 127.0.0.1
            port: {smtps.port}
            transportStrategy: SMTP
            sessionTimeout: 3000
            from: a@example.org
            to: b@example.org
        """
    )
    assert set(states(result).values()) == {"failed"}
    wrong = result.tasks["wrong_password"].log_text()
    assert f"SMTP server 127.0.0.1:{plain_smtp.port} refused the login of `{USER}`" in wrong
    assert "not-the-Pa55word" not in wrong
    assert "invalid email header" in result.tasks["injected"].log_text()
    assert f"cannot send through SMTP server 127.0.0.1:{closed}: ConnectionRefusedError" in (
        result.tasks["unreachable"].log_text()
    )
    assert f"cannot send through SMTP server 127.0.0.1:{smtps.port}" in result.tasks["plain_to_smtps"].log_text()
    assert plain_smtp.messages == [] and smtps.messages == []


def test_mail_execution_in_errors_describes_the_failed_run(run_flow, plain_smtp):
    result = run_flow(
        f"""
        id: nightly
        namespace: tests.mail
        tasks:
          - id: load
            type: io.kestra.plugin.core.execution.Fail
        errors:
          - id: mail_alert
            type: io.kestra.plugin.email.MailExecution
            host: 127.0.0.1
            port: {plain_smtp.port}
            transportStrategy: SMTP
            from: kestra@example.org
            to: oncall@example.org
            subject: "Failed: {{{{ flow.id }}}}"
            customMessage: "<look> at this"
        """
    )
    assert states(result) == {"load": "failed", "mail_alert": "success"}
    ((_, recipients, message),) = plain_smtp.messages
    assert recipients == ["oncall@example.org"]
    assert message["Subject"] == "Failed: nightly"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "[tests.mail] nightly ➛" in text and "Failed on task `load` after" in text
    assert "Failed tasks : load" in text
    assert "/dags/tests.mail.nightly/runs/" in text
    assert "Failed on task <code>load</code>" in html
    assert "&lt;look&gt; at this" in html
