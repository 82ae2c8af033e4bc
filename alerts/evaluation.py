"""Evaluation: run the rules on each committed event once, a batch at a time, and raise (or add
to) its alerts.

A task evaluates the events a request recorded and, while it is at it, the organization's other
committed events that nobody has claimed yet, up to ALERTS_EVALUATION_BATCH: under a burst the
first task does many and the later ones find theirs done. The sweep evaluates whatever no task
did (broker down, worker lost).

Exactly once, whoever calls and how often, with several workers on one organization's burst:

1. Claim. The events are claimed in the EvaluatedEvent ledger by the evaluator's token for a
   lease (ALERTS_EVALUATION_LEASE_SECONDS), in short statements that commit at once: of two
   evaluators that want the same event one gets it, and neither waits for the other's
   evaluation. (An INSERT ... ON CONFLICT in the evaluation's own transaction, as before, makes
   the second wait until the first commits, for the whole batch.)
2. Judge. The rules read what they need for the whole batch (alerts.detectors), outside any
   transaction: events are immutable, so nothing is locked while the rules run.
3. Write, in one transaction: mark the claimed events evaluated, only those still claimed by
   this token and not yet evaluated (if any is not, the claim was lost: the rest is redone
   without it), then write the alerts. Only the same rule and subject are serialised: a
   transaction-level advisory lock per (rule, subject) on PostgreSQL, taken in one order, under
   which the subject's alerts are read, folded with the batch's findings in event order and
   written. Other subjects, other rules and other organizations never wait for each other.

A failed evaluation gives its claims back at once; one whose worker died leaves them to the
lease, after which the sweep (or the redelivered message, whose task id is the token) takes
them. One alert per rule, subject and window stays the database's rule (UNIQUE(organization,
rule, window_key)).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from accounts.models import Organization, User
from activity_monitor.celery import enqueue
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record

from . import pending
from .detectors import Finding, findings_for_batch
from .models import ALERT_EVENT_IDS_KEPT, Alert, AlertRule, AlertStatus, EvaluatedEvent, SweepState
from .rules import EVALUATED_EVENT_TYPES, RULES, alert_rules_ensure
from .triage import note_entry
from .webhooks import webhook_deliveries_create_many

logger = logging.getLogger(__name__)

MAX_EVENT_IDS = ALERT_EVENT_IDS_KEPT


def _relevant() -> Any:
    return AuditEvent.objects.filter(
        event_type__in=EVALUATED_EVENT_TYPES, organization_id__isnull=False
    )


def _done_or_held(now: datetime) -> Exists:
    """The event is evaluated, or claimed by someone whose lease has not run out."""
    return Exists(
        EvaluatedEvent.objects.filter(event_id=OuterRef("pk")).filter(
            Q(evaluated_at__isnull=False) | Q(claimed_until__gte=now)
        )
    )


def _token(value: str | uuid.UUID | None) -> uuid.UUID:
    if value is None:
        return uuid.uuid4()
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, value)


def _claim(event_ids: Sequence[int], token: uuid.UUID) -> list[int]:
    """Claim those of the events nobody holds (never claimed, lease run out, or ours from an
    earlier delivery of the same task); the ids this token now holds.

    Each statement commits on its own (the evaluation runs in autocommit): a concurrent claim
    of the same id waits at most for the other's INSERT, never for its evaluation.
    """
    if not event_ids:
        return []
    now = timezone.now()
    until = now + timedelta(seconds=settings.ALERTS_EVALUATION_LEASE_SECONDS)
    EvaluatedEvent.objects.filter(event_id__in=event_ids, evaluated_at__isnull=True).filter(
        Q(claimed_until__lt=now) | Q(claimed_until__isnull=True) | Q(claim_token=token)
    ).update(claim_token=token, claimed_until=until)
    EvaluatedEvent.objects.bulk_create(
        [
            EvaluatedEvent(event_id=pk, evaluated_at=None, claim_token=token, claimed_until=until)
            for pk in event_ids
        ],
        ignore_conflicts=True,
    )
    return list(
        EvaluatedEvent.objects.filter(
            event_id__in=event_ids, claim_token=token, evaluated_at__isnull=True
        ).values_list("event_id", flat=True)
    )


def _release(event_ids: Sequence[int], token: uuid.UUID) -> None:
    """Give back the claims this token still holds (its evaluation failed): at once claimable."""
    EvaluatedEvent.objects.filter(
        event_id__in=event_ids, claim_token=token, evaluated_at__isnull=True
    ).delete()


def _pending_of(organization_id: int, *, after: int, limit: int) -> list[int]:
    """The organization's committed events after `after` that nobody has claimed yet."""
    if limit <= 0:
        return []
    unclaimed = ~Exists(EvaluatedEvent.objects.filter(event_id=OuterRef("pk")))
    return list(
        _relevant()
        .filter(unclaimed, organization_id=organization_id, pk__gt=after)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


@dataclass
class Outcome:
    """What an evaluation call did: events it evaluated, alerts it raised (or reopened)."""

    evaluated: int = 0
    raised: int = 0


def events_evaluate(
    *,
    event_ids: list[int],
    token: str | uuid.UUID | None = None,
    gather: bool = True,
    organization_id: int | None = None,
) -> int:
    """Evaluate the events each exactly once (whoever calls, however often); with an
    organization, also the ids pending for it (alerts.pending); with `gather`, also the
    organization's other events nobody has claimed, up to a batch. Returns how many alerts were
    raised (or reopened)."""
    if organization_id is not None and pending.enabled():
        taken, more = pending.take(organization_id, settings.ALERTS_EVALUATION_BATCH)
        event_ids = [*event_ids, *taken]
        if more:  # the list still holds ids: the next task takes them
            from .tasks import events_evaluate as events_evaluate_task

            if not enqueue(events_evaluate_task, [], organization_id):
                pending.forget(organization_id)
    return evaluate(event_ids=event_ids, token=token, gather=gather).raised


def evaluate(
    *, event_ids: list[int], token: str | uuid.UUID | None = None, gather: bool = True
) -> Outcome:
    claim_token = _token(token)
    # Under a burst most tasks find their events evaluated by one that gathered them: one
    # simple query, the only one they make.
    finished = set(
        EvaluatedEvent.objects.filter(
            event_id__in=event_ids, evaluated_at__isnull=False
        ).values_list("event_id", flat=True)
    )
    event_ids = [pk for pk in event_ids if pk not in finished]
    if not event_ids:
        return Outcome()
    now = timezone.now()
    # Committed, looked at by some rule, and not done or held by someone else.
    wanted = dict(
        _relevant()
        .filter(pk__in=event_ids)
        .exclude(
            Exists(
                EvaluatedEvent.objects.filter(event_id=OuterRef("pk")).filter(
                    Q(evaluated_at__isnull=False)
                    | (Q(claimed_until__gte=now) & ~Q(claim_token=claim_token))
                )
            )
        )
        .values_list("pk", "organization_id")
    )
    if not wanted:
        return Outcome()
    held = _claim(sorted(wanted), claim_token)
    outcome = Outcome()
    try:
        by_organization: dict[int, list[int]] = defaultdict(list)
        for pk in held:
            by_organization[wanted[pk]].append(pk)
        for organization_id, own in sorted(by_organization.items()):
            batch = sorted(own)
            if gather:
                room = settings.ALERTS_EVALUATION_BATCH - len(batch)
                more = _pending_of(organization_id, after=batch[0], limit=room)
                batch = sorted({*batch, *_claim(more, claim_token)})
                held.extend(pk for pk in batch if pk not in own)
            for start in range(0, len(batch), settings.ALERTS_EVALUATION_BATCH):
                part = batch[start : start + settings.ALERTS_EVALUATION_BATCH]
                done, raised = _evaluate_held(organization_id, part, claim_token)
                outcome.evaluated += done
                outcome.raised += raised
    except BaseException:
        _release(held, claim_token)
        raise
    return outcome


def _evaluate_held(organization_id: int, event_ids: list[int], token: uuid.UUID) -> tuple[int, int]:
    """Judge the held events and, in one transaction, mark them evaluated and write their
    alerts; (events evaluated, alerts raised)."""
    events = list(
        AuditEvent.objects.filter(pk__in=event_ids).select_related("agent").order_by("pk")
    )
    rules = list(AlertRule.objects.filter(organization_id=organization_id).order_by("id"))
    if len(rules) < len(RULES):  # an organization older than its rules
        alert_rules_ensure(organization_id=organization_id)
        rules = list(AlertRule.objects.filter(organization_id=organization_id).order_by("id"))
    findings = findings_for_batch(events, rules)
    ids = [event.pk for event in events]
    while ids:
        with transaction.atomic():
            marked = EvaluatedEvent.objects.filter(
                event_id__in=ids, claim_token=token, evaluated_at__isnull=True
            ).update(evaluated_at=timezone.now(), claim_token=None, claimed_until=None)
            if marked == len(ids):
                rules_by_id = {rule.pk: rule for rule in rules}
                by_kind = {rule.kind: rule for rule in rules}
                raised = _alerts_apply(
                    [(by_kind[finding.kind], finding) for finding in findings],
                    rules_by_id=rules_by_id,
                )
                return len(ids), raised
            transaction.set_rollback(True)
        # A claim ran out and was taken over (or done) by another evaluator: leave those events
        # to it and evaluate the rest, whose findings do not depend on them.
        still = set(
            EvaluatedEvent.objects.filter(
                event_id__in=ids, claim_token=token, evaluated_at__isnull=True
            ).values_list("event_id", flat=True)
        )
        logger.warning(
            "alert evaluation lost %d claims to another evaluator", len(ids) - len(still)
        )
        ids = [pk for pk in ids if pk in still]
        findings = [finding for finding in findings if finding.event_id in still]
    return 0, 0


# --- Alerts: a batch's findings folded into each subject's alerts -----------------------------


def _window_start(moment: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def subject_lock_key(rule_id: int, subject_key: str) -> int:
    """The PostgreSQL advisory lock key that serialises the writers of one rule and subject
    (a test holds it to stop an evaluator at that subject)."""
    digest = hashlib.blake2b(f"alerts:{rule_id}:{subject_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_subjects(keys: set[tuple[int, str]]) -> None:
    """Serialise the writers of the same rule and subject, and only them (PostgreSQL).

    Raw SQL: the ORM has no advisory locks. Transaction-level, so they go with the commit;
    taken in one order (sorted keys), so two evaluators never wait for each other in a circle.
    """
    if connection.vendor != "postgresql" or not keys:
        return
    ordered = sorted({subject_lock_key(rule_id, subject) for rule_id, subject in keys})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
            [ordered],
        )


@dataclass
class _Raised:
    """An alert raised (or reopened) by a finding, as it stood then."""

    alert: Alert
    reopened: bool
    summary: str
    event_ids: list[int]


@dataclass
class _Fold:
    """One rule and subject's alerts while a batch's findings are folded into them."""

    alerts: list[Alert]
    ids: dict[int, set[int]] = field(default_factory=dict)  # id(alert) -> its event ids
    order: dict[int, int] = field(default_factory=dict)  # id(alert) -> its place by age
    repeated: set[int] = field(default_factory=set)  # id(alert) of those a finding joined

    def __post_init__(self) -> None:
        for alert in self.alerts:
            self.ids[id(alert)] = set(alert.event_ids)
            self.order[id(alert)] = alert.pk

    def add(self, alert: Alert, ids: set[int]) -> None:
        self.alerts.append(alert)
        self.ids[id(alert)] = ids
        self.order[id(alert)] = 2**62 + len(self.order)  # newer than any stored one

    def newest(self, alerts: list[Alert]) -> Alert | None:
        return max(alerts, key=lambda a: (a.last_seen_at, self.order[id(a)]), default=None)


def _alerts_apply(
    found: list[tuple[AlertRule, Finding]], *, rules_by_id: dict[int, AlertRule]
) -> int:
    """Fold the findings (in event order) into their subjects' alerts, as one event at a time
    would have: a finding joins the alert of its subject whose window it overlaps (the newest),
    else the alert of its window's key, else raises a new one; a resolved alert it joins is
    reopened. Returns how many alerts were raised or reopened."""
    if not found:
        return 0
    by_subject: dict[tuple[int, str], list[Finding]] = defaultdict(list)
    for rule, finding in found:
        finding.subject_key = finding.subject_key[:160]
        by_subject[rule.pk, finding.subject_key].append(finding)
    _lock_subjects(set(by_subject))

    stored_by_subject: dict[tuple[int, str], list[Alert]] = defaultdict(list)
    subjects_by_rule: dict[int, set[str]] = defaultdict(set)
    since_by_rule: dict[int, datetime | None] = {}
    for (rule_id, subject), findings in by_subject.items():
        subjects_by_rule[rule_id].add(subject)
        for finding in findings:
            start = None if finding.window is None else finding.at - finding.window
            current = since_by_rule.get(rule_id, start)
            since_by_rule[rule_id] = (
                None if start is None or current is None else min(start, current)
            )
    for rule_id, subjects in subjects_by_rule.items():
        stored = Alert.objects.select_for_update(of=("self",)).filter(
            rule_id=rule_id, subject_key__in=subjects
        )
        since = since_by_rule[rule_id]
        if since is not None:  # an alert this batch may join ends after its earliest window
            stored = stored.filter(last_seen_at__gte=since)
        for alert in stored.order_by("id"):
            stored_by_subject[rule_id, alert.subject_key].append(alert)
    folds = {key: _Fold(stored_by_subject[key]) for key in by_subject}

    created: list[Alert] = []
    changed: dict[int, Alert] = {}
    raised: list[_Raised] = []
    for key, findings in by_subject.items():
        rule = rules_by_id[key[0]]
        fold = folds[key]
        for finding in findings:
            _fold_one(rule, fold, finding, created, changed, raised)
        for alert in fold.alerts:
            if id(alert) in fold.repeated:
                alert.event_ids = sorted(fold.ids[id(alert)])[-MAX_EVENT_IDS:]

    Alert.objects.bulk_create(created)
    reopened = {r.alert.pk for r in raised if r.reopened}
    _alerts_update(
        [a for a in changed.values() if a.pk not in reopened],
        [a for a in changed.values() if a.pk in reopened],
    )
    _alerts_raised(raised, rules_by_id=rules_by_id)
    return len(raised)


_REPEAT_FIELDS = [
    "count",
    "first_seen_at",
    "last_seen_at",
    "event_ids",
    "summary",
    "details",
    "subject_ip",
    "subject_label",
]
_REOPEN_FIELDS = ["status", "resolved_at", "email_pending", "email_claimed_until", "notes"]


def _alerts_update(repeats: list[Alert], reopened: list[Alert]) -> None:
    """Write the alerts the batch added to (and reopened).

    On PostgreSQL one UPDATE ... FROM unnest(...) writes every repeat: raw SQL because
    bulk_update builds a CASE per row and field, which cost more than the rules themselves
    (1.4 ms an alert, measured with bench/alerts.py burst). Reopened alerts, rare, and other
    databases go through bulk_update.
    """
    if reopened:
        Alert.objects.bulk_update(reopened, _REPEAT_FIELDS + _REOPEN_FIELDS)
    if not repeats:
        return
    if connection.vendor != "postgresql":
        Alert.objects.bulk_update(repeats, _REPEAT_FIELDS, batch_size=500)
        return
    table = connection.ops.quote_name(Alert._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS a SET count = v.count, first_seen_at = v.first_seen_at, "  # noqa: S608
            "last_seen_at = v.last_seen_at, event_ids = v.event_ids, summary = v.summary, "
            "details = v.details, subject_ip = v.subject_ip, subject_label = v.subject_label "
            "FROM unnest(%s::bigint[], %s::integer[], %s::timestamptz[], %s::timestamptz[], "
            "%s::jsonb[], %s::varchar[], %s::jsonb[], %s::inet[], %s::varchar[]) "
            "AS v(id, count, first_seen_at, last_seen_at, event_ids, summary, details, "
            "subject_ip, subject_label) "
            "WHERE a.id = v.id",
            [
                [alert.pk for alert in repeats],
                [alert.count for alert in repeats],
                [alert.first_seen_at for alert in repeats],
                [alert.last_seen_at for alert in repeats],
                [json.dumps(alert.event_ids) for alert in repeats],
                [alert.summary for alert in repeats],
                [json.dumps(alert.details) for alert in repeats],
                [alert.subject_ip for alert in repeats],
                [alert.subject_label for alert in repeats],
            ],
        )


def _fold_one(
    rule: AlertRule,
    fold: _Fold,
    finding: Finding,
    created: list[Alert],
    changed: dict[int, Alert],
    raised: list[_Raised],
) -> None:
    at = finding.at
    if finding.window is None:
        existing = fold.newest(fold.alerts)
        window_key = f"{finding.subject_key}@always"[:200]
    else:
        window = finding.window
        existing = fold.newest(
            [
                a
                for a in fold.alerts
                if a.first_seen_at <= at + window and a.last_seen_at >= at - window
            ]
        )
        window_key = f"{finding.subject_key}@{_window_start(at, window).isoformat()}"[:200]
    if existing is None:  # the window's alert, if it exists after all
        existing = next((a for a in fold.alerts if a.window_key == window_key), None)
    if existing is None:
        ids = list(finding.event_ids[-MAX_EVENT_IDS:])
        alert = Alert(
            organization_id=rule.organization_id,
            rule=rule,
            kind=rule.kind,
            severity=rule.severity,
            subject_user_id=finding.subject_user_id,
            subject_label=finding.subject_label[:254],
            subject_ip=finding.subject_ip,
            subject_key=finding.subject_key,
            window_key=window_key,
            summary=finding.summary[:300],
            first_seen_at=at,
            last_seen_at=at,
            event_ids=ids,
            details=finding.details,
            email_pending=rule.notify_email,
        )
        fold.add(alert, set(ids))
        created.append(alert)
        raised.append(_Raised(alert, False, alert.summary, ids[:50]))
        return
    existing.count += 1
    fold.repeated.add(id(existing))
    existing.first_seen_at = min(existing.first_seen_at, at)
    existing.last_seen_at = max(existing.last_seen_at, at)
    fold.ids[id(existing)].update(finding.event_ids)
    existing.summary = finding.summary[:300]
    existing.details = finding.details
    if finding.subject_widened:
        existing.subject_ip = finding.subject_ip
        existing.subject_label = finding.subject_label[:254]
    if existing.pk is not None:
        changed[existing.pk] = existing
    if existing.status == AlertStatus.RESOLVED:
        existing.status = AlertStatus.OPEN
        existing.resolved_at = None
        existing.email_pending = rule.notify_email
        # A send of the earlier email still under way must not mark this new one as sent.
        existing.email_claimed_until = None
        existing.notes = [*existing.notes, note_entry(None, "reopened", "The rule matched again.")]
        ids = sorted(fold.ids[id(existing)])[-MAX_EVENT_IDS:]
        raised.append(_Raised(existing, True, existing.summary, ids[:50]))


def _alerts_raised(raised: list[_Raised], *, rules_by_id: dict[int, AlertRule]) -> None:
    """Record alert.raised for each (one INSERT), owe their webhook deliveries, and queue their
    notifications after commit."""
    if not raised:
        return
    subjects = User.objects.in_bulk(
        {r.alert.subject_user_id for r in raised if r.alert.subject_user_id is not None}
    )
    events_record(
        specs=[
            EventSpec(
                event_type=EventType.ALERT_RAISED,
                organization=Organization(pk=r.alert.organization_id),
                target_user=subjects.get(r.alert.subject_user_id or 0),
                reason=r.alert.kind,
                details={
                    "alert_id": r.alert.pk,
                    "rule": r.alert.kind,
                    "severity": r.alert.severity,
                    "summary": r.summary,
                    "subject_ip": r.alert.subject_ip,
                    "related_event_ids": r.event_ids,
                    **({"reopened": True} if r.reopened else {}),
                },
            )
            for r in raised
        ]
    )
    webhook_deliveries_create_many(
        [(r.alert, r.reopened) for r in raised if rules_by_id[r.alert.rule_id].notify_webhook]
    )
    from .tasks import alert_notify as alert_notify_task

    # Nothing to notify (the rule neither emails nor calls webhooks): no task.
    notified = (
        r.alert.pk
        for r in raised
        if r.alert.email_pending or rules_by_id[r.alert.rule_id].notify_webhook
    )
    for alert_id in dict.fromkeys(notified):
        transaction.on_commit(partial(enqueue, alert_notify_task, alert_id))


# --- The sweep: events that were never evaluated ----------------------------------------------


def events_sweep(
    *, batch_size: int | None = None, max_batches: int = 20, horizon_hours: int | None = None
) -> int:
    """Evaluate committed events that no task evaluated (broker down, worker lost), in batches.

    Every event past the mark and older than ALERTS_SWEEP_DELAY_SECONDS (younger ones are left
    to their own task) that is neither evaluated nor held by a live claim is evaluated, whatever
    lies around it: recent evaluated events do not hide the unevaluated ones behind them. A
    claim whose lease ran out (its worker died) is taken over. Then the mark moves over the
    events that are all done, but never past an event younger than ALERTS_SWEEP_SETTLE_SECONDS,
    because an id handed out at insert may commit later than a higher one.
    """
    size = batch_size or settings.ALERTS_EVALUATION_BATCH
    state, _ = SweepState.objects.get_or_create(pk=1)
    low = state.low_water_id
    now = timezone.now()
    evaluate_before = now - timedelta(seconds=settings.ALERTS_SWEEP_DELAY_SECONDS)
    settle_before = now - timedelta(seconds=settings.ALERTS_SWEEP_SETTLE_SECONDS)
    horizon = now - timedelta(
        hours=settings.ALERTS_SWEEP_HORIZON_HOURS if horizon_hours is None else horizon_hours
    )
    relevant = _relevant().filter(pk__gt=low)
    due = (
        relevant.filter(occurred_at__lte=evaluate_before, occurred_at__gte=horizon)
        .exclude(_done_or_held(now))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    evaluated = 0
    after = low
    for _ in range(max_batches):
        ids = list(due.filter(pk__gt=after)[:size])
        if ids:
            evaluated += evaluate(event_ids=ids, gather=False).evaluated
        if len(ids) < size:
            break
        after = ids[-1]

    # The mark: the last relevant event before the first one that is young or still to do.
    undone = ~Exists(
        EvaluatedEvent.objects.filter(event_id=OuterRef("pk"), evaluated_at__isnull=False)
    )
    blocker = (
        relevant.filter(Q(occurred_at__gt=settle_before) | Q(undone, occurred_at__gte=horizon))
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    done = relevant if blocker is None else relevant.filter(pk__lt=blocker)
    mark = done.aggregate(mark=Max("pk"))["mark"]
    if mark is not None:
        skipped = done.filter(undone).count()  # older than anyone would act on
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
