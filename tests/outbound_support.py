"""Real local servers for the outbound tests: an HTTP(S) receiver, a TCP listener, certificates."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Certificate:
    cert: str
    key: str


def certificate(directory: Path, *, name: str, san: str) -> Certificate:
    """A self-signed certificate (its own CA) for `san`, e.g. "DNS:hook.test" or "IP:127.0.0.1"."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={san}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(str(cert), str(key))


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Send the body this many bytes at a time with this pause between (a slow drip).
    drip_bytes: int = 0
    drip_pause: float = 0.0


class Receiver:
    """A local HTTP or HTTPS server that records requests and answers as told."""

    def __init__(self, *, host: str = "127.0.0.1", tls: Certificate | None = None) -> None:
        self.requests: list[Received] = []
        self.server_names: list[str | None] = []
        self.answer = Answer()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(
                    Received(self.command, self.path, dict(self.headers), body)
                )
                answer = receiver.answer
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if answer.drip_bytes:
                        for start in range(0, len(answer.body), answer.drip_bytes):
                            self.wfile.write(answer.body[start : start + answer.drip_bytes])
                            self.wfile.flush()
                            time.sleep(answer.drip_pause)
                    else:
                        self.wfile.write(answer.body)
                except OSError:
                    pass  # the client stopped reading, as it should past its cap

            do_POST = do_GET = _handle  # noqa: N815 - the http.server API

            def log_message(self, *args: object) -> None:
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)

            def remember(sock: ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
                receiver.server_names.append(name)

            # typeshed says (SSLObject, str, ...); Python's documentation (and a wrapped socket)
            # pass the SSLSocket, and None for a client that sends no server name.
            context.sni_callback = remember  # type: ignore[assignment]
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


class Listener:
    """A TCP port on loopback (IPv4 and IPv6) that counts the connections made to it."""

    def __init__(self) -> None:
        self.accepted = 0
        self._v4 = socket.create_server(("127.0.0.1", 0))
        self.port = self._v4.getsockname()[1]
        self._sockets = [self._v4]
        with contextlib.suppress(OSError):  # no IPv6 loopback here: the IPv4 one still counts
            self._sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._accept, args=(s,), daemon=True) for s in self._sockets
        ]

    def _accept(self, sock: socket.socket) -> None:
        sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def __enter__(self) -> Listener:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for sock in self._sockets:
            sock.close()


# URLs an attacker gives as a webhook, each with the words its refusal must contain. {port} is a
# local Listener's port, so a connection that was made anyway would be counted.
ADDRESS = "private, loopback or reserved"
NOT_A_HOST = "neither a host name nor an IP address"
HOSTILE_URLS: list[tuple[str, str]] = [
    ("https://[64:ff9b::7f00:1]:{port}/hook", ADDRESS),  # NAT64 of 127.0.0.1
    ("https://[2002:7f00:1::]:{port}/hook", ADDRESS),  # 6to4 of 127.0.0.1
    ("https://[::127.0.0.1]:{port}/hook", ADDRESS),  # IPv4-compatible
    ("https://[64:ff9b::a9fe:a9fe]:{port}/latest/meta-data", ADDRESS),  # NAT64 of the metadata
    ("https://224.0.0.1:{port}/hook", ADDRESS),  # multicast
    ("https://127.0.0.1:{port}/hook", ADDRESS),
    ("https://localhost:{port}/hook", ADDRESS),
    ("https://10.1.2.3:{port}/hook", ADDRESS),
    ("https://169.254.169.254:{port}/latest/meta-data", ADDRESS),
    ("https://[::1]:{port}/hook", ADDRESS),
    ("https://[::ffff:127.0.0.1]:{port}/hook", ADDRESS),  # IPv4-mapped
    ("https://[::ffff:7f00:1]:{port}/hook", ADDRESS),  # the same, written in hex
    ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/hook", ADDRESS),  # Teredo
    ("https://[64:ff9b:1::a00:1]:{port}/hook", ADDRESS),  # local-use NAT64
    ("https://[fe80::1]:{port}/hook", ADDRESS),
    ("https://[fd00::1]:{port}/hook", ADDRESS),
    ("https://[ff02::1]:{port}/hook", ADDRESS),
    ("https://[::]:{port}/hook", ADDRESS),
    ("https://0.0.0.0:{port}/hook", ADDRESS),
    ("https://100.64.0.1:{port}/hook", ADDRESS),  # carrier-grade NAT
    ("https://198.18.0.1:{port}/hook", ADDRESS),  # benchmarking
    ("https://192.0.2.1:{port}/hook", ADDRESS),  # documentation
    ("https://[2001:db8::1]:{port}/hook", ADDRESS),  # documentation
    ("https://255.255.255.255:{port}/hook", ADDRESS),
    ("https://2130706433:{port}/hook", NOT_A_HOST),  # 127.0.0.1 as one decimal number
    ("https://0x7f.1:{port}/hook", NOT_A_HOST),  # hex and a shorthand
    ("https://0177.0.0.1:{port}/hook", NOT_A_HOST),  # octal
    ("https://127.1:{port}/hook", NOT_A_HOST),
    ("http://2130706433:{port}/", "must use https"),
    ("http://0x7f.1:{port}/", "must use https"),
    ("https://good.example@127.0.0.1:{port}/hook", "no user name or password"),
    ("https://good.example:pw@127.0.0.1:{port}/hook", "no user name or password"),
    ("http://good@127.0.0.1:{port}/hook", "must use https"),
    ("http://127.0.0.1:{port}/hook", "must use https"),
    ("ftp://127.0.0.1:{port}/hook", "must use https"),
    ("gopher://127.0.0.1:{port}/_hook", "must use https"),
    ("file:///etc/passwd", "must use https"),
]
