"""Security emails to the user (NIST SP 800-63B): sent by a Celery task after the change commits.

Each email is built from the audit event that recorded the change, so the task takes one id and
the message can never say more than the event does (which holds no secret).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from audit.models import AuditEvent, EventType

from .models import User


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
    """Send the user's email for this event once the surrounding transaction commits."""
    if event.event_type not in NOTICES:
        return
    from .tasks import security_notice_send as security_notice_send_task

    event_id = event.pk
    transaction.on_commit(lambda: security_notice_send_task.delay(event_id))


def security_notice_send(*, event_id: int) -> bool:
    """Email the user an event is about; False if there is nothing (left) to send."""
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None or event.event_type not in NOTICES:
        return False
    recipient_id = event.target_user_id or event.actor_id
    user = User.objects.filter(pk=recipient_id, is_active=True).first()
    if user is None or not user.email:
        return False
    notice = NOTICES[event.event_type]
    context = {
        "user": user,
        "event": event,
        "notice": notice,
        "by_admin": event.target_user_id is not None and event.actor_id != event.target_user_id,
        "site_name": "Activity Monitor",
    }
    message = EmailMultiAlternatives(
        subject=f"Activity Monitor: {notice.subject}",
        body=render_to_string("accounts/email/security_notice.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    message.attach_alternative(
        render_to_string("accounts/email/security_notice.html", context), "text/html"
    )
    message.send()
    return True
