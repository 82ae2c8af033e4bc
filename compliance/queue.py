"""The queue of a review: what happened in its period that someone should look at, from the log.

Read-only: each function answers entries for one organization and one half-open period
[start, end); compliance.services stores them as the review's items once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Min, QuerySet
from django.db.models.functions import TruncHour

from alerts.models import Alert
from audit.descriptions import country_name, what_happened
from audit.models import AuditEvent, EventType

from .models import Focus, ItemKind

# An hour with at least this many failed sign-ins across the organization is a spike.
FAILURE_SPIKE_PER_HOUR = 10
# How far back a country counts as known for a person (bounded, so the look-up stays cheap).
KNOWN_COUNTRY_DAYS = 180
# At most this many entries of one kind: a review of a flood lists its first ones and says so.
ENTRIES_PER_KIND = 200

EVENT_KINDS: dict[ItemKind, tuple[str, ...]] = {
    ItemKind.CONFIGURATION: (EventType.SETTINGS_CHANGED,),
    ItemKind.ROLE_CHANGE: (EventType.MEMBER_ROLE_CHANGED, EventType.MFA_RESET_BY_ADMIN),
    ItemKind.LOCKOUT: (EventType.LOCKOUT_TRIGGERED,),
    ItemKind.EXPORT: (EventType.EXPORT_CREATED, EventType.EXPORT_DOWNLOADED),
    ItemKind.LOG_INTEGRITY: (
        EventType.INTEGRITY_VERIFIED,
        EventType.INTEGRITY_FAILED,
        EventType.RETENTION_PURGED,
    ),
}

# What each focus puts in the queue (the product page: administrators look at everything,
# analysts at operations and anomalies, compliance at the completeness of the trail).
FOCUS_KINDS: dict[str, frozenset[ItemKind]] = {
    Focus.ALL_ACTIVITY: frozenset(ItemKind),
    Focus.SECURITY_OPERATIONS: frozenset(
        {ItemKind.ALERT, ItemKind.LOCKOUT, ItemKind.FAILURE_SPIKE, ItemKind.NEW_COUNTRY}
    ),
    Focus.AUDIT_TRAIL: frozenset(
        {
            ItemKind.ALERT,
            ItemKind.CONFIGURATION,
            ItemKind.ROLE_CHANGE,
            ItemKind.EXPORT,
            ItemKind.LOG_INTEGRITY,
        }
    ),
}


@dataclass(frozen=True)
class Entry:
    kind: ItemKind
    occurred_at: datetime
    summary: str
    event_id: int | None = None
    alert_id: int | None = None
    actor_id: int | None = None
    actor_label: str = ""


def _events(
    organization_id: int, start: datetime, end: datetime, types: tuple[str, ...]
) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(
        organization_id=organization_id,
        event_type__in=types,
        occurred_at__gte=start,
        occurred_at__lt=end,
    )


def _event_summary(event: AuditEvent) -> str:
    text = what_happened(
        event_type=event.event_type,
        reason=event.reason,
        actor_label=event.actor_label,
        target_label=event.target_label,
    )
    details = event.details or {}
    if event.event_type == EventType.SETTINGS_CHANGED and details.get("area"):
        text += f" ({str(details['area']).replace('_', ' ')})"
    if event.event_type == EventType.MEMBER_ROLE_CHANGED and details.get("new"):
        text += f": {details.get('old')} → {details.get('new')}"
    return text[:300]


def event_entries(
    organization_id: int, start: datetime, end: datetime, kind: ItemKind
) -> list[Entry]:
    events = _events(organization_id, start, end, EVENT_KINDS[kind]).order_by("occurred_at", "id")
    return [
        Entry(
            kind=kind,
            occurred_at=event.occurred_at,
            summary=_event_summary(event),
            event_id=event.pk,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
        )
        for event in events.only(
            "id",
            "occurred_at",
            "event_type",
            "reason",
            "actor",
            "actor_label",
            "target_label",
            "details",
        )[:ENTRIES_PER_KIND]
    ]


def alert_entries(organization_id: int, start: datetime, end: datetime) -> list[Entry]:
    alerts = Alert.objects.filter(
        organization_id=organization_id, first_seen_at__gte=start, first_seen_at__lt=end
    ).order_by("first_seen_at", "id")
    return [
        Entry(
            kind=ItemKind.ALERT,
            occurred_at=alert.first_seen_at,
            summary=f"[{alert.get_severity_display()}] {alert.summary}"[:300],
            alert_id=alert.pk,
        )
        for alert in alerts[:ENTRIES_PER_KIND]
    ]


def failure_spike_entries(organization_id: int, start: datetime, end: datetime) -> list[Entry]:
    hours = (
        _events(organization_id, start, end, (EventType.LOGIN_FAILED,))
        .annotate(hour=TruncHour("occurred_at", tzinfo=UTC))
        .values("hour")
        .annotate(failures=Count("id"), addresses=Count("ip_address", distinct=True))
        .filter(failures__gte=FAILURE_SPIKE_PER_HOUR)
        .order_by("hour")
    )
    return [
        Entry(
            kind=ItemKind.FAILURE_SPIKE,
            occurred_at=row["hour"],
            summary=(
                f"{row['failures']} failed sign-ins in the hour from "
                f"{row['hour']:%Y-%m-%d %H:00} UTC, from {row['addresses']} "
                f"address{'es' if row['addresses'] != 1 else ''}"
            ),
        )
        for row in hours[:ENTRIES_PER_KIND]
    ]


def new_country_entries(organization_id: int, start: datetime, end: datetime) -> list[Entry]:
    """Each person's first sign-in of the period from a country they had not signed in from in
    the KNOWN_COUNTRY_DAYS before it."""
    firsts = (
        _events(organization_id, start, end, (EventType.LOGIN_SUCCEEDED,))
        .exclude(country="")
        .filter(actor__isnull=False)
        .values("actor", "country")
        .annotate(first=Min("occurred_at"), first_id=Min("id"))
    )
    pairs = {(row["actor"], row["country"]): row for row in firsts}
    if not pairs:
        return []
    known: dict[int, set[str]] = defaultdict(set)
    earlier = (
        _events(
            organization_id,
            start - timedelta(days=KNOWN_COUNTRY_DAYS),
            start,
            (EventType.LOGIN_SUCCEEDED,),
        )
        .filter(actor__in={actor for actor, _ in pairs})
        .values_list("actor", "country")
        .distinct()
    )
    for actor, country in earlier:
        known[actor].add(country)
    labels = dict(
        _events(organization_id, start, end, (EventType.LOGIN_SUCCEEDED,))
        .filter(id__in=[row["first_id"] for row in pairs.values()])
        .values_list("actor", "actor_label")
    )
    entries = [
        Entry(
            kind=ItemKind.NEW_COUNTRY,
            occurred_at=row["first"],
            summary=(
                f"{labels.get(actor) or 'someone'} signed in from {country_name(country)} "
                "for the first time"
            )[:300],
            actor_id=actor,
            actor_label=labels.get(actor, ""),
        )
        for (actor, country), row in pairs.items()
        if country not in known[actor]
    ]
    return sorted(entries, key=lambda e: e.occurred_at)[:ENTRIES_PER_KIND]


def review_queue(
    *, organization_id: int, focus: str, start: datetime, end: datetime
) -> list[Entry]:
    """Everything of the period the focus asks to look at, oldest first."""
    kinds = FOCUS_KINDS[focus]
    entries: list[Entry] = []
    for kind in ItemKind:
        if kind not in kinds:
            continue
        if kind in EVENT_KINDS:
            entries += event_entries(organization_id, start, end, kind)
        elif kind == ItemKind.ALERT:
            entries += alert_entries(organization_id, start, end)
        elif kind == ItemKind.FAILURE_SPIKE:
            entries += failure_spike_entries(organization_id, start, end)
        elif kind == ItemKind.NEW_COUNTRY:
            entries += new_country_entries(organization_id, start, end)
    return sorted(entries, key=lambda e: e.occurred_at)
