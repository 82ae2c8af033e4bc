"""Reactions to other apps: committed events are queued for evaluation; new organizations get
their rules."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Organization
from activity_monitor.celery import enqueue
from audit.models import AuditEvent

from . import pending
from .rules import EVALUATED_EVENT_TYPES
from .tasks import events_evaluate as events_evaluate_task


def queue_evaluation(events: list[AuditEvent]) -> None:
    """Queue the committed events that a rule looks at, per organization.

    Registered with audit.services.after_events_commit, so it runs once the events' transaction
    has committed. With Redis the ids join the organization's pending list and a message is
    sent only if no task is queued for it already (alerts.pending: under a burst the worker
    takes many at once, and nothing waits here). The publish gives up fast when the broker is
    down (enqueue never raises): the sign-in that recorded the events goes on, and the sweep
    (alerts.tasks.events_sweep, in the beat schedule) evaluates what no task did.
    """
    by_organization: dict[int, list[int]] = defaultdict(list)
    for event in events:
        if (
            event.pk is not None
            and event.organization_id is not None
            and event.event_type in EVALUATED_EVENT_TYPES
        ):
            by_organization[event.organization_id].append(event.pk)
    coalesce = pending.enabled()
    for organization_id, ids in by_organization.items():
        if coalesce and not pending.add(organization_id, ids):
            continue  # the queued task takes them
        if not enqueue(events_evaluate_task, ids, organization_id) and coalesce:
            pending.forget(organization_id)


@receiver(post_save, sender=Organization, dispatch_uid="alerts.organization_rules")
def on_organization_saved(
    sender: Any, instance: Organization, created: bool, **kwargs: Any
) -> None:
    if created:
        from .rules import alert_rules_ensure

        alert_rules_ensure(organization_id=instance.pk)
