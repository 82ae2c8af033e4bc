"""Webhook URLs that lead inside: refused when saved and again when sent, with the escape hatch off.

A refusal at send time matters on its own: a row saved before this check, or a host whose DNS
answer changed since it was saved, must not reach an internal address either.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from alerts.models import (
    Alert,
    AlertRule,
    DeliveryStatus,
    RuleKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from alerts.rules import alert_rules_ensure
from alerts.webhooks import webhook_delivery_attempt
from audit.models import AuditEvent

from .factories import OrganizationFactory, member
from .helpers import client_as
from .outbound_support import HOSTILE_URLS, Answer, Listener, Receiver, certificate, running

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_addresses_refused(settings):
    settings.ALERTS_WEBHOOK_ALLOW_PRIVATE = False
    settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS = 1


@pytest.fixture
def admin() -> User:
    return member(OrganizationFactory.create(), role=Role.ADMINISTRATOR)


def _delivery_to(url: str, *, organization_id: int) -> WebhookDelivery:
    """A due delivery of a fresh alert to an endpoint stored with this URL as it is."""
    alert_rules_ensure(organization_id=organization_id)
    rule = AlertRule.objects.get(organization_id=organization_id, kind=RuleKind.FAILED_SIGN_INS)
    now = timezone.now()
    alert = Alert.objects.create(
        organization_id=organization_id,
        rule=rule,
        kind=rule.kind,
        severity=rule.severity,
        subject_key="user:1",
        window_key=f"user:1:{now.isoformat()}",
        summary="5 failed sign-ins",
        first_seen_at=now,
        last_seen_at=now,
    )
    endpoint = WebhookEndpoint.objects.create(
        organization_id=organization_id, url=url, secret="ab" * 32
    )
    return WebhookDelivery.objects.create(
        endpoint=endpoint, alert=alert, payload={"type": "alert.raised"}
    )


@pytest.mark.parametrize(("url", "message"), HOSTILE_URLS)
def test_a_hostile_webhook_url_is_refused_when_saved(admin, url, message):
    with Listener() as listener:
        response = client_as(admin).post(
            reverse("alerts:webhook-list"), {"url": url.format(port=listener.port)}
        )
    assert response.status_code == 400
    # Django's URL field refuses some of these first ("Enter a full URL"); the rest are ours.
    assert message in response.content.decode() or "Enter a full URL" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0
    assert listener.accepted == 0


@pytest.mark.parametrize(("url", "message"), HOSTILE_URLS)
def test_a_hostile_webhook_url_is_refused_when_sent(admin, url, message):
    with Listener() as listener:
        delivery = _delivery_to(
            url.format(port=listener.port), organization_id=admin.membership.organization_id
        )
        webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert message in delivery.last_error
    assert delivery.last_status_code is None
    assert delivery.status == DeliveryStatus.PENDING  # retried later, and refused again
    assert listener.accepted == 0


def test_a_public_https_webhook_url_is_saved(admin):
    response = client_as(admin).post(
        reverse("alerts:webhook-list"), {"url": "https://93.184.215.14/hooks"}
    )
    assert response.status_code == 303
    assert WebhookEndpoint.objects.get().url == "https://93.184.215.14/hooks"


def test_a_webhook_is_delivered_over_verified_tls(admin, settings, tmp_path, monkeypatch):
    # The system trust store, pointed at a test CA: what production's public CA does.
    cert = certificate(tmp_path, name="local", san="IP:127.0.0.1")
    monkeypatch.setenv("SSL_CERT_FILE", cert.cert)
    settings.ALERTS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    with running(Receiver(tls=cert)) as receiver:
        delivery = _delivery_to(
            f"https://127.0.0.1:{receiver.port}/hook",
            organization_id=admin.membership.organization_id,
        )
        assert webhook_delivery_attempt(delivery_id=delivery.pk) == DeliveryStatus.SUCCEEDED
    [received] = receiver.requests
    assert received.headers["X-Activity-Monitor-Delivery"] == str(delivery.pk)


def test_a_webhook_that_redirects_is_not_followed_and_not_delivered(admin, settings):
    settings.ALERTS_WEBHOOK_ALLOW_PRIVATE = True
    with running(Receiver()) as inside, running(Receiver()) as receiver:
        receiver.answer = Answer(
            status=307, headers={"Location": f"http://127.0.0.1:{inside.port}/admin"}
        )
        delivery = _delivery_to(
            f"http://127.0.0.1:{receiver.port}/hook",
            organization_id=admin.membership.organization_id,
        )
        webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == 307
    assert "redirects are not followed" in delivery.last_error
    assert len(receiver.requests) == 1
    assert inside.requests == []


def test_refusing_a_webhook_changes_no_stored_event(admin):
    client = client_as(admin)
    before = list(AuditEvent.objects.order_by("pk").values())
    with Listener() as listener:
        url = f"https://[64:ff9b::7f00:1]:{listener.port}/hook"
        client.post(reverse("alerts:webhook-list"), {"url": url})
        delivery = _delivery_to(url, organization_id=admin.membership.organization_id)
        webhook_delivery_attempt(delivery_id=delivery.pk)
    assert list(AuditEvent.objects.order_by("pk").values()) == before
