"""Kestra's notification tasks: chat incoming webhooks, `*Execution` run summaries, and email (MailSend).

Names: `io.kestra.plugin.notifications.<service>.*` (plugin-notifications), the newer
`io.kestra.plugin.slack.notifications.*` and `io.kestra.plugin.email.*` names the blueprints use.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from yaml2dag.tasktypes.base import KestraModel, TaskBase, Text, choice, is_expression, literal_or_expression, rendered
from yaml2dag.tasktypes.http import HttpOptions, HttpUrl

_WEBHOOK = "yaml2dag.operators.notifications"
_MAIL = "yaml2dag.operators.mail"
_N = "io.kestra.plugin.notifications"
TRANSPORT_STRATEGIES = ("SMTP", "SMTPS", "SMTP_TLS")
#: Sentry's platforms (`platform` of an event), as Kestra lists them.
SENTRY_PLATFORMS = (
    "AS3", "C", "CFML", "COCOA", "CSHARP", "ELIXIR", "HASKELL", "GO", "GROOVY", "JAVA", "JAVASCRIPT", "NATIVE",
    "NODE", "OBJC", "OTHER", "PERL", "PHP", "PYTHON", "RUBY",
)  # fmt: skip


def _port(value: Any) -> Any:
    if isinstance(value, bool) or not (isinstance(value, int) or is_expression(value)):
        raise ValueError("must be a port number (or an expression rendering to one)")
    if isinstance(value, int) and not 0 < value < 65536:
        raise ValueError("must be a port number between 1 and 65535")
    return value


Port = Annotated[
    int | str, AfterValidator(_port), literal_or_expression({"type": "integer", "minimum": 1, "maximum": 65535})
]


class _Webhook(TaskBase):
    """An incoming webhook: POST a JSON `payload` (or a plain `messageText`) to `url` (a secret)."""

    #: The key a plain `messageText` goes under in the JSON sent.
    TEXT_KEY: ClassVar[str] = "text"
    #: The service, for logs and errors.
    SERVICE: ClassVar[str] = "webhook"

    url: HttpUrl = rendered(description="The incoming-webhook URL: a secret, masked in logs (`{{ secret('…') }}`).")
    payload: Text | dict[str, Any] | None = rendered(
        None,
        description="The JSON message (text rendered twice, as Kestra does; a map is sent as JSON).",
    )
    messageText: Text | None = rendered(None, description="A plain-text message, sent as the service's text field.")
    options: HttpOptions | None = rendered(None, description="HTTP options (timeouts, TLS, …) as for http.Request.")

    @model_validator(mode="after")
    def _message(self) -> _Webhook:
        if self.payload is None and self.messageText is None and not self.describes_execution():
            raise ValueError("set `payload` (the JSON message) or `messageText`")
        return self

    @classmethod
    def describes_execution(cls) -> bool:
        """Whether the task writes its own message (the `*Execution` tasks)."""
        return False


class SlackIncomingWebhook(_Webhook):
    """Send a Slack message through an incoming webhook."""

    TYPES: ClassVar = (f"{_N}.slack.SlackIncomingWebhook", "io.kestra.plugin.slack.notifications.SlackIncomingWebhook")
    OPERATOR: ClassVar = f"{_WEBHOOK}:SlackIncomingWebhookOperator"
    SERVICE: ClassVar[str] = "Slack"


class TeamsIncomingWebhook(_Webhook):
    """Send a Microsoft Teams message through an incoming webhook."""

    TYPES: ClassVar = (f"{_N}.teams.TeamsIncomingWebhook", "io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook")
    OPERATOR: ClassVar = f"{_WEBHOOK}:TeamsIncomingWebhookOperator"
    SERVICE: ClassVar[str] = "Microsoft Teams"


class DiscordIncomingWebhook(_Webhook):
    """Send a Discord message through an incoming webhook."""

    TYPES: ClassVar = (f"{_N}.discord.DiscordIncomingWebhook", "io.kestra.plugin.discord.DiscordIncomingWebhook")
    OPERATOR: ClassVar = f"{_WEBHOOK}:DiscordIncomingWebhookOperator"
    TEXT_KEY: ClassVar[str] = "content"
    SERVICE: ClassVar[str] = "Discord"


class GoogleChatIncomingWebhook(_Webhook):
    """Send a Google Chat message through an incoming webhook."""

    TYPES: ClassVar = (f"{_N}.google.GoogleChatIncomingWebhook",)
    OPERATOR: ClassVar = f"{_WEBHOOK}:GoogleChatIncomingWebhookOperator"
    SERVICE: ClassVar[str] = "Google Chat"


class MattermostIncomingWebhook(_Webhook):
    """Send a Mattermost message through an incoming webhook (Slack-compatible JSON)."""

    TYPES: ClassVar = (f"{_N}.mattermost.MattermostIncomingWebhook",)
    OPERATOR: ClassVar = f"{_WEBHOOK}:MattermostIncomingWebhookOperator"
    SERVICE: ClassVar[str] = "Mattermost"


class ZulipIncomingWebhook(_Webhook):
    """Send a Zulip message through an incoming (Slack-compatible) webhook."""

    TYPES: ClassVar = (f"{_N}.zulip.ZulipIncomingWebhook", "io.kestra.plugin.zulip.ZulipIncomingWebhook")
    OPERATOR: ClassVar = f"{_WEBHOOK}:ZulipIncomingWebhookOperator"
    SERVICE: ClassVar[str] = "Zulip"


class _ExecutionSummary(_Webhook):
    """What every `*Execution` task adds: which run to describe, and extra text and fields."""

    executionId: Text = rendered(
        "{{ execution.id }}",
        description="The run to describe: this run (default) or `{{ trigger.executionId }}` in a Flow-triggered flow.",
    )
    customFields: dict[str, Any] | None = rendered(None, description="Extra fields shown with the summary.")
    customMessage: Text | None = rendered(None, description="Extra text shown above the summary.")

    @classmethod
    def describes_execution(cls) -> bool:
        """The `*Execution` tasks write their own message from the run."""
        return True


class SlackExecution(_ExecutionSummary):
    """Post a summary of a run to Slack, as Kestra's `slack-template.peb` does."""

    TYPES: ClassVar = (f"{_N}.slack.SlackExecution", "io.kestra.plugin.slack.notifications.SlackExecution")
    OPERATOR: ClassVar = f"{_WEBHOOK}:SlackExecutionOperator"
    SERVICE: ClassVar[str] = "Slack"

    channel: Text | None = rendered(None, description="Channel to post to (`channel`).")
    username: Text | None = rendered(None, description="Author name shown (`username`).")
    iconUrl: Text | None = rendered(None, description="Author icon URL (`icon_url`).")
    iconEmoji: Text | None = rendered(None, description="Author icon emoji (`icon_emoji`).")


