"""In Chromium: a compliance officer reviews access (a step down, asked first and applied) and
downloads last month's compliance report, whose manifest names each file's SHA-256."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Membership, Role
from audit.models import EventType
from demo.reports import last_month

from .factories import OrganizationFactory, member
from .helpers import events, submit_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_officer_reviews_access_then_downloads_last_months_report(page, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    org = OrganizationFactory.create()
    member(org, Role.ADMINISTRATOR, email="admin@acme.test")
    alice = member(org, Role.SECURITY_ANALYST, email="alice@acme.test")
    officer = member(org, Role.COMPLIANCE_OFFICER, email="compliance@acme.test")
    submit_sign_in(page, officer.email)
    page.wait_for_url("**/profile/")
    nav = page.get_by_role("navigation", name="Main")

    nav.get_by_role("button", name="Organization").click()
    nav.get_by_role("link", name="Access reviews").click()
    page.get_by_role("button", name="Start an access review").click()
    page.get_by_text("Access review started: 3 members.").wait_for()
    own = page.locator("tr[data-email='compliance@acme.test']")
    assert "another reviewer decides" in own.inner_text()
    page.get_by_role("button", name="Keep admin@acme.test").click()
    page.get_by_text("admin@acme.test keeps their access.").wait_for()
    row = page.locator("tr[data-email='alice@acme.test']")
    row.get_by_label("New role of alice@acme.test").select_option(Role.MEMBER)
    row.get_by_role("button", name="Change the role of alice@acme.test").click()
    page.get_by_role("heading", name="Make alice@acme.test Member?").wait_for()
    page.fill("input[name=note]", "left the on-call rota")
    page.get_by_role("button", name="Make them Member").click()
    page.get_by_text("alice@acme.test is now Member.").wait_for()
    assert Membership.objects.get(user=alice).role == Role.MEMBER
    assert "left the on-call rota" in row.inner_text()

    start, end = last_month(datetime.now(UTC))
    nav.get_by_role("button", name="Organization").click()
    nav.get_by_role("link", name="Compliance reports").click()
    page.select_option("select[name=framework]", "pci_dss")
    page.fill("input[name=start]", f"{start:%Y-%m-%d}")
    page.fill("input[name=end]", f"{end - timedelta(days=1):%Y-%m-%d}")
    page.get_by_role("button", name="Generate").click()
    page.get_by_role("heading", name="Account lockout").wait_for()
    with page.expect_download() as info:
        page.get_by_test_id("report-download").click()
    path = info.value.path()
    with zipfile.ZipFile(path) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(bundle.read(entry["name"])).hexdigest() == entry["sha256"]
    assert [e.actor_id for e in events(EventType.REPORT_DOWNLOADED)] == [officer.pk]
