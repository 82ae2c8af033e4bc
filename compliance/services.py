"""Writes for reviews and the checklist; each records its audit event in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.checklist import CheckedItem, checklist_check
from accounts.models import Organization, Role, User
from audit.models import EventType
from audit.services import event_record

from .models import (
    ChecklistState,
    Decision,
    Focus,
    Frequency,
    GuideAcknowledgement,
    LogAnalysisGuide,
    RetentionAcknowledgement,
    Review,
    ReviewItem,
    ReviewSchedule,
    ReviewStatus,
)
from .periods import due_at, last_complete_period
from .queue import review_queue
from .selectors import may_sign, only_own_changes, retention_facts, retention_fingerprint

if TYPE_CHECKING:
    from django.http import HttpRequest

# The product page's three reviews, created for every organization.
DEFAULT_SCHEDULES: tuple[tuple[str, str, str, str], ...] = (
    (
        "Administrators' weekly review",
        Focus.ALL_ACTIVITY,
        Frequency.WEEKLY,
        Role.ADMINISTRATOR,
    ),
    (
        "Security analysts' daily review",
        Focus.SECURITY_OPERATIONS,
        Frequency.DAILY,
        Role.SECURITY_ANALYST,
    ),
    (
        "Compliance monthly review",
        Focus.AUDIT_TRAIL,
        Frequency.MONTHLY,
        Role.COMPLIANCE_OFFICER,
    ),
)


class ReviewRefused(Exception):
    """A change to a review or its schedule that is not allowed; the message says why."""


def review_schedules_ensure(*, organization: Organization) -> None:
    """Give an organization that has no schedule the product page's three (the defaults are no
    one's change: no event)."""
    if ReviewSchedule.objects.filter(organization=organization).exists():
        return
    for name, focus, frequency, role in DEFAULT_SCHEDULES:
        try:
            with transaction.atomic():
                ReviewSchedule.objects.create(
                    organization=organization,
                    name=name,
                    focus=focus,
                    frequency=frequency,
                    assigned_role=role,
                )
        except IntegrityError:  # another request made it first
            continue


def _schedule_changed(
    *,
    schedule: ReviewSchedule,
    actor: User,
    old: dict[str, object] | None,
    new: dict[str, object] | None,
    request: HttpRequest | None,
) -> None:
    event_record(
        event_type=EventType.SETTINGS_CHANGED,
        actor=actor,
        organization=schedule.organization,
        details={"area": "review_schedule", "schedule": schedule.pk, "old": old, "new": new},
        request=request,
    )


def review_schedule_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    focus: str,
    frequency: str,
    assigned_role: str,
    assignee: User | None,
    request: HttpRequest | None = None,
) -> ReviewSchedule:
    with transaction.atomic():
        schedule = ReviewSchedule.objects.create(
            organization=organization,
            name=name,
            focus=focus,
            frequency=frequency,
            assigned_role=assigned_role,
            assignee=assignee,
        )
        _schedule_changed(
            schedule=schedule, actor=actor, old=None, new=schedule.describe(), request=request
        )
    return schedule


def review_schedule_update(
    *,
    schedule: ReviewSchedule,
    actor: User,
    changes: dict[str, Any],
    request: HttpRequest | None = None,
) -> bool:
    """Apply the changed fields; whether anything changed (and was recorded)."""
    with transaction.atomic():
        locked = ReviewSchedule.objects.select_for_update().get(pk=schedule.pk)
        old = locked.describe()
        for field, value in changes.items():
            setattr(locked, field, value)
        new = locked.describe()
        if new == old:
            return False
        locked.save()
        _schedule_changed(
            schedule=locked,
            actor=actor,
            old={k: v for k, v in old.items() if new[k] != v},
            new={k: v for k, v in new.items() if old[k] != v},
            request=request,
        )
    return True


def _overlapping(schedule: ReviewSchedule, start: datetime, end: datetime) -> Review | None:
    return (
        Review.objects.filter(schedule=schedule, period_start__lt=end, period_end__gt=start)
        .order_by("period_start")
        .first()
    )


