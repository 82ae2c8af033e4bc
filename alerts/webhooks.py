"""Webhook transport: which URLs are allowed, how a body is signed, and one HTTP attempt.

Bodies are signed with the Standard Webhooks scheme (webhook-id, webhook-timestamp,
webhook-signature), so a receiver verifies with that project's libraries and its secret.
The connection itself is outbound.http's: the one vetted way out of the application.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import standardwebhooks
from django.conf import settings

from outbound import http as outbound_http

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
# The headers of releases before Standard Webhooks, still sent (with the old signature) to
# endpoints whose secret predates it, so their receivers keep verifying for one release.
LEGACY_SIGNATURE_HEADER = "X-Activity-Monitor-Signature"
LEGACY_TIMESTAMP_HEADER = "X-Activity-Monitor-Timestamp"
LEGACY_DELIVERY_HEADER = "X-Activity-Monitor-Delivery"
# Only the status matters; the rest of a receiver's answer is not read.
RESPONSE_READ_BYTES = 4096


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form: whsec_ and 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    *, secret: str, message_id: str, body: bytes, now: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers for body, signed by the standardwebhooks library.

    A secret from before this scheme (64 hex characters, no whsec_ prefix) is valid base64,
    and the library reads both forms alike, so it needs no conversion: its receivers pass the
    same string to their verifier. Those endpoints also get the legacy headers, for one release.
    """
    now = now or datetime.now(UTC)
    timestamp = str(int(now.timestamp()))
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": standardwebhooks.Webhook(secret).sign(message_id, now, body),
    }
    if not secret.startswith(SECRET_PREFIX):
        mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        headers[LEGACY_SIGNATURE_HEADER] = "sha256=" + mac.hexdigest()
        headers[LEGACY_TIMESTAMP_HEADER] = timestamp
        headers[LEGACY_DELIVERY_HEADER] = message_id
    return headers


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
    try:
        response = outbound_http.request(
            "POST",
            url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "ActivityMonitor-Webhook/1",
                # The delivery's id is the same on every retry: receivers deduplicate by it.
                **signed_headers(secret=secret, message_id=str(delivery_id), body=body),
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
