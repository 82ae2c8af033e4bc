"""Reads for reviews and the checklist, each scoped to one organization here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.http import Http404

from accounts.access import Capability, access_for, roles_with
from accounts.models import Organization, Role, User

from .models import (
    GuideAcknowledgement,
    LogAnalysisGuide,
    RetentionAcknowledgement,
    Review,
    ReviewItem,
    ReviewSchedule,
    ReviewStatus,
)


def schedules_of(organization: Organization) -> QuerySet[ReviewSchedule]:
    return ReviewSchedule.objects.filter(organization=organization).select_related("assignee")


def schedule_get(*, organization: Organization, pk: int) -> ReviewSchedule:
    found = schedules_of(organization).filter(pk=pk).first()
    if found is None:
        raise Http404("No such review schedule in your organization.")
    return found


def review_get(*, organization: Organization, pk: int) -> Review:
    found = (
        Review.objects.filter(organization=organization, pk=pk)
        .select_related("schedule", "schedule__assignee", "signed_by")
        .first()
    )
    if found is None:
        raise Http404("No such review in your organization.")
    return found


def reviews_due(organization: Organization) -> QuerySet[Review]:
    """The open reviews, the most urgent first."""
    return (
        Review.objects.filter(organization=organization, status=ReviewStatus.OPEN)
        .select_related("schedule", "schedule__assignee")
        .order_by("due_at", "id")
    )


def reviews_overdue(organization: Organization, *, now: datetime) -> list[Review]:
    return list(reviews_due(organization).filter(due_at__lte=now))


def reviews_history(organization: Organization, *, limit: int = 50) -> QuerySet[Review]:
    """Signed reviews, the newest first, with who signed and when."""
    return (
        Review.objects.filter(organization=organization, status=ReviewStatus.COMPLETED)
        .select_related("schedule")
        .order_by("-signed_at", "-id")[:limit]
    )


def review_items(review: Review) -> QuerySet[ReviewItem]:
    return review.items.select_related("decided_by")


def reviewers_of(organization: Organization) -> QuerySet[User]:
    """People who may be assigned a review: those whose role may read reviews."""
    return (
        User.objects.filter(
            is_active=True,
            membership__organization=organization,
            membership__role__in=roles_with(Capability.VIEW_REVIEWS),
        )
        .select_related("membership")
        .order_by("email")
    )


def reviewer_roles() -> list[tuple[str, str]]:
    """The roles a review may be assigned to, as form choices."""
    held = roles_with(Capability.VIEW_REVIEWS)
    return [(role.value, str(role.label)) for role in Role if role in held]


@dataclass(frozen=True)
class SignOffRight:
    allowed: bool
    reason: str = ""


def may_sign(*, user: User, review: Review) -> SignOffRight:
    """Whether this person may mark and sign off this review: the schedule's assigned person,
    else anyone of its assigned role, in the review's organization."""
    access = access_for(user)
    if access.organization is None or access.organization.pk != review.organization_id:
        return SignOffRight(False, "This review belongs to another organization.")
    if not access.can(Capability.VIEW_REVIEWS):
        return SignOffRight(False, "Reviews are for administrators, analysts and compliance.")
    schedule = review.schedule
    if schedule.assignee_id is not None:
        if schedule.assignee_id != user.pk:
            return SignOffRight(False, "This review is assigned to someone else.")
    elif access.membership is None or access.membership.role != schedule.assigned_role:
        label = Role(schedule.assigned_role).label if schedule.assigned_role else "someone"
        return SignOffRight(False, f"This review is signed by a {str(label).lower()}.")
    return SignOffRight(True)


def only_own_changes(*, items: Iterable[ReviewItem], user: User) -> bool:
    """Whether every item under review is the person's own doing (and there is at least one)."""
    actors = [item.actor_id for item in items]
    return bool(actors) and all(actor == user.pk for actor in actors)


def review_assignees(review: Review) -> list[User]:
    """Who is told about the review: its assigned person, else everyone of its role."""
    schedule = review.schedule
    if schedule.assignee_id is not None:
        people = User.objects.filter(pk=schedule.assignee_id, is_active=True)
    else:
        people = User.objects.filter(
            is_active=True,
            membership__organization_id=review.organization_id,
            membership__role=schedule.assigned_role,
        )
    return list(people.order_by("email"))


def retention_acknowledgement_latest(
    organization: Organization,
) -> RetentionAcknowledgement | None:
    return (
        RetentionAcknowledgement.objects.filter(organization=organization)
        .select_related("acknowledged_by")
        .order_by("-acknowledged_at", "-id")
        .first()
    )


def guide_of(organization: Organization) -> LogAnalysisGuide:
    """The organization's guide, or an unsaved empty one."""
    found = LogAnalysisGuide.objects.filter(organization=organization).first()
    return found or LogAnalysisGuide(organization=organization)


# Who must read the guide: the people who analyse the log.
GUIDE_READERS = (Role.ADMINISTRATOR, Role.SECURITY_ANALYST)


@dataclass(frozen=True)
class GuideReading:
    read: list[User]
    unread: list[User]


def guide_readers(organization: Organization, guide: LogAnalysisGuide) -> GuideReading:
    """The administrators and analysts who acknowledged the guide's current version, and not."""
    people = list(
        User.objects.filter(
            is_active=True,
            membership__organization=organization,
            membership__role__in=GUIDE_READERS,
        ).order_by("email")
    )
    done = set(
        GuideAcknowledgement.objects.filter(
            organization=organization, version=guide.version, user__in=people
        ).values_list("user_id", flat=True)
    )
    return GuideReading(
        read=[p for p in people if p.pk in done], unread=[p for p in people if p.pk not in done]
    )


def guide_acknowledged_by(organization: Organization, user: User, version: int) -> bool:
    return GuideAcknowledgement.objects.filter(
        organization=organization, user=user, version=version
    ).exists()


def retention_facts(organization: Organization) -> dict[str, object]:
    """What an acknowledgement of the retention covers: tier, days, frameworks and warnings."""
    from retention.selectors import framework_warnings, retention_settings_of

    current = retention_settings_of(organization)
    return {
        "tier": organization.tier,
        "retention_days": organization.retention_days,
        "frameworks": sorted(current.frameworks),
        "archive_before_purge": current.archive_before_purge,
        "warnings": [
            f"{w.framework}: {w.requirement} ({w.required_days} days)"
            for w in framework_warnings(organization, current)
        ],
    }


def retention_fingerprint(facts: dict[str, object]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def alert_states(organization: Organization, items: Iterable[ReviewItem]) -> dict[int, str]:
    """The current state of each alert the items name, by alert id (live, not as prepared)."""
    from alerts.models import Alert

    ids = [item.alert_id for item in items if item.alert_id is not None]
    if not ids:
        return {}
    return {
        pk: str(label)
        for pk, label in (
            (a.pk, a.get_status_display())
            for a in Alert.objects.filter(organization=organization, pk__in=ids).only(
                "id", "status"
            )
        )
    }
