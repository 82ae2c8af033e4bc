"""Workers racing on the same events still raise one alert (real PostgreSQL, real threads)."""

from __future__ import annotations

from functools import partial

import pytest

from alerts.evaluation import events_evaluate
from alerts.models import Alert, EvaluatedEvent
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record

from .alerts_support import hooks_paused
from .factories import member
from .helpers import all_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _failures(user, count: int) -> list[int]:
    """Committed failures that no task has evaluated (as if the broker had lost them)."""
    with hooks_paused():
        return [
            events_record(
                specs=[EventSpec(event_type=EventType.LOGIN_FAILED, outcome="failure", actor=user)]
            )[0].pk
            for _ in range(count)
        ]


def test_four_workers_evaluating_the_same_burst_raise_one_alert():
    user = member()
    ids = _failures(user, 5)

    results = all_at_once(
        *[partial(events_evaluate, event_ids=part) for part in (ids, ids, list(reversed(ids)), ids)]
    )

    assert sum(results) == 1
    [alert] = Alert.objects.all()
    assert alert.count == 1
    assert EvaluatedEvent.objects.count() == 5
    assert AuditEvent.objects.filter(event_type=EventType.ALERT_RAISED).count() == 1


def test_workers_splitting_a_burst_between_them_raise_one_alert_with_every_repeat_counted():
    user = member()
    ids = _failures(user, 8)

    results = all_at_once(
        *[partial(events_evaluate, event_ids=part) for part in (ids[0::2], ids[1::2])]
    )

    [alert] = Alert.objects.all()
    assert sum(results) == 1
    assert EvaluatedEvent.objects.count() == 8
    # The fifth to eighth failures each match, whichever worker took them and in what order.
    assert alert.count == 4
    assert sorted(alert.event_ids) == sorted(ids)
