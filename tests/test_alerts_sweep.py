"""The database is the source of truth: events no task evaluated are swept up, exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts.evaluation import events_sweep, sweep_mark_to_latest
from alerts.models import EvaluatedEvent, RuleKind, SweepState
from audit.models import AuditEvent, EventType

from .alerts_support import alerts, committing, failures_recorded
from .factories import member
from .helpers import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def sweep_now(settings):
    """The sweep takes events at once (in production it leaves them a minute to their task)."""
    settings.ALERTS_SWEEP_DELAY_SECONDS = 0
    settings.ALERTS_SWEEP_SETTLE_SECONDS = 0


def _fail_without_evaluation(client, email, times=5):
    # No on-commit callbacks run here: as if the broker had lost every message.
    for _ in range(times):
        sign_in(client, email, "wrong", REMOTE_ADDR="198.51.100.7")


def test_events_no_task_evaluated_are_evaluated_by_the_sweep(client, sweep_now):
    user = member()
    _fail_without_evaluation(client, user.email)
    assert alerts() == []

    assert events_sweep() == 5

    [alert] = alerts()
    assert alert.kind == RuleKind.FAILED_SIGN_INS
    assert EvaluatedEvent.objects.count() == 5


def test_sweeping_twice_evaluates_nothing_twice(client, sweep_now):
    user = member()
    _fail_without_evaluation(client, user.email, times=6)
    events_sweep()
    assert events_sweep() == 0

    [alert] = alerts()
    assert alert.count == 2
    assert len(AuditEvent.objects.filter(event_type=EventType.ALERT_RAISED)) == 1


def test_the_sweep_moves_its_mark_past_what_it_has_seen(client, sweep_now):
    user = member()
    _fail_without_evaluation(client, user.email, times=2)
    events_sweep()
    last = AuditEvent.objects.filter(event_type=EventType.LOGIN_FAILED).latest("pk").pk
    assert SweepState.objects.get().low_water_id == last


def test_the_sweep_leaves_young_events_to_their_own_task(client, settings):
    settings.ALERTS_SWEEP_DELAY_SECONDS = 60
    user = member()
    _fail_without_evaluation(client, user.email)
    assert events_sweep() == 0
    assert SweepState.objects.get().low_water_id == 0


def test_the_sweep_skips_events_older_than_its_horizon(sweep_now):
    user = member()
    long_ago = timezone.now() - timedelta(days=3)
    failures_recorded(user, count=5, at=long_ago)
    assert events_sweep() == 0
    assert alerts() == []


def test_a_fresh_deployment_can_start_sweeping_from_now(client, sweep_now):
    user = member()
    _fail_without_evaluation(client, user.email)
    sweep_mark_to_latest()
    assert events_sweep() == 0
    assert alerts() == []


def test_the_sweep_works_through_many_batches(client, sweep_now):
    user = member()
    _fail_without_evaluation(client, user.email, times=12)
    assert events_sweep(batch_size=5) == 12
    assert EvaluatedEvent.objects.count() == 12


def test_the_sweep_command_can_reach_back_further_than_the_horizon(sweep_now, capsys):
    user = member()
    three_days_ago = timezone.now() - timedelta(days=3)
    failures_recorded(user, count=5, at=three_days_ago)
    call_command("alerts_sweep", horizon_hours=24 * 7)
    assert "Evaluated 5 events" in capsys.readouterr().out
    [alert] = alerts()
    assert alert.first_seen_at == three_days_ago


def test_a_failing_evaluation_never_breaks_the_sign_in_and_is_retried_by_the_sweep(
    client, sweep_now, monkeypatch
):
    from alerts import evaluation

    user = member()

    def broken(events, rules):
        raise RuntimeError("rule crashed")

    monkeypatch.setattr(evaluation, "findings_for_batch", broken)
    with committing():
        response = sign_in(client, user.email, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 303
    assert EvaluatedEvent.objects.count() == 0  # the failed evaluation claimed nothing

    monkeypatch.undo()
    assert events_sweep() == 2  # login.succeeded and session.started


def test_recent_evaluated_events_do_not_hide_the_unevaluated_ones_behind_them(client, settings):
    # As after a broker outage: events before it were evaluated by their tasks a moment ago,
    # the ones during it by nobody. All are younger than the settle time.
    settings.ALERTS_SWEEP_DELAY_SECONDS = 0
    settings.ALERTS_SWEEP_SETTLE_SECONDS = 300
    user = member()
    with committing():
        sign_in(client, user.email, REMOTE_ADDR="198.51.100.7")  # evaluated at once
    client.logout()
    evaluated = EvaluatedEvent.objects.count()
    assert evaluated > 0
    _fail_without_evaluation(client, user.email)

    assert events_sweep() == 5

    assert EvaluatedEvent.objects.count() == evaluated + 5
    assert [alert.kind for alert in alerts()] == [RuleKind.FAILED_SIGN_INS]
    assert SweepState.objects.get().low_water_id == 0  # the mark waits for them to settle
