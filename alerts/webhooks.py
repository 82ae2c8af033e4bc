"""Webhook transport: which URLs are allowed, how a body is signed, and one HTTP attempt.

The connection itself is outbound.http's: the one vetted way out of the application.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from outbound import http as outbound_http

SIGNATURE_HEADER = "X-Activity-Monitor-Signature"
TIMESTAMP_HEADER = "X-Activity-Monitor-Timestamp"
DELIVERY_HEADER = "X-Activity-Monitor-Delivery"
# A receiver should refuse signatures older than this (replays).
SIGNATURE_TOLERANCE_SECONDS = 300
# Only the status matters; the rest of a receiver's answer is not read.
RESPONSE_READ_BYTES = 4096


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
    return outbound_http.url_problem(url, allow_private=settings.ALERTS_WEBHOOK_ALLOW_PRIVATE)


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str
    milliseconds: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(*, url: str, secret: str, payload: dict[str, Any], delivery_id: int) -> Attempt:
    """POST the signed JSON body once, through the vetted connection; never raises.

    The URL is vetted again here, not only when it was saved: DNS may point elsewhere now.
    """
    started = time.monotonic()

    def done(code: int | None, error: str = "") -> Attempt:
        return Attempt(code, error[:300], int((time.monotonic() - started) * 1000))

    body = body_of(payload)
    timestamp = str(int(time.time()))
    try:
        response = outbound_http.request(
            "POST",
            url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "ActivityMonitor-Webhook/1",
                SIGNATURE_HEADER: sign(secret=secret, timestamp=timestamp, body=body),
                TIMESTAMP_HEADER: timestamp,
                DELIVERY_HEADER: str(delivery_id),
            },
            allow_private=settings.ALERTS_WEBHOOK_ALLOW_PRIVATE,
            timeout=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS,
            max_response_bytes=RESPONSE_READ_BYTES,
        )
    except outbound_http.Refused as exc:
        return done(None, str(exc))
    except outbound_http.RequestFailed as exc:
        if exc.timed_out:
            return done(None, f"timed out after {settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS} s")
        return done(None, f"connection failed: {exc}")
    if 300 <= response.status < 400:
        return done(response.status, f"HTTP {response.status}: redirects are not followed")
    if not 200 <= response.status < 300:
        return done(response.status, f"HTTP {response.status}")
    return done(response.status)
