"""Reads for alerts. Events are read per organization; alerts per acting user's role."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.access import Capability, can, roles_with
from accounts.models import ActivityCheck, LockoutState, Organization, User, UserSession
from accounts.selectors import membership_of, sessions_open_of
from audit.models import AuditEvent, EventType, TorExitNode

from .models import (
    Alert,
    AlertRule,
    AlertStatus,
    Severity,
    SweepState,
    WebhookDelivery,
    WebhookEndpoint,
)

# --- Events the rules read (always scoped to the event's organization) -----------------------


def _organization_events(organization_id: int | None) -> QuerySet[AuditEvent]:
    # By organization= (an id, or None: IS NULL); django-stubs refuses None for organization_id=.
    return AuditEvent.objects.filter(organization=organization_id)


def failed_sign_ins_between(
    *, organization_id: int | None, after: datetime, until: datetime
) -> QuerySet[AuditEvent]:
    """The organization's failed sign-ins with after < occurred_at <= until (a batch's windows)."""
    return _organization_events(organization_id).filter(
        event_type=EventType.LOGIN_FAILED, occurred_at__gt=after, occurred_at__lte=until
    )


def failed_sign_ins_from_networks(
    *,
    organization_id: int | None,
    after: datetime,
    until: datetime,
    networks: set[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> QuerySet[AuditEvent]:
    """The organization's failed sign-ins with after < occurred_at <= until from addresses of
    the networks (a batch's credential-stuffing windows).

    audit.lookups' `in_network`: on PostgreSQL inet's `<<=`, which the planner turns into a range
    of the (organization, ip_address, time) index per network, or the window of (organization,
    event_type, time), whichever is cheaper; on SQLite (`make run`) a test per row of the window.
    """
    within = Q()
    for network in sorted(networks, key=str):
        within |= Q(ip_address__in_network=network.with_prefixlen)
    return failed_sign_ins_between(
        organization_id=organization_id, after=after, until=until
    ).filter(within)


def mfa_failures_between(
    *, organization_id: int | None, after: datetime, until: datetime
) -> QuerySet[AuditEvent]:
    """The organization's failed second-factor checks with after < occurred_at <= until."""
    return _organization_events(organization_id).filter(
        event_type=EventType.MFA_VERIFICATION_FAILED, occurred_at__gt=after, occurred_at__lte=until
    )


def tor_exit_nodes(ips: set[str]) -> dict[str, TorExitNode]:
    """The loaded Tor exit list's entries for those addresses that are on it."""
    return {node.ip_address: node for node in TorExitNode.objects.filter(ip_address__in=ips)}


def sign_ins_before_outer() -> QuerySet[AuditEvent]:
    """For an outer query over events: each one's actor's successful sign-ins recorded before it
    (by time, then id), newest first. Correlated, so one query judges a whole batch."""
    return (
        AuditEvent.objects.filter(
            organization=OuterRef("organization_id"),
            event_type=EventType.LOGIN_SUCCEEDED,
            actor_id=OuterRef("actor_id"),
        )
        .filter(
            Q(occurred_at__lt=OuterRef("occurred_at"))
            | Q(occurred_at=OuterRef("occurred_at"), id__lt=OuterRef("id"))
        )
        .order_by("-occurred_at", "-id")
    )


def sign_ins_of(*, organization_id: int | None, actor_ids: set[int]) -> QuerySet[AuditEvent]:
    """The actors' successful sign-ins."""
    return _organization_events(organization_id).filter(
        event_type=EventType.LOGIN_SUCCEEDED, actor_id__in=actor_ids
    )


def sign_ins_before_event(event: AuditEvent) -> QuerySet[AuditEvent]:
    """The actor's successful sign-ins recorded before this event, newest first."""
    return (
        _organization_events(event.organization_id)
        .filter(event_type=EventType.LOGIN_SUCCEEDED, actor_id=event.actor_id)
        .filter(
            Q(occurred_at__lt=event.occurred_at) | Q(occurred_at=event.occurred_at, id__lt=event.pk)
        )
        .order_by("-occurred_at", "-id")
    )


def events_with_earlier_sign_ins(ids: list[int], **annotations: Any) -> Any:
    """The batch's events, each annotated from its actor's earlier sign-ins (see above).

    Typed Any: the annotations' names are the caller's, which the type checker cannot see.
    """
    return AuditEvent.objects.filter(pk__in=ids).annotate(**annotations)


def sessions_open_during(
    *,
    organization_id: int | None,
    user_ids: set[int],
    first: datetime,
    last: datetime,
    max_age: timedelta,
) -> QuerySet[UserSession]:
    """The users' sessions open at some instant between first and last (and not older than
    max_age then): the sessions that were open when any of a batch's events happened."""
    return UserSession.objects.filter(
        organization=organization_id,
        user_id__in=user_ids,
        started_at__lte=last,
        started_at__gt=first - max_age,
    ).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=first))


