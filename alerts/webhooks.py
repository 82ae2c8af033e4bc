"""Webhook transport: which URLs are allowed, how a body is signed, and one HTTP attempt."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

SIGNATURE_HEADER = "X-Activity-Monitor-Signature"
TIMESTAMP_HEADER = "X-Activity-Monitor-Timestamp"
DELIVERY_HEADER = "X-Activity-Monitor-Delivery"
# A receiver should refuse signatures older than this (replays).
SIGNATURE_TOLERANCE_SECONDS = 300


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as the signature header carries it."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    *, secret: str, timestamp: str, body: bytes, signature: str, now: float | None = None
) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    return age <= SIGNATURE_TOLERANCE_SECONDS and hmac.compare_digest(expected, signature)


def url_problem(url: str) -> str | None:
    """Why the URL may not receive webhooks, or None. Resolves the host to check its addresses."""
    allow_private = settings.ALERTS_WEBHOOK_ALLOW_PRIVATE
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "That is not a valid URL."
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        return "Webhook URLs must use https://."
    if not parts.hostname:
        return "The URL has no host name."
    if parts.username or parts.password:
        return "Put no user name or password in the URL; requests are signed instead."
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return f"The host {parts.hostname} could not be resolved."
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global and not allow_private:
            return (
                f"The host {parts.hostname} points at a private, loopback or reserved address "
                f"({address}); webhooks go to public addresses only."
            )
    return None


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str
    milliseconds: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to an address url_problem() never saw: treat it as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(*, url: str, secret: str, payload: dict[str, Any], delivery_id: int) -> Attempt:
    """POST the signed JSON body once; never raises."""
    started = time.monotonic()

    def done(code: int | None, error: str = "") -> Attempt:
        return Attempt(code, error[:300], int((time.monotonic() - started) * 1000))

    problem = url_problem(url)
    if problem:
        return done(None, problem)
    body = body_of(payload)
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by url_problem
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "ActivityMonitor-Webhook/1",
            SIGNATURE_HEADER: sign(secret=secret, timestamp=timestamp, body=body),
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: str(delivery_id),
        },
    )
    try:
        with _opener.open(request, timeout=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read(4096)
            return done(response.status)
    except urllib.error.HTTPError as exc:
        return done(exc.code, f"HTTP {exc.code}")
    except TimeoutError:
        return done(None, f"timed out after {settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS} s")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return done(None, f"timed out after {settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS} s")
        return done(None, f"connection failed: {reason}")
