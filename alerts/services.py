"""Writes for alerts: rules, evaluation of events, triage, notifications and webhooks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from activity_monitor.celery import enqueue
from audit.models import AuditEvent, EventType
from audit.services import event_record

from . import selectors, webhooks
from .models import (
    Alert,
    AlertRule,
    AlertStatus,
    DeliveryStatus,
    EvaluatedEvent,
    RuleKind,
    SweepState,
    WebhookDelivery,
    WebhookEndpoint,
)
from .rules import EVALUATED_EVENT_TYPES, RULES, Finding, default_parameters, findings_for

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

MAX_EVENT_IDS = 200
# Rules whose alerts go to the person affected rather than to the security team.
USER_NOTICE_KINDS = frozenset({RuleKind.NEW_DEVICE, RuleKind.NEW_COUNTRY})


# --- Rules -----------------------------------------------------------------------------------


def alert_rules_ensure(*, organization_id: int) -> None:
    """Give the organization every rule it lacks, with the default thresholds (idempotent)."""
    have = set(
        AlertRule.objects.filter(organization_id=organization_id).values_list("kind", flat=True)
    )
    missing = [
        AlertRule(
            organization_id=organization_id,
            kind=kind,
            severity=spec.severity,
            parameters=default_parameters(kind),
        )
        for kind, spec in RULES.items()
        if kind not in have
    ]
    if missing:
        AlertRule.objects.bulk_create(missing, ignore_conflicts=True)


def _rule_state(rule: AlertRule) -> dict[str, Any]:
    return {
        "enabled": rule.enabled,
        "severity": rule.severity,
        "parameters": dict(rule.parameters),
        "notify_email": rule.notify_email,
        "notify_webhook": rule.notify_webhook,
    }


def alert_rule_update(
    *,
    rule: AlertRule,
    actor: User,
    enabled: bool,
    severity: str,
    parameters: dict[str, Any],
    notify_email: bool,
    notify_webhook: bool,
    request: HttpRequest | None = None,
) -> bool:
    """Store validated settings and record settings.changed with old and new values."""
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
        old = _rule_state(rule)
        rule.enabled, rule.severity, rule.parameters = enabled, severity, dict(parameters)
        rule.notify_email, rule.notify_webhook = notify_email, notify_webhook
        new = _rule_state(rule)
        if old == new:
            return False
        rule.updated_at = timezone.now()
        rule.save()
        changed = {key: {"old": old[key], "new": new[key]} for key in new if old[key] != new[key]}
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            reason=f"alert rule {rule.kind}",
            details={
                "setting": f"alert_rule.{rule.kind}",
                "old": old,
                "new": new,
                "changed": changed,
            },
            request=request,
        )
    return True


# --- Evaluation ------------------------------------------------------------------------------


def _claim(event_id: int) -> bool:
    """Insert the event into the ledger unless it is there; True if this call inserted it.

    Runs inside the evaluation's transaction: a concurrent claim of the same id waits for it and
    then inserts nothing, and a rolled-back evaluation leaves the event unclaimed.
    """
    table = connection.ops.quote_name(EvaluatedEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (event_id, evaluated_at) VALUES (%s, %s) "  # noqa: S608
            "ON CONFLICT (event_id) DO NOTHING",
            [event_id, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        return cursor.rowcount == 1


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
    reopened = alert.status == AlertStatus.RESOLVED
    if reopened:
        alert.status = AlertStatus.OPEN
        alert.resolved_at = None
        alert.email_pending = rule.notify_email
        # A send of the earlier email still under way must not mark this new one as sent.
        alert.email_claimed_until = None
        alert.notes = [*alert.notes, _note(None, "reopened", "The rule matched again.")]
    alert.save()
    if reopened:
        _alert_raised(alert=alert, rule=rule, reopened=True)
        return 1
    return 0


def _alert_raised(*, alert: Alert, rule: AlertRule, reopened: bool) -> None:
    """Record alert.raised and queue the notifications once the transaction commits."""
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
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(endpoint=endpoint, alert=alert, payload=_payload(alert, reopened))
            for endpoint in WebhookEndpoint.objects.filter(
                organization_id=alert.organization_id, enabled=True
            )
        )
    from .tasks import alert_notify as alert_notify_task

    alert_id = alert.pk
    transaction.on_commit(lambda: enqueue(alert_notify_task, alert_id))


def _absolute(path: str) -> str:
    return settings.ALERTS_BASE_URL.rstrip("/") + path


def _payload(alert: Alert, reopened: bool) -> dict[str, Any]:
    return {
        "type": "alert.reopened" if reopened else "alert.raised",
        "alert": {
            "id": alert.pk,
            "rule": alert.kind,
            "severity": alert.severity,
            "summary": alert.summary,
            "status": alert.status,
            "subject": {"user": alert.subject_label or None, "ip": alert.subject_ip},
            "count": alert.count,
            "first_seen_at": alert.first_seen_at.isoformat(),
            "last_seen_at": alert.last_seen_at.isoformat(),
            "event_ids": alert.event_ids[:50],
            "url": _absolute(reverse("alerts:alert-detail", args=[alert.pk])),
        },
        "organization_id": alert.organization_id,
    }


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


# --- Triage ----------------------------------------------------------------------------------


def _note(actor: User | None, action: str, text: str) -> dict[str, Any]:
    return {
        "at": timezone.now().isoformat(),
        "by": actor.email if actor is not None else "",
        "action": action,
        "text": text,
    }


def _triage_event(
    *, alert: Alert, event_type: str, actor: User, request: HttpRequest | None, **details: Any
) -> None:
    event_record(
        event_type=event_type,
        actor=actor,
        target_user=alert.subject_user,
        organization=Organization(pk=alert.organization_id),
        reason=alert.kind,
        details={"alert_id": alert.pk, "rule": alert.kind, **details},
        request=request,
    )


class AlertStateError(Exception):
    """The alert is not in a state that allows this change (shown to the user as it is)."""


def alert_acknowledge(
    *, alert: Alert, actor: User, note: str = "", request: HttpRequest | None = None
) -> Alert:
    """Mark an open alert as being looked at; records alert.acknowledged."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("subject_user")
            .get(pk=alert.pk)
        )
        if alert.status != AlertStatus.OPEN:
            raise AlertStateError(
                f"Only open alerts can be acknowledged; this one is {alert.status}."
            )
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_at = timezone.now()
        if alert.assignee_id is None:
            alert.assignee = actor
        alert.notes = [*alert.notes, _note(actor, "acknowledged", note)]
        alert.save()
        _triage_event(
            alert=alert,
            event_type=EventType.ALERT_ACKNOWLEDGED,
            actor=actor,
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
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("subject_user", "assignee")
            .get(pk=alert.pk)
        )
        if alert.status == AlertStatus.RESOLVED:
            raise AlertStateError("A resolved alert cannot be assigned.")
        old = alert.assignee.email if alert.assignee else None
        alert.assignee = assignee
        if alert.status == AlertStatus.OPEN:
            alert.status = AlertStatus.ACKNOWLEDGED
            alert.acknowledged_at = timezone.now()
        alert.notes = [*alert.notes, _note(actor, "assigned", f"Assigned to {assignee.email}.")]
        alert.save()
        _triage_event(
            alert=alert,
            event_type=EventType.ALERT_ACKNOWLEDGED,
            actor=actor,
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
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("subject_user")
            .get(pk=alert.pk)
        )
        if alert.status == AlertStatus.RESOLVED:
            raise AlertStateError("This alert is already resolved.")
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = timezone.now()
        alert.notes = [*alert.notes, _note(actor, "resolved", note.strip())]
        alert.save()
        _triage_event(
            alert=alert,
            event_type=EventType.ALERT_RESOLVED,
            actor=actor,
            request=request,
            note=note,
        )
    return alert


