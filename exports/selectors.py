"""Reads of exports, scoped to the organization of the person asking."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from accounts.models import Organization

from .models import Export


def exports_for_organization(*, organization: Organization) -> QuerySet[Export]:
    return Export.objects.filter(organization=organization).select_related("requested_by")


def export_for_organization(*, organization: Organization, export_id: str) -> Export | None:
    return exports_for_organization(organization=organization).filter(pk=export_id).first()


def exports_recent(*, organization: Organization, limit: int = 5) -> list[Export]:
    """The organization's latest background exports, newest first."""
    return list(exports_for_organization(organization=organization).order_by("-created_at")[:limit])


def export_counts_by_status() -> dict[str, int]:
    """How many export jobs each state holds, over every organization (the operator's view)."""
    rows = Export.objects.order_by().values_list("status").annotate(count=Count("pk"))
    return dict(rows)