def events_by_ids(*, organization_id: int, ids: list[int]) -> QuerySet[AuditEvent]:
    """The alert's triggering events, oldest first (a timeline)."""
    return _organization_events(organization_id).filter(pk__in=ids).order_by("occurred_at", "id")


# --- Alerts ----------------------------------------------------------------------------------


def alerts_for_triage(*, user: User) -> QuerySet[Alert]:
    """The organization's alerts for an analyst or administrator; none for anyone else."""
    membership = membership_of(user)
    if membership is None or not can(user, Capability.TRIAGE_ALERTS):
        return Alert.objects.none()
    return (
        Alert.objects.filter(organization_id=membership.organization_id)
        .select_related("assignee", "subject_user")
        .order_by("-id")
    )


# The orders the triage list offers, each a key of fields read newest or highest first, ending in
# the id so that every alert has one place (the list pages by that key, not by offset).
ALERT_SORTS: dict[str, tuple[str, ...]] = {
    "severity": ("severity_rank", "last_seen_at", "id"),
    "last_seen": ("last_seen_at", "id"),
    "first_seen": ("first_seen_at", "id"),
}
DEFAULT_ALERT_SORT = "severity"


def _with_severity_rank(alerts: QuerySet[Alert]) -> QuerySet[Alert]:
    return alerts.annotate(
        severity_rank=Case(
            When(severity=Severity.HIGH, then=Value(3)),
            When(severity=Severity.MEDIUM, then=Value(2)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )


def alerts_triage_list(
    *,
    user: User,
    status: str = "",
    kind: str = "",
    severity: str = "",
    subject: str = "",
    assignee: str = "",
    sort: str = DEFAULT_ALERT_SORT,
    after: int | None = None,
) -> QuerySet[Alert] | None:
    """The triage list, filtered and in the chosen order, from the alert after `after` on.

    `assignee` is "me", "none" (unassigned) or a user's id; `after` the last alert of the page
    before, which must be one this user may see: None (not a list) when it is not.
    """
    key = ALERT_SORTS.get(sort) or ALERT_SORTS[DEFAULT_ALERT_SORT]
    alerts = _with_severity_rank(alerts_for_triage(user=user))
    if status:
        alerts = alerts.filter(status=status)
    if kind:
        alerts = alerts.filter(kind=kind)
    if severity:
        alerts = alerts.filter(severity=severity)
    if subject:
        alerts = alerts.filter(
            Q(subject_label__iexact=subject) | Q(subject_user__email__iexact=subject)
        )
    if assignee == "me":
        alerts = alerts.filter(assignee=user)
    elif assignee == "none":
        alerts = alerts.filter(assignee__isnull=True)
    elif assignee:
        alerts = alerts.filter(assignee_id=int(assignee))
    if after is not None:
        mark = (
            _with_severity_rank(alerts_for_triage(user=user)).filter(pk=after).values(*key).first()
        )
        if mark is None:
            return None
        # Strictly after the mark in the (descending) key: (a, b, c) < (a0, b0, c0).
        beyond = Q()
        for i, name in enumerate(key):
            same = {f"{earlier}": mark[earlier] for earlier in key[:i]}
            beyond |= Q(**same, **{f"{name}__lt": mark[name]})
        alerts = alerts.filter(beyond)
    return alerts.order_by(*(F(name).desc() for name in key))


@dataclass(frozen=True)
class SubjectAccount:
    """The member an alert is about, as the actions on the alert need them."""

    user: User
    locked_until: datetime | None  # the latest end of a lock that holds now, in any scope
    open_sessions: int


def subject_account_of(*, alert: Alert) -> SubjectAccount | None:
    """The alert's subject if they are a member of the alert's organization, else None."""
    if alert.subject_user_id is None:
        return None
    user = (
        User.objects.filter(
            pk=alert.subject_user_id, membership__organization_id=alert.organization_id
        )
        .select_related("lockout_state")
        .first()
    )
    if user is None:
        return None
    now = timezone.now()
    state: LockoutState | None = getattr(user, "lockout_state", None)
    ends = []
    if state is not None:
        ends = [until for s in state.scopes_locked(now) if (until := state.lock_of(s)[1])]
    return SubjectAccount(
        user=user,
        locked_until=max(ends, default=None),
        open_sessions=sessions_open_of(user).count(),
    )


def answers_by_alert(alerts: list[Alert]) -> dict[int, list[ActivityCheck]]:
    """What each alert's subject answered ("Was this you?") about its triggering events."""
    wanted = {
        (alert.organization_id, alert.subject_user_id, event_id)
        for alert in alerts
        if alert.subject_user_id is not None and isinstance(alert.event_ids, list)
        for event_id in alert.event_ids
    }
    if not wanted:
        return {}
    checks = ActivityCheck.objects.filter(
        organization_id__in={o for o, _, _ in wanted},
        user_id__in={u for _, u, _ in wanted},
        event_id__in={e for _, _, e in wanted},
    ).order_by("answered_at", "id")
    by_key: dict[tuple[int, int | None, int], ActivityCheck] = {
        (c.organization_id, c.user_id, c.event_id): c for c in checks
    }
    return {
        alert.pk: [
            by_key[key]
            for event_id in alert.event_ids
            if (key := (alert.organization_id, alert.subject_user_id, event_id)) in by_key
        ]
        for alert in alerts
    }


def alerts_about_user(*, user: User) -> QuerySet[Alert]:
    """Alerts about the user's own account (their Profile)."""
    membership = membership_of(user)
    if membership is None:
        return Alert.objects.none()
    return Alert.objects.filter(
        organization_id=membership.organization_id, subject_user=user
    ).order_by("-id")


def open_alert_count(*, user: User) -> int:
    return alerts_for_triage(user=user).filter(status=AlertStatus.OPEN).count()


def _triagers(organization_id: int) -> QuerySet[User]:
    """The organization's active analysts and administrators, by email."""
    return User.objects.filter(
        membership__organization_id=organization_id,
        membership__role__in=roles_with(Capability.TRIAGE_ALERTS),
        is_active=True,
    ).order_by("email")


def assignable_users(*, user: User) -> QuerySet[User]:
    """Analysts and administrators of the acting user's organization."""
    membership = membership_of(user)
    if membership is None:
        return User.objects.none()
    return _triagers(membership.organization_id)


def rules_for(*, user: User) -> QuerySet[AlertRule]:
    membership = membership_of(user)
    if membership is None or not can(user, Capability.TRIAGE_ALERTS):
        return AlertRule.objects.none()
    return AlertRule.objects.filter(organization_id=membership.organization_id).order_by("id")


def webhooks_for(*, user: User) -> QuerySet[WebhookEndpoint]:
    membership = membership_of(user)
    if membership is None or not can(user, Capability.MANAGE_WEBHOOKS):
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.filter(organization_id=membership.organization_id)


def deliveries_for(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).select_related("alert")[:100]


def notification_recipients(*, organization_id: int) -> list[str]:
    """Email addresses of the organization's analysts and administrators."""
    return list(_triagers(organization_id).values_list("email", flat=True))


def unresolved_alerts_by_severity(*, organization: Organization) -> dict[str, dict[str, int]]:
    """The organization's open and acknowledged alerts counted by severity, high first (every
    severity present, zeros included). One query."""
    counts = (
        Alert.objects.filter(
            organization=organization, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
        )
        .values("severity", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_severity = {
        severity: {AlertStatus.OPEN.value: 0, AlertStatus.ACKNOWLEDGED.value: 0}
        for severity in reversed(Severity.values)
    }
    for row in counts:
        by_severity[row["severity"]][row["status"]] = row["n"]
    return by_severity


@dataclass(frozen=True)
class SweepProgress:
    """How far the sweep has confirmed every event evaluated (platform-wide, for operators)."""

    low_water_id: int
    swept_at: datetime | None
    latest_event_id: int

    @property
    def events_behind(self) -> int:
        """Events after the mark: an upper bound of those not yet known to be evaluated."""
        return max(self.latest_event_id - self.low_water_id, 0)


def sweep_progress() -> SweepProgress:
    state = SweepState.objects.filter(pk=1).first()
    latest = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return SweepProgress(
        low_water_id=state.low_water_id if state else 0,
        swept_at=state.swept_at if state else None,
        latest_event_id=latest,
    )
