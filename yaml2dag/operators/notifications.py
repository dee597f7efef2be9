"""Operators for Kestra's chat notifications: incoming webhooks and `*Execution` run summaries, on httpx.

The webhook `url` is a secret (it alone lets anyone post): it is registered with Airflow's
secrets masker before and after rendering, logs name only the service and errors only
`scheme://host:port`. The JSON sent is checked before it is sent (Kestra would post invalid JSON
and let the service refuse it). `*Execution` tasks build the message of Kestra's templates from
`execution_summary.describe_execution`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any, ClassVar

from yaml2dag.errors import TaskFailure
from yaml2dag.expressions import needs_rendering
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.execution_summary import ExecutionSummary, describe_execution
from yaml2dag.operators.http import check_response, http_client, http_errors, http_settings, server_of
from yaml2dag.tasktypes.notifications import (
    DiscordExecution,
    DiscordIncomingWebhook,
    GoogleChatExecution,
    GoogleChatIncomingWebhook,
    LineExecution,
    MattermostIncomingWebhook,
    SentryAlert,
    SentryExecution,
    SlackExecution,
    SlackIncomingWebhook,
    TeamsExecution,
    TeamsIncomingWebhook,
    ZendutyAlert,
    ZendutyExecution,
    ZulipIncomingWebhook,
)


def mask_literal(value: Any) -> None:
    """Register a secret (unless it is still an expression) with Airflow's secrets masker."""
    if isinstance(value, str) and value and not needs_rendering(value):
        from airflow.sdk.log import mask_secret

        mask_secret(value)


class _WebhookOperator(KestraOperator):
    """POST a JSON message to an incoming webhook; fail on a response code >= 400."""

    ui_color = "#f3e8fd"
    #: The service's name in logs and errors.
    service: ClassVar[str] = "webhook"
    #: Key of a plain `messageText` in the JSON sent.
    text_key: ClassVar[str] = "text"

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Mask the webhook URL in logs and rendered fields, before rendering (render errors quote it) and after."""
        mask_literal(self.url)
        super().render_template_fields(context, jinja_env)
        mask_literal(self.url)

    def message(self, context: Any) -> Any:
        """The JSON document to send: `payload` (rendered a second time, as Kestra does) or `messageText`."""
        if self.payload is not None:
            payload = self.payload
            if isinstance(payload, str):
                if needs_rendering(payload):
                    payload = self.render(payload, context)
                try:
                    return json.loads(payload)
                except json.JSONDecodeError as exc:
                    raise TaskFailure(
                        f"`payload` is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                        f'{self.service} expects a JSON document such as {{"{self.text_key}": "Hello"}}'
                    ) from None
            return payload
        return {self.text_key: str(self.messageText)}

    def post(self, document: Any) -> None:
        """Send `document` as JSON to the webhook."""
        url = str(self.url)
        if not url.lower().startswith(("http://", "https://")):
            raise TaskFailure(f"`url` of the {self.service} webhook must render to an http(s) URL")
        settings = http_settings(self.options)
        content = json.dumps(document, ensure_ascii=False).encode()
        with http_errors(url, f"{self.service} webhook"), http_client(settings) as client:
            response = client.post(url, content=content, headers={"Content-Type": "application/json"})
        check_response(response.status_code, settings, url, response.text)
        self.log.info(
            "Posted a %d-byte message to the %s webhook at %s (response %s)",
            len(content),
            self.service,
            server_of(url),
            response.status_code,
        )

    def run(self, context: Any) -> None:
        """Build the message and post it."""
        self.post(self.message(context))


class SlackIncomingWebhookOperator(_WebhookOperator, task_type=SlackIncomingWebhook):
    """`io.kestra.plugin.notifications.slack.SlackIncomingWebhook` (and `…slack.notifications.…`)."""

    service = "Slack"


class TeamsIncomingWebhookOperator(_WebhookOperator, task_type=TeamsIncomingWebhook):
    """`io.kestra.plugin.notifications.teams.TeamsIncomingWebhook`."""

    service = "Microsoft Teams"


class DiscordIncomingWebhookOperator(_WebhookOperator, task_type=DiscordIncomingWebhook):
    """`io.kestra.plugin.notifications.discord.DiscordIncomingWebhook` (`messageText` → `content`)."""

    service = "Discord"
    text_key = "content"


class GoogleChatIncomingWebhookOperator(_WebhookOperator, task_type=GoogleChatIncomingWebhook):
    """`io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook`."""

    service = "Google Chat"


class MattermostIncomingWebhookOperator(_WebhookOperator, task_type=MattermostIncomingWebhook):
    """`io.kestra.plugin.notifications.mattermost.MattermostIncomingWebhook`."""

    service = "Mattermost"


class ZulipIncomingWebhookOperator(_WebhookOperator, task_type=ZulipIncomingWebhook):
    """`io.kestra.plugin.notifications.zulip.ZulipIncomingWebhook`."""

    service = "Zulip"


class _ExecutionOperator(_WebhookOperator):
    """A `*Execution` task: describe a run and post the service's summary message."""

    def summary(self, context: Any) -> ExecutionSummary:
        """The run named by `executionId`, with `customMessage` and `customFields`."""
        if self.payload is not None:
            self.log.warning("`payload` is ignored by %s, as in Kestra: use customMessage", self.kestra_type)
        return describe_execution(
            str(self.executionId),
            context,
            self.kestra_context(context),
            custom_message=str(self.customMessage) if self.customMessage is not None else None,
            custom_fields=self.customFields,
        )

    def document(self, summary: ExecutionSummary) -> dict[str, Any]:
        """The service's message for `summary`."""
        raise NotImplementedError

    def run(self, context: Any) -> None:
        """Describe the run, log what is sent (not where) and post it."""
        summary = self.summary(context)
        self.log.info("Notifying %s: %s — %s", self.service, summary.title(), summary.outcome())
        self.post(self.document(summary))


