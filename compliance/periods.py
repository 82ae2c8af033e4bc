"""The periods a schedule reviews: the day, week or month before now, in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .models import Frequency

# How long after its period ends a review may stay unsigned before it is overdue.
DUE_AFTER = {
    Frequency.DAILY: timedelta(days=1),
    Frequency.WEEKLY: timedelta(days=3),
    Frequency.MONTHLY: timedelta(days=7),
}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def last_complete_period(frequency: str, now: datetime) -> Period:
    """The latest whole day, ISO week (Monday to Monday) or calendar month that ended by now."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency == Frequency.DAILY:
        return Period(today - timedelta(days=1), today)
    if frequency == Frequency.WEEKLY:
        monday = today - timedelta(days=today.weekday())
        return Period(monday - timedelta(days=7), monday)
    end = _month_start(today)
    return Period(_month_start(end - timedelta(days=1)), end)


def due_at(frequency: str, end: datetime, now: datetime | None = None) -> datetime:
    """When a review of a period ending at `end` is due: its allowance counts from when it was
    opened, at the earliest the period's end (nobody could review it before it was open: a
    schedule added today does not start overdue, nor does a period opened by hand)."""
    start = max(end, now) if now is not None else end
    return start + DUE_AFTER[Frequency(frequency)]
