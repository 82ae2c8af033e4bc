"""A person signs in through the real page in Chromium and finds the navigation of the brief."""

from __future__ import annotations

import pytest

from accounts.models import Role
from audit.models import AuditEvent, EventType

from .factories import member
from .helpers import submit_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_administrator_signs_in_and_finds_profile_and_security_settings(page):
    admin = member(role=Role.ADMINISTRATOR)

    submit_sign_in(page, admin.email, path="/")

    page.wait_for_url("**/profile/")
    assert page.get_by_role("heading", name="Profile").is_visible()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Profile").click()
    nav.get_by_role("link", name="Activity Log").click()
    page.wait_for_url("**/profile/activity/")
    assert page.locator("td code", has_text="login.succeeded").count() >= 1
    nav.get_by_role("button", name="Security").click()
    nav.get_by_role("link", name="Overview", exact=True).click()
    page.wait_for_url("**/settings/security/")
    assert page.get_by_role("heading", name="Settings → Security").is_visible()
    assert AuditEvent.objects.filter(event_type=EventType.LOGIN_SUCCEEDED, actor=admin).exists()


def test_member_sees_profile_but_no_security_settings(page):
    user = member(role=Role.MEMBER)

    submit_sign_in(page, user.email)

    page.wait_for_url("**/profile/")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("button", name="Profile").is_visible()
    assert nav.get_by_role("button", name="Security").count() == 0
    assert nav.locator('a[href="/settings/security/"]').count() == 0


def test_wrong_password_shows_the_refusal_in_the_page(page):
    user = member()

    submit_sign_in(page, user.email, "not the password")

    assert page.get_by_role("alert").inner_text().startswith("That email and password did not work")
    assert AuditEvent.objects.filter(event_type=EventType.LOGIN_FAILED, actor=user).count() == 1
