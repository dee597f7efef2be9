"""Operators for Kestra's HTTP tasks, on httpx; the HTTP client settings the notification tasks share.

`options` (Kestra's `HttpConfiguration`) becomes an `HttpSettings`: timeouts (connect: none by
default; read: PT5M), redirects (followed by default), BASIC/BEARER auth (the password or token is
registered with Airflow's secrets masker), TLS verification (`ssl.insecureTrustAllCertificates`),
failure handling (`allowFailed`, `allowedResponseCodes`) and what to log. Errors name the server
as `scheme://host:port` only: a path or query may hold a secret, and error messages are kept in
XCom (`errorLogs()`), which the masker does not cover.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.tasktypes.base import as_flag, parse_duration
from yaml2dag.tasktypes.http import LOG_TYPES, METHODS, Download, Request

if TYPE_CHECKING:
    import httpx

#: Kestra's default read (idle) timeout.
DEFAULT_READ_TIMEOUT = 300.0
#: Kestra's default limit of a Request response body (`options.maxContentLength`).
DEFAULT_MAX_CONTENT = 10 * 1024 * 1024
#: What the deprecated `logLevel` turns on (Kestra's `HttpConfiguration.logLevel`).
_LOG_LEVELS = {
    "TRACE": LOG_TYPES,
    "ALL": LOG_TYPES,
    "DEBUG": ("REQUEST_HEADERS", "RESPONSE_HEADERS"),
    "INFO": ("RESPONSE_HEADERS",),
}


@dataclass(frozen=True)
class HttpSettings:
    """A rendered `options` block, checked: what the httpx client and the response checks use."""

    connect_timeout: float | None = None
    read_timeout: float = DEFAULT_READ_TIMEOUT
    follow_redirects: bool = True
    allow_failed: bool = False
    allowed_codes: tuple[int, ...] | None = None
    verify: bool = True
    auth: tuple[str, str] | None = None
    bearer: str | None = None
    charset: str | None = "UTF-8"
    logs: frozenset[str] = field(default_factory=frozenset)
    max_content: int = DEFAULT_MAX_CONTENT


def http_settings(
    options: Mapping[str, Any] | None, *, allow_failed: Any = None, ssl: Mapping[str, Any] | None = None
) -> HttpSettings:
    """Read a rendered `options` map (plus the deprecated top-level `allowFailed` and `sslOptions`)."""
    from airflow.sdk.log import mask_secret

    options = dict(options or {})
    timeout = dict(options.get("timeout") or {})
    connect = timeout.get("connectTimeout") or options.get("connectTimeout")
    read = timeout.get("readIdleTimeout") or options.get("readTimeout") or options.get("readIdleTimeout")
    tls = dict(options.get("ssl") or ssl or {})
    auth = dict(options.get("auth") or {})
    if options.get("basicAuthUser") is not None or options.get("basicAuthPassword") is not None:
        auth = {"type": "BASIC", "username": options.get("basicAuthUser"), "password": options.get("basicAuthPassword")}
    basic = bearer = None
    kind = str(auth.get("type", "")).strip().upper()
    if kind == "BASIC":
        basic = (str(auth.get("username") or ""), str(auth.get("password") or ""))
        if basic[1]:
            mask_secret(basic[1])
    elif kind == "BEARER":
        bearer = str(auth.get("token") or "")
        mask_secret(bearer)
    elif auth:
        raise TaskFailure(f"`options.auth.type` rendered `{auth.get('type')}`: use BASIC or BEARER")
    codes = options.get("allowedResponseCodes")
    logs = options.get("logs")
    if logs is None and options.get("logLevel"):
        logs = _LOG_LEVELS.get(str(options["logLevel"]).upper(), ())
    failed = options.get("allowFailed") if allow_failed is None else allow_failed
    return HttpSettings(
        connect_timeout=_seconds(connect, "connectTimeout"),
        read_timeout=_seconds(read, "readIdleTimeout") or DEFAULT_READ_TIMEOUT,
        follow_redirects=_flag(options.get("followRedirects", True), "options.followRedirects"),
        allow_failed=_flag(failed or False, "options.allowFailed"),
        allowed_codes=tuple(int(code) for code in codes) if codes else None,
        verify=not _flag(tls.get("insecureTrustAllCertificates") or False, "ssl.insecureTrustAllCertificates"),
        auth=basic,
        bearer=bearer,
        charset=str(options.get("defaultCharset", "UTF-8") or "") or None,
        logs=frozenset(str(item).upper() for item in logs or ()),
        max_content=int(options.get("maxContentLength") or DEFAULT_MAX_CONTENT),
    )


def _seconds(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_duration(str(value)).total_seconds()
    except ValueError as exc:
        raise TaskFailure(f"`{name}`: {exc}") from None


def _flag(value: Any, name: str) -> bool:
    try:
        return as_flag(value, name)
    except ValueError as exc:
        raise TaskFailure(str(exc)) from None


def http_client(settings: HttpSettings) -> httpx.Client:
    """An httpx client configured by `settings` (use it as a context manager)."""
    import httpx

    headers = {"Authorization": f"Bearer {settings.bearer}"} if settings.bearer else None
    if settings.auth is not None:
        # Mask the header value too: REQUEST_HEADERS logging prints it.
        from airflow.sdk.log import mask_secret

        mask_secret(httpx.BasicAuth(*settings.auth)._auth_header)
    return httpx.Client(
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        follow_redirects=settings.follow_redirects,
        verify=settings.verify,
        auth=httpx.BasicAuth(*settings.auth) if settings.auth is not None else None,
        headers=headers,
    )


def server_of(url: str) -> str:
    """`scheme://host:port` of `url`: names the server without a path, query or credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def checked_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Rendered headers as text; a name or value holding CR, LF or NUL (header injection) is refused."""
    checked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)
        for part, content in (("name", str(name)), ("value", text)):
            if any(char in content for char in "\r\n\0"):
                raise TaskFailure(
                    f"header `{str(name).strip()}`: its rendered {part} contains a line break or NUL, which "
                    "would inject another header; refused"
                )
        checked[str(name)] = text
    return checked


@contextmanager
def http_errors(url: str, what: str = "request") -> Iterator[None]:
    """Turn httpx's transport errors into task failures naming the server (never the path or query)."""
    import httpx

    server = server_of(url)
    try:
        yield
    except httpx.ConnectTimeout:
        raise TaskFailure(f"{what} to {server}: connection timed out (options.timeout.connectTimeout)") from None
    except httpx.ReadTimeout:
        raise TaskFailure(
            f"{what} to {server}: no data from the server within the read timeout (options.timeout.readIdleTimeout)"
        ) from None
    except httpx.ConnectError as exc:
        reason = _reason(exc)
        if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate" in reason.lower():
            raise TaskFailure(
                f"{what} to {server}: TLS certificate verification failed ({reason}); trust the server's "
                "CA, or set `options.ssl.insecureTrustAllCertificates: true` for a test server"
            ) from None
        raise TaskFailure(f"{what} to {server}: cannot connect ({reason})") from None
    except httpx.TooManyRedirects:
        raise TaskFailure(f"{what} to {server}: too many redirects") from None
    except httpx.UnsupportedProtocol as exc:
        raise TaskFailure(f"{what}: unsupported URL ({_reason(exc)}); use http:// or https://") from None
    except httpx.InvalidURL as exc:
        raise TaskFailure(f"{what}: invalid URL ({_reason(exc)})") from None
    except httpx.HTTPError as exc:
        raise TaskFailure(f"{what} to {server} failed: {type(exc).__name__}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    from airflow.sdk.log import redact

    return str(redact(str(exc) or type(exc).__name__))


def response_fails(code: int, settings: HttpSettings) -> bool:
    """Whether a response code fails the task: >= 400 unless `allowFailed`; outside `allowedResponseCodes`."""
    if settings.allowed_codes is not None:
        return code not in settings.allowed_codes
    return code >= 400 and not settings.allow_failed


def check_response(code: int, settings: HttpSettings, url: str, body: str | None) -> None:
    """Fail on a response code >= 400 (unless `allowFailed`), or outside `allowedResponseCodes` when set."""
    if response_fails(code, settings):
        from airflow.sdk.log import redact

        excerpt = f": {str(redact(body))[:500]}" if body else ""
        allowed = f" (allowed: {', '.join(map(str, settings.allowed_codes))})" if settings.allowed_codes else ""
        raise TaskFailure(f"Failed http request to {server_of(url)} with response code '{code}'{allowed}{excerpt}")


def response_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Response headers as Kestra outputs them: name (as the server wrote it) → list of values."""
    headers: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1")
        key = names.setdefault(name.lower(), name)
        headers.setdefault(key, []).append(raw_value.decode("latin-1"))
    return headers


def request_url(uri: str, query: Mapping[str, Any] | None = None) -> str:
    """The rendered `uri` (spaces encoded, as Kestra does) with `params` appended."""
    url = str(uri).strip().replace(" ", "%20")
    if not url.lower().startswith(("http://", "https://")):
        raise TaskFailure(f"`uri` rendered `{server_of(url) if '://' in url else url[:80]}`: use an http(s) URL")
    if query:
        pairs = [
            (str(name), _text(item))
            for name, value in query.items()
            for item in (value if isinstance(value, list) else [value])
        ]
        url += ("&" if urllib.parse.urlsplit(url).query else "?") + urllib.parse.urlencode(pairs)
    return url


def _text(value: Any) -> str:
    """A form or query value as text: strings as they are, numbers and booleans the Java way, maps as JSON."""
    from yaml2dag.expressions.values import java_string

    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return java_string(value)


class _HttpOperator(KestraOperator):
    """Shared by Request and Download: builds the request from the declared properties."""

    ui_color = "#e6f4ea"
    _open_files: ExitStack

    def settings(self) -> HttpSettings:
        """The rendered `options` (and deprecated top-level names) as `HttpSettings`."""
        return http_settings(self.options, allow_failed=self.allowFailed, ssl=self.sslOptions)

    def method_name(self) -> str:
        """The rendered `method`, checked."""
        method = str(self.method).strip().upper()
        if method not in METHODS:
            raise TaskFailure(f"`method` rendered `{self.method}`: use one of {', '.join(METHODS)}")
        return method

    def build_request(self, client: httpx.Client, settings: HttpSettings, url: str) -> httpx.Request:
        """The request: Kestra's body rules (formData, body, or only a Content-Type header) and headers."""
        headers = checked_headers(self.headers)
        content_type = str(self.contentType) if self.contentType else None
        arguments: dict[str, Any] = {}
        if self.formData:
            if content_type and content_type.split(";")[0].strip().lower() == "multipart/form-data":
                arguments.update(self.multipart(self.formData))
            else:
                arguments["data"] = {str(name): _text(value) for name, value in self.formData.items()}
        elif self.body is not None:
            body = self.body if isinstance(self.body, str) else json.dumps(self.body)
            charset = settings.charset or "UTF-8"
            try:
                arguments["content"] = body.encode(charset)
            except LookupError:
                raise TaskFailure(f"`options.defaultCharset` `{charset}` is not a known charset") from None
            if content_type:
                has_charset = "charset=" in content_type.lower()
                value = content_type if has_charset or not settings.charset else f"{content_type}; charset={charset}"
                headers.setdefault("Content-Type", value)
        elif content_type:
            headers.setdefault("Content-Type", content_type)
        if {name.lower() for name in headers} & {"content-type"} and "files" in arguments:
            # httpx writes the multipart boundary into Content-Type itself.
            headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
        return client.build_request(self.method_name(), url, headers=headers, **arguments)

    @contextmanager
    def files_closed(self) -> Iterator[None]:
        """Close the storage files a multipart body opened once the request is done."""
        with ExitStack() as stack:
            self._open_files = stack
            yield

    def multipart(self, form: Mapping[str, Any]) -> dict[str, Any]:
        """A multipart body: kestra:// values and `{name, content}` maps are files read from storage."""
        parts: list[tuple[str, tuple[str | None, Any]]] = []
        for name, value in form.items():
            if isinstance(value, str) and value.startswith("kestra://"):
                parts.append(
                    (str(name), (value.rsplit("/", 1)[-1], self._open_files.enter_context(_storage_file(value))))
                )
            elif isinstance(value, dict) and "name" in value and "content" in value:
                opened = self._open_files.enter_context(_storage_file(str(value["content"])))
                parts.append((str(name), (str(value["name"]), opened)))
            else:
                # No file name: a plain form field, still sent as multipart (as Kestra does).
                parts.append((str(name), (None, _text(value))))
        return {"files": parts}

    def log_request(self, request: httpx.Request, settings: HttpSettings) -> None:
        """Log the request's headers and body when `options.logs` asks for them (secrets masked)."""
        if "REQUEST_HEADERS" in settings.logs:
            self.log.info("Request headers: %s", dict(request.headers))
        if "REQUEST_BODY" in settings.logs and request.content:
            self.log.info("Request body: %s", request.content.decode("utf-8", "replace")[:10_000])

    def log_response(self, response: httpx.Response, settings: HttpSettings, body: str | None) -> None:
        """Log the response's headers and body when `options.logs` asks for them."""
        if "RESPONSE_HEADERS" in settings.logs:
            self.log.info("Response headers: %s", response_headers(response))
        if "RESPONSE_BODY" in settings.logs and body:
            self.log.info("Response body: %s", body[:10_000])


def _storage_file(uri: str) -> Any:
    """A context manager opening a file of yaml2dag's internal storage (`kestra://…`) for httpx to stream."""
    from yaml2dag import storage

    if not storage.exists(uri):
        raise TaskFailure(f"formData file `{uri}`: no such file in the storage")
    return storage.open_read(uri)


class HttpRequestOperator(_HttpOperator, task_type=Request):
    """`io.kestra.plugin.core.http.Request` (alias `io.kestra.plugin.fs.http.Request`).

    Outputs `uri` (the URL called), `code`, `headers` (name → list of values) and `body`: the
    response text, decoded as UTF-8 and *not* parsed (as in Kestra: read JSON with
    `fromJson(outputs.x.body)` or `jq`); registered secrets are masked as `***` in all of them.
    A response code >= 400 fails the task unless `options.allowFailed`; a body larger than
    `options.maxContentLength` (10 MB) fails it.
    """

    def run(self, context: Any) -> dict[str, Any]:
        """Send the request, read the response (bounded), check its code and return the outputs."""
        from airflow.sdk.log import redact

        settings = self.settings()
        url = request_url(self.uri, self.query)
        with http_errors(url), http_client(settings) as client, self.files_closed():
            request = self.build_request(client, settings, url)
            self.log_request(request, settings)
            response = client.send(request, stream=True)
            try:
                content = _read_limited(response, settings.max_content)
            finally:
                response.close()
        body = content.decode("utf-8", "replace") if content else None
        self.log.info("%s %s → %s (%d bytes)", request.method, url, response.status_code, len(content))
        self.log_response(response, settings, body)
        check_response(response.status_code, settings, url, body)
        # Registered secrets (a token the server echoes back) are masked in the outputs too: XCom is
        # shown in the UI and not covered by the log masker.
        return {
            "uri": str(redact(url)),
            "code": response.status_code,
            "headers": redact(response_headers(response)),
            "body": redact(body) if body is not None else None,
        }


def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes (without reading them into memory)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise TaskFailure(
                f"the response body is larger than {limit} bytes (options.maxContentLength); "
                "raise the limit or use io.kestra.plugin.core.http.Download"
            )
        chunks.append(chunk)
    return b"".join(chunks)


class HttpDownloadOperator(_HttpOperator, task_type=Download):
    """`io.kestra.plugin.core.http.Download` (alias `io.kestra.plugin.fs.http.Download`).

    The body is streamed (64 KiB at a time) into a new file of yaml2dag's internal storage, so
    memory stays bounded whatever the size. Outputs `uri` (kestra://), `code`, `length` (bytes
    stored) and `headers`. A body shorter than its Content-Length fails the task (as in Kestra), as
    does an empty one unless `failOnEmptyResponse: false` or `options.allowFailed`.
    """

    def run(self, context: Any) -> dict[str, Any]:
        """Stream the response into storage, then check its code and length."""
        from yaml2dag import storage

        settings = self.settings()
        url = request_url(self.uri, self.query)
        with http_errors(url, "download"), http_client(settings) as client, self.files_closed():
            request = self.build_request(client, settings, url)
            self.log_request(request, settings)
            response = client.send(request, stream=True)
            try:
                if response_fails(response.status_code, settings):
                    excerpt = next(response.iter_bytes(4096), b"").decode("utf-8", "replace")
                    check_response(response.status_code, settings, url, excerpt)
                with storage.open_write(context, self.file_name(response, url)) as (uri, target):
                    length = 0
                    for chunk in response.iter_bytes(65536):
                        target.write(chunk)
                        length += len(chunk)
            finally:
                response.close()
        self.log_response(response, settings, None)
        expected = response.headers.get("Content-Length")
        if (
            expected is not None
            and expected.isdigit()
            and int(expected) != length
            and not response.headers.get("Content-Encoding")
        ):
            storage.delete(uri)
            raise TaskFailure(f"Invalid size, got {length}, expected {expected} (the connection was cut)")
        if length == 0:
            if _flag(self.failOnEmptyResponse, "failOnEmptyResponse") and not settings.allow_failed:
                storage.delete(uri)
                raise TaskFailure(f"No response from server {server_of(url)}: the body is empty")
            self.log.warning("The downloaded file is empty")
        self.log.info("Downloaded %d bytes from %s into %s", length, server_of(url), uri)
        return {"uri": uri, "code": response.status_code, "length": length, "headers": response_headers(response)}

    def file_name(self, response: httpx.Response, url: str) -> str:
        """`saveAs`, else the Content-Disposition file name, else the URL's last path segment."""
        if self.saveAs:
            return str(self.saveAs)
        disposition = response.headers.get("Content-Disposition") or ""
        match = re.search(r"filename\*\s*=\s*[^']*'[^']*'([^;]+)", disposition) or re.search(
            r'filename\s*=\s*"?([^";]+)"?', disposition
        )
        if match:
            name = urllib.parse.unquote(match.group(1).strip()).replace("\\", "/").rsplit("/", 1)[-1]
            if name not in ("", ".", ".."):
                return name
        segment = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        return segment if segment not in ("", ".", "..") else "download"
