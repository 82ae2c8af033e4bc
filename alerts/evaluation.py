"""Evaluation: run the rules on each committed event once, and raise (or add to) its alerts.

A task evaluates the events a request recorded; the sweep evaluates whatever no task did. The
EvaluatedEvent ledger makes each event's evaluation happen once, whoever calls and how often.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from accounts.models import Organization, User
from activity_monitor.celery import enqueue
from audit.models import AuditEvent, EventType
from audit.services import event_record

from .detectors import Finding, findings_for
from .models import Alert, AlertRule, AlertStatus, EvaluatedEvent, SweepState
from .rules import EVALUATED_EVENT_TYPES, RULES, alert_rules_ensure
from .triage import note_entry
from .webhooks import webhook_deliveries_create

logger = logging.getLogger(__name__)

MAX_EVENT_IDS = 200


def _claim(event_id: int) -> bool:
    """Insert the event into the ledger unless it is there; True if this call inserted it.

    Runs inside the evaluation's transaction: a concurrent claim of the same id waits for it and
    then inserts nothing, and a rolled-back evaluation leaves the event unclaimed.
    """
    # Raw SQL because bulk_create(ignore_conflicts=True) does not say whether it inserted, and
    # catching IntegrityError would log a unique violation on the server for every repeat.
    table = connection.ops.quote_name(EvaluatedEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (event_id, evaluated_at) VALUES (%s, %s) "  # noqa: S608
            "ON CONFLICT (event_id) DO NOTHING",
            [event_id, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        inserted: int = cursor.rowcount
        return inserted == 1


def events_evaluate(*, event_ids: list[int]) -> int:
    """Evaluate each event once; returns how many alerts were raised (or reopened)."""
    return sum(event_evaluate(event_id=event_id) for event_id in event_ids)


def event_evaluate(*, event_id: int) -> int:
    """Run the organization's rules on one event, exactly once whoever calls and how often."""
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None:  # purged, or not committed yet (the sweep comes back for it)
        return 0
    raised = 0
    with transaction.atomic():
        if not _claim(event_id):
            return 0
        if event.event_type not in EVALUATED_EVENT_TYPES or event.organization_id is None:
            return 0
        # Locking the organization's rules serialises its evaluations: of two workers that see
        # the same burst, the second finds the first one's alert and adds to it.
        rules = AlertRule.objects.select_for_update().filter(organization_id=event.organization_id)
        locked = list(rules.order_by("id"))
        if len(locked) < len(RULES):  # an organization older than its rules
            alert_rules_ensure(organization_id=event.organization_id)
            locked = list(rules.order_by("id"))
        for rule in locked:
            for finding in findings_for(event, rule):
                raised += _alert_upsert(rule=rule, finding=finding, event=event)
    return raised


