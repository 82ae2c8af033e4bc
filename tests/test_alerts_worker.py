"""End to end with a real Celery worker and real Redis: no eager mode, committed data only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connections

from activity_monitor.celery import app
from alerts import tasks
from alerts.evaluation import events_sweep
from alerts.models import Alert, EvaluatedEvent, RuleKind
from audit.models import AuditEvent, EventType

from .factories import member
from .fault_support import wait_for
from .helpers import sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@contextmanager
def _not_eager() -> Iterator[None]:
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


@contextmanager
def _broker(url: str) -> Iterator[None]:
    """Point the app at another broker; the connection pools are rebuilt for it and after."""
    previous = app.conf.broker_url
    app.conf.update(broker_url=url)
    # Private, and not in celery-types: drops the cached connection and producer pools, which
    # Celery otherwise keeps for the broker it first connected to.
    app._after_fork()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        app.conf.update(broker_url=previous)
        app._after_fork()  # type: ignore[attr-defined]


@contextmanager
def _real_worker(*, purge: bool = True) -> Iterator[None]:
    from celery.contrib.testing.worker import start_worker

    if purge:
        app.control.purge()  # messages other tests left for events that no longer exist
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=20
    ):
        yield
    # The worker thread's database connections would keep the test database open.
    connections.close_all()


def test_five_wrong_passwords_raise_an_alert_through_a_real_worker(client):
    user = member()
    with _not_eager(), _real_worker():
        for _ in range(5):
            sign_in(client, user.email, "wrong", REMOTE_ADDR="198.51.100.7")
        alert = wait_for(lambda: Alert.objects.filter(kind=RuleKind.FAILED_SIGN_INS).first())
        wait_for(lambda: EvaluatedEvent.objects.count() == 5)

    assert alert.subject_user_id == user.pk
    assert Alert.objects.count() == 1
    assert AuditEvent.objects.filter(event_type=EventType.ALERT_RAISED).count() == 1


def test_events_recorded_while_the_broker_is_down_are_evaluated_exactly_once(client, settings):
    settings.ALERTS_SWEEP_DELAY_SECONDS = 0
    settings.ALERTS_SWEEP_SETTLE_SECONDS = 0
    user = member()
    with _not_eager():
        with _broker(CLOSED_PORT_BROKER):
            for _ in range(5):
                response = sign_in(client, user.email, "wrong", REMOTE_ADDR="198.51.100.7")
                assert response.status_code == 200  # the sign-in page never notices
        assert EvaluatedEvent.objects.count() == 0
        assert Alert.objects.count() == 0

        with _real_worker():  # the broker is back: beat's sweep runs on the worker
            tasks.events_sweep.delay()
            wait_for(lambda: Alert.objects.filter(kind=RuleKind.FAILED_SIGN_INS).exists())
            wait_for(lambda: EvaluatedEvent.objects.count() == 5)

    assert events_sweep() == 0  # a second sweep finds nothing left
    [alert] = Alert.objects.all()
    assert alert.count == 1
    failures = AuditEvent.objects.filter(event_type=EventType.LOGIN_FAILED)
    assert sorted(alert.event_ids) == sorted(failures.values_list("pk", flat=True))
    assert AuditEvent.objects.filter(event_type=EventType.ALERT_RAISED).count() == 1


def test_a_burst_before_any_worker_is_free_is_one_message_and_every_event_is_evaluated(client):
    import redis

    user = member()
    with _not_eager():
        app.control.purge()
        for _ in range(12):
            sign_in(client, user.email, "wrong", REMOTE_ADDR="198.51.100.7")
        # The first sign-in queued a task; the others joined the organization's pending list.
        assert redis.Redis.from_url(app.conf.broker_url).llen("celery") == 1
        with _real_worker(purge=False):
            wait_for(
                lambda: EvaluatedEvent.objects.filter(evaluated_at__isnull=False).count() == 12
            )

    [alert] = Alert.objects.all()
    assert alert.kind == RuleKind.FAILED_SIGN_INS
    assert alert.count == 8  # the 5th to the 12th failure
    assert AuditEvent.objects.filter(event_type=EventType.ALERT_RAISED).count() == 1