# --- Notifications ---------------------------------------------------------------------------


def _email_for(alert: Alert) -> tuple[str, str, list[str]]:
    link = _absolute(reverse("alerts:alert-detail", args=[alert.pk]))
    if alert.kind in USER_NOTICE_KINDS and alert.subject_user is not None:
        subject = (
            "New sign-in to your account from a new device"
            if alert.kind == RuleKind.NEW_DEVICE
            else "New sign-in to your account from a new country"
        )
        place = ", ".join(p for p in (alert.details.get("city"), alert.details.get("country")) if p)
        agent = " on ".join(p for p in (alert.details.get("browser"), alert.details.get("os")) if p)
        body = (
            f"Hello,\n\nYour account {alert.subject_user.email} was just signed in to"
            f"{' from ' + place if place else ''}"
            f"{' with ' + agent if agent else ''}"
            f" (IP address {alert.subject_ip or 'unknown'}) at "
            f"{alert.last_seen_at:%Y-%m-%d %H:%M} UTC.\n\n"
            "If this was you, there is nothing to do. If it was not, change your password now "
            "and sign out your other sessions from your Profile.\n"
        )
        return subject, body, [alert.subject_user.email] if alert.subject_user.is_active else []
    subject = f"[{alert.get_severity_display()}] {alert.summary}"[:200]
    body = (
        f"Alert: {alert.get_kind_display()}\n{alert.summary}\n"
        f"Severity: {alert.get_severity_display()}\n"
        f"First seen: {alert.first_seen_at:%Y-%m-%d %H:%M:%S} UTC\n"
        f"Triage it: {link}\n"
    )
    return subject, body, selectors.notification_recipients(organization_id=alert.organization_id)


