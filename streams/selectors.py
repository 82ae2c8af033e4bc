"""Reads for the streams pages and the deliverer, scoped to one organization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.access import Capability, roles_with
from accounts.models import Membership, Tier
from audit.selectors import events_for_organization

from .models import StreamDestination

if TYPE_CHECKING:
    from accounts.models import Organization

# The lag shown counts undelivered events up to this many ("more than 10,000").
LAG_COUNT_CAP = 10_000


def destinations_for(*, organization: Organization) -> QuerySet[StreamDestination]:
    return StreamDestination.objects.filter(organization=organization).order_by("name", "id")


def destination_for(*, organization: Organization, destination_id: int) -> StreamDestination | None:
    return destinations_for(organization=organization).filter(pk=destination_id).first()


def destinations_due(*, now: datetime) -> list[int]:
    """Destinations to deliver now: not paused, not backing off, not held by a deliverer, of
    an organization on the Enterprise tier."""
    return list(
        StreamDestination.objects.filter(paused_at__isnull=True, organization__tier=Tier.ENTERPRISE)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .values_list("pk", flat=True)
    )


def administrator_emails(*, organization_id: int) -> list[str]:
    """Who is told when a destination is paused: those who manage streams."""
    return list(
        Membership.objects.filter(
            organization_id=organization_id,
            role__in=roles_with(Capability.MANAGE_STREAMS),
            user__is_active=True,
        ).values_list("user__email", flat=True)
    )


@dataclass(frozen=True)
class Lag:
    events: int  # undelivered events, at most LAG_COUNT_CAP + 1
    seconds: float | None  # age of the oldest undelivered event; None when there is none

    @property
    def capped(self) -> bool:
        return self.events > LAG_COUNT_CAP


def lag_of(destination: StreamDestination) -> Lag:
    """How far behind the destination is: events after its cursor and the oldest one's age."""
    txid, event_id = destination.cursor_txid, destination.cursor_event_id
    pending = (
        events_for_organization(organization=destination.organization)
        .filter(txid__gte=txid)
        .filter(Q(txid__gt=txid) | Q(id__gt=event_id))
        .order_by("txid", "id")
    )
    count = len(pending.values_list("id", flat=True)[: LAG_COUNT_CAP + 1])
    oldest = pending.values_list("occurred_at", flat=True).first()
    seconds = (timezone.now() - oldest).total_seconds() if oldest else None
    return Lag(events=count, seconds=max(seconds, 0.0) if seconds is not None else None)
