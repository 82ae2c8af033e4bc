"""Periodic retention jobs; thin wrappers around the purge and the scheduled exports (their beat
schedules are in settings)."""

from __future__ import annotations

from celery import shared_task

from . import purge, schedules


# A purge of millions of rows takes minutes; each batch commits on its own, so a time limit
# that stops it midway loses nothing and the next run carries on.
@shared_task(time_limit=6 * 60 * 60, soft_time_limit=6 * 60 * 60 - 60)
def events_purge_expired_all() -> dict[str, int]:
    outcomes = purge.events_purge_expired_all()
    return {o.scope: o.count for o in outcomes if o.count}


@shared_task(time_limit=60 * 60, soft_time_limit=60 * 60 - 60)
def export_schedules_run_due() -> int:
    return schedules.export_schedules_run_due()
