"""In Chromium: Settings → Security → Audit Log through the menu, filter, page, open, export."""

from __future__ import annotations

import csv
import io

import pytest

from accounts.models import Role
from audit.models import EventType, Outcome
from exports.csv import HEADER

from .factories import OrganizationFactory, member
from .helpers import events_made, submit_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, email: str) -> None:
    submit_sign_in(page, email)
    page.wait_for_url("**/profile/")


@pytest.fixture
def admins_audit_log(page):
    """The page, on the Audit Log of a new organization, as its administrator."""
    admin = member(OrganizationFactory.create(), Role.ADMINISTRATOR)
    _sign_in(page, admin.email)
    page.goto("/settings/security/audit-log/")
    return page


def test_analyst_filters_pages_opens_an_event_and_downloads_csv(page):
    org = OrganizationFactory.create()
    analyst = member(org, Role.SECURITY_ANALYST)
    alice = member(org, email="alice@browser.test")
    events_made(
        org,
        alice,
        60,
        ip_address="203.0.113.7",
        event_type=EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
    )
    events_made(org, alice, 5, ip_address="203.0.113.7", event_type=EventType.LOGIN_SUCCEEDED)
    _sign_in(page, analyst.email)

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Security").click()
    nav.get_by_role("link", name="Audit Log").click()
    page.wait_for_url("**/settings/security/audit-log/")
    assert page.get_by_role("heading", name="Settings → Security → Audit Log").is_visible()

    # Filter: HTMX swaps the results in place and pushes a shareable URL.
    page.get_by_text("Advanced filters").click()
    page.select_option("select[name=outcome]", "failure")
    page.fill("input[name=user]", "alice@browser.test")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**outcome=failure**")
    table = page.get_by_test_id("events")
    assert table.locator("tbody tr").count() == 50
    assert table.locator("td code", has_text="login.succeeded").count() == 0

    # Page by cursor: the next ten failures, no overlap.
    page.get_by_test_id("next-page").click()
    page.wait_for_url("**cursor=**")
    page.get_by_text("No older events.").wait_for()
    assert table.locator("tbody tr").count() == 10

    # Open an event: every field and the investigation timeline.
    table.locator("tbody tr").first.locator("a").first.click()
    page.wait_for_url("**/settings/security/audit-log/*/")
    assert page.get_by_test_id("event-fields").is_visible()
    assert page.get_by_role("heading", name="Investigation timeline").is_visible()
    assert page.get_by_test_id("pivot-ip").is_visible()

    # Export exactly the filtered rows.
    page.go_back()
    page.go_back()
    page.wait_for_url("**outcome=failure**")
    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    download = download_info.value
    with open(download.path(), encoding="utf-8") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert rows[0] == HEADER
    assert len(rows) == 61
    assert {row[1] for row in rows[1:]} == {"login.failed"}


def test_bad_filter_shows_a_message_in_the_page(admins_audit_log):
    page = admins_audit_log
    page.get_by_text("Advanced filters").click()
    page.fill("input[name=ip]", "300.1.1.1/99")
    page.get_by_role("button", name="Apply").click()
    alert = page.get_by_test_id("filter-errors")
    alert.wait_for()
    assert "CIDR" in alert.inner_text()


def test_an_out_of_range_date_and_a_unicode_user_id_are_explained_in_place(admins_audit_log):
    page = admins_audit_log
    page.get_by_text("Advanced filters").click()
    page.fill("input[name=end]", "9999-12-31")
    page.fill("input[name=user]", "²")
    page.get_by_role("button", name="Apply").click()
    alert = page.get_by_test_id("filter-errors")
    alert.wait_for()
    text = alert.inner_text()
    assert "Enter a date from 1900-01-01 to 9998-12-31." in text
    assert "A user id is written with the digits 0-9" in text
    assert page.locator("h1").inner_text().startswith("Settings")  # swapped in place