class TeamsExecution(_ExecutionSummary):
    """Post a summary of a run to Microsoft Teams (a MessageCard, as Kestra's template)."""

    TYPES: ClassVar = (f"{_N}.teams.TeamsExecution", "io.kestra.plugin.microsoft365.teams.TeamsExecution")
    OPERATOR: ClassVar = f"{_WEBHOOK}:TeamsExecutionOperator"
    SERVICE: ClassVar[str] = "Microsoft Teams"

    themeColor: Text = rendered("0076D7", description="Card color (hex, default 0076D7).")
    activityTitle: Text | None = rendered(None, description="Card section title.")
    activitySubtitle: Text | None = rendered(None, description="Card section subtitle.")


class DiscordExecution(_ExecutionSummary):
    """Post a summary of a run to Discord (an embed, as Kestra's template)."""

    TYPES: ClassVar = (f"{_N}.discord.DiscordExecution", "io.kestra.plugin.discord.DiscordExecution")
    OPERATOR: ClassVar = f"{_WEBHOOK}:DiscordExecutionOperator"
    TEXT_KEY: ClassVar[str] = "content"
    SERVICE: ClassVar[str] = "Discord"

    username: Text | None = rendered(None, description="Author name shown.")
    avatarUrl: Text | None = rendered(None, description="Author avatar URL.")
    content: Text | None = rendered(None, description="Message text (followed by the run id, as in Kestra).")
    embedList: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"embedList"}


class GoogleChatExecution(_ExecutionSummary):
    """Post a summary of a run to Google Chat (one text message, as Kestra's template)."""

    TYPES: ClassVar = (f"{_N}.google.GoogleChatExecution",)
    OPERATOR: ClassVar = f"{_WEBHOOK}:GoogleChatExecutionOperator"
    SERVICE: ClassVar[str] = "Google Chat"


