"""Account jobs, periodic (schedules in settings) and queued; thin wrappers around services."""

from celery import shared_task

from . import notifications, services


@shared_task
def session_expire_stale() -> int:
    return services.session_expire_stale()


@shared_task
def lockout_release_expired() -> int:
    return services.lockouts_release_expired()


@shared_task(time_limit=60, soft_time_limit=50)
def security_notice_send(event_id: int) -> bool:
    return notifications.security_notice_send(event_id=event_id)
