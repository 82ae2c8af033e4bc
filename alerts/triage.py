"""Triage of an alert by an analyst or administrator: acknowledge, assign, resolve, with notes.

Each change locks the alert, appends a note, and records its audit event in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from audit.models import EventType
from audit.services import event_record

from .models import Alert, AlertStatus

if TYPE_CHECKING:
    from django.http import HttpRequest


class AlertStateError(Exception):
    """The alert is not in a state that allows this change (shown to the user as it is)."""


def note_entry(actor: User | None, action: str, text: str) -> dict[str, Any]:
    """One entry of Alert.notes; no actor for what the application did itself (a reopening)."""
    return {
        "at": timezone.now().isoformat(),
        "by": actor.email if actor is not None else "",
        "action": action,
        "text": text,
    }


def _locked(alert: Alert) -> Alert:
    """The alert read again under a row lock, with the users its event and notes name."""
    return (
        Alert.objects.select_for_update(of=("self",))
        .select_related("subject_user", "assignee")
        .get(pk=alert.pk)
    )


def _save_and_record(
    alert: Alert,
    *,
    actor: User,
    note_action: str,
    note_text: str,
    event_type: str,
    request: HttpRequest | None,
    **details: Any,
) -> None:
    """Append the note, save the alert and record the triage event (in the caller's transaction)."""
    alert.notes = [*alert.notes, note_entry(actor, note_action, note_text)]
    alert.save()
    event_record(
        event_type=event_type,
        actor=actor,
        target_user=alert.subject_user,
        organization=Organization(pk=alert.organization_id),
        reason=alert.kind,
        details={"alert_id": alert.pk, "rule": alert.kind, **details},
        request=request,
    )


def alert_acknowledge(
    *, alert: Alert, actor: User, note: str = "", request: HttpRequest | None = None
) -> Alert:
    """Mark an open alert as being looked at; records alert.acknowledged."""
    with transaction.atomic():
        alert = _locked(alert)
        if alert.status != AlertStatus.OPEN:
            raise AlertStateError(
                f"Only open alerts can be acknowledged; this one is {alert.status}."
            )
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_at = timezone.now()
        if alert.assignee_id is None:
            alert.assignee = actor
        _save_and_record(
            alert,
            actor=actor,
            note_action="acknowledged",
            note_text=note,
            event_type=EventType.ALERT_ACKNOWLEDGED,
            request=request,
            note=note,
        )
    return alert


def alert_assign(
    *, alert: Alert, actor: User, assignee: User, request: HttpRequest | None = None
) -> Alert:
    """Give the alert to an analyst or administrator; acknowledges it if it was open.

    There is no separate event type for assignment: it is recorded as alert.acknowledged with
    the old and new assignee in its details.
    """
    with transaction.atomic():
        alert = _locked(alert)
        if alert.status == AlertStatus.RESOLVED:
            raise AlertStateError("A resolved alert cannot be assigned.")
        old = alert.assignee.email if alert.assignee else None
        alert.assignee = assignee
        if alert.status == AlertStatus.OPEN:
            alert.status = AlertStatus.ACKNOWLEDGED
            alert.acknowledged_at = timezone.now()
        _save_and_record(
            alert,
            actor=actor,
            note_action="assigned",
            note_text=f"Assigned to {assignee.email}.",
            event_type=EventType.ALERT_ACKNOWLEDGED,
            request=request,
            action="assigned",
            old_assignee=old,
            new_assignee=assignee.email,
        )
    return alert


def alert_resolve(
    *, alert: Alert, actor: User, note: str, request: HttpRequest | None = None
) -> Alert:
    """Close the alert with a note saying what was found; records alert.resolved."""
    if not note.strip():
        raise AlertStateError("Say in a note how the alert was resolved.")
    with transaction.atomic():
        alert = _locked(alert)
        if alert.status == AlertStatus.RESOLVED:
            raise AlertStateError("This alert is already resolved.")
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = timezone.now()
        _save_and_record(
            alert,
            actor=actor,
            note_action="resolved",
            note_text=note.strip(),
            event_type=EventType.ALERT_RESOLVED,
            request=request,
            note=note,
        )
    return alert