class RequestOptions(HttpOptions):
    """The `options` of Kestra's Sentry, Zenduty and LINE tasks: HTTP options plus request `headers`."""

    headers: dict[str, Text] | None = Field(default=None, description="HTTP headers added to the request.")


class _ExecutionFields(TaskBase):
    """The run an `*Execution` task describes, and Kestra's extra text and fields."""

    executionId: Text = rendered(
        "{{ execution.id }}",
        description="The run to describe: this run (default) or `{{ trigger.executionId }}` in a Flow-triggered flow.",
    )
    customFields: dict[str, Any] | None = rendered(None, description="Extra fields shown with the summary.")
    customMessage: Text | None = rendered(None, description="Extra text shown with the summary.")


class SentryAlert(TaskBase):
    """Send an event to Sentry: a JSON `payload` (default: "Execution … failed") in an envelope."""

    TYPES: ClassVar = (f"{_N}.sentry.SentryAlert", "io.kestra.plugin.sentry.SentryAlert")
    OPERATOR: ClassVar = f"{_WEBHOOK}:SentryAlertOperator"

    dsn: Text = rendered(description="The project's DSN (a secret, masked), or the full endpoint URL.")
    endpointType: choice("ENVELOPE", "STORE") = rendered(  # type: ignore[valid-type]
        "ENVELOPE", description="ENVELOPE (default, /envelope/) or STORE (the older /store/ endpoint)."
    )
    payload: Text | None = rendered(None, description="The event as JSON (rendered; default: an execution failure).")
    options: RequestOptions | None = rendered(None, description="HTTP options and headers.")


class SentryExecution(_ExecutionFields, SentryAlert):
    """Send a summary of a run to Sentry as an event (Kestra's `sentry-template.peb`)."""

    TYPES: ClassVar = (f"{_N}.sentry.SentryExecution", "io.kestra.plugin.sentry.SentryExecution")
    OPERATOR: ClassVar = f"{_WEBHOOK}:SentryExecutionOperator"

    eventId: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = rendered(
        None, description="The event id: 32 hex digits (default: a new one)."
    )
    platform: choice(*SENTRY_PLATFORMS) = rendered("JAVA", description="Platform of the event (default JAVA).")  # type: ignore[valid-type]
    level: choice("FATAL", "ERROR", "WARNING", "INFO", "DEBUG") = rendered(  # type: ignore[valid-type]
        "ERROR", description="Level of the event (default ERROR)."
    )
    transaction: Text | None = rendered(None, description="The event's transaction (e.g. `/execution/id/…`).")
    serverName: Text | None = rendered(None, description="The event's `server_name`.")
    extra: dict[str, Any] | None = rendered(None, description="Extra entries added to the event's `extra`.")
    errors: dict[str, Any] | None = rendered(None, description="The event's `errors`.")


class ZendutyAlert(TaskBase):
    """Post a JSON `payload` to a Zenduty integration URL (a secret: it holds the integration key)."""

    TYPES: ClassVar = (f"{_N}.zenduty.ZendutyAlert", "io.kestra.plugin.zenduty.ZendutyAlert")
    OPERATOR: ClassVar = f"{_WEBHOOK}:ZendutyAlertOperator"

    url: HttpUrl = rendered(description="The integration URL `https://www.zenduty.com/api/events/<key>/` (masked).")
    payload: Text | None = rendered(None, description="The alert as JSON (rendered).")
    options: RequestOptions | None = rendered(None, description="HTTP options and headers.")


class ZendutyExecution(_ExecutionFields, ZendutyAlert):
    """Post a summary of a run to Zenduty (Kestra's `zenduty-template.peb`)."""

    TYPES: ClassVar = (f"{_N}.zenduty.ZendutyExecution", "io.kestra.plugin.zenduty.ZendutyExecution")
    OPERATOR: ClassVar = f"{_WEBHOOK}:ZendutyExecutionOperator"

    message: Text | None = rendered(None, description="Alert message (default: Kestra workflow execution).")
    summary: Text | None = rendered(None, description="Alert summary (default: the run's state change).")
    alertType: choice("CRITICAL", "ACKNOWLEDGED", "RESOLVED", "ERROR", "WARNING", "INFO") | None = rendered(  # type: ignore[valid-type]
        None, description="Alert type (default: resolved when nothing failed, else error)."
    )
    entityId: Text | None = rendered(None, description="Entity id (default: the execution id).")
    urls: list[Text] | None = rendered(None, description="Links sent as `urls` (replacing the execution link).")


