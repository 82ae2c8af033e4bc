"""Account jobs, periodic (schedules in settings) and queued; thin wrappers around services."""

from celery import shared_task

from . import lockout, notifications, sessions, throttle_store


@shared_task
def session_expire_stale() -> int:
    return sessions.session_expire_stale()


@shared_task
def lockout_release_expired() -> int:
    return lockout.lockouts_release_expired()


# Shorter than the claim's lease (SWEEP_CLAIM_LEASE_SECONDS, default 60 s): a hung send is killed
# before a sweep may take its claim over.
@shared_task(time_limit=50, soft_time_limit=45)
def security_notice_send(event_id: int) -> bool:
    return notifications.security_notice_send(event_id=event_id)


@shared_task(time_limit=300, soft_time_limit=280)
def security_notices_sweep() -> int:
    return notifications.security_notices_sweep()


@shared_task
def throttle_buckets_purge() -> int:
    return throttle_store.throttle_buckets_purge()
