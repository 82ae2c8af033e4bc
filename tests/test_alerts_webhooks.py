"""Signed webhooks to a local receiver: Standard Webhooks signatures, retries, timeouts."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import standardwebhooks
from django.core import mail
from standardwebhooks.webhooks import WebhookVerificationError

from accounts.models import Role
from alerts import webhooks
from alerts.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from alerts.notifications import notifications_sweep
from alerts.webhooks import webhook_endpoint_create

from .alerts_support import alerts, sign_in_from
from .factories import member

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP endpoint that records what it receives and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.ALERTS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback, over http
    settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.ALERTS_WEBHOOK_BACKOFF_SECONDS = 0
    local = Receiver()
    thread = threading.Thread(target=local.server.serve_forever, daemon=True)
    thread.start()
    yield local
    local.server.shutdown()
    local.server.server_close()


def _endpoint_for(user, url: str) -> WebhookEndpoint:
    admin = member(user.membership.organization, role=Role.ADMINISTRATOR)
    return webhook_endpoint_create(
        organization=user.membership.organization, url=url, description="test", actor=admin
    )


def _five_failures(client, user) -> None:
    for _ in range(5):
        sign_in_from(client, user.email, password="wrong")


def _alert_posted_to(client, receiver: Receiver) -> WebhookEndpoint:
    """A new organization sends its alerts to `receiver`; five failed sign-ins raise one."""
    user = member()
    endpoint = _endpoint_for(user, receiver.url)
    _five_failures(client, user)
    return endpoint


def test_an_alert_is_posted_signed_and_the_standard_webhooks_library_verifies_it(client, receiver):
    endpoint = _alert_posted_to(client, receiver)

    [(headers, body)] = receiver.requests
    assert headers["Content-Type"] == "application/json"
    assert endpoint.secret.startswith("whsec_")
    # The receiver's side: the library's own verifier, with the secret as shown to the admin.
    payload = standardwebhooks.Webhook(endpoint.secret).verify(body, headers)
    [alert] = alerts()
    assert payload["type"] == "alert.raised"
    assert payload["alert"]["id"] == alert.pk
    assert payload["alert"]["rule"] == "failed_sign_ins"
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.last_status_code == 204
    assert headers["webhook-id"] == str(delivery.pk)
    assert headers["webhook-signature"].startswith("v1,")
    # A new endpoint is not sent the pre-Standard Webhooks headers.
    assert webhooks.LEGACY_SIGNATURE_HEADER not in headers


def test_a_tampered_body_another_secret_or_an_old_timestamp_does_not_verify(client, receiver):
    endpoint = _alert_posted_to(client, receiver)
    [(headers, body)] = receiver.requests
    verifier = standardwebhooks.Webhook(endpoint.secret)

    tampered = body.replace(b'"alert.raised"', b'"alert.resolved"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        standardwebhooks.Webhook(webhooks.new_secret()).verify(body, headers)
    stale = webhooks.signed_headers(
        secret=endpoint.secret,
        message_id=headers["webhook-id"],
        body=body,
        now=datetime.now(UTC) - timedelta(minutes=10),
    )
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(body, stale)


def test_a_retry_carries_the_same_webhook_id_so_receivers_can_deduplicate(client, receiver):
    receiver.status = 503
    endpoint = _alert_posted_to(client, receiver)
    receiver.status = 200
    notifications_sweep()

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.attempts == 2
    (first, first_body), (second, second_body) = receiver.requests
    assert first["webhook-id"] == second["webhook-id"] == str(delivery.pk)
    verifier = standardwebhooks.Webhook(endpoint.secret)
    assert verifier.verify(first_body, first) == verifier.verify(second_body, second)


def test_an_endpoint_with_a_secret_from_before_also_gets_the_legacy_signature(client, receiver):
    user = member()
    endpoint = _endpoint_for(user, receiver.url)
    legacy = "ab" * 32  # the stored form before Standard Webhooks: 64 hex characters
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=legacy)
    _five_failures(client, user)

    [(headers, body)] = receiver.requests
    # The same stored string verifies with the library, as is or with the whsec_ prefix.
    standardwebhooks.Webhook(legacy).verify(body, headers)
    standardwebhooks.Webhook("whsec_" + legacy).verify(body, headers)
    # And the old header still verifies the old way, for receivers not yet moved.
    timestamp = headers[webhooks.LEGACY_TIMESTAMP_HEADER]
    expected = hmac.new(legacy.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers[webhooks.LEGACY_SIGNATURE_HEADER] == "sha256=" + expected.hexdigest()
    assert headers[webhooks.LEGACY_DELIVERY_HEADER] == headers["webhook-id"]


def test_a_failing_endpoint_is_logged_and_retried_with_growing_pauses(client, receiver, settings):
    settings.ALERTS_WEBHOOK_BACKOFF_SECONDS = 30
    receiver.status = 500
    _alert_posted_to(client, receiver)

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code == 500
    assert delivery.log[0]["status_code"] == 500
    pause = (delivery.next_attempt_at - delivery.created_at).total_seconds()
    assert 29 <= pause <= 40


def test_an_endpoint_that_keeps_failing_is_given_up_after_the_last_attempt(
    client, receiver, settings
):
    settings.ALERTS_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.status = 500
    _alert_posted_to(client, receiver)
    notifications_sweep()
    notifications_sweep()
    notifications_sweep()

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert len(receiver.requests) == 3
    assert [entry["status_code"] for entry in delivery.log] == [500, 500, 500]


def test_a_retry_that_succeeds_marks_the_delivery_delivered(client, receiver):
    receiver.status = 503
    _alert_posted_to(client, receiver)
    receiver.status = 200
    notifications_sweep()

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 2


def test_an_endpoint_that_hangs_times_out_and_is_retried(client, receiver):
    receiver.delay = 1.5
    _alert_posted_to(client, receiver)

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert "timed out" in delivery.last_error


def test_a_failing_webhook_never_blocks_the_email(client, receiver):
    receiver.status = 500
    user = member()
    analyst = member(user.membership.organization, role=Role.SECURITY_ANALYST)
    _endpoint_for(user, receiver.url)
    _five_failures(client, user)

    assert len(alerts()) == 1
    assert any(analyst.email in message.to for message in mail.outbox)


def test_an_unreachable_endpoint_is_logged_not_raised(client, receiver):
    user = member()
    _endpoint_for(user, "http://127.0.0.1:1/closed")
    _endpoint_for(user, receiver.url)
    _five_failures(client, user)

    closed, good = WebhookDelivery.objects.order_by("endpoint_id")
    assert closed.status == DeliveryStatus.PENDING
    assert "connection failed" in closed.last_error
    assert good.status == DeliveryStatus.SUCCEEDED


def test_private_addresses_are_refused_at_delivery_when_not_allowed(client, receiver, settings):
    user = member()
    _endpoint_for(user, receiver.url)
    settings.ALERTS_WEBHOOK_ALLOW_PRIVATE = False
    _five_failures(client, user)

    [delivery] = WebhookDelivery.objects.all()
    assert receiver.requests == []
    assert "https" in delivery.last_error


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("https://127.0.0.1/x", "private, loopback or reserved"),
        ("https://10.1.2.3/x", "private, loopback or reserved"),
        ("https://[::1]/x", "private, loopback or reserved"),
        ("https://169.254.169.254/latest", "private, loopback or reserved"),
        ("https://user:pw@93.184.215.14/x", "no user name or password"),
        ("ftp://93.184.215.14/x", "must use https"),
    ],
)
def test_webhook_urls_that_are_not_public_https_are_refused(url, message):
    assert message in (webhooks.url_problem(url) or "")


def test_a_public_https_url_is_accepted():
    assert webhooks.url_problem("https://93.184.215.14/hooks/activity") is None