class LineExecution(_ExecutionFields):
    """Broadcast a summary of a run to a LINE Official Account's followers (Kestra's `line-template.peb`)."""

    TYPES: ClassVar = ("io.kestra.plugin.line.LineExecution", f"{_N}.line.LineExecution")
    OPERATOR: ClassVar = f"{_WEBHOOK}:LineExecutionOperator"
    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"templateUri", "templateRenderMap"}

    url: Text = rendered("https://api.line.me/v2/bot/message/broadcast", description="The LINE broadcast API URL.")
    channelAccessToken: Text = rendered(description="The channel access token: a secret, masked in logs.")
    textBody: Text | None = rendered(None, description="Text sent instead of the run summary.")
    options: RequestOptions | None = rendered(None, description="HTTP options and headers.")
    templateUri: Any = None
    templateRenderMap: Any = None


class Attachment(KestraModel):
    """An email attachment: a file of yaml2dag's internal storage."""

    uri: Text = Field(description="kestra:// URI of the file (e.g. `{{ outputs.download.uri }}`).")
    name: Text = Field(description="File name shown in the email.")
    contentType: Text = Field(default="application/octet-stream", description="MIME type of the file.")


class MailSend(TaskBase):
    """Send an email through an SMTP server (TLS, STARTTLS or plain; optional login)."""

    TYPES: ClassVar = (f"{_N}.mail.MailSend", "io.kestra.plugin.email.MailSend")
    OPERATOR: ClassVar = f"{_MAIL}:MailSendOperator"

    host: Text = rendered(description="SMTP server host.")
    port: Port | None = rendered(None, description="SMTP server port (465 for SMTPS, else 25).")
    username: Text | None = rendered(None, description="Login user name.")
    password: Text | None = rendered(None, description="Login password: a secret, masked in logs.")
    transportStrategy: choice(*TRANSPORT_STRATEGIES) = rendered(  # type: ignore[valid-type]
        "SMTPS", description="SMTPS (TLS from the start, default), SMTP_TLS (STARTTLS required) or SMTP."
    )
    sessionTimeout: int | str = rendered(10000, description="Timeout of the SMTP session, in milliseconds (10000).")
    from_: Text = rendered(alias="from", description="Sender address.")
    to: Text | list[Text] = rendered(description="Recipients, separated by `;` (or `,`), or a list.")
    cc: Text | list[Text] | None = rendered(None, description="Carbon-copy recipients, separated by `;`.")
    subject: Text | None = rendered(None, description="Subject.")
    htmlTextContent: Text | None = rendered(None, description="HTML body.")
    plainTextContent: Text | None = rendered(None, description="Plain-text body (the alternative to the HTML one).")
    attachments: list[Attachment] | Text | None = rendered(
        None, description="Files from storage: a list of `{name, uri, contentType}` or a JSON string of one."
    )
    embeddedImages: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"embeddedImages"}


class MailExecution(MailSend):
    """Email a summary of a run (Kestra's `mail-template.hbs.peb` in short: state, failed task, link)."""

    TYPES: ClassVar = (f"{_N}.mail.MailExecution", "io.kestra.plugin.email.MailExecution")
    OPERATOR: ClassVar = f"{_MAIL}:MailExecutionOperator"

    executionId: Text = rendered("{{ execution.id }}", description="The run to describe (default: this run).")
    customFields: dict[str, Any] | None = rendered(None, description="Extra fields shown with the summary.")
    customMessage: Text | None = rendered(None, description="Extra text shown above the summary.")


TASK_TYPES: tuple[type[TaskBase], ...] = (
    SlackIncomingWebhook,
    TeamsIncomingWebhook,
    DiscordIncomingWebhook,
    GoogleChatIncomingWebhook,
    MattermostIncomingWebhook,
    ZulipIncomingWebhook,
    SlackExecution,
    TeamsExecution,
    DiscordExecution,
    GoogleChatExecution,
    MailSend,
    MailExecution,
    SentryAlert,
    SentryExecution,
    ZendutyAlert,
    ZendutyExecution,
    LineExecution,
)
