"""The demo's access review and compliance report (reports app): a campaign completed last
month, and a SOC 2 report of that month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from accounts.models import Organization, User
from accounts.selectors import members_of
from audit.models import EventType
from audit.services import EventSpec, events_record
from reports.models import AccessReview, AccessReviewItem, ComplianceReport, Decision, Framework
from reports.selectors import last_sign_ins_of
from reports.services import report_create


def last_month(now: datetime) -> tuple[datetime, datetime]:
    """[first day of last month, first day of this month), midnight UTC."""
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1), first


def seed_access_review(*, organization: Organization, reviewer: User, second: User) -> None:
    """A campaign started and completed on the 20th of last month: everyone kept.

    Written as history (rows and events dated then), like the generated weeks: no decision
    changes anyone's access. `second` decides on the reviewer's own access.
    """
    if AccessReview.objects.filter(organization=organization).exists():
        return
    start, _ = last_month(timezone.now())
    started = start.replace(day=20, hour=14)
    members = list(members_of(organization))
    signed_in = last_sign_ins_of(organization, user_ids=[m.user_id for m in members], now=started)
    review = AccessReview.objects.create(
        organization=organization,
        started_by=reviewer,
        started_by_label=reviewer.email,
        started_at=started,
        completed_by=reviewer,
        completed_by_label=reviewer.email,
        completed_at=started + timedelta(hours=2),
    )
    specs = [
        EventSpec(
            event_type=EventType.ACCESS_REVIEW_STARTED,
            actor=reviewer,
            organization=organization,
            details={"access_review_id": review.pk, "members": len(members)},
            occurred_at=started,
        )
    ]
    items = []
    for n, m in enumerate(members):
        decider = second if m.user_id == reviewer.pk else reviewer
        decided = started + timedelta(minutes=5 + n)
        items.append(
            AccessReviewItem(
                review=review,
                organization=organization,
                user=m.user,
                email=m.user.email,
                role=m.role,
                has_mfa=bool(getattr(m, "has_mfa", False)),
                last_sign_in_at=signed_in.get(m.user_id),
                decision=Decision.KEEP,
                decided_by=decider,
                decided_by_label=decider.email,
                decided_at=decided,
            )
        )
        specs.append(
            EventSpec(
                event_type=EventType.ACCESS_REVIEW_DECIDED,
                actor=decider,
                target_user=m.user,
                organization=organization,
                details={"access_review_id": review.pk, "decision": "keep", "role": m.role},
                occurred_at=decided,
            )
        )
    AccessReviewItem.objects.bulk_create(items)
    specs.append(
        EventSpec(
            event_type=EventType.ACCESS_REVIEW_COMPLETED,
            actor=reviewer,
            organization=organization,
            details={
                "access_review_id": review.pk,
                "keep": len(items),
                "change_role": 0,
                "remove": 0,
            },
            occurred_at=started + timedelta(hours=2),
        )
    )
    events_record(specs=specs)


def seed_report(*, organization: Organization, user: User) -> None:
    """A SOC 2 report for last month, built by the job (in-process under `make run`)."""
    if ComplianceReport.objects.filter(organization=organization).exists():
        return
    start, end = last_month(timezone.now())
    report_create(
        user=user, organization=organization, framework=Framework.SOC2, start=start, end=end
    )
