"""Reads of the seals, scoped to one organization."""

from __future__ import annotations

from typing import Any

from .models import Seal


def seal_head(organization_id: int | None) -> dict[str, Any] | None:
    """The organization's newest seal as a manifest names it (None: nothing sealed yet), so a
    copy of the chain's head travels with every file written outside the database."""
    if organization_id is None:
        return None
    seal = Seal.objects.filter(organization_id=organization_id).order_by("-sequence").first()
    if seal is None:
        return None
    return {
        "sequence": seal.sequence,
        "digest": seal.digest,
        "key_id": seal.key_id,
        "seal_file": seal.storage_name,
        "last_event": {"txid": seal.last_txid, "id": seal.last_id},
    }


def seal_latest(organization_id: int) -> Seal | None:
    return Seal.objects.filter(organization_id=organization_id).order_by("-sequence").first()


def integrity_status(organization_id: int) -> dict[str, Any]:
    """What the page shows: the chain's length and head, and the latest verification event."""
    from django.db.models import Count, Sum

    from audit.models import AuditEvent, EventType

    seals = Seal.objects.filter(organization_id=organization_id)
    totals = seals.aggregate(seals=Count("id"), events=Sum("event_count"))
    last_check = (
        AuditEvent.objects.filter(
            organization_id=organization_id,
            event_type__in=[EventType.INTEGRITY_VERIFIED, EventType.INTEGRITY_FAILED],
        )
        .order_by("-occurred_at", "-id")
        .first()
    )
    return {
        "seals": totals["seals"] or 0,
        "events": totals["events"] or 0,
        "head": seal_latest(organization_id),
        "last_check": last_check,
    }
