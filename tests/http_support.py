"""A real HTTP(S) server on 127.0.0.1 for the HTTP and notification tests, and a self-signed certificate.

Routes: `/json`, `/text`, `/echo` (the request as JSON), `/redirect` (301 → /json), `/status/<code>`,
`/slow` (answers after 3 s), `/chunked` (a chunked JSON body), `/bytes/<n>` (n bytes, streamed in
64 KiB chunks, chunked), `/lines/<n>` (the same as 100-byte lines), `/report` (a CSV with
Content-Disposition), `/empty`, `/truncated` (a body shorter than its Content-Length), `/price`
(`{"price": p}`, p = 150, 130, 110, …: 20 less on each request), `/answer/<name>` (the JSON a test
put in `server.answers[name]`, 404 without), and any POST to `/hook/...` (recorded, answers `ok`).
Every request is recorded in `server.received` (method, path, headers, body).
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Received:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class LoopbackServer:
    """A running server: its base URL and what it received."""

    url: str
    received: list[Received] = field(default_factory=list)
    #: What `/answer/<name>` returns (JSON), set by the test while the server runs.
    answers: dict[str, object] = field(default_factory=dict)

    def hooks(self) -> list[Received]:
        return [request for request in self.received if request.path.startswith("/hook")]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        return

    def _record(self) -> Received:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Received(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
        self.server.state.received.append(request)  # type: ignore[attr-defined]
        return request

    def _send(self, code: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunked(self, chunks: list[bytes] | None = None, total: int = 0, block: bytes = b"x" * 65536) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream" if total else "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if total:
            left = total
            while left > 0:
                part = block[: min(left, len(block))]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                left -= len(part)
        for chunk in chunks or []:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _handle(self) -> None:
        request = self._record()
        path = self.path.split("?")[0]
        if path == "/json":
            self._send(200, b'{ "hello": "world" }', X_Custom="one")
        elif path == "/text":
            self._send(200, b"plain <b>text</b>, not JSON", "text/plain")
        elif path == "/echo":
            echo = {
                "method": request.method,
                "path": request.path,
                "headers": request.headers,
                "body": request.body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(echo).encode())
        elif path == "/redirect":
            self._send(301, b"", "text/plain", Location="/json")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b'{"error": "boom"}')
        elif path == "/slow":
            time.sleep(3)
            self._send(200, b'{"slow": true}')
        elif path == "/chunked":
            self._chunked([b'{"parts": ', b"[1, 2, 3]", b"}"])
        elif path.startswith("/bytes/"):
            self._chunked(total=int(path.rsplit("/", 1)[1]))
        elif path.startswith("/lines/"):
            self._chunked(total=int(path.rsplit("/", 1)[1]), block=(b"y" * 99 + b"\n") * 655)
        elif path == "/report":
            self._send(
                200, b"id,amount\n1,10\n2,20\n", "text/csv", Content_Disposition='attachment; filename="report.csv"'
            )
        elif path == "/empty":
            self._send(200, b"", "text/plain")
        elif path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only ten b")
            self.close_connection = True
        elif path == "/price":
            asked = sum(1 for seen in self.server.state.received if seen.path.split("?")[0] == "/price")  # type: ignore[attr-defined]
            self._send(200, json.dumps({"price": 150 - 20 * (asked - 1)}).encode(), X_Price=str(asked))
        elif path.startswith("/answer/") and path.removeprefix("/answer/") in self.server.state.answers:  # type: ignore[attr-defined]
            self._send(200, json.dumps(self.server.state.answers[path.removeprefix("/answer/")]).encode())  # type: ignore[attr-defined]
        elif path.startswith("/hook"):
            self._send(200, b"ok", "text/plain")
        else:
            self._send(404, b'{"error": "not found"}')

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


def start_server(tls: tuple[Path, Path] | None = None) -> tuple[LoopbackServer, ThreadingHTTPServer]:
    """Start a server on a free port of 127.0.0.1 (HTTPS with `tls` = (certificate, key))."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    state = LoopbackServer(f"{scheme}://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return state, httpd


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with `cryptography`: (certificate file, key file)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yaml2dag test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
