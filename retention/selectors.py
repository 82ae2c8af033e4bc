"""Reads for retention pages. Every query is scoped here, by the acting user's organization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from celery.schedules import BaseSchedule
from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import Organization, Tier

from .models import (
    FRAMEWORK_REQUIREMENTS,
    ExportSchedule,
    Framework,
    PurgeRun,
    RetentionSettings,
    StoredFile,
)

# The entry of settings.CELERY_BEAT_SCHEDULE that purges every organization's expired events.
PURGE_BEAT_ENTRY = "retention-purge-expired"


def retention_settings_of(organization: Organization) -> RetentionSettings:
    """The organization's settings, or unsaved defaults when it never saved any."""
    found = RetentionSettings.objects.filter(organization=organization).first()
    return found or RetentionSettings(organization=organization)


@dataclass(frozen=True)
class FrameworkWarning:
    framework: str
    requirement: str
    required_days: int
    retention_days: int
    advice: str


def framework_warnings(
    organization: Organization, settings: RetentionSettings
) -> list[FrameworkWarning]:
    """Where the organization's retention falls short of a framework it follows, and what to do."""
    warnings = []
    for value in settings.frameworks:
        required, requirement = FRAMEWORK_REQUIREMENTS[Framework(value)]
        if required is None or organization.retention_days >= required:
            continue
        if organization.tier == Tier.ENTERPRISE:
            advice = (
                f"Raise retention to at least {required // 365} years below, "
                "or keep archives for the difference."
            )
        elif settings.archive_before_purge:
            advice = (
                "Archive before purge is on: keep the archive files at least "
                f"{required // 365} years, or upgrade to Enterprise."
            )
        else:
            advice = (
                "Upgrade to Enterprise (configurable up to 10 years), or turn on archive before "
                "purge and schedule exports, and keep those files for the full period."
            )
        warnings.append(
            FrameworkWarning(
                framework=Framework(value).label,
                requirement=requirement,
                required_days=required,
                retention_days=organization.retention_days,
                advice=advice,
            )
        )
    return warnings


@dataclass(frozen=True)
class RetentionDates:
    retention_days: int
    cutoff_now: datetime
    today_kept_until: datetime


def retention_dates(organization: Organization, now: datetime | None = None) -> RetentionDates:
    """What the retention means in dates: what goes at the next purge, how long today stays."""
    now = now or timezone.now()
    days = organization.retention_days
    return RetentionDates(
        retention_days=days,
        cutoff_now=now - timedelta(days=days),
        today_kept_until=now + timedelta(days=days),
    )


def purge_runs_for(organization: Organization, limit: int = 10) -> QuerySet[PurgeRun]:
    runs = PurgeRun.objects.filter(scope=f"org:{organization.pk}").select_related("archive")
    return runs.order_by("-started_at")[:limit]


def stored_files_for(organization: Organization) -> QuerySet[StoredFile]:
    return StoredFile.objects.filter(organization=organization).select_related("schedule")


def stored_file_get(*, organization: Organization, pk: int) -> StoredFile:
    """A file of the organization, or 404 (another tenant's file does not exist for you)."""
    found = stored_files_for(organization).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def schedules_for(organization: Organization) -> QuerySet[ExportSchedule]:
    return ExportSchedule.objects.filter(organization=organization)


def schedule_get(*, organization: Organization, pk: int) -> ExportSchedule:
    found = schedules_for(organization).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


@dataclass(frozen=True)
class RetentionStatus:
    """Where an organization's retention stands: its promise, the next purge and the last."""

    tier: str
    retention_days: int
    archive_before_purge: bool
    # The beat schedule's next purge of every organization (None: no purge is scheduled).
    next_purge_at: datetime | None
    last_purge: PurgeRun | None


def retention_status(organization: Organization, now: datetime | None = None) -> RetentionStatus:
    """The organization's tier and retention, when its events are next purged, its last purge."""
    now = now or timezone.now()
    entry = settings.CELERY_BEAT_SCHEDULE.get(PURGE_BEAT_ENTRY)
    next_purge_at = None
    if entry:
        # Celery's estimate is the crontab's minute less the microseconds it took to compute.
        schedule = cast(BaseSchedule, entry["schedule"])
        estimate = now + schedule.remaining_estimate(now) + timedelta(seconds=30)
        next_purge_at = estimate.replace(second=0, microsecond=0)
    return RetentionStatus(
        tier=Tier(organization.tier).label,
        retention_days=organization.retention_days,
        archive_before_purge=retention_settings_of(organization).archive_before_purge,
        next_purge_at=next_purge_at,
        last_purge=purge_runs_for(organization, limit=1).first(),
    )


def stored_files_recent(organization: Organization, *, limit: int = 5) -> list[StoredFile]:
    """The organization's latest archives and scheduled exports, newest first."""
    return list(stored_files_for(organization).order_by("-created_at", "-id")[:limit])