def _color(state: str, success: str, warning: str, failure: str) -> str:
    return success if state == "SUCCESS" else warning if state == "WARNING" else failure


def _status_line(summary: ExecutionSummary) -> str:
    return f"*<{summary.link}|{summary.title()}>*\n> {summary.outcome()}"


class SlackExecutionOperator(_ExecutionOperator, task_type=SlackExecution):
    """`io.kestra.plugin.notifications.slack.SlackExecution`: Kestra's Slack summary (text, blocks, fields)."""

    service = "Slack"

    def document(self, summary: ExecutionSummary) -> dict[str, Any]:
        """Kestra's `slack-template.peb`, field for field."""
        blocks: list[dict[str, Any]] = []
        if summary.custom_message is not None:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary.custom_message}})
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _status_line(summary)},
                "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Details"}, "url": summary.link},
            }
        )
        fields = [
            {"title": "Namespace", "value": summary.namespace, "short": True},
            {"title": "Job", "value": summary.flow_id, "short": True},
            {"title": "Execution", "value": summary.execution_id, "short": True},
            {"title": "Status", "value": summary.state, "short": True},
        ]
        fields += [{"title": key, "value": value, "short": True} for key, value in summary.custom_fields.items()]
        attachment: dict[str, Any] = {"color": _color(summary.state, "good", "warning", "danger"), "fields": fields}
        if summary.start_date is not None:
            attachment["ts"] = int(summary.start_date.timestamp())
        document: dict[str, Any] = {"text": _status_line(summary), "blocks": blocks, "attachments": [attachment]}
        for name, key in (("channel", "channel"), ("username", "username"), ("iconUrl", "icon_url")):
            if getattr(self, name) is not None:
                document[key] = str(getattr(self, name))
        if self.iconEmoji is not None:
            document["icon_emoji"] = str(self.iconEmoji)
        return document


class TeamsExecutionOperator(_ExecutionOperator, task_type=TeamsExecution):
    """`io.kestra.plugin.notifications.teams.TeamsExecution`: Kestra's MessageCard."""

    service = "Microsoft Teams"

    def document(self, summary: ExecutionSummary) -> dict[str, Any]:
        """Kestra's `teams-template.peb`."""
        section: dict[str, Any] = {}
        if self.activityTitle is not None:
            section["activityTitle"] = str(self.activityTitle)
        if self.activitySubtitle is not None:
            section["activitySubtitle"] = str(self.activitySubtitle)
        facts = [
            ("Namespace", summary.namespace),
            ("Job", summary.flow_id),
            ("Execution", summary.execution_id),
            ("Status", summary.state),
            *((str(key), value) for key, value in summary.custom_fields.items()),
        ]
        section["facts"] = [{"name": name, "value": str(value)} for name, value in facts]
        section["markdown"] = True
        summary_text = _status_line(summary)
        if summary.custom_message is not None:
            summary_text = f"{summary.custom_message}\n{summary_text}"
        return {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": str(self.themeColor),
            "summary": summary_text,
            "sections": [section],
            "potentialAction": [
                {"@type": "OpenUri", "name": "Details", "targets": [{"os": "default", "uri": summary.link}]}
            ],
        }


