"""The beat task that seals what is pending (the schedule is in settings)."""

from __future__ import annotations

from celery import shared_task

from .services import events_seal_all


@shared_task
def events_seal_pending() -> int:
    return events_seal_all()


@shared_task
def integrity_verify(organization_id: int, actor_id: int | None = None) -> bool:
    """Verify one organization (the page's button); whether it was intact."""
    from accounts.models import Organization, User

    from .services import integrity_verify_record

    organization = Organization.objects.get(pk=organization_id)
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    return integrity_verify_record(organization=organization, actor=actor).intact
