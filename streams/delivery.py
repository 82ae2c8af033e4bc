"""Delivery: each destination's events in the API feed's order, at least once, from its cursor.

A deliverer takes the destination's lease (a conditional UPDATE: one deliverer at a time, and a
dead one's lease runs out), reads the next batch after the stored cursor with the feed's own
reader (api.feed.feed_after: (txid, id) order, final rows only), sends it, and only then moves
the cursor, with an UPDATE that also asks that the cursor is where it was read (a replay
meanwhile wins) and that the lease is still its own. A deliverer that dies after sending and
before moving the cursor sends that batch again: duplicates, never gaps. Failed batches are
retried with doubling waits; a destination failing for STREAMS_PAUSE_AFTER_HOURS is paused and
its administrators emailed. The beat task (streams_deliver_due) fans out every 2 seconds, so a
task lost with the broker is only late.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from activity_monitor.celery import enqueue
from api.feed import feed_after
from audit.models import EventType
from audit.selectors import events_for_organization
from audit.services import event_record

from . import selectors
from .models import StreamDestination
from .services import stream_test_event
from .transports import DeliveryFailed, send

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)


def _claim(destination_id: int) -> str | None:
    token = uuid.uuid4().hex
    now = timezone.now()
    claimed = (
        StreamDestination.objects.filter(pk=destination_id, paused_at__isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(
            lease_token=token, lease_until=now + timedelta(seconds=settings.STREAMS_LEASE_SECONDS)
        )
    )
    return token if claimed else None


def _release(destination_id: int, token: str) -> None:
    StreamDestination.objects.filter(pk=destination_id, lease_token=token).update(
        lease_token="", lease_until=None
    )


def backoff_seconds(failures: int) -> int:
    """The wait after the n-th failure in a row: 10 s, 20 s, 40 s ... at most the maximum."""
    base = settings.STREAMS_BACKOFF_SECONDS
    return int(min(base * 2 ** max(failures - 1, 0), settings.STREAMS_BACKOFF_MAX_SECONDS))


def _failed(destination: StreamDestination, token: str, error: str) -> None:
    now = timezone.now()
    failures = destination.failures + 1
    failing_since = destination.failing_since or now
    pause_after = timedelta(hours=settings.STREAMS_PAUSE_AFTER_HOURS)
    pausing = now - failing_since >= pause_after
    with transaction.atomic():
        updated = StreamDestination.objects.filter(pk=destination.pk, lease_token=token).update(
            failures=failures,
            failing_since=failing_since,
            next_attempt_at=now + timedelta(seconds=backoff_seconds(failures)),
            last_error=error[:500],
            last_error_at=now,
            **(
                {
                    "paused_at": now,
                    "pause_reason": (
                        f"Paused automatically: failing since "
                        f"{failing_since:%Y-%m-%d %H:%M} UTC ({error[:200]})."
                    ),
                }
                if pausing
                else {}
            ),
        )
        if updated and pausing:
            event_record(
                event_type=EventType.SETTINGS_CHANGED,
                organization=destination.organization,
                actor_label="Activity Monitor",
                reason="stream destination paused after failing",
                details={
                    "setting": "stream_destination",
                    "destination_id": destination.pk,
                    "old": {"paused": False},
                    "new": {"paused": True},
                    "failing_since": failing_since.isoformat(),
                    "last_error": error[:200],
                },
            )
            transaction.on_commit(lambda: _tell_paused(destination.pk))


def _tell_paused(destination_id: int) -> None:
    """Email the destination's administrators that it was paused (best effort: the page shows
    it too)."""
    destination = StreamDestination.objects.select_related("organization").get(pk=destination_id)
    recipients = selectors.administrator_emails(organization_id=destination.organization_id)
    if not recipients:
        return
    body = render_to_string(
        "streams/email/paused.txt",
        {"destination": destination, "base_url": settings.ALERTS_BASE_URL},
    )
    try:
        send_mail(
            f"Stream “{destination.name}” paused: it kept failing",
            body,
            None,
            recipients,
        )
    except Exception:  # the mail server is down: the page says it all the same
        logger.warning("stream %s paused; its email was not sent", destination_id, exc_info=True)


def stream_deliver(*, destination_id: int, budget_seconds: float | None = None) -> int:
    """Deliver the destination's next batches until it is caught up, a batch fails or the time
    budget is spent; the number of events delivered. Does nothing if another deliverer holds it.
    """
    token = _claim(destination_id)
    if token is None:
        return 0
    budget = settings.STREAMS_TASK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    delivered = 0
    try:
        while True:
            destination = StreamDestination.objects.select_related("organization").get(
                pk=destination_id
            )
            if destination.is_paused or not destination.organization.has_api:
                break
            before = (destination.cursor_txid, destination.cursor_event_id)
            batch = feed_after(
                events_for_organization(organization=destination.organization),
                txid=before[0],
                event_id=before[1],
                limit=settings.STREAMS_BATCH_SIZE,
            )
            if batch.events:
                try:
                    send(destination, batch.events)
                except DeliveryFailed as exc:
                    _failed(destination, token, str(exc))
                    break
            now = timezone.now()
            health = (
                {
                    "last_delivery_at": now,
                    "last_event_id": batch.events[-1].pk,
                    "last_event_at": batch.events[-1].occurred_at,
                    "delivered_count": F("delivered_count") + len(batch.events),
                    "failures": 0,
                    "failing_since": None,
                    "next_attempt_at": None,
                }
                if batch.events
                else {}
            )
            moved = StreamDestination.objects.filter(
                pk=destination_id,
                lease_token=token,
                cursor_txid=before[0],
                cursor_event_id=before[1],
            ).update(cursor_txid=batch.txid, cursor_event_id=batch.event_id, **health)
            if not moved:
                break  # replayed meanwhile (the next run starts there) or the lease ran out
            delivered += len(batch.events)
            if not batch.has_more or time.monotonic() >= deadline:
                break
    finally:
        _release(destination_id, token)
    return delivered


def streams_deliver_due() -> int:
    """Queue a delivery for every destination that is due; how many were queued."""
    from . import tasks

    due = selectors.destinations_due(now=timezone.now())
    return sum(enqueue(tasks.stream_deliver, destination_id) for destination_id in due)


def stream_test_send(*, destination: StreamDestination, actor: User) -> str:
    """Send one test event (id 0, not stored) now, cursor untouched; "" if it arrived, else why
    not."""
    try:
        send(destination, [stream_test_event(destination=destination, actor=actor)])
    except DeliveryFailed as exc:
        return str(exc)
    return ""