def review_open(
    *,
    schedule: ReviewSchedule,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> Review:
    """Open a review of [start, end) for the schedule, or ReviewRefused saying why not: an empty
    or reversed period, one in the future, or one overlapping a review the schedule has."""
    now = now or timezone.now()
    if end <= start:
        raise ReviewRefused("The period must end after it starts.")
    if end > now:
        raise ReviewRefused("The period has not ended yet: review it once it is over.")
    with transaction.atomic():
        # One opener at a time per schedule, so two overlapping periods cannot both pass.
        ReviewSchedule.objects.select_for_update().get(pk=schedule.pk)
        clash = _overlapping(schedule, start, end)
        if clash is not None:
            raise ReviewRefused(
                "That period overlaps the review of "
                f"{clash.period_start:%Y-%m-%d %H:%M} to {clash.period_end:%Y-%m-%d %H:%M} UTC."
            )
        return Review.objects.create(
            organization_id=schedule.organization_id,
            schedule=schedule,
            period_start=start,
            period_end=end,
            due_at=due_at(schedule.frequency, end, now),
        )


def reviews_open_due(*, organization: Organization, now: datetime) -> list[Review]:
    """Open the review of each active schedule's last complete period, where not open yet."""
    opened = []
    for schedule in ReviewSchedule.objects.filter(organization=organization, active=True):
        period = last_complete_period(schedule.frequency, now)
        if _overlapping(schedule, period.start, period.end) is not None:
            continue
        try:
            opened.append(
                review_open(schedule=schedule, start=period.start, end=period.end, now=now)
            )
        except ReviewRefused:  # opened meanwhile by another sweep or by hand
            continue
    return opened


def review_prepare(*, review: Review) -> bool:
    """Build the review's queue from the log, once (a conditional UPDATE claims it)."""
    if review.prepared_at is not None:
        return False
    with transaction.atomic():
        claimed = Review.objects.filter(pk=review.pk, prepared_at__isnull=True).update(
            prepared_at=timezone.now()
        )
        if not claimed:
            return False
        entries = review_queue(
            organization_id=review.organization_id,
            focus=review.schedule.focus,
            start=review.period_start,
            end=review.period_end,
        )
        ReviewItem.objects.bulk_create(
            ReviewItem(
                organization_id=review.organization_id,
                review=review,
                kind=entry.kind,
                occurred_at=entry.occurred_at,
                summary=entry.summary,
                event_id=entry.event_id,
                alert_id=entry.alert_id,
                actor_id=entry.actor_id,
                actor_label=entry.actor_label,
            )
            for entry in entries
        )
    review.refresh_from_db(fields=["prepared_at"])
    return True


def review_item_mark(
    *, review: Review, item: ReviewItem, user: User, decision: str, note: str
) -> None:
    """Record the reviewer's decision on one item (the sign-off's event lists the marks)."""
    right = may_sign(user=user, review=review)
    if not right.allowed:
        raise ReviewRefused(right.reason)
    if review.status != ReviewStatus.OPEN:
        raise ReviewRefused("This review is signed off: its marks are final.")
    if decision == Decision.FOLLOWED_UP and not note.strip():
        raise ReviewRefused("Say in the note how it was followed up.")
    ReviewItem.objects.filter(pk=item.pk, review=review).update(
        decision=decision, note=note.strip(), decided_by=user, decided_at=timezone.now()
    )


def review_sign_off(
    *, review: Review, user: User, note: str = "", request: HttpRequest | None = None
) -> None:
    """Sign the review off and record review.completed, or ReviewRefused saying why not.

    The password was checked by the caller (accounts.forms.PasswordConfirmForm, counted like a
    sign-in); here: the right person, not only their own changes, every item marked."""
    right = may_sign(user=user, review=review)
    if not right.allowed:
        raise ReviewRefused(right.reason)
    with transaction.atomic():
        locked = Review.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewStatus.OPEN:
            raise ReviewRefused("This review is already signed off.")
        items = list(locked.items.all())
        if only_own_changes(items=items, user=user):
            raise ReviewRefused(
                "Everything under review is your own doing: someone else must sign it off."
            )
        unmarked = sum(1 for item in items if not item.decision)
        if unmarked:
            raise ReviewRefused(
                f"{unmarked} item{'s' if unmarked != 1 else ''} still to mark before signing off."
            )
        now = timezone.now()
        locked.status = ReviewStatus.COMPLETED
        locked.signed_by = user
        locked.signed_by_label = user.email
        locked.signed_at = now
        locked.sign_off_note = note.strip()
        locked.overdue_email_pending = False
        locked.save()
        event_record(
            event_type=EventType.REVIEW_COMPLETED,
            actor=user,
            organization=locked.organization,
            details={
                "review": locked.pk,
                "schedule": locked.schedule.name,
                "period_start": locked.period_start.isoformat(),
                "period_end": locked.period_end.isoformat(),
                "items": len(items),
                "expected": sum(1 for i in items if i.decision == Decision.EXPECTED),
                "followed_up": sum(1 for i in items if i.decision == Decision.FOLLOWED_UP),
                "late": locked.overdue_at is not None,
            },
            request=request,
        )
    review.refresh_from_db()


def reviews_mark_overdue(*, now: datetime) -> list[int]:
    """Mark each open review past its due time overdue and record review.overdue, once each
    (the conditional UPDATE is the claim); the reviews marked."""
    marked = []
    due = Review.objects.filter(
        status=ReviewStatus.OPEN, overdue_at__isnull=True, due_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due[:500]):
        with transaction.atomic():
            claimed = Review.objects.filter(
                pk=pk, status=ReviewStatus.OPEN, overdue_at__isnull=True
            ).update(overdue_at=now, overdue_email_pending=True)
            if not claimed:
                continue
            review = Review.objects.select_related("schedule", "organization").get(pk=pk)
            event_record(
                event_type=EventType.REVIEW_OVERDUE,
                organization=review.organization,
                details={
                    "review": review.pk,
                    "schedule": review.schedule.name,
                    "period_start": review.period_start.isoformat(),
                    "period_end": review.period_end.isoformat(),
                    "due_at": review.due_at.isoformat(),
                },
            )
        marked.append(pk)
    return marked


def retention_acknowledge(
    *, organization: Organization, actor: User, request: HttpRequest | None = None
) -> RetentionAcknowledgement:
    """Record that `actor` read the retention as it is now (tier, frameworks, warnings)."""
    facts = retention_facts(organization)
    with transaction.atomic():
        acknowledgement = RetentionAcknowledgement.objects.create(
            organization=organization,
            fingerprint=retention_fingerprint(facts),
            summary=facts,
            acknowledged_by=actor,
        )
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=organization,
            details={"area": "retention_acknowledgement", "old": None, "new": facts},
            request=request,
        )
    return acknowledgement


