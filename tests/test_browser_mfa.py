"""In Chromium: enrol an authenticator app from the key on the page, then sign in with it; make
new backup codes and sign out another session, each after its question."""

from __future__ import annotations

from base64 import b32decode

import pytest
from django.test import Client
from django_otp.oath import totp

from audit.models import AuditEvent, EventType

from .alerts_support import FIREFOX_LINUX
from .factories import member
from .helpers import sign_in, submit_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _code(manual_key: str, steps_from_now: int = 0) -> str:
    key = manual_key.replace(" ", "")
    secret = b32decode(key + "=" * (-len(key) % 8))
    return f"{totp(secret, drift=steps_from_now):06d}"


def test_enrol_an_app_sign_out_and_sign_back_in_with_the_second_step(page):
    user = member()
    elsewhere = Client()
    sign_in(elsewhere, user.email, HTTP_USER_AGENT=FIREFOX_LINUX)
    submit_sign_in(page, user.email)
    page.wait_for_url("**/profile/")

    page.goto("/profile/security/")
    page.get_by_role("link", name="Set up an authenticator app").click()
    page.wait_for_url("**/profile/security/mfa/app/")
    assert page.locator(".qr svg").is_visible()
    manual_key = page.get_by_test_id("manual-key").inner_text()
    page.fill("input[name=name]", "Test phone")
    page.fill("input[name=code]", _code(manual_key))
    page.get_by_role("button", name="Turn on two-step verification").click()

    assert page.get_by_role("heading", name="Your backup codes").is_visible()
    assert page.get_by_test_id("backup-codes").locator("li").count() == 10
    first_codes = page.get_by_test_id("backup-codes").inner_text()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url("**/sign-in/")

    submit_sign_in(page, user.email)
    page.wait_for_url("**/sign-in/code/")
    # The enrolment used this time step's code; each code works once, so take the next one.
    page.fill("input[name=code]", _code(manual_key, steps_from_now=1))
    page.get_by_role("button", name="Verify").click()

    page.wait_for_url("**/profile/")
    assert page.get_by_role("heading", name="Profile").is_visible()
    login = AuditEvent.objects.filter(event_type=EventType.LOGIN_SUCCEEDED).order_by("-id")[0]
    assert login.details == {"method": "password+totp"}
    assert AuditEvent.objects.filter(event_type=EventType.MFA_VERIFIED, actor=user).count() == 1

    # New backup codes: asked first (the old ones stop working), then shown once.
    page.goto("/profile/security/")
    page.get_by_role("link", name="Make new backup codes…").click()
    dialog = page.get_by_role("dialog")
    assert "10 remaining backup codes stop working" in dialog.inner_text()
    dialog.get_by_role("link", name="Cancel").click()
    assert page.get_by_role("dialog").count() == 0
    assert AuditEvent.objects.filter(event_type=EventType.MFA_BACKUP_CODES_GENERATED).count() == 1
    page.get_by_role("link", name="Make new backup codes…").click()
    page.get_by_role("dialog").get_by_role("button", name="Make new codes").click()
    page.wait_for_url("**/profile/security/mfa/backup-codes/")
    assert page.get_by_text("New backup codes made. Your earlier codes no longer work").is_visible()
    assert page.get_by_test_id("backup-codes").locator("li").count() == 10
    assert page.get_by_test_id("backup-codes").inner_text() != first_codes

    # The other browser's session: asked first, then signed out.
    page.goto("/profile/security/")
    page.get_by_role("link", name="Sign out this session…").click()
    dialog = page.get_by_role("dialog")
    assert "Sign out this session?" in dialog.inner_text()
    dialog.get_by_role("button", name="Sign out this session").click()
    page.wait_for_url("**/profile/security/")
    assert page.get_by_text("That session was signed out.").is_visible()
    assert elsewhere.get("/profile/").status_code == 302
    assert page.get_by_role("link", name="Sign out this session…").count() == 0
