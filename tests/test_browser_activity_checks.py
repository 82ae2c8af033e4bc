"""A member sees a sign-in that was not them on their Profile, secures their account (signed out
everywhere, the old password dead), chooses a new password by the emailed link, and the security
team's alert shows their answer."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Role, UserSession
from alerts.models import Alert, RuleKind
from audit.models import AuditEvent, EventType

from .alerts_support import FIREFOX_LINUX, TOKYO
from .factories import OrganizationFactory, member
from .helpers import sign_in, submit_sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_a_member_answers_no_secure_my_account(page):
    org = OrganizationFactory.create()
    alice = member(org, email="alice@acme.test")
    analyst = member(org, role=Role.SECURITY_ANALYST)
    submit_sign_in(page, alice.email)
    page.wait_for_url("**/profile/")
    intruder = Client()
    sign_in(intruder, alice.email, REMOTE_ADDR=TOKYO, HTTP_USER_AGENT=FIREFOX_LINUX)
    intruders = AuditEvent.objects.filter(actor=alice, event_type=EventType.LOGIN_SUCCEEDED).latest(
        "id"
    )

    page.goto("/profile/")
    item = page.locator(f'[data-testid="activity-check"][data-event-id="{intruders.pk}"]')
    assert "Sign-in from a new device and place" in item.inner_text()
    item.get_by_role("link", name="No, secure my account").click()
    page.get_by_role("heading", name="Not you? Secure your account").wait_for()
    page.get_by_role("button", name="Secure my account").click()

    # This session stays and chooses a new password at once; the intruder's is over, and the
    # old password signs in nowhere.
    page.wait_for_url("**/profile/password/")
    assert page.get_by_text("Your account is secured").is_visible()
    assert page.get_by_text("Choose a new one to go on", exact=False).is_visible()
    assert intruder.get("/profile/").status_code == 302
    assert sign_in(Client(), alice.email).status_code == 200
    page.goto("/profile/")  # nothing else opens until the new password is chosen
    page.wait_for_url("**/profile/password/")
    page.fill("input[name=new_password1]", "a-new-pass-phrase-2026")
    page.fill("input[name=new_password2]", "a-new-pass-phrase-2026")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/profile/")
    assert [m for m in mail.outbox if "/password-reset/reset/" in str(m.body)]  # if page lost
    item = page.locator(f'[data-testid="activity-check"][data-event-id="{intruders.pk}"]')
    assert "No, it was not me" in item.get_by_test_id("activity-answer").inner_text()

    assert not UserSession.objects.filter(
        user=alice, session_hash=intruders.session_hash, ended_at__isnull=True
    ).exists()
    alert = Alert.objects.get(kind=RuleKind.REPORTED_BY_MEMBER)
    page.get_by_role("button", name="Sign out").click()
    submit_sign_in(page, analyst.email)
    page.wait_for_url("**/profile/")
    page.goto(f"/settings/security/alerts/{alert.pk}/")
    assert "No, it was not me" in page.get_by_test_id("alert-answer").inner_text()