def _window_start(moment: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _alert_upsert(*, rule: AlertRule, finding: Finding, event: AuditEvent) -> int:
    """Raise an alert for the finding, or add it to the alert of the same subject and window."""
    at = event.occurred_at
    same_subject = Alert.objects.select_for_update().filter(
        rule=rule, subject_key=finding.subject_key
    )
    if finding.window is None:
        existing = same_subject.first()
        window_key = f"{finding.subject_key}@always"
    else:
        existing = (
            same_subject.filter(
                first_seen_at__lte=at + finding.window, last_seen_at__gte=at - finding.window
            )
            .order_by("-last_seen_at")
            .first()
        )
        window_key = f"{finding.subject_key}@{_window_start(at, finding.window).isoformat()}"
    if existing is None:
        alert = Alert(
            organization_id=rule.organization_id,
            rule=rule,
            kind=rule.kind,
            severity=rule.severity,
            subject_user_id=finding.subject_user_id,
            subject_label=finding.subject_label[:254],
            subject_ip=finding.subject_ip,
            subject_key=finding.subject_key[:160],
            window_key=window_key[:200],
            summary=finding.summary[:300],
            first_seen_at=at,
            last_seen_at=at,
            event_ids=finding.event_ids[-MAX_EVENT_IDS:],
            details=finding.details,
            email_pending=rule.notify_email,
        )
        try:
            with transaction.atomic():
                alert.save()
        except IntegrityError:  # the window's alert exists after all: count the repeat
            existing = same_subject.get(window_key=window_key[:200])
        else:
            _alert_raised(alert=alert, rule=rule, reopened=False)
            return 1
    return _alert_repeat(alert=existing, rule=rule, finding=finding, at=at)


def _alert_repeat(*, alert: Alert, rule: AlertRule, finding: Finding, at: datetime) -> int:
    alert.count += 1
    alert.first_seen_at = min(alert.first_seen_at, at)
    alert.last_seen_at = max(alert.last_seen_at, at)
    alert.event_ids = sorted(set(alert.event_ids) | set(finding.event_ids))[-MAX_EVENT_IDS:]
    alert.summary = finding.summary[:300]
    alert.details = finding.details
    if finding.subject_widened:
        alert.subject_ip, alert.subject_label = finding.subject_ip, finding.subject_label[:254]
    reopened = alert.status == AlertStatus.RESOLVED
    if reopened:
        alert.status = AlertStatus.OPEN
        alert.resolved_at = None
        alert.email_pending = rule.notify_email
        # A send of the earlier email still under way must not mark this new one as sent.
        alert.email_claimed_until = None
        alert.notes = [*alert.notes, note_entry(None, "reopened", "The rule matched again.")]
    alert.save()
    if reopened:
        _alert_raised(alert=alert, rule=rule, reopened=True)
        return 1
    return 0


def _alert_raised(*, alert: Alert, rule: AlertRule, reopened: bool) -> None:
    """Record alert.raised, owe its webhook deliveries, and queue its notifications after commit."""
    subject = (
        User.objects.filter(pk=alert.subject_user_id).first() if alert.subject_user_id else None
    )
    event_record(
        event_type=EventType.ALERT_RAISED,
        organization=Organization(pk=alert.organization_id),
        target_user=subject,
        reason=alert.kind,
        details={
            "alert_id": alert.pk,
            "rule": alert.kind,
            "severity": alert.severity,
            "summary": alert.summary,
            "subject_ip": alert.subject_ip,
            "related_event_ids": alert.event_ids[:50],
            **({"reopened": True} if reopened else {}),
        },
    )
    if rule.notify_webhook:
        webhook_deliveries_create(alert=alert, reopened=reopened)
    from .tasks import alert_notify as alert_notify_task

    alert_id = alert.pk
    transaction.on_commit(lambda: enqueue(alert_notify_task, alert_id))


# --- The sweep: events that were never evaluated ----------------------------------------------


def events_sweep(
    *, batch_size: int = 500, max_batches: int = 20, horizon_hours: int | None = None
) -> int:
    """Evaluate committed events that no task evaluated (broker down, worker lost).

    Every unevaluated event past the mark and older than ALERTS_SWEEP_DELAY_SECONDS (younger
    ones are left to their own task) is evaluated, whatever lies around it: recent evaluated
    events do not hide the unevaluated ones behind them. Then the mark moves over the events
    that are all done, but never past an event younger than ALERTS_SWEEP_SETTLE_SECONDS,
    because an id handed out at insert may commit later than a higher one.
    """
    state, _ = SweepState.objects.get_or_create(pk=1)
    low = state.low_water_id
    now = timezone.now()
    evaluate_before = now - timedelta(seconds=settings.ALERTS_SWEEP_DELAY_SECONDS)
    settle_before = now - timedelta(seconds=settings.ALERTS_SWEEP_SETTLE_SECONDS)
    horizon = now - timedelta(
        hours=settings.ALERTS_SWEEP_HORIZON_HOURS if horizon_hours is None else horizon_hours
    )
    relevant = AuditEvent.objects.filter(
        pk__gt=low, event_type__in=EVALUATED_EVENT_TYPES, organization_id__isnull=False
    )
    unevaluated = ~Exists(EvaluatedEvent.objects.filter(event_id=OuterRef("pk")))
    due = (
        relevant.filter(unevaluated, occurred_at__lte=evaluate_before, occurred_at__gte=horizon)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    evaluated = 0
    after = low
    for _ in range(max_batches):
        ids = list(due.filter(pk__gt=after)[:batch_size])
        for pk in ids:
            event_evaluate(event_id=pk)
        evaluated += len(ids)
        if len(ids) < batch_size:
            break
        after = ids[-1]

    # The mark: the last relevant event before the first one that is young or still to do.
    blocker = (
        relevant.filter(Q(occurred_at__gt=settle_before) | Q(unevaluated, occurred_at__gte=horizon))
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    done = relevant if blocker is None else relevant.filter(pk__lt=blocker)
    mark = done.aggregate(mark=Max("pk"))["mark"]
    if mark is not None:
        skipped = done.filter(unevaluated).count()  # older than anyone would act on
        if skipped:
            logger.warning("alert sweep skipped %d events older than the horizon", skipped)
        SweepState.objects.filter(pk=1, low_water_id__lt=mark).update(
            low_water_id=mark, swept_at=now
        )
    return evaluated


def sweep_mark_to_latest() -> int:
    """Start sweeping from now on (a fresh deployment over an existing event history)."""
    latest = AuditEvent.objects.aggregate(latest=Max("pk"))["latest"] or 0
    SweepState.objects.update_or_create(pk=1, defaults={"low_water_id": latest})
    return latest
