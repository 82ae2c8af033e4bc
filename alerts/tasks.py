"""Alert jobs: thin wrappers that take ids and call one service (schedules in settings)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import evaluation, notifications, webhooks


# The task's id is its claim token: a message delivered again after its worker died takes back
# the events it had claimed at once (see alerts.evaluation). With an organization, it also takes
# that organization's pending ids (alerts.pending).
@shared_task(bind=True, time_limit=120, soft_time_limit=100)
def events_evaluate(self: Any, event_ids: list[int], organization_id: int | None = None) -> int:
    return evaluation.events_evaluate(
        event_ids=event_ids, token=self.request.id, organization_id=organization_id
    )


@shared_task(time_limit=600, soft_time_limit=540)
def events_sweep() -> int:
    return evaluation.events_sweep()


# Shorter than the email claim's lease (SWEEP_CLAIM_LEASE_SECONDS, default 60 s): a hung send is
# killed before a sweep may take its claim over.
@shared_task(time_limit=50, soft_time_limit=45)
def alert_notify(alert_id: int) -> None:
    notifications.alert_notify(alert_id=alert_id)


@shared_task(time_limit=120, soft_time_limit=100)
def webhook_delivery_attempt(delivery_id: int) -> str:
    return webhooks.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(time_limit=600, soft_time_limit=540)
def notifications_sweep() -> int:
    return notifications.notifications_sweep()
