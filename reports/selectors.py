"""Reads of access reviews and compliance reports, scoped to one organization."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet

from accounts.models import Organization
from audit.models import AuditEvent, EventType

from .models import AccessReview, AccessReviewItem, ComplianceReport, Decision

# What an access review counts as a member's privileged actions: changes to people, settings
# and the log's copies, each a power beyond a member's own account.
PRIVILEGED_EVENT_TYPES = (
    EventType.MEMBER_ROLE_CHANGED,
    EventType.MEMBER_REMOVED,
    EventType.MFA_RESET_BY_ADMIN,
    EventType.SETTINGS_CHANGED,
    EventType.EXPORT_CREATED,
    EventType.EXPORT_DOWNLOADED,
    EventType.ALERT_ACKNOWLEDGED,
    EventType.ALERT_RESOLVED,
    EventType.ACCESS_REVIEW_DECIDED,
    EventType.REPORT_DOWNLOADED,
)
# How far back an access review looks for them.
PRIVILEGED_DAYS = 90


def privileged_actions_of(
    organization: Organization, *, user_ids: list[int], now: datetime
) -> dict[int, int]:
    """Each user's privileged actions in the organization's log over the last PRIVILEGED_DAYS."""
    rows = (
        AuditEvent.objects.filter(
            organization=organization,
            actor_id__in=user_ids,
            event_type__in=PRIVILEGED_EVENT_TYPES,
            occurred_at__gte=now - timedelta(days=PRIVILEGED_DAYS),
            occurred_at__lte=now,
        )
        .values("actor_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["actor_id"]: row["n"] for row in rows}


def last_sign_ins_of(
    organization: Organization, *, user_ids: list[int], now: datetime
) -> dict[int, datetime]:
    """Each user's latest successful sign-in the organization's log holds in PRIVILEGED_DAYS
    (for accounts whose last_login Django never stamped: imported or generated history)."""
    rows = (
        AuditEvent.objects.filter(
            organization=organization,
            actor_id__in=user_ids,
            event_type=EventType.LOGIN_SUCCEEDED,
            occurred_at__gte=now - timedelta(days=PRIVILEGED_DAYS),
            occurred_at__lte=now,
        )
        .values("actor_id")
        .annotate(last=Max("occurred_at"))
        .order_by()
    )
    return {row["actor_id"]: row["last"] for row in rows}


def access_reviews_of(organization: Organization) -> QuerySet[AccessReview]:
    return AccessReview.objects.filter(organization=organization).annotate(
        members=Count("items"), decided=Count("items", filter=~Q(items__decision=""))
    )


def access_review_of(organization: Organization, review_id: int) -> AccessReview | None:
    return access_reviews_of(organization).filter(pk=review_id).first()


def access_review_open_of(organization: Organization) -> AccessReview | None:
    return access_reviews_of(organization).filter(completed_at__isnull=True).first()


def access_review_items_of(review: AccessReview) -> QuerySet[AccessReviewItem]:
    return review.items.select_related("user").order_by("email", "id")


def access_review_item_of(review: AccessReview, item_id: int) -> AccessReviewItem | None:
    return access_review_items_of(review).filter(pk=item_id).first()


def access_review_undecided(review: AccessReview) -> int:
    return review.items.filter(decision="").count()


def decision_counts(review: AccessReview) -> dict[str, int]:
    counts = {d.value: 0 for d in Decision}
    for row in review.items.exclude(decision="").values("decision").annotate(n=Count("id")):
        counts[row["decision"]] = row["n"]
    return counts


def reports_of(organization: Organization) -> QuerySet[ComplianceReport]:
    return ComplianceReport.objects.filter(organization=organization)


def report_of(organization: Organization, report_id: str) -> ComplianceReport | None:
    return reports_of(organization).filter(pk=report_id).first()


def report_overlapping(
    organization: Organization, *, framework: str, start: datetime, end: datetime
) -> ComplianceReport | None:
    """A report of the framework (not failed) whose period shares time with [start, end)."""
    return (
        reports_of(organization)
        .filter(framework=framework, period_start__lt=end, period_end__gt=start)
        .exclude(status="failed")
        .order_by("-created_at")
        .first()
    )


def compliance_status(organization: Organization) -> dict[str, object]:
    """The overview's panel: the latest access review and the latest compliance report."""
    return {
        "review": access_reviews_of(organization).order_by("-started_at", "-id").first(),
        "report": reports_of(organization).order_by("-created_at").first(),
    }
