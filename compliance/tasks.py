"""The beat task for reviews (its schedule is in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(time_limit=600, soft_time_limit=540)
def reviews_sweep() -> dict[str, int]:
    """Open due reviews, mark overdue ones (review.overdue once each) and email assignees."""
    return services.reviews_sweep()