class DiscordExecutionOperator(_ExecutionOperator, task_type=DiscordExecution):
    """`io.kestra.plugin.notifications.discord.DiscordExecution`: Kestra's embed."""

    service = "Discord"
    text_key = "content"

    def document(self, summary: ExecutionSummary) -> dict[str, Any]:
        """Kestra's `discord-template.peb`."""
        description = (
            f"Namespace: {summary.namespace}\nFlow ID: {summary.flow_id}\nExecution ID: {summary.execution_id}\n"
            f"Execution Status: {summary.state}\nLink: {summary.link}"
        )
        if summary.custom_message is not None:
            description = f"{summary.custom_message}\n{description}"
        for key, value in summary.custom_fields.items():
            description += f"\n{key}: {value}"
        document: dict[str, Any] = {"embeds": [{"description": description, "footer": {"text": summary.outcome()}}]}
        if self.username is not None:
            document["username"] = str(self.username)
        if self.avatarUrl is not None:
            document["avatar_url"] = str(self.avatarUrl)
        if self.content is not None:
            document["content"] = f"{self.content} {summary.execution_id}"
        return document


class GoogleChatExecutionOperator(_ExecutionOperator, task_type=GoogleChatExecution):
    """`io.kestra.plugin.notifications.google.GoogleChatExecution`: Kestra's one-text message."""

    service = "Google Chat"

    def document(self, summary: ExecutionSummary) -> dict[str, Any]:
        """Kestra's `google-chat-template.peb`."""
        text = (
            f"Kestra Google notification: Namespace {summary.namespace}, Flow ID {summary.flow_id}, "
            f"Execution ID {summary.execution_id}, Execution Status {summary.state}. {_status_line(summary)}"
        )
        if summary.custom_message is not None:
            text = f"{summary.custom_message}\n{text}"
        return {"text": text}


# -- Sentry, Zenduty and LINE: their own request bodies, posted with `options` (timeouts, headers) --


def _json_text(text: str, name: str) -> Any:
    """A rendered JSON property, checked before it is sent (Kestra would let the service refuse it)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFailure(f"`{name}` is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


class _ServiceOperator(KestraOperator):
    """POST a body to a service's API with `options` (timeouts, TLS, extra `headers`); fail on a code >= 400."""

    ui_color = "#f3e8fd"
    #: The service's name in logs and errors.
    service: ClassVar[str] = "service"
    #: Properties holding a secret, masked before and after rendering.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Mask the secret properties in logs and rendered fields, before rendering and after."""
        for name in self.secret_fields:
            mask_literal(getattr(self, name))
        super().render_template_fields(context, jinja_env)
        for name in self.secret_fields:
            mask_literal(getattr(self, name))

    def send(self, url: str, content: bytes, headers: dict[str, str] | None = None) -> None:
        """POST `content` (JSON) to `url`."""
        if not url.lower().startswith(("http://", "https://")):
            raise TaskFailure(f"the {self.service} URL must render to an http(s) URL")
        options = dict(self.options or {})
        extra = {str(key): str(value) for key, value in (options.pop("headers", None) or {}).items()}
        settings = http_settings(options)
        sent = {**extra, "Content-Type": "application/json", **(headers or {})}
        with http_errors(url, f"{self.service} request"), http_client(settings) as client:
            response = client.post(url, content=content, headers=sent)
        check_response(response.status_code, settings, url, response.text)
        self.log.info(
            "Sent a %d-byte message to %s at %s (response %s)",
            len(content),
            self.service,
            server_of(url),
            response.status_code,
        )

    def describe(self, context: Any) -> ExecutionSummary:
        """The run named by `executionId`, with `customMessage` and `customFields`."""
        return describe_execution(
            str(self.executionId),
            context,
            self.kestra_context(context),
            custom_message=str(self.customMessage) if self.customMessage is not None else None,
            custom_fields=self.customFields,
        )


