"""Reactions to other apps: committed events are queued for evaluation; new organizations get
their rules."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Organization
from audit.models import AuditEvent

from .rules import EVALUATED_EVENT_TYPES


def queue_evaluation(events: list[AuditEvent]) -> None:
    """Queue the committed events that a rule looks at (registered with audit.services).

    The ids go to a background publisher (alerts.dispatch), so the sign-in that recorded the
    events waits neither for the rules nor for the broker; the sweep evaluates any it loses.
    """
    from .dispatch import evaluation_request

    ids = [
        event.pk
        for event in events
        if event.pk is not None
        and event.organization_id is not None
        and event.event_type in EVALUATED_EVENT_TYPES
    ]
    if ids:
        evaluation_request(ids)


@receiver(post_save, sender=Organization, dispatch_uid="alerts.organization_rules")
def on_organization_saved(
    sender: Any, instance: Organization, created: bool, **kwargs: Any
) -> None:
    if created:
        from .rules import alert_rules_ensure

        alert_rules_ensure(organization_id=instance.pk)
