"""Kestra's HTTP tasks: `http.Request` and `http.Download` (and their `fs.http` legacy names), and `options`."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from yaml2dag.tasktypes.base import (
    DurationText,
    Flag,
    KestraModel,
    TaskBase,
    Text,
    choice,
    is_expression,
    literal_or_expression,
    rendered,
)

_HTTP = "yaml2dag.operators.http"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
LOG_TYPES = ("REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY")


def _http_url(value: str) -> str:
    """A literal URL must be http(s); an expression is checked when rendered."""
    if not is_expression(value) and not value.strip().lower().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL (or an expression rendering to one)")
    return value


def _no_line_breaks(value: Any) -> Any:
    """Header names and literal values cannot hold CR, LF or NUL: that would inject headers."""
    if isinstance(value, dict):
        for name, item in value.items():
            for part, text in (("name", name), ("value", item)):
                if isinstance(text, str) and any(char in text for char in "\r\n\0"):
                    raise ValueError(
                        f"header `{str(name).strip()}`: its {part} contains a line break or NUL, which would "
                        "inject another header; remove it"
                    )
    return value


#: An http(s) URL, or an expression rendering to one.
HttpUrl = Annotated[
    str,
    AfterValidator(_http_url),
    literal_or_expression({"type": "string", "pattern": "^\\s*[Hh][Tt][Tt][Pp][Ss]?://"}),
]
#: Request headers: name → value (a literal value with CR/LF is refused at validation, a rendered one at run time).
Headers = Annotated[
    dict[str, Text],
    AfterValidator(_no_line_breaks),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": "^[^\\r\\n\\x00]*$"},
            "additionalProperties": {"type": "string", "pattern": "^[^\\r\\n\\x00]*$"},
        }
    ),
]


class TimeoutOptions(KestraModel):
    """`options.timeout`: how long to wait for the connection and for each read."""

    connectTimeout: DurationText | None = Field(default=None, description="Time allowed to connect (no default).")
    readIdleTimeout: DurationText | None = Field(
        default=None, description="Longest wait for data from the server (default PT5M)."
    )


class AuthOptions(KestraModel):
    """`options.auth`: BASIC (`username`, `password`) or BEARER (`token`) authentication."""

    type: choice("BASIC", "BEARER") = Field(description="BASIC or BEARER.")  # type: ignore[valid-type]
    username: Text | None = Field(default=None, description="BASIC: user name.")
    password: Text | None = Field(default=None, description="BASIC: password (masked in logs).")
    token: Text | None = Field(default=None, description="BEARER: token sent as `Authorization: Bearer …` (masked).")

    @model_validator(mode="after")
    def _complete(self) -> AuthOptions:
        if self.type == "BASIC" and self.username is None:
            raise ValueError("BASIC auth needs `username` (and usually `password`)")
        if self.type == "BEARER" and self.token is None:
            raise ValueError("BEARER auth needs `token`")
        return self


class SslOptions(KestraModel):
    """`options.ssl` (and the deprecated `sslOptions`): TLS settings."""

    insecureTrustAllCertificates: Flag | None = Field(
        default=None, description="Accept any server certificate (self-signed, wrong host): for tests only."
    )


class HttpOptions(KestraModel):
    """`options` of the HTTP tasks (Kestra's `HttpConfiguration`), deprecated names included."""

    timeout: TimeoutOptions | None = None
    proxy: dict[str, Any] | None = None
    auth: AuthOptions | None = None
    ssl: SslOptions | None = None
    followRedirects: Flag = Field(default=True, description="Follow 3xx redirects (default true).")
    allowFailed: Flag = Field(default=False, description="A response code >= 400 does not fail the task.")
    allowedResponseCodes: list[int] | None = Field(
        default=None, description="Only these response codes succeed (any other fails), whatever allowFailed says."
    )
    defaultCharset: Text | None = Field(default="UTF-8", description="Charset of a text `body` sent (UTF-8).")
    logs: list[choice(*LOG_TYPES)] | None = Field(  # type: ignore[valid-type]
        default=None, description="What to log: REQUEST_HEADERS, REQUEST_BODY, RESPONSE_HEADERS, RESPONSE_BODY."
    )
    # Deprecated in Kestra, still read.
    connectTimeout: DurationText | None = Field(default=None, description="Deprecated: `timeout.connectTimeout`.")
    readTimeout: DurationText | None = Field(default=None, description="Deprecated: `timeout.readIdleTimeout`.")
    readIdleTimeout: DurationText | None = Field(default=None, description="Deprecated: `timeout.readIdleTimeout`.")
    connectionPoolIdleTimeout: DurationText | None = Field(default=None, description="Deprecated, ignored.")
    maxContentLength: int | None = Field(
        default=None, ge=1, description="Request: largest response body read, in bytes (default 10 MB)."
    )
    basicAuthUser: Text | None = Field(default=None, description="Deprecated: `auth` with type BASIC.")
    basicAuthPassword: Text | None = Field(default=None, description="Deprecated: `auth` with type BASIC.")
    logLevel: choice("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF", "ALL") | None = Field(  # type: ignore[valid-type]
        default=None, description="Deprecated: `logs` (TRACE: all, DEBUG: headers, INFO: response headers)."
    )
    proxyType: Any = None
    proxyAddress: Any = None
    proxyPort: Any = None
    proxyUsername: Any = None
    proxyPassword: Any = None

    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset(
        {"proxy", "proxyType", "proxyAddress", "proxyPort", "proxyUsername", "proxyPassword"}
    )

    @model_validator(mode="after")
    def _one_auth(self) -> HttpOptions:
        if self.auth is not None and (self.basicAuthUser is not None or self.basicAuthPassword is not None):
            raise ValueError("set `auth` or the deprecated `basicAuthUser`/`basicAuthPassword`, not both")
        return self


class _HttpTask(TaskBase):
    """Properties Request and Download share (Kestra's `AbstractHttp`)."""

    uri: HttpUrl = rendered(description="The URL to call (spaces are encoded as %20).")
    method: choice(*METHODS) = rendered("GET", description="HTTP method (default GET).")  # type: ignore[valid-type]
    body: Any = rendered(None, description="Request body as text; a map or list is sent as JSON.")
    formData: dict[str, Any] | None = rendered(
        None,
        description="Form fields: URL-encoded, or multipart with `contentType: multipart/form-data` "
        "(a kestra:// value or `{name, content}` sends a file from storage).",
    )
    contentType: Text = rendered("application/json", description="Content type of the body (application/json).")
    headers: Headers | None = rendered(None, description="Request headers; values are rendered.")
    query: dict[str, Any] | None = rendered(
        None, alias="params", description="Query parameters added to the URL (a list value repeats the parameter)."
    )
    options: HttpOptions | None = rendered(None, description="Timeouts, auth, TLS, redirects, failure handling.")
    allowFailed: Flag | None = rendered(None, description="Deprecated: `options.allowFailed`.")
    sslOptions: SslOptions | None = rendered(None, description="Deprecated: `options.ssl`.")

    @model_validator(mode="after")
    def _body_or_form(self) -> _HttpTask:
        if self.body is not None and self.formData is not None:
            raise ValueError("set `body` or `formData`, not both")
        return self


class Request(_HttpTask):
    """Call an HTTP endpoint; outputs `code`, `headers`, `body` (text) and `uri`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.http.Request", "io.kestra.plugin.fs.http.Request")
    OPERATOR: ClassVar = f"{_HTTP}:HttpRequestOperator"

    encryptBody: Flag = Field(default=False, description="Encrypt the body output (Kestra's encryption).")

    UNSUPPORTED: ClassVar[frozenset[str]] = TaskBase.UNSUPPORTED | {"encryptBody"}


class Download(_HttpTask):
    """Download a file into yaml2dag's internal storage (streamed); outputs `uri`, `code`, `length`, `headers`."""

    TYPES: ClassVar = ("io.kestra.plugin.core.http.Download", "io.kestra.plugin.fs.http.Download")
    OPERATOR: ClassVar = f"{_HTTP}:HttpDownloadOperator"

    failOnEmptyResponse: Flag = rendered(True, description="Fail when the server sends an empty body (default true).")
    saveAs: Text | None = rendered(
        None, description="Name of the stored file (default: from Content-Disposition, else the URL's last segment)."
    )


TASK_TYPES: tuple[type[TaskBase], ...] = (Request, Download)
