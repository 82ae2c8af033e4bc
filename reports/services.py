"""Writes of the reports app: access-review campaigns and their decisions, compliance reports.

An access review's decisions are applied through accounts' member services (role change,
removal), which record their own events and refuse to leave the organization without an
administrator; the campaign records each decision with who made it and when.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.access import CAPABILITIES, Capability, can
from accounts.models import Membership, Role
from accounts.selectors import members_of
from accounts.services import LastAdministratorError, member_remove, member_role_change
from activity_monitor.celery import enqueue
from audit.models import EventType
from audit.services import event_record

from .models import AccessReview, AccessReviewItem, ComplianceReport, Decision, ReportStatus
from .selectors import decision_counts, last_sign_ins_of, privileged_actions_of

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User


class AccessReviewRefused(Exception):
    """The decision or step is not allowed; the message says why, for the person."""


# --- Access reviews ----------------------------------------------------------------------------


def _latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


def access_review_start(
    *, actor: User, organization: Organization, request: HttpRequest | None = None
) -> AccessReview:
    """Start a campaign listing every member as they are now; refused while one is open."""
    now = timezone.now()
    members = list(members_of(organization))
    user_ids = [m.user_id for m in members]
    actions = privileged_actions_of(organization, user_ids=user_ids, now=now)
    signed_in = last_sign_ins_of(organization, user_ids=user_ids, now=now)
    try:
        with transaction.atomic():
            review = AccessReview.objects.create(
                organization=organization,
                started_by=actor,
                started_by_label=actor.email,
                started_at=now,
            )
            AccessReviewItem.objects.bulk_create(
                AccessReviewItem(
                    review=review,
                    organization=organization,
                    user=m.user,
                    email=m.user.email,
                    role=m.role,
                    has_mfa=bool(getattr(m, "has_mfa", False)),
                    last_sign_in_at=_latest(m.user.last_login, signed_in.get(m.user_id)),
                    privileged_actions=actions.get(m.user_id, 0),
                )
                for m in members
            )
            event_record(
                event_type=EventType.ACCESS_REVIEW_STARTED,
                actor=actor,
                organization=organization,
                details={"access_review_id": review.pk, "members": len(members)},
                request=request,
            )
    except IntegrityError:
        raise AccessReviewRefused(
            "An access review is already open: finish it before starting another."
        ) from None
    return review


def access_review_decision_refusal(
    *, actor: User, item: AccessReviewItem, decision: str, role: str, current: str = ""
) -> str:
    """Why the actor may not take this decision on the item ("" when they may); a read.

    `current`: the member's role now (default: the role the campaign found).
    """
    if decision not in Decision.values:
        return "Choose keep, change role or remove."
    if decision == Decision.CHANGE_ROLE and role not in Role.values:
        return "Choose the member's new role."
    if item.user_id == actor.pk:
        return "You cannot decide on your own access: another reviewer must (separation of duties)."
    if (
        decision == Decision.CHANGE_ROLE
        and CAPABILITIES[Role(role)] - CAPABILITIES[Role(current or item.role)]
        and not can(actor, Capability.MANAGE_MEMBERS)
    ):
        # A review takes access away; giving more stays with those who manage members, or a
        # compliance officer could raise an accomplice who then raises them.
        return (
            f"Only administrators give more access: as {Role(role).label}, {item.email} could "
            "do what they cannot today. Keep them and ask an administrator."
        )
    return ""


def access_review_decide(
    *,
    actor: User,
    item: AccessReviewItem,
    decision: str,
    role: str = "",
    note: str = "",
    request: HttpRequest | None = None,
) -> AccessReviewItem:
    """Keep, change the role of, or remove the item's member, and record the decision.

    Refused on a completed campaign, on the reviewer's own membership (separation of duties),
    and when the member service refuses (the last administrator).
    """
    refusal = access_review_decision_refusal(actor=actor, item=item, decision=decision, role=role)
    if refusal:
        raise AccessReviewRefused(refusal)
    with transaction.atomic():
        review = AccessReview.objects.select_for_update().get(pk=item.review_id)
        if review.completed_at is not None:
            raise AccessReviewRefused("This access review is completed: its decisions are final.")
        locked = AccessReviewItem.objects.select_for_update().get(pk=item.pk)
        # The member as they are now: gone (removed meanwhile) or in the same organization.
        membership = (
            Membership.objects.filter(
                user_id=locked.user_id or 0, organization_id=review.organization_id
            )
            .select_related("user", "organization")
            .first()
        )
        if decision == Decision.CHANGE_ROLE and membership is None:
            raise AccessReviewRefused(f"{locked.email} is no longer a member.")
        if membership is not None:  # weighed against the role they hold now
            refusal = access_review_decision_refusal(
                actor=actor, item=locked, decision=decision, role=role, current=membership.role
            )
            if refusal:
                raise AccessReviewRefused(refusal)
        try:
            if decision == Decision.CHANGE_ROLE and membership is not None:
                if role == membership.role:
                    raise AccessReviewRefused(
                        f"{locked.email} already is {Role(role).label}: choose keep instead."
                    )
                member_role_change(admin=actor, membership=membership, role=role, request=request)
            elif decision == Decision.REMOVE and membership is not None:
                member_remove(admin=actor, membership=membership, request=request)
        except LastAdministratorError:
            raise AccessReviewRefused(
                f"{locked.email} is the organization's last administrator: make someone else "
                "an administrator first."
            ) from None
        locked.decision = decision
        locked.new_role = role if decision == Decision.CHANGE_ROLE else ""
        locked.note = note[:500]
        locked.decided_by = actor
        locked.decided_by_label = actor.email
        locked.decided_at = timezone.now()
        locked.save(
            update_fields=[
                "decision", "new_role", "note", "decided_by", "decided_by_label", "decided_at"
            ]
        )  # fmt: skip
        event_record(
            event_type=EventType.ACCESS_REVIEW_DECIDED,
            actor=actor,
            target_user=locked.user,
            organization=review.organization,
            details={
                "access_review_id": review.pk,
                "decision": decision,
                "role": locked.role,
                **({"new_role": role} if decision == Decision.CHANGE_ROLE else {}),
            },
            request=request,
        )
    return locked


def access_review_complete(
    *, actor: User, review: AccessReview, request: HttpRequest | None = None
) -> AccessReview:
    """Close the campaign once every member is decided; it is read-only evidence from then."""
    with transaction.atomic():
        locked = AccessReview.objects.select_for_update().get(pk=review.pk)
        if locked.completed_at is not None:
            raise AccessReviewRefused("This access review is already completed.")
        undecided = locked.items.filter(decision="").count()
        if undecided:
            raise AccessReviewRefused(
                f"{undecided} member(s) still need a decision before the review can be completed."
            )
        locked.completed_at = timezone.now()
        locked.completed_by = actor
        locked.completed_by_label = actor.email
        locked.save(update_fields=["completed_at", "completed_by", "completed_by_label"])
        event_record(
            event_type=EventType.ACCESS_REVIEW_COMPLETED,
            actor=actor,
            organization=locked.organization,
            details={"access_review_id": locked.pk, **decision_counts(locked)},
            request=request,
        )
    return locked


# --- Compliance reports ------------------------------------------------------------------------


def report_create(
    *,
    user: User,
    organization: Organization,
    framework: str,
    start: datetime,
    end: datetime,
    request: HttpRequest | None = None,
) -> ComplianceReport:
    """Queue a compliance report for [start, end) and record report.created."""
    from .tasks import report_build as report_build_task

    with transaction.atomic():
        report = ComplianceReport.objects.create(
            organization=organization,
            requested_by=user,
            requested_by_label=user.email,
            framework=framework,
            period_start=start,
            period_end=end,
        )
        event_record(
            event_type=EventType.REPORT_CREATED,
            actor=user,
            organization=organization,
            details={
                "report_id": str(report.pk),
                "framework": framework,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
            },
            request=request,
        )
    report_id = str(report.pk)
    # Not queued (broker down)? The row stays pending and the page says so.
    transaction.on_commit(lambda: enqueue(report_build_task, report_id))
    return report


def report_build(*, report_id: str) -> ComplianceReport | None:
    """Gather every section's evidence and write the bundle; idempotent (claims the row)."""
    from .bundle import report_bundle_write
    from .sections import Period, report_sections_for

    claimed = ComplianceReport.objects.filter(pk=report_id, status=ReportStatus.PENDING).update(
        status=ReportStatus.RUNNING,
        attempts=F("attempts") + 1,
        sections_done=0,
        started_at=timezone.now(),
    )
    if not claimed:
        return None
    report = ComplianceReport.objects.select_related("organization").get(pk=report_id)
    mine = ComplianceReport.objects.filter(
        pk=report.pk, status=ReportStatus.RUNNING, attempts=report.attempts
    )
    sections = report_sections_for(report.framework)
    mine.update(sections_total=len(sections))
    period = Period(report.period_start, report.period_end, report.framework)
    try:
        built = []
        for done, section in enumerate(sections, start=1):
            built.append((section, section.evidence(report.organization, period)))
            mine.update(sections_done=done)  # autocommit: the page's progress sees it
        content, name, size, digest = report_bundle_write(report=report, built=built)
        now = timezone.now()
        mine.update(
            status=ReportStatus.DONE,
            content=content,
            file_name=name,
            size_bytes=size,
            sha256=digest,
            finished_at=now,
        )
    except Exception as exc:
        mine.update(status=ReportStatus.FAILED, error=str(exc)[:500], finished_at=timezone.now())
        raise
    report.refresh_from_db()
    return report


