"""Stream jobs: thin wrappers that take ids and call one service (schedule in settings)."""

from __future__ import annotations

from celery import shared_task

from . import delivery


# The time limit stays below STREAMS_LEASE_SECONDS (180 s by default): a killed deliverer's
# lease has run out by the time the next one asks; its task budget (60 s) below both.
@shared_task(time_limit=150, soft_time_limit=120)
def stream_deliver(destination_id: int) -> int:
    return delivery.stream_deliver(destination_id=destination_id)


@shared_task(time_limit=30, soft_time_limit=25)
def streams_deliver_due() -> int:
    return delivery.streams_deliver_due()
