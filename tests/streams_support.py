"""Real receivers for the streams tests: a TLS syslog listener and a Standard Webhooks receiver.

The syslog listener is Python's ssl server with a certificate made here with `cryptography`;
it parses RFC 6587 octet-counted frames. The HTTP receiver verifies every request's signature
and can be told to fail, hang, or take half a batch and then fail.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import standardwebhooks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificate:
    cert_pem: str
    cert_file: str
    key_file: str


def self_signed(directory: Path, *, name: str = "localhost", ip: str = "127.0.0.1") -> Certificate:
    """A self-signed certificate (its own CA) for `name` and `ip`, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(ip))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_text(cert_pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_pem, str(cert_file), str(key_file))


@dataclass
class SyslogMessage:
    header: str  # "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD"
    payload: str  # after the BOM

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.payload)
        return parsed


def parse_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """Octet-counted frames ("LEN SP MSG") in data, and what is left of an unfinished one."""
    frames = []
    while data:
        length, space, rest = data.partition(b" ")
        if not space:
            break
        size = int(length)
        if len(rest) < size:
            break
        frames.append(rest[:size])
        data = rest[size:]
    return frames, data


class SyslogListener:
    """An RFC 5425 syslog-over-TLS receiver on loopback: start, stop and start again."""

    def __init__(self, certificate: Certificate, port: int = 0) -> None:
        self.certificate = certificate
        self.messages: list[SyslogMessage] = []
        self.port = port
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> SyslogListener:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate.cert_file, self.certificate.key_file)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        server.settimeout(0.1)
        self.port = server.getsockname()[1]
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, args=(server, context), daemon=True)
        self._thread.start()
        return self

    def _serve(self, server: socket.socket, context: ssl.SSLContext) -> None:
        while not self._stopping.is_set():
            try:
                raw, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._read, args=(raw, context), daemon=True).start()

    def _read(self, raw: socket.socket, context: ssl.SSLContext) -> None:
        raw.settimeout(5)
        try:
            with context.wrap_socket(raw, server_side=True) as conn:
                buffer = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    frames, buffer = parse_frames(buffer + chunk)
                    for frame in frames:
                        header, _, payload = frame.partition(b"\xef\xbb\xbf")
                        self.messages.append(
                            SyslogMessage(header.decode().rstrip(), payload.decode())
                        )
        except (ssl.SSLError, OSError):
            pass  # a client that refused our certificate, or went away

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.close()

    def ids(self) -> list[int]:
        return [message.json["id"] for message in self.messages]


@dataclass
class HttpReceiver:
    """A Standard Webhooks receiver: verifies each POST, records the events of accepted lines.

    mode: "accept" (204), "fail" (500), "hang" (answers after `hang_seconds`), "half" (keeps
    the first half of the batch's lines, then answers 500).
    """

    secret: str = ""
    hec_token: str = ""
    mode: str = "accept"
    hang_seconds: float = 2.0
    lines: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    port: int = 0
    server: ThreadingHTTPServer | None = None

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(headers)
                status = 204
                try:
                    if receiver.hec_token and (
                        headers.get("authorization") != f"Splunk {receiver.hec_token}"
                    ):
                        raise ValueError("wrong HEC token")
                    if receiver.secret:
                        standardwebhooks.Webhook(receiver.secret).verify(
                            body, headers, json_parse=False
                        )
                except Exception:
                    receiver.bad_signatures += 1
                    status = 401
                else:
                    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                    if receiver.mode == "fail":
                        status = 500
                    elif receiver.mode == "half":
                        receiver.lines.extend(lines[: len(lines) // 2])
                        status = 500
                    elif receiver.mode == "hang":
                        time.sleep(receiver.hang_seconds)
                        status = 500
                    else:
                        receiver.lines.extend(lines)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/intake"

    def ids(self) -> list[int]:
        return [line.get("id", line.get("event", {}).get("id")) for line in self.lines]


def first_seen(ids: list[int]) -> list[int]:
    """The ids in the order each first arrived (duplicates from retries dropped)."""
    return list(dict.fromkeys(ids))
