"""Operators for Kestra's chat notifications: incoming webhooks and `*Execution` run summaries, on httpx.

The webhook `url` is a secret (it alone lets anyone post): it is registered with Airflow's
secrets masker before and after rendering, logs name only the service and errors only
`scheme://host:port`. The JSON sent is checked before it is sent (Kestra would post invalid JSON
and let the service refuse it). `*Execution` tasks build the message of Kestra's templates from
`execution_summary.describe_execution`.
"""

from __future__ import annotations

import json
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
    MattermostIncomingWebhook,
    SlackExecution,
    SlackIncomingWebhook,
    TeamsExecution,
    TeamsIncomingWebhook,
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
