"""Sign-in through the real view records who, where and why, for success and every refusal."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.forms import SIGN_IN_REFUSED
from audit.models import AuditEvent, EventType, Outcome, Reason

from .factories import member
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


def test_successful_sign_in_records_login_and_session(client):
    user = member()
    response = sign_in(client, user.email, HTTP_USER_AGENT=CHROME_MAC, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 303
    [login] = events(EventType.LOGIN_SUCCEEDED)
    [started] = events(EventType.SESSION_STARTED)
    assert login.actor_id == user.pk
    assert login.actor_label == user.email
    assert login.organization_id == user.membership.organization_id
    assert login.outcome == Outcome.SUCCESS
    assert login.details == {"method": "password"}
    assert login.ip_address == "203.0.113.9"
    assert login.user_agent == CHROME_MAC
    assert login.browser == "Chrome 130"
    assert login.os.startswith("Mac OS X")
    assert login.device_type == "desktop"
    assert len(login.device_id) == 16
    assert len(login.request_id) == 32
    assert response["X-Request-ID"] == login.request_id
    assert len(login.session_hash) == 16
    assert started.session_hash == login.session_hash
    assert client.session.session_key not in login.session_hash


def test_sign_in_sets_a_long_lived_device_cookie_and_reuses_it(client):
    user = member()
    sign_in(client, user.email)
    cookie = client.cookies["am_device"]
    assert int(cookie["max-age"]) > 300 * 24 * 3600
    client.post(reverse("accounts:logout"))
    sign_in(client, user.email)

    first, second = events(EventType.LOGIN_SUCCEEDED)
    assert first.device_id == second.device_id != ""
    assert cookie.value not in first.device_id


def test_wrong_password_is_recorded_as_invalid_credentials(client):
    user = member()
    response = sign_in(client, user.email, "wrong password")

    assert response.status_code == 200
    assert SIGN_IN_REFUSED in response.content.decode()
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.outcome == Outcome.FAILURE
    assert failed.reason == Reason.INVALID_CREDENTIALS
    assert failed.actor_id == user.pk
    assert failed.organization_id == user.membership.organization_id
    assert "_auth_user_id" not in client.session


def test_unknown_user_is_recorded_with_the_attempted_name_and_no_organization(client):
    response = sign_in(client, "Nobody@Example.test", "whatever")

    assert SIGN_IN_REFUSED in response.content.decode()
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.reason == Reason.UNKNOWN_USER
    assert failed.actor_id is None
    assert failed.organization_id is None
    assert failed.actor_label == "Nobody@Example.test"
    assert failed.details["attempted_username"] == "Nobody@Example.test"


def test_inactive_account_is_refused_with_the_same_message(client):
    user = member(is_active=False)
    response = sign_in(client, user.email)

    assert SIGN_IN_REFUSED in response.content.decode()
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.reason == Reason.INACTIVE_ACCOUNT
    assert failed.actor_id == user.pk


def test_email_is_case_insensitive(client):
    user = member(email="mixed@example.test")
    response = sign_in(client, "MIXED@Example.TEST")
    assert response.status_code == 303
    assert events(EventType.LOGIN_SUCCEEDED)[0].actor_id == user.pk


def _without_csrf(body: str, email: str) -> str:
    body = re.sub(r'"X-CSRFToken": "[^"]+"', "", body)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body).replace(email, "EMAIL")


def test_refusals_look_identical_whatever_the_reason(client):
    known = member()
    inactive = member(is_active=False)
    bodies = {
        reason: _without_csrf(sign_in(client, email, password).content.decode(), email)
        for reason, email, password in [
            ("unknown", "ghost@example.test", "x"),
            ("wrong", known.email, "x"),
            ("inactive", inactive.email, "correct horse battery staple"),
        ]
    }
    assert len(set(bodies.values())) == 1


def test_next_is_followed_only_within_the_site(client):
    user = member()
    url = reverse("accounts:login")
    ok = client.post(
        url,
        {
            "email": user.email,
            "password": "correct horse battery staple",
            "next": "/profile/activity/",
        },
    )
    assert ok["Location"] == "/profile/activity/"
    client.post(reverse("accounts:logout"))
    evil = client.post(
        url,
        {
            "email": user.email,
            "password": "correct horse battery staple",
            "next": "https://evil.test/",
        },
    )
    assert evil["Location"] == reverse("accounts:profile")


def test_sign_in_page_renders_for_get(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert b'name="email"' in response.content


def test_empty_form_is_a_form_error_and_records_nothing(client):
    response = client.post(reverse("accounts:login"), {"email": "", "password": ""})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert events() == []


def test_sign_out_records_logout_and_session_end(client):
    user = member()
    sign_in(client, user.email)
    session_hash = events(EventType.SESSION_STARTED)[0].session_hash

    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 303
    [logout] = events(EventType.LOGOUT)
    [ended] = events(EventType.SESSION_ENDED)
    assert logout.actor_id == ended.actor_id == user.pk
    assert ended.reason == Reason.LOGOUT
    assert ended.session_hash == logout.session_hash == session_hash


def test_sign_out_needs_post(client):
    user = member()
    sign_in(client, user.email)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert events(EventType.LOGOUT) == []


def test_admin_login_goes_through_the_recorded_sign_in(client):
    response = client.get("/admin/login/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize(
    "typed", ["correct horse battery staple", "hunter2", "P@ssw0rd!", "a\x00b", "x" * 300]
)
def test_a_sign_in_name_that_is_no_address_is_stored_masked(client, typed):
    """Someone typed their password into the email field: its length and a keyed hash are
    kept, enough to see the same text tried again, never the text."""
    sign_in(client, typed, "whatever")
    sign_in(client, typed, "whatever")
    sign_in(client, typed + "!", "whatever")

    first, again, other = events(EventType.LOGIN_FAILED)
    assert first.reason == Reason.UNKNOWN_USER
    length, digest = re.fullmatch(r"masked:(\d+):([0-9a-f]{16})", first.actor_label).groups()
    assert int(length) == len(typed.strip())
    assert first.details == {"attempted_username": first.actor_label}
    assert again.actor_label == first.actor_label
    assert other.actor_label != first.actor_label
    stored = "\n".join(str(row) for row in AuditEvent.objects.values_list())
    assert typed not in stored


@pytest.mark.parametrize("address", ["ghost@example.test", "First.Last+tag@sub.example.org"])
def test_a_plausible_address_that_matches_no_one_is_kept_as_typed(client, address):
    sign_in(client, address, "whatever")
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.actor_label == failed.details["attempted_username"] == address
