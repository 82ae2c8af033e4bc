"""In Chromium with its virtual authenticator (DevTools' WebAuthn domain): add a passkey, then sign
in with it as the second step and as the whole sign-in, under the Content-Security-Policy."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent, EventType

from .factories import member
from .helpers import submit_sign_in
from .test_browser_csp import RECORD_VIOLATIONS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def authenticator(page, live_server, settings):
    """A platform passkey authenticator (like Touch ID) that verifies its user every time."""
    # WebAuthn needs a secure context and a domain for the RP ID: http://localhost is both.
    assert live_server.url.startswith("http://localhost:")
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    page.context.add_init_script(RECORD_VIOLATIONS)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    yield cdp, added["authenticatorId"]
    cdp.send("WebAuthn.disable")


def _last_sign_in_method() -> str:
    event = AuditEvent.objects.filter(event_type=EventType.LOGIN_SUCCEEDED).latest("id")
    return str(event.details["method"])


def _sign_out(page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in/")


def test_add_a_passkey_then_sign_in_with_it_after_the_password_and_alone(page, authenticator):
    cdp, authenticator_id = authenticator
    user = member()
    submit_sign_in(page, user.email)
    page.wait_for_url("**/profile/")

    page.goto("/profile/security/")
    page.get_by_role("link", name="Add a passkey").click()
    page.wait_for_url("**/profile/security/passkeys/add/")
    page.fill("input[name=name]", "Test laptop")
    page.get_by_role("button", name="Create a passkey").click()

    # The first method comes with backup codes, as for an authenticator app.
    page.wait_for_url("**/profile/security/mfa/backup-codes/")
    assert page.get_by_role("heading", name="Your backup codes").is_visible()
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})[
        "credentials"
    ]
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"
    added = AuditEvent.objects.get(event_type=EventType.MFA_DEVICE_ADDED, actor=user)
    assert added.details == {"device_kind": "passkey", "device_name": "Test laptop"}
    page.goto("/profile/security/")
    assert page.get_by_role("cell", name="Test laptop").is_visible()
    _sign_out(page)

    # The passkey as the second step after the password.
    submit_sign_in(page, user.email)
    page.wait_for_url("**/sign-in/code/")
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url("**/profile/")
    assert _last_sign_in_method() == "password+passkey"
    _sign_out(page)

    # The passkey alone.
    page.get_by_role("button", name="Use a passkey instead").click()
    page.wait_for_url("**/profile/")
    assert page.get_by_role("heading", name="Profile").is_visible()
    assert _last_sign_in_method() == "passkey"
    verified = AuditEvent.objects.filter(event_type=EventType.MFA_VERIFIED, actor=user)
    assert [e.details["device_kind"] for e in verified] == ["passkey", "passkey"]
    assert page.evaluate("window.__cspViolations") == []


def test_a_cancelled_passkey_says_so_and_leaves_the_password_way(page, authenticator):
    cdp, authenticator_id = authenticator
    # No passkey here for this site: the browser's request fails as a cancelled one does.
    cdp.send(
        "WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": False}
    )
    page.goto("/sign-in/")

    page.get_by_role("button", name="Use a passkey instead").click()

    status = page.locator("[data-passkey-status]")
    status.wait_for()
    assert "was not used" in status.inner_text()
    assert page.get_by_label("Email").is_visible()
    assert page.evaluate("window.__cspViolations") == []
