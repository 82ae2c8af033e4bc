"""How long events are kept: an organization's retention, and the settings that change it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import ENTERPRISE_RETENTION_BOUNDS, TIER_RETENTION_DAYS, Organization, Tier
from audit.models import EventType
from audit.selectors import events_retention_days_allowed
from audit.services import event_record

from .models import Framework, RetentionSettings

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import User


class RetentionInputError(ValueError):
    """A request the rules do not allow (out of range, wrong tier, bad filter)."""


# No event is purged younger than the shortest tier's retention; on PostgreSQL the database's
# purge functions hold the same floor (audit migration 0008), whatever the app asks.
RETENTION_FLOOR_DAYS = min(TIER_RETENTION_DAYS.values())


def retention_days_of(organization: Organization | None) -> int:
    """Days an organization's events are kept; the platform setting for events without one.

    The platform setting is clamped to RETENTION_FLOOR_DAYS, as the database clamps it. On
    PostgreSQL the database may keep them longer, and then its answer wins: a retention
    shortened within the last RETENTION_DOWNGRADE_GRACE_DAYS still counts there, and the
    platform retention is the one written at the last migrate (audit migration 0009).
    """
    if organization is None:
        days = max(settings.PLATFORM_EVENT_RETENTION_DAYS, RETENTION_FLOOR_DAYS)
    else:
        days = organization.retention_days
    allowed = events_retention_days_allowed(
        organization_id=organization.pk if organization else None
    )
    return days if allowed is None else max(days, allowed)


def _retention_days_override(organization: Organization, retention_days: int) -> int | None:
    """The override to store for `retention_days`, or RetentionInputError if it is not allowed."""
    if organization.tier != Tier.ENTERPRISE:
        raise RetentionInputError(
            f"The {organization.get_tier_display()} tier keeps events "
            f"{organization.retention_days} days; only Enterprise organizations can configure "
            "retention."
        )
    low, high = ENTERPRISE_RETENTION_BOUNDS
    if not low <= retention_days <= high:
        raise RetentionInputError(
            f"Retention must be between {low} and {high} days (1 to 10 years)."
        )
    # The tier's default is stored as no override.
    return None if retention_days == TIER_RETENTION_DAYS[Tier.ENTERPRISE] else retention_days


def retention_settings_update(
    *,
    organization: Organization,
    actor: User,
    frameworks: list[str],
    archive_before_purge: bool,
    retention_days: int | None = None,
    request: HttpRequest | None = None,
) -> dict[str, dict[str, Any]]:
    """Save the organization's retention settings; returns what changed (old and new).

    `retention_days` None leaves the retention as it is. Only Enterprise organizations may set
    it, within 1 to 10 years; their tier's default is stored as no override.
    """
    unknown = sorted(set(frameworks) - set(Framework.values))
    if unknown:
        raise RetentionInputError(f"Unknown compliance framework: {', '.join(unknown)}.")
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        RetentionSettings.objects.get_or_create(organization=org)
        current = RetentionSettings.objects.select_for_update().get(organization=org)
        old: dict[str, Any] = {
            "retention_days": org.retention_days,
            "frameworks": sorted(current.frameworks),
            "archive_before_purge": current.archive_before_purge,
        }
        new: dict[str, Any] = {
            "retention_days": old["retention_days"],
            "frameworks": sorted(set(frameworks)),
            "archive_before_purge": bool(archive_before_purge),
        }
        if retention_days is not None and retention_days != org.retention_days:
            org.retention_days_override = _retention_days_override(org, retention_days)
            org.save(update_fields=["retention_days_override"])
            new["retention_days"] = retention_days
        changes = {key: {"old": old[key], "new": new[key]} for key in old if old[key] != new[key]}
        if not changes:
            return {}
        current.frameworks = new["frameworks"]
        current.archive_before_purge = new["archive_before_purge"]
        current.updated_at = timezone.now()
        current.save()
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=org,
            details={
                "area": "retention",
                "old": {key: change["old"] for key, change in changes.items()},
                "new": {key: change["new"] for key, change in changes.items()},
            },
            request=request,
        )
    organization.retention_days_override = org.retention_days_override
    return changes