def _email_claim(alert_id: int) -> datetime | None:
    """Take the alert's pending email for a lease (conditional UPDATE); the lease end, or None."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.SWEEP_CLAIM_LEASE_SECONDS)
    claimed = (
        Alert.objects.filter(pk=alert_id, email_pending=True)
        .filter(Q(email_claimed_until__isnull=True) | Q(email_claimed_until__lte=now))
        .update(email_claimed_until=until)
    )
    return until if claimed else None


def alert_notify(*, alert_id: int) -> None:
    """Send the alert's email and queue its webhook deliveries; one channel failing never stops
    another.

    The email is claimed for a lease, sent, and only then marked sent: a sender that dies in the
    SMTP call leaves it pending, and once the lease is over the sweep sends it (at least once:
    a sender that dies between sending and marking sends twice).
    """
    claimed_until = _email_claim(alert_id)
    if claimed_until is not None:
        alert = Alert.objects.select_related("subject_user").get(pk=alert_id)
        try:
            subject, body, recipients = _email_for(alert)
            if recipients:
                send_mail(
                    subject,
                    body,
                    None,
                    recipients,
                    fail_silently=False,
                    # A mail server that hangs must not outlive the claim's lease.
                    connection=get_connection(timeout=settings.SWEEP_EMAIL_TIMEOUT_SECONDS),
                )
        except Exception:
            logger.exception("alert %s: email failed; the sweep retries it", alert_id)
            Alert.objects.filter(pk=alert_id, email_claimed_until=claimed_until).update(
                email_claimed_until=None
            )
        else:
            Alert.objects.filter(pk=alert_id, email_claimed_until=claimed_until).update(
                email_pending=False, email_claimed_until=None
            )
    from .tasks import webhook_delivery_attempt as webhook_delivery_attempt_task

    due = WebhookDelivery.objects.filter(
        alert_id=alert_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for delivery_id in list(due):
        enqueue(webhook_delivery_attempt_task, delivery_id)


def notifications_sweep() -> int:
    """Do what a lost task, a dead worker or a failed send left behind: alert emails still
    pending and not claimed by a live sender, and due webhook attempts (whose claims are
    leases too: see webhook_delivery_attempt)."""
    now = timezone.now()
    started = 0
    stale = (
        Alert.objects.filter(
            email_pending=True,
            created_at__lte=now - timedelta(seconds=settings.ALERTS_SWEEP_DELAY_SECONDS),
            created_at__gte=now - timedelta(days=1),
        )
        .filter(Q(email_claimed_until__isnull=True) | Q(email_claimed_until__lte=now))
        .values_list("pk", flat=True)[:200]
    )
    for alert_id in list(stale):
        alert_notify(alert_id=alert_id)
        started += 1
    due = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).values_list("pk", flat=True)[:200]
    for delivery_id in list(due):
        webhook_delivery_attempt(delivery_id=delivery_id)
        started += 1
    return started


# --- Webhooks --------------------------------------------------------------------------------


def webhook_endpoint_create(
    *,
    organization: Organization,
    url: str,
    description: str,
    actor: User,
    request: HttpRequest | None = None,
) -> WebhookEndpoint:
    """Add an endpoint (the URL already checked by webhooks.url_problem) with a fresh secret."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            organization=organization,
            url=url,
            description=description,
            secret=webhooks.new_secret(),
        )
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            reason="webhook endpoint added",
            details={
                "setting": "alert_webhook",
                "endpoint_id": endpoint.pk,
                "old": None,
                "new": {"url": url, "description": description, "enabled": True},
            },
            request=request,
        )
    return endpoint


def webhook_endpoint_delete(
    *, endpoint: WebhookEndpoint, actor: User, request: HttpRequest | None = None
) -> None:
    """Remove an endpoint and its delivery log."""
    with transaction.atomic():
        old = {
            "url": endpoint.url,
            "description": endpoint.description,
            "enabled": endpoint.enabled,
        }
        endpoint_id = endpoint.pk
        endpoint.delete()
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            reason="webhook endpoint removed",
            details={
                "setting": "alert_webhook",
                "endpoint_id": endpoint_id,
                "old": old,
                "new": None,
            },
            request=request,
        )


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=settings.ALERTS_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1))


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Make one attempt at a due delivery and log it; schedules the retry. Returns the status."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    # Claim: of two workers holding the same id, one moves next_attempt_at and attempts.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease, attempts=F("attempts") + 1)
    if not claimed:
        return "not due"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        attempt = webhooks.Attempt(None, "endpoint disabled", 0)
    else:
        attempt = webhooks.post(
            url=endpoint.url,
            secret=endpoint.secret,
            payload={**delivery.payload, "delivery_id": delivery.pk},
            delivery_id=delivery.pk,
        )
    delivery.log = [
        *delivery.log,
        {
            "at": now.isoformat(),
            "status_code": attempt.status_code,
            "error": attempt.error,
            "ms": attempt.milliseconds,
        },
    ][-20:]
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    retry_in = None
    if attempt.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = timezone.now()
    elif delivery.attempts >= settings.ALERTS_WEBHOOK_MAX_ATTEMPTS or not endpoint.enabled:
        delivery.status = DeliveryStatus.FAILED
    else:
        retry_in = _backoff(delivery.attempts)
        delivery.next_attempt_at = timezone.now() + retry_in
    delivery.save(
        update_fields=[
            "log",
            "last_status_code",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    # In eager mode (make run) a countdown would not wait: the sweep retries instead.
    if retry_in is not None and not current_app.conf.task_always_eager:
        from .tasks import webhook_delivery_attempt as webhook_delivery_attempt_task

        enqueue(webhook_delivery_attempt_task, delivery.pk, countdown=retry_in.total_seconds())
    return delivery.status
