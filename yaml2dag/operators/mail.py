"""Operators for Kestra's MailSend and MailExecution, on Python's `smtplib` and `email` packages.

Kestra's `transportStrategy`: SMTPS (TLS from the first byte, the default), SMTP_TLS (STARTTLS
required) or SMTP (plain, STARTTLS when the server offers it). TLS certificates are verified with
the system's trust store (`SSL_CERT_FILE` / `SSL_CERT_DIR` add a private CA). The password is
registered with Airflow's secrets masker; errors name `host:port` and the user, never the password.
A message is HTML with a plain-text alternative, as Kestra's (simple-java-mail) messages are.
"""

from __future__ import annotations

import json
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.execution_summary import ExecutionSummary, describe_execution
from yaml2dag.operators.notifications import mask_literal
from yaml2dag.tasktypes.notifications import TRANSPORT_STRATEGIES, MailExecution, MailSend

#: The largest attachment sent (most SMTP servers refuse messages over 25–50 MB anyway).
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
#: Kestra's plain-text body when only HTML is given.
DEFAULT_PLAIN_TEXT = "Please view this email in a modern email client"


def addresses(value: Any, name: str) -> list[str]:
    """Recipients from `a@x; b@y` (Kestra's `;`, also `,`) or a list; each checked for line breaks."""
    items = value if isinstance(value, list) else re.split(r"[;,]", str(value or ""))
    found = [str(item).strip() for item in items if str(item).strip()]
    for address in found:
        if any(char in address for char in "\r\n\0"):
            raise TaskFailure(f"`{name}`: an address contains a line break, which would inject a header; refused")
    return found


class MailSendOperator(KestraOperator, task_type=MailSend):
    """`io.kestra.plugin.notifications.mail.MailSend` (alias `io.kestra.plugin.email.MailSend`)."""

    ui_color = "#fff4e5"

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Mask the password in logs and rendered fields, before rendering and after."""
        mask_literal(self.password)
        super().render_template_fields(context, jinja_env)
        mask_literal(self.password)

    def contents(self, context: Any) -> tuple[str | None, str]:
        """The HTML body (or None) and the plain-text body."""
        plain = self.plainTextContent
        return (
            str(self.htmlTextContent) if self.htmlTextContent is not None else None,
            str(plain) if plain is not None else DEFAULT_PLAIN_TEXT,
        )

    def build_message(self, context: Any) -> EmailMessage:
        """The email: headers, bodies and attachments (a header value with a line break is refused)."""
        html, plain = self.contents(context)
        message = EmailMessage()
        try:
            message["From"] = str(self.from_)
            message["To"] = ", ".join(addresses(self.to, "to"))
            recipients_cc = addresses(self.cc, "cc") if self.cc else []
            if recipients_cc:
                message["Cc"] = ", ".join(recipients_cc)
            if self.subject is not None:
                message["Subject"] = str(self.subject)
        except ValueError as exc:
            raise TaskFailure(f"invalid email header: {exc}") from None
        message.set_content(plain)
        if html is not None:
            message.add_alternative(html, subtype="html")
        for attachment in self.attachment_list():
            content, maintype, subtype = self.attachment_content(attachment)
            message.add_attachment(content, maintype=maintype, subtype=subtype, filename=str(attachment["name"]))
        return message

    def attachment_list(self) -> list[dict[str, Any]]:
        """`attachments` as a list of `{name, uri, contentType}` (also from a JSON string, as Kestra reads it)."""
        value = self.attachments
        if value is None or value == "" or value == []:
            return []
        if isinstance(value, str):
            try:
                value = json.loads(value)
                if isinstance(value, str):
                    value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise TaskFailure(f"`attachments` rendered text that is not a JSON list: {exc.msg}") from None
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise TaskFailure("`attachments` must be a list of {name, uri, contentType}")
        for item in value:
            if "uri" not in item or "name" not in item:
                raise TaskFailure("each attachment needs `name` and `uri`")
        return value

    def attachment_content(self, attachment: dict[str, Any]) -> tuple[bytes, str, str]:
        """The bytes and MIME type of one attachment, read from yaml2dag's internal storage.

        The whole file goes into the message (smtplib sends a message from memory), so a file
        larger than `MAX_ATTACHMENT_BYTES` is refused rather than exhausting the worker's memory.
        """
        from yaml2dag import storage

        uri = str(attachment["uri"])
        size = storage.file_size(uri)
        if size > MAX_ATTACHMENT_BYTES:
            raise TaskFailure(
                f"attachment `{attachment['name']}` is {size} bytes: larger than the {MAX_ATTACHMENT_BYTES}-byte "
                "limit of an email attachment"
            )
        with storage.open_read(uri) as source:
            content = source.read()
        content_type = str(attachment.get("contentType") or "application/octet-stream")
        maintype, _, subtype = content_type.partition("/")
        if not maintype or not subtype:
            raise TaskFailure(f"attachment `{attachment['name']}`: `contentType` `{content_type}` is not a MIME type")
        return content, maintype.strip(), subtype.split(";")[0].strip()

    def recipients(self) -> list[str]:
        """Every envelope recipient: `to` and `cc`."""
        return addresses(self.to, "to") + (addresses(self.cc, "cc") if self.cc else [])

    def run(self, context: Any) -> None:
        """Build the message and send it through the SMTP server."""
        message = self.build_message(context)
        strategy = str(self.transportStrategy).strip().upper()
        if strategy not in TRANSPORT_STRATEGIES:
            raise TaskFailure(f"`transportStrategy` rendered `{strategy}`: use {', '.join(TRANSPORT_STRATEGIES)}")
        host = str(self.host)
        try:
            port = int(self.port) if self.port not in (None, "") else (465 if strategy == "SMTPS" else 25)
            timeout = int(self.sessionTimeout) / 1000
        except ValueError:
            raise TaskFailure("`port` and `sessionTimeout` must render to whole numbers") from None
        where = f"{host}:{port}"
        recipients = self.recipients()
        try:
            with self.connect(strategy, host, port, timeout) as smtp:
                if self.username:
                    smtp.login(str(self.username), str(self.password or ""))
                smtp.send_message(message, from_addr=str(self.from_), to_addrs=recipients)
        except smtplib.SMTPAuthenticationError as exc:
            raise TaskFailure(f"SMTP server {where} refused the login of `{self.username}`: {_reply(exc)}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise TaskFailure(f"SMTP server {where} refused the recipients {sorted(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            raise TaskFailure(f"SMTP server {where} answered {exc.smtp_code}: {_reply(exc)}") from None
        except ssl.SSLError as exc:
            raise TaskFailure(
                f"TLS with SMTP server {where} failed ({exc.reason or exc}); check `transportStrategy` "
                "(SMTPS for port 465, SMTP_TLS for STARTTLS) and that the server's certificate is trusted"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TaskFailure(f"cannot send through SMTP server {where}: {type(exc).__name__}: {exc}") from None
        self.log.info(
            "Sent email %r to %d recipient(s) through %s (%s)", message["Subject"], len(recipients), where, strategy
        )

    def connect(self, strategy: str, host: str, port: int, timeout: float) -> smtplib.SMTP:
        """An SMTP session in `strategy`: SMTPS, SMTP_TLS (STARTTLS required) or SMTP (STARTTLS if offered)."""
        context = ssl.create_default_context()
        if strategy == "SMTPS":
            return smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            elif strategy == "SMTP_TLS":
                raise TaskFailure(f"SMTP server {host}:{port} does not offer STARTTLS (transportStrategy SMTP_TLS)")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _reply(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


class MailExecutionOperator(MailSendOperator, task_type=MailExecution):
    """`io.kestra.plugin.notifications.mail.MailExecution`: email a summary of a run."""

    def contents(self, context: Any) -> tuple[str | None, str]:
        """Kestra's summary as HTML and plain text (its template, without the styling)."""
        summary = describe_execution(
            str(self.executionId),
            context,
            self.kestra_context(context),
            custom_message=str(self.customMessage) if self.customMessage is not None else None,
            custom_fields=self.customFields,
        )
        return html_summary(summary), text_summary(summary)


