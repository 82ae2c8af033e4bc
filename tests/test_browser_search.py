"""In Chromium: the Audit Log's search box, its chips, click-to-filter values, a negated word
and the Advanced dropdowns in words."""

from __future__ import annotations

import pytest

from accounts.models import Role
from audit.models import EventType, Outcome

from .factories import OrganizationFactory, member
from .helpers import events_made, submit_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_typing_a_query_removing_a_chip_and_clicking_a_value(page):
    org = OrganizationFactory.create()
    analyst = member(org, Role.SECURITY_ANALYST)
    alice = member(org, email="alice@browser.test")
    bob = member(org, email="bob@browser.test")
    failed = {"event_type": EventType.LOGIN_FAILED, "outcome": Outcome.FAILURE}
    events_made(org, alice, 3, ip_address="203.0.113.7", **failed)
    events_made(org, bob, 2, ip_address="198.51.100.4", **failed)
    events_made(org, bob, 4, event_type=EventType.MFA_VERIFIED)
    submit_sign_in(page, analyst.email)
    page.wait_for_url("**/profile/")
    page.goto("/settings/security/audit-log/")

    # Type a query: the results swap in place, the URL holds it, each word is a chip.
    box = page.get_by_role("searchbox", name="Search events")
    box.fill("type:login.failed actor:bob@browser.test")
    box.press("Enter")
    page.wait_for_url(lambda url: "q=type%3Alogin.failed%20actor%3Abob%40browser.test" in url)
    table = page.get_by_test_id("events")
    page.wait_for_function("document.querySelectorAll('[data-testid=events] tbody tr').length == 2")
    chips = page.get_by_test_id("chips")
    assert chips.get_by_text("actor:bob@browser.test").is_visible()

    # Remove the actor's chip: every failed sign-in again, the box says what is left.
    chips.get_by_role("link", name="Remove filter actor:bob@browser.test").click()
    page.wait_for_url(lambda url: "actor" not in url and "q=type" in url)
    assert table.locator("tbody tr").count() == 5
    assert box.input_value() == "type:login.failed"

    # Click a value in the table: its address joins the search.
    table.get_by_role("link", name="203.0.113.7").first.click()
    page.wait_for_url("**ip%3A203.0.113.7**")
    assert table.locator("tbody tr").count() == 3
    assert box.input_value() == "type:login.failed ip:203.0.113.7"

    # A negated word: everyone's failed sign-ins but the person it names.
    box.fill("type:login.failed NOT alice")
    box.press("Enter")
    page.wait_for_url(lambda url: "NOT%20alice" in url)
    page.wait_for_function("document.querySelectorAll('[data-testid=events] tbody tr').length == 2")
    assert page.get_by_test_id("chips").get_by_text("-alice").is_visible()
    assert table.get_by_text("alice@browser.test").count() == 0
    page.get_by_text("Search syntax").click()
    assert page.get_by_text("leaves out events about anyone whose name").is_visible()

    # The Advanced dropdowns read as words; the address keeps the codes.
    page.goto("/settings/security/audit-log/")
    page.get_by_text("Advanced filters").click()
    page.get_by_label("Event type").select_option(label="Sign-in failed")
    page.get_by_label("Country").select_option(label="Germany")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(lambda url: "event_type=login.failed" in url and "country=DE" in url)
    page.wait_for_function("document.querySelectorAll('[data-testid=events] tbody tr').length == 5")
    chips = page.get_by_test_id("chips")
    assert chips.get_by_text("Event type: Sign-in failed").is_visible()
    assert chips.get_by_text("Country: Germany").is_visible()

    # A bad word: the message says which, next to the box, and nothing else breaks.
    box.fill("type:login.failed colour:red")
    box.press("Enter")
    error = page.get_by_test_id("filter-errors")
    error.wait_for()
    assert 'Unknown qualifier "colour:"' in error.inner_text()
