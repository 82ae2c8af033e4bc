"""Periodic account jobs; thin wrappers around services (schedules in settings)."""

from celery import shared_task

from . import services


@shared_task
def session_expire_stale() -> int:
    return services.session_expire_stale()


@shared_task
def lockout_release_expired() -> int:
    return services.lockouts_release_expired()