def _rows(summary: ExecutionSummary) -> list[tuple[str, str]]:
    rows = [
        ("Namespace", summary.namespace),
        ("Flow", summary.flow_id),
        ("Execution", summary.execution_id),
        ("Status", summary.state),
    ]
    if summary.failed_tasks:
        rows.append(("Failed tasks", ", ".join(summary.failed_tasks)))
    return rows + [(str(key), str(value)) for key, value in summary.custom_fields.items()]


def text_summary(summary: ExecutionSummary) -> str:
    """The plain-text summary of a run."""
    lines = [summary.title()]
    if summary.custom_message:
        lines.append(summary.custom_message)
    lines.append(summary.outcome())
    lines.append(f"Details: {summary.link}")
    lines += [f"{name} : {value}" for name, value in _rows(summary)]
    return "\n".join(lines) + "\n"


def html_summary(summary: ExecutionSummary) -> str:
    """The HTML summary of a run (values escaped)."""
    from html import escape

    color = "green" if summary.state == "SUCCESS" else "orange" if summary.state == "WARNING" else "red"
    outcome = escape(summary.outcome()).replace(f"`{summary.first_failed}`", f"<code>{summary.first_failed}</code>")
    parts = [
        '<!doctype html><html><body style="font-family: sans-serif">',
        f"<p>[{escape(summary.namespace)}] {escape(summary.flow_id)} ➛ "
        f'<span style="color: {color}">{escape(summary.state)}</span></p>',
    ]
    if summary.custom_message:
        parts.append(f"<p>{escape(summary.custom_message)}</p>")
    parts.append(f"<p>{outcome}</p>")
    parts.append(f'<p><a href="{escape(summary.link)}">See details</a></p>')
    parts += [f"<p><strong>{escape(name)} :</strong> {escape(value)}</p>" for name, value in _rows(summary)]
    parts.append("</body></html>")
    return "\n".join(parts)
