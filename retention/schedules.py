"""Scheduled exports: a recurring CSV of the Audit Log's filters, produced by beat when due."""

from __future__ import annotations

import calendar
import logging
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from accounts.selectors import event_filters_with_members
from audit.models import EventType
from audit.selectors import EventFilters, events_matching
from audit.services import event_record
from exports.services import csv_chunks

from .archives import stored_file_write
from .forms import ScheduleFilterForm
from .models import (
    DEFAULT_WINDOW_DAYS,
    MAX_WINDOW_DAYS,
    ExportSchedule,
    FileKind,
    Frequency,
    StoredFile,
)
from .policy import RetentionInputError

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

logger = logging.getLogger(__name__)

SCHEDULE_ACTOR = "scheduled export"


class ScheduleFiltersInvalid(RetentionInputError):
    """A schedule's stored filters that the filter form refuses today (stored under older,
    looser rules): no run of it can succeed until it is replaced."""


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)


def schedule_advance(when: datetime, frequency: str) -> datetime:
    """The run after `when`: a day, a week, or the same day next month (clamped)."""
    if frequency == Frequency.DAILY:
        return when + timedelta(days=1)
    if frequency == Frequency.WEEKLY:
        return when + timedelta(days=7)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def _parsed_filters(filters: dict[str, Any]) -> ScheduleFilterForm:
    form = ScheduleFilterForm(data=filters)
    if not form.is_valid():
        raise RetentionInputError(f"Invalid filter: {form.error_text()}")
    return form


def export_schedule_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    frequency: str,
    filters: dict[str, Any],
    window_days: int | None = None,
    now: datetime | None = None,
    request: HttpRequest | None = None,
) -> ExportSchedule:
    """Schedule a recurring export of the Audit Log's `filters`; first run at midnight UTC."""
    if frequency not in Frequency.values:
        raise RetentionInputError(f"Unknown frequency {frequency!r}.")
    window_days = window_days or DEFAULT_WINDOW_DAYS[Frequency(frequency)]
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise RetentionInputError(f"The window must be 1 to {MAX_WINDOW_DAYS} days.")
    canonical = _parsed_filters(filters).canonical()
    with transaction.atomic():
        schedule = ExportSchedule.objects.create(
            organization=organization,
            name=name.strip()[:100],
            frequency=frequency,
            filters=canonical,
            window_days=window_days,
            next_run_at=_next_midnight(now or timezone.now()),
            created_by=actor,
        )
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=organization,
            details={
                "area": "export_schedule",
                "schedule": schedule.pk,
                "old": None,
                "new": {"name": schedule.name, "frequency": frequency, **schedule.describe()},
            },
            request=request,
        )
    return schedule


def export_schedule_delete(
    *, schedule: ExportSchedule, actor: User, request: HttpRequest | None = None
) -> None:
    """Stop a schedule; the files it produced are kept."""
    with transaction.atomic():
        old = {"name": schedule.name, "frequency": schedule.frequency, **schedule.describe()}
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=schedule.organization,
            details={"area": "export_schedule", "schedule": schedule.pk, "old": old, "new": None},
            request=request,
        )
        schedule.delete()


def _schedule_filters(schedule: ExportSchedule) -> EventFilters:
    """The schedule's stored filters, parsed as the Audit Log parses them, or
    ScheduleFiltersInvalid (recorded on the schedule, where its page shows it)."""
    form = ScheduleFilterForm(data=schedule.filters)
    if form.is_valid():
        return form.filters()
    error = ScheduleFiltersInvalid(
        f"The stored filters can no longer be used ({form.error_text()}); "
        "delete this schedule and create it again."
    )
    ExportSchedule.objects.filter(pk=schedule.pk).update(last_error=str(error)[:500])
    raise error


def _schedule_rows(
    schedule: ExportSchedule, filters: EventFilters, start: datetime, end: datetime
) -> QuerySet[Any]:
    """The schedule's rows for one window: what the Audit Log shows with its filters."""
    window = replace(filters, since=start, until=end)
    events = events_matching(
        filters=event_filters_with_members(window, organization=schedule.organization),
        organization=schedule.organization,
    )
    return events.order_by("occurred_at", "id")


def export_schedule_run(
    *,
    schedule: ExportSchedule,
    period_end: datetime,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> StoredFile:
    """Produce the schedule's CSV for the window ending at `period_end`, stored and checked."""
    filters = _schedule_filters(schedule)
    start = period_end - timedelta(days=schedule.window_days)
    organization = schedule.organization
    stamp = f"{period_end.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    record = StoredFile(
        kind=FileKind.EXPORT,
        organization=organization,
        name=f"{organization.slug}/exports/{slugify(schedule.name) or 'export'}-{stamp}.csv",
        schedule=schedule,
        created_by=actor,
        period_start=start,
        period_end=period_end,
    )
    # What the file holds, as its manifest and its export.created event say.
    window = {
        **schedule.describe(),
        "period_start": start.isoformat(),
        "period_end": period_end.isoformat(),
    }
    stored_file_write(
        record=record,
        chunks=csv_chunks(_schedule_rows(schedule, filters, start, period_end)),
        about={"organization": organization.slug, "schedule": schedule.name, **window},
    )
    with transaction.atomic():
        record.save()
        ExportSchedule.objects.filter(pk=schedule.pk).update(
            last_run_at=timezone.now(), last_error=""
        )
        event_record(
            event_type=EventType.EXPORT_CREATED,
            actor=actor,
            actor_label="" if actor else SCHEDULE_ACTOR,
            organization=organization,
            details={
                "schedule": schedule.pk,
                "schedule_name": schedule.name,
                **record.describe(),
                **window,
            },
            request=request,
        )
    return record


def export_schedules_run_due(*, now: datetime | None = None) -> int:
    """Produce every due export once (claimed by a conditional update); returns how many.

    A schedule that missed runs (workers down) catches up one period at a time, oldest first;
    one whose export fails keeps its period due and is retried at the next beat.
    """
    now = now or timezone.now()
    produced = 0
    failed: set[int] = set()
    while True:
        due = list(
            ExportSchedule.objects.filter(next_run_at__lte=now)
            .exclude(pk__in=failed)
            .select_related("organization")
            .order_by("next_run_at", "pk")[:100]
        )
        if not due:
            return produced
        for schedule in due:
            period_end = schedule.next_run_at
            following = schedule_advance(period_end, schedule.frequency)
            claimed = ExportSchedule.objects.filter(pk=schedule.pk, next_run_at=period_end).update(
                next_run_at=following
            )
            if not claimed:
                failed.add(schedule.pk)  # another worker has it: leave it to that one
                continue
            try:
                export_schedule_run(schedule=schedule, period_end=period_end)
            except Exception as exc:
                if isinstance(exc, ScheduleFiltersInvalid):  # known and shown: no traceback
                    logger.warning("scheduled export %s failed: %s", schedule.pk, exc)
                else:
                    logger.exception("scheduled export %s failed", schedule.pk)
                # Give the period back so the next beat retries it: no export is skipped.
                ExportSchedule.objects.filter(pk=schedule.pk, next_run_at=following).update(
                    next_run_at=period_end, last_error=(str(exc) or exc.__class__.__name__)[:500]
                )
                failed.add(schedule.pk)
                continue
            produced += 1
