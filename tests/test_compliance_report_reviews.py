"""The compliance report's "Log reviews" section (compliance.report_section): reviews due in the
period, signed on time, late or not at all, counted from reviews the test made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Role
from compliance.models import Review, ReviewStatus

from .compliance_support import schedule_of, team
from .helpers import client_as
from .test_compliance_reports import create, figure, section

pytestmark = pytest.mark.django_db

MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def _review(org, role, day: int, *, signed_after: timedelta | None, by=None) -> Review:
    start = MARCH + timedelta(days=day - 1)
    due = start + timedelta(days=2)
    return Review.objects.create(
        organization=org,
        schedule=schedule_of(org, role),
        period_start=start,
        period_end=start + timedelta(days=1),
        due_at=due,
        status=ReviewStatus.OPEN if signed_after is None else ReviewStatus.COMPLETED,
        signed_by=by,
        signed_by_label=by.email if by else "",
        signed_at=due + signed_after if signed_after is not None else None,
    )


def test_the_report_counts_reviews_signed_on_time_late_and_not_at_all():
    acme = team()
    _review(acme.org, Role.SECURITY_ANALYST, 3, signed_after=-timedelta(hours=1), by=acme.analyst)
    _review(acme.org, Role.SECURITY_ANALYST, 4, signed_after=timedelta(hours=5), by=acme.analyst)
    _review(acme.org, Role.SECURITY_ANALYST, 5, signed_after=None)
    _review(acme.org, Role.SECURITY_ANALYST, 30, signed_after=None)  # due in April: not counted
    other = team("Globex")  # another tenant's reviews never count
    _review(other.org, Role.SECURITY_ANALYST, 3, signed_after=None)

    report = create(client_as(acme.officer))

    assert figure(report, "log_reviews", "Reviews due in the period") == "3"
    assert figure(report, "log_reviews", "Signed off on time") == "1"
    assert figure(report, "log_reviews", "Signed off late") == "1"
    assert figure(report, "log_reviews", "Not signed off") == "1"
    found = section(report, "log_reviews")
    assert found["status"] == "attention"
    assert [c["reference"] for c in found["clauses"]] == ["10.4.1"]


def test_every_review_on_time_meets_the_clause_and_none_is_no_evidence():
    acme = team()
    assert section(create(client_as(acme.officer)), "log_reviews")["status"] == "no_evidence"

    globex = team("Globex")
    _review(globex.org, Role.ADMINISTRATOR, 9, signed_after=-timedelta(days=1), by=globex.admin)
    assert section(create(client_as(globex.officer)), "log_reviews")["status"] == "met"
