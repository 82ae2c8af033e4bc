"""In Chromium: schedule an export, run it, and find a tampered file with Verify (over htmx)."""

from __future__ import annotations

import pytest

from accounts.models import Role
from retention.models import StoredFile

from .factories import OrganizationFactory, member
from .helpers import submit_sign_in
from .retention_support import archive_dir_fixture  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compliance_officer_schedules_runs_and_verifies_an_export(page, archive_dir):
    officer = member(OrganizationFactory.create(), Role.COMPLIANCE_OFFICER)
    submit_sign_in(page, officer.email)
    page.wait_for_url("**/profile/")

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Organization").click()
    nav.get_by_role("link", name="Archives & scheduled exports").click()
    page.wait_for_url("**/settings/security/archives/")
    page.get_by_text("Schedule an export").click()
    page.fill("input[name=name]", "Daily sign-ins")
    page.select_option("select[name=frequency]", "daily")
    page.select_option("select[name=category]", "authentication")
    page.get_by_role("button", name="Schedule").click()
    page.wait_for_url("**/settings/security/archives/")
    assert page.get_by_text("Scheduled “Daily sign-ins”").is_visible()

    page.get_by_role("button", name="Run now").click()
    assert page.get_by_text("Exported 1 events").is_visible()  # the officer's own sign-in
    stored = StoredFile.objects.get()
    path = archive_dir / stored.name
    path.write_bytes(path.read_bytes() + b"extra line\n")

    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Verify all files").click()
    page.get_by_text("Checksum or row count mismatch").wait_for()
    assert page.evaluate("window.notReloaded") is True  # swapped in place by htmx
