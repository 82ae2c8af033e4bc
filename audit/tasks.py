"""Periodic jobs of the events table; the beat schedule is in settings."""

from __future__ import annotations

from celery import shared_task

from . import partitions


@shared_task
def events_partitions_ensure() -> int:
    return partitions.partitions_ensure()
