"""In Chromium at a phone's width: an analyst opens yesterday's review from the menu, marks its
items, signs off with a wrong then the right password, and finds it in the history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import Role
from audit.models import EventType
from compliance.models import Review, ReviewStatus

from .compliance_support import midnight, record, team
from .factories import PASSWORD
from .helpers import events, submit_sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "audit"]),
]


def test_an_analyst_signs_off_yesterdays_review_on_a_phone(page):
    acme = team("Acme")
    yesterday = midnight(1)
    record(acme.org, EventType.LOCKOUT_TRIGGERED, yesterday + timedelta(hours=9), target=acme.alice)
    record(
        acme.org,
        EventType.LOGIN_SUCCEEDED,
        yesterday + timedelta(hours=10),
        actor=acme.alice,
        country="BR",
    )
    page.set_viewport_size({"width": 390, "height": 800})
    submit_sign_in(page, acme.analyst.email)
    page.wait_for_url("**/profile/")

    page.get_by_role("button", name="Menu").click()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Security").click()
    nav.get_by_role("link", name="Reviews").click()
    page.wait_for_url("**/settings/security/reviews/")
    due = page.get_by_test_id("due-reviews")
    assert due.get_by_text("Yours to sign").count() == 1
    due.get_by_role("link", name="Security analysts' daily review").click()

    items = page.get_by_test_id("review-item")
    assert items.count() == 2
    assert page.get_by_text("signed in from Brazil for the first time").is_visible()
    items.nth(0).get_by_label("Expected").check()
    items.nth(0).get_by_role("button", name="Save mark").click()
    items = page.get_by_test_id("review-item")
    items.nth(1).get_by_label("Followed up").check()
    items.nth(1).get_by_label("Note").fill("Alice is in São Paulo this week")
    items.nth(1).get_by_role("button", name="Save mark").click()
    assert page.get_by_text("Alice is in São Paulo this week").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390

    page.get_by_role("link", name="Sign off…").click()
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Sign off").click()
    assert page.get_by_text("That is not your password.").is_visible()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign off").click()

    page.wait_for_url("**/settings/security/reviews/")
    assert page.get_by_text("Signed off. The review is in the history.").is_visible()
    history = page.get_by_test_id("review-history")
    assert history.get_by_text(acme.analyst.email).is_visible()
    review = Review.objects.get(
        schedule__assigned_role=Role.SECURITY_ANALYST, period_start=yesterday
    )
    assert review.status == ReviewStatus.COMPLETED
    assert review.items.get(decision="followed_up").note == "Alice is in São Paulo this week"
    [completed] = events(EventType.REVIEW_COMPLETED)
    assert completed.actor_id == acme.analyst.pk
