"""Alert notifications: the email (to the person affected, or to the security team) and the start
of the alert's webhook deliveries, both after the alert commits, with a sweep for what was lost.

Email bodies are templates under templates/alerts/email/; the subjects are here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.timezones import zone_of
from audit.descriptions import device_of, place_of

from . import selectors
from .models import Alert, DeliveryStatus, RuleKind, WebhookDelivery
from .webhooks import webhook_deliveries_start, webhook_delivery_attempt

logger = logging.getLogger(__name__)

# Rules whose alerts go to the person affected rather than to the security team: their subjects.
USER_NOTICE_SUBJECTS: dict[str, str] = {
    RuleKind.NEW_DEVICE: "New sign-in to your account from a new device",
    RuleKind.NEW_COUNTRY: "New sign-in to your account from a new country",
}


def _email_for(alert: Alert) -> tuple[str, str, list[str]]:
    """The alert email's subject, body and recipients (none: no email)."""
    if alert.kind in USER_NOTICE_SUBJECTS and alert.subject_user is not None:
        details = alert.details
        user = alert.subject_user
        zone = zone_of(user)
        context = {
            "alert": alert,
            "place": place_of(city=details.get("city") or "", country=details.get("country") or ""),
            "agent": device_of(browser=details.get("browser") or "", os=details.get("os") or ""),
            "time_zone": zone,
        }
        # The person's own zone, as on their pages; the security team's email stays in UTC.
        with timezone.override(zone):
            body = render_to_string("alerts/email/sign_in_notice.txt", context)
        return (
            USER_NOTICE_SUBJECTS[alert.kind],
            body,
            [user.email] if user.is_active else [],
        )
    return (
        f"[{alert.get_severity_display()}] {alert.summary}"[:200],
        render_to_string("alerts/email/alert.txt", {"alert": alert}),
        selectors.notification_recipients(organization_id=alert.organization_id),
    )


def _email_claim(alert_id: int) -> datetime | None:
    """Take the alert's pending email for a lease (conditional UPDATE); the lease end, or None."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.SWEEP_CLAIM_LEASE_SECONDS)
    claimed = (
        Alert.objects.filter(pk=alert_id, email_pending=True)
        .filter(Q(email_claimed_until__isnull=True) | Q(email_claimed_until__lte=now))
        .update(email_claimed_until=until)
    )
    return until if claimed else None


def alert_notify(*, alert_id: int) -> None:
    """Send the alert's email and queue its webhook deliveries; one channel failing never stops
    another.

    The email is claimed for a lease, sent, and only then marked sent: a sender that dies in the
    SMTP call leaves it pending, and once the lease is over the sweep sends it (at least once:
    a sender that dies between sending and marking sends twice).
    """
    claimed_until = _email_claim(alert_id)
    if claimed_until is not None:
        alert = Alert.objects.select_related("subject_user").get(pk=alert_id)
        try:
            subject, body, recipients = _email_for(alert)
            if recipients:
                send_mail(
                    subject,
                    body,
                    None,
                    recipients,
                    fail_silently=False,
                    # A mail server that hangs must not outlive the claim's lease.
                    connection=get_connection(timeout=settings.SWEEP_EMAIL_TIMEOUT_SECONDS),
                )
        except Exception:
            logger.exception("alert %s: email failed; the sweep retries it", alert_id)
            Alert.objects.filter(pk=alert_id, email_claimed_until=claimed_until).update(
                email_claimed_until=None
            )
        else:
            Alert.objects.filter(pk=alert_id, email_claimed_until=claimed_until).update(
                email_pending=False, email_claimed_until=None
            )
    webhook_deliveries_start(alert_id=alert_id)


def notifications_sweep() -> int:
    """Do what a lost task, a dead worker or a failed send left behind: alert emails still
    pending and not claimed by a live sender, and due webhook attempts (whose claims are
    leases too: see webhook_delivery_attempt)."""
    now = timezone.now()
    started = 0
    stale = (
        Alert.objects.filter(
            email_pending=True,
            created_at__lte=now - timedelta(seconds=settings.ALERTS_SWEEP_DELAY_SECONDS),
            created_at__gte=now - timedelta(days=1),
        )
        .filter(Q(email_claimed_until__isnull=True) | Q(email_claimed_until__lte=now))
        .values_list("pk", flat=True)[:200]
    )
    for alert_id in list(stale):
        alert_notify(alert_id=alert_id)
        started += 1
    due = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).values_list("pk", flat=True)[:200]
    for delivery_id in list(due):
        webhook_delivery_attempt(delivery_id=delivery_id)
        started += 1
    return started
