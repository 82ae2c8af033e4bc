"""Reads of audit events. Every query is scoped here, by user or by organization."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Organization, User

from .models import AuditEvent


def events_for_user(*, user: User) -> QuerySet[AuditEvent]:
    """The user's own events (as actor or as the person acted on), newest first."""
    return AuditEvent.objects.filter(Q(actor=user) | Q(target_user=user)).order_by(
        "-occurred_at", "-id"
    )


def events_for_organization(*, organization: Organization) -> QuerySet[AuditEvent]:
    """Every event of one organization, newest first."""
    return AuditEvent.objects.filter(organization=organization).order_by("-occurred_at", "-id")