#: Sentry's SaaS DSNs, which Kestra turns into the endpoint URL (any other DSN is used as the URL).
_SENTRY_DSN = re.compile(r"^(https?://[a-f0-9]+@o[0-9]+\.ingest\.sentry\.io/[0-9]+)$")
_SENTRY_PAYLOAD_LIMIT = 1024 * 1024


def sentry_url(dsn: str, endpoint: str) -> str:
    """The URL events are posted to: built from a SaaS DSN (`/api/<project>/<endpoint>/?sentry_key=…`), else `dsn`."""
    if not _SENTRY_DSN.match(dsn):
        return dsn
    scheme, rest = dsn.split("://", 1)
    key, location = rest.split("@", 1)
    host, project = location.split("/")[:2]
    return f"{scheme}://{host}/api/{project}/{endpoint.lower()}/?sentry_version=7&sentry_client=java&sentry_key={key}"


class SentryAlertOperator(_ServiceOperator, task_type=SentryAlert):
    """`io.kestra.plugin.sentry.SentryAlert`: the event `payload` in Sentry's envelope (or bare, for STORE)."""

    service = "Sentry"
    secret_fields = ("dsn",)

    def event(self, context: Any) -> str:
        """The event JSON: `payload`, or Kestra's default (an execution failure)."""
        if self.payload is not None:
            return str(self.payload)
        flow = self.kestra_context(context)["flow"]
        execution = self.kestra_context(context)["execution"]
        return json.dumps(
            {
                "timestamp": str(execution.get("startDate")),
                "platform": "java",
                "level": "error",
                "message": {"message": f"Execution {execution.get('id')} failed"},
                "extra": {"Namespace": flow["namespace"], "Flow ID": flow["id"], "Execution ID": execution.get("id")},
            }
        )

    def envelope(self, event: str, event_id: str | None) -> str:
        """Sentry's envelope: envelope header, item header, the event (Kestra's size limits checked)."""
        size = len(event.encode())
        if size > _SENTRY_PAYLOAD_LIMIT:
            raise TaskFailure("Event payload size exceeds 1MB limit")
        header = {
            "event_id": event_id or uuid.uuid4().hex,
            "dsn": str(self.dsn),
            "sdk": {"name": "java", "version": "7"},
            "sent_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        item = {"type": "event", "length": size, "content_type": "application/json", "filename": "application.log"}
        return f"{json.dumps(header)}\n{json.dumps(item)}\n{event}\n"

    def deliver(self, event: str, event_id: str | None) -> None:
        """Check the event and post it to the DSN's endpoint."""
        _json_text(event, "payload")
        endpoint = str(self.endpointType).upper()
        body = self.envelope(event, event_id) if endpoint == "ENVELOPE" else event
        self.send(sentry_url(str(self.dsn), endpoint), body.encode())

    def run(self, context: Any) -> None:
        """Post the event."""
        self.deliver(self.event(context), None)


class SentryExecutionOperator(SentryAlertOperator, task_type=SentryExecution):
    """`io.kestra.plugin.sentry.SentryExecution`: Kestra's `sentry-template.peb` event for a run."""

    def run(self, context: Any) -> None:
        """Describe the run and post the event."""
        summary = self.describe(context)
        event_id = str(self.eventId) if self.eventId else uuid.uuid4().hex
        event: dict[str, Any] = {
            "event_id": event_id,
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            "platform": str(self.platform).lower(),
            "level": str(self.level).lower(),
            "exception": {
                "values": [
                    {
                        "type": f"{summary.flow_id} ➛ {summary.state}",
                        "value": f"Failed on task `{summary.first_failed or ''}` after {summary.duration or ''}",
                        "module": summary.namespace,
                        "stacktrace": {},
                    }
                ]
            },
            "extra": {
                "Namespace": summary.namespace,
                "Flow ID": summary.flow_id,
                "Execution ID": summary.execution_id,
                "Execution Status": summary.state,
                "Final task ID": summary.first_failed or "",
                "Link": summary.link,
                **dict(self.extra or {}),
            },
        }
        if self.transaction is not None:
            event["transaction"] = str(self.transaction)
        if self.serverName is not None:
            event["server_name"] = str(self.serverName)
        if self.errors:
            event["errors"] = dict(self.errors)
        self.log.info("Notifying Sentry: %s — %s", summary.title(), summary.outcome())
        self.deliver(json.dumps(event, ensure_ascii=False), event_id)


class ZendutyAlertOperator(_ServiceOperator, task_type=ZendutyAlert):
    """`io.kestra.plugin.zenduty.ZendutyAlert`: post the JSON `payload` to the integration URL."""

    service = "Zenduty"
    secret_fields = ("url",)

    def run(self, context: Any) -> None:
        """Check the payload and post it."""
        if self.payload is None:
            raise TaskFailure("set `payload`: the Zenduty alert as JSON")
        _json_text(str(self.payload), "payload")
        self.send(str(self.url), str(self.payload).encode())


class ZendutyExecutionOperator(ZendutyAlertOperator, task_type=ZendutyExecution):
    """`io.kestra.plugin.zenduty.ZendutyExecution`: Kestra's `zenduty-template.peb` alert for a run."""

    def run(self, context: Any) -> None:
        """Describe the run and post the alert."""
        summary = self.describe(context)
        links: list[Any] = [{"link_url": summary.link, "link_text": "Execution link"}]
        document: dict[str, Any] = {
            "message": "Kestra workflow execution",
            "alert_type": "error" if summary.first_failed else "resolved",
            "entity_id": summary.execution_id,
            "urls": links,
            "payload": {
                "Namespace": summary.namespace,
                "Flow ID": summary.flow_id,
                "Execution ID": summary.execution_id,
                "Execution Status": summary.state,
                "Final task ID": summary.first_failed or "",
                "Duration": summary.duration or "",
            },
            "summary": (
                f"Kestra workflow execution {summary.execution_id} of a flow {summary.flow_id} in the namespace "
                f"{summary.namespace} changed status to {summary.state}"
            ),
        }
        overrides = {"message": self.message, "summary": self.summary, "entity_id": self.entityId}
        document.update({key: str(value) for key, value in overrides.items() if value is not None})
        if self.alertType is not None:
            document["alert_type"] = str(self.alertType).lower()
        if self.urls:
            document["urls"] = [str(url) for url in self.urls]
        self.log.info("Notifying Zenduty: %s — %s", summary.title(), summary.outcome())
        self.send(str(self.url), json.dumps(document, ensure_ascii=False).encode())


class LineExecutionOperator(_ServiceOperator, task_type=LineExecution):
    """`io.kestra.plugin.line.LineExecution`: broadcast Kestra's `line-template.peb` text (or `textBody`)."""

    service = "LINE"
    secret_fields = ("channelAccessToken",)

    def text(self, summary: ExecutionSummary) -> str:
        """Kestra's template, line for line."""
        lines = [
            f"Execution {summary.state}",
            "Details:",
            f"- ID: {summary.execution_id}",
            f"- Namespace: {summary.namespace}",
            f"- Flow: {summary.flow_id}",
            f"- Started: {summary.start_date.isoformat() if summary.start_date else ''}",
            f"- Duration: {summary.duration or ''}",
        ]
        if summary.first_failed:
            lines.append(f"- Failed Task: {summary.first_failed}")
        if summary.custom_message is not None:
            lines.append(summary.custom_message)
        lines += [f"- {key}: {value}" for key, value in summary.custom_fields.items()]
        lines.append(f"View Execution: {summary.link}")
        return "\n".join(lines)

    def run(self, context: Any) -> None:
        """Build the text and broadcast it."""
        if self.textBody is not None:
            text = str(self.textBody)
        else:
            summary = self.describe(context)
            self.log.info("Notifying LINE: %s — %s", summary.title(), summary.outcome())
            text = self.text(summary)
        token = str(self.channelAccessToken or "")
        if not token:
            raise TaskFailure("`channelAccessToken` rendered empty")
        body = json.dumps({"messages": [{"type": "text", "text": text}]}, ensure_ascii=False).encode()
        self.send(str(self.url), body, {"Authorization": f"Bearer {token}"})
