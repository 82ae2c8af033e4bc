"""Security emails to the user (NIST SP 800-63B): sent by a Celery task after the change commits.

Each email is built from the audit event that recorded the change, so the task takes one id and
the message can never say more than the event does (which holds no secret). A SecurityNotice row,
written with the change, says the email is owed until it is sent: the sweep sends what no task
did (broker down, worker dead), so an email is sent at least once and never lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from activity_monitor.celery import enqueue
from audit.descriptions import device_of, event_title, place_of
from audit.models import AuditEvent, EventType

from .models import SecurityNotice, User
from .timezones import zone_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    subject: str
    headline: str


NOTICES: dict[str, Notice] = {
    EventType.MFA_DEVICE_ADDED: Notice(
        "A two-step verification method was added", "A sign-in method was added to your account"
    ),
    EventType.MFA_DEVICE_REMOVED: Notice(
        "A two-step verification method was removed",
        "A sign-in method was removed from your account",
    ),
    EventType.MFA_BACKUP_CODES_GENERATED: Notice(
        "New backup codes were generated", "Your backup codes were replaced"
    ),
    EventType.MFA_RESET_BY_ADMIN: Notice(
        "Your two-step verification was reset", "An administrator reset your two-step verification"
    ),
    EventType.PASSWORD_CHANGED: Notice("Your password was changed", "Your password was changed"),
    EventType.PASSWORD_RESET_COMPLETED: Notice(
        "Your password was reset", "Your password was reset"
    ),
}


def security_notice_queue(*, event: AuditEvent) -> None:
    """Owe the user an email for this event; it is sent once the surrounding transaction commits."""
    if event.event_type not in NOTICES:
        return
    from .tasks import security_notice_send as security_notice_send_task

    SecurityNotice.objects.create(event_id=event.pk)
    event_id = event.pk
    transaction.on_commit(lambda: enqueue(security_notice_send_task, event_id))


def _claim(event_id: int) -> bool:
    """Take the unsent notice for a lease (conditional UPDATE); True if this caller holds it."""
    now = timezone.now()
    return bool(
        SecurityNotice.objects.filter(pk=event_id, sent_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(
            claimed_until=now + timedelta(seconds=settings.SWEEP_CLAIM_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )


def security_notice_send(*, event_id: int) -> bool:
    """Email the user an event is about, if the notice is still owed; True if an email went.

    Marked sent only after the mail server took it; a failed send frees the claim for the sweep.
    """
    if not _claim(event_id):
        return False  # sent already, or another sender holds it
    try:
        sent = _send(event_id)
    except Exception:
        SecurityNotice.objects.filter(pk=event_id).update(claimed_until=None)
        raise
    SecurityNotice.objects.filter(pk=event_id).update(sent_at=timezone.now(), claimed_until=None)
    return sent


def _send(event_id: int) -> bool:
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None or event.event_type not in NOTICES:
        return False
    recipient_id = event.target_user_id or event.actor_id
    if recipient_id is None:
        return False
    user = User.objects.filter(pk=recipient_id, is_active=True).first()
    if user is None or not user.email:
        return False
    notice = NOTICES[event.event_type]
    zone = zone_of(user)
    context = {
        "user": user,
        "event": event,
        "notice": notice,
        "by_admin": event.target_user_id is not None and event.actor_id != event.target_user_id,
        "site_name": "Activity Monitor",
        "title": event_title(event.event_type),
        "place": place_of(city=event.city, country=event.country),
        "device": device_of(browser=event.browser, os=event.os),
        "time_zone": zone,
    }
    # Times in the email are the recipient's, as on their pages.
    with timezone.override(zone):
        text = render_to_string("accounts/email/security_notice.txt", context)
        html = render_to_string("accounts/email/security_notice.html", context)
    message = EmailMultiAlternatives(
        subject=f"Activity Monitor: {notice.subject}",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        # A mail server that hangs must not outlive the claim's lease.
        connection=get_connection(timeout=settings.SWEEP_EMAIL_TIMEOUT_SECONDS),
    )
    message.attach_alternative(html, "text/html")
    message.send()
    return True


def security_notices_sweep(*, limit: int = 200) -> int:
    """Send the notices no task sent (never queued, worker died, mail server down); how many."""
    now = timezone.now()
    owed = (
        SecurityNotice.objects.filter(
            sent_at__isnull=True,
            created_at__lte=now - timedelta(seconds=settings.SWEEP_DELAY_SECONDS),
            created_at__gte=now - timedelta(hours=settings.SWEEP_HORIZON_HOURS),
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for event_id in list(owed):
        try:
            sent += security_notice_send(event_id=event_id)
        except Exception:  # one bad address or a mail server hiccup must not stop the rest
            logger.exception(
                "security notice for event %s not sent; the sweep retries it", event_id
            )
    return sent
