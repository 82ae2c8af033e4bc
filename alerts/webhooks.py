"""Webhooks: endpoints, the deliveries an alert makes, and each attempt with its retries.

The transport comes first: which URLs are allowed, how a body is signed, one HTTP attempt.
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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import standardwebhooks
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization, User
from activity_monitor.celery import enqueue
from audit.models import EventType
from audit.services import event_record
from outbound import http as outbound_http

from .models import Alert, DeliveryStatus, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from django.http import HttpRequest

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


# --- Endpoints -------------------------------------------------------------------------------


def _endpoint_changed(
    *,
    actor: User,
    reason: str,
    endpoint_id: int,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    request: HttpRequest | None,
) -> None:
    event_record(
        event_type=EventType.SETTINGS_CHANGED,
        actor=actor,
        reason=reason,
        details={"setting": "alert_webhook", "endpoint_id": endpoint_id, "old": old, "new": new},
        request=request,
    )


def webhook_endpoint_create(
    *,
    organization: Organization,
    url: str,
    description: str,
    actor: User,
    request: HttpRequest | None = None,
) -> WebhookEndpoint:
    """Add an endpoint (the URL already checked by url_problem) with a fresh secret."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            organization=organization, url=url, description=description, secret=new_secret()
        )
        _endpoint_changed(
            actor=actor,
            reason="webhook endpoint added",
            endpoint_id=endpoint.pk,
            old=None,
            new={"url": url, "description": description, "enabled": True},
            request=request,
        )
    return endpoint


def webhook_endpoint_delete(
    *, endpoint: WebhookEndpoint, actor: User, request: HttpRequest | None = None
) -> None:
    """Remove an endpoint and its delivery log."""
    with transaction.atomic():
        old = {
            "url": endpoint.url,
            "description": endpoint.description,
            "enabled": endpoint.enabled,
        }
        endpoint_id = endpoint.pk
        endpoint.delete()
        _endpoint_changed(
            actor=actor,
            reason="webhook endpoint removed",
            endpoint_id=endpoint_id,
            old=old,
            new=None,
            request=request,
        )


# --- Deliveries ------------------------------------------------------------------------------


def _payload(alert: Alert, reopened: bool) -> dict[str, Any]:
    return {
        "type": "alert.reopened" if reopened else "alert.raised",
        "alert": {
            "id": alert.pk,
            "rule": alert.kind,
            "severity": alert.severity,
            "summary": alert.summary,
            "status": alert.status,
            "subject": {"user": alert.subject_label or None, "ip": alert.subject_ip},
            "count": alert.count,
            "event_count": alert.event_count,
            "first_seen_at": alert.first_seen_at.isoformat(),
            "last_seen_at": alert.last_seen_at.isoformat(),
            "event_ids": alert.event_ids[:50],
            "url": alert.page_url,
        },
        "organization_id": alert.organization_id,
    }


def webhook_deliveries_create(*, alert: Alert, reopened: bool) -> None:
    """Owe the raised (or reopened) alert to every enabled endpoint of its organization."""
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, alert=alert, payload=_payload(alert, reopened))
        for endpoint in WebhookEndpoint.objects.filter(
            organization_id=alert.organization_id, enabled=True
        )
    )


def webhook_deliveries_create_many(raised: list[tuple[Alert, bool]]) -> None:
    """Owe each raised (or reopened) alert to every enabled endpoint of its organization."""
    if not raised:
        return
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(
        organization_id__in={alert.organization_id for alert, _ in raised}, enabled=True
    ):
        endpoints.setdefault(endpoint.organization_id, []).append(endpoint)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, alert=alert, payload=_payload(alert, reopened))
        for alert, reopened in raised
        for endpoint in endpoints.get(alert.organization_id, [])
    )


def webhook_deliveries_start(*, alert_id: int) -> None:
    """Queue an attempt at each of the alert's deliveries that is due."""
    from .tasks import webhook_delivery_attempt as webhook_delivery_attempt_task

    due = WebhookDelivery.objects.filter(
        alert_id=alert_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for delivery_id in list(due):
        enqueue(webhook_delivery_attempt_task, delivery_id)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=settings.ALERTS_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1))


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Make one attempt at a due delivery and log it; schedules the retry. Returns the status."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    # Claim: of two workers holding the same id, one moves next_attempt_at and attempts.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease, attempts=F("attempts") + 1)
    if not claimed:
        return "not due"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        attempt = Attempt(None, "endpoint disabled", 0)
    else:
        attempt = post(
            url=endpoint.url,
            secret=endpoint.secret,
            payload={**delivery.payload, "delivery_id": delivery.pk},
            delivery_id=delivery.pk,
        )
    delivery.log = [
        *delivery.log,
        {
            "at": now.isoformat(),
            "status_code": attempt.status_code,
            "error": attempt.error,
            "ms": attempt.milliseconds,
        },
    ][-20:]
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    retry_in = None
    if attempt.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = timezone.now()
    elif delivery.attempts >= settings.ALERTS_WEBHOOK_MAX_ATTEMPTS or not endpoint.enabled:
        delivery.status = DeliveryStatus.FAILED
    else:
        retry_in = _backoff(delivery.attempts)
        delivery.next_attempt_at = timezone.now() + retry_in
    delivery.save(
        update_fields=[
            "log",
            "last_status_code",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    # In eager mode (make run) a countdown would not wait: the sweep retries instead.
    if retry_in is not None and not current_app.conf.task_always_eager:
        from .tasks import webhook_delivery_attempt as webhook_delivery_attempt_task

        enqueue(webhook_delivery_attempt_task, delivery.pk, countdown=retry_in.total_seconds())
    return delivery.status