# A builder silent this long has died (the task's own time limit is shorter).
REPORT_STALE = timedelta(minutes=35)


def reports_sweep(*, now: datetime | None = None) -> int:
    """Queue the reports no worker is building; returns how many were queued.

    Running reports whose build outlived the task's time limit (their worker died) go back to
    pending; pending ones older than SWEEP_DELAY_SECONDS (never queued, or lost) are queued.
    """
    from .tasks import report_build as report_build_task

    now = now or timezone.now()
    ComplianceReport.objects.filter(
        status=ReportStatus.RUNNING, started_at__lt=now - REPORT_STALE
    ).update(status=ReportStatus.PENDING)
    waiting = ComplianceReport.objects.filter(
        status=ReportStatus.PENDING,
        created_at__lte=now - timedelta(seconds=settings.SWEEP_DELAY_SECONDS),
    )
    return sum(
        enqueue(report_build_task, str(pk)) for pk in waiting.values_list("pk", flat=True)[:20]
    )


def report_downloaded_record(*, request: HttpRequest, user: User, report: ComplianceReport) -> None:
    event_record(
        event_type=EventType.REPORT_DOWNLOADED,
        actor=user,
        organization=report.organization,
        details={
            "report_id": str(report.pk),
            "framework": report.framework,
            "sha256": report.sha256,
        },
        request=request,
    )
