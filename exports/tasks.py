"""Export jobs: thin wrappers around exports.services (schedules in settings)."""

from __future__ import annotations

from celery import shared_task

from . import services


# A large export may run for minutes; the limit stops a runaway, not an honest big file.
@shared_task(time_limit=3600, soft_time_limit=3500, acks_late=True)
def export_build(export_id: str) -> bool:
    return services.export_build(export_id=export_id) is not None


@shared_task
def exports_expire() -> int:
    return services.exports_expire()


@shared_task(time_limit=300, soft_time_limit=280)
def exports_sweep() -> int:
    return services.exports_sweep()
