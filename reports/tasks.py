"""Report jobs: thin wrappers around reports.services."""

from __future__ import annotations

from celery import shared_task

from . import services


# Twelve months at ten million events is measured in bench/reports.py; the limit stops a runaway.
@shared_task(time_limit=1800, soft_time_limit=1700, acks_late=True)
def report_build(report_id: str) -> bool:
    return services.report_build(report_id=report_id) is not None


@shared_task(time_limit=120, soft_time_limit=110)
def reports_sweep() -> int:
    return services.reports_sweep()