def guide_update(
    *, organization: Organization, actor: User, body: str, request: HttpRequest | None = None
) -> LogAnalysisGuide | None:
    """Save a new version of the guide (everyone reads it again); None when unchanged."""
    with transaction.atomic():
        guide, _ = LogAnalysisGuide.objects.select_for_update().get_or_create(
            organization=organization
        )
        if guide.body == body:
            return None
        old = {"version": guide.version, "body": guide.body}
        guide.body = body
        guide.version += 1
        guide.updated_by = actor
        guide.updated_at = timezone.now()
        guide.save()
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=organization,
            details={
                "area": "log_analysis_guide",
                "old": old,
                "new": {"version": guide.version, "body": guide.body},
            },
            request=request,
        )
    return guide


def guide_acknowledge(
    *,
    organization: Organization,
    user: User,
    version: int,
    request: HttpRequest | None = None,
) -> bool:
    """Record that `user` read this version of the guide; False if they already had."""
    guide = LogAnalysisGuide.objects.filter(organization=organization).first()
    if guide is None or guide.version != version or not guide.body:
        raise ReviewRefused("The guide changed since you opened it: read it again.")
    with transaction.atomic():
        _, created = GuideAcknowledgement.objects.get_or_create(
            organization=organization, user=user, version=version
        )
        if created:
            event_record(
                event_type=EventType.SETTINGS_CHANGED,
                actor=user,
                organization=organization,
                details={
                    "area": "log_analysis_guide_read",
                    "old": None,
                    "new": {"version": version},
                },
                request=request,
            )
    return created


@dataclass(frozen=True)
class ChecklistRow:
    checked: CheckedItem
    changed_at: datetime


def checklist_refresh(*, organization: Organization, now: datetime) -> list[ChecklistRow]:
    """Compute every item now, and keep when each last changed status."""
    checked = checklist_check(organization, now=now)
    states = {s.item: s for s in ChecklistState.objects.filter(organization=organization)}
    rows = []
    for entry in checked:
        state = states.get(entry.item.key)
        if state is None:
            state, _ = ChecklistState.objects.get_or_create(
                organization=organization,
                item=entry.item.key,
                defaults={"status": entry.status.value, "changed_at": now},
            )
        if state.status != entry.status.value:
            # Only the first to see the change moves the date.
            ChecklistState.objects.filter(pk=state.pk).filter(~Q(status=entry.status.value)).update(
                status=entry.status.value, changed_at=now
            )
            state.status, state.changed_at = entry.status.value, now
        rows.append(ChecklistRow(entry, state.changed_at))
    return rows


def reviews_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """What the beat does: mark reviews past due overdue (once), give every organization its
    schedules, open the reviews whose period ended, refresh its checklist's statuses, and email
    the assignees of overdue reviews."""
    from .notifications import review_overdue_notify_pending

    now = now or timezone.now()
    overdue = reviews_mark_overdue(now=now)
    opened = 0
    for organization in Organization.objects.all().iterator():
        review_schedules_ensure(organization=organization)
        opened += len(reviews_open_due(organization=organization, now=now))
        # The checklist's "since" dates move within a sweep of a change, not at the next visit.
        checklist_refresh(organization=organization, now=now)
    emailed = review_overdue_notify_pending()
    return {"opened": opened, "overdue": len(overdue), "emailed": emailed}
