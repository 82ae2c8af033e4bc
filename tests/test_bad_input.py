"""Hostile or odd input is stored safely and the sign-in behaves as it would without it."""

from __future__ import annotations

import pytest

from accounts.forms import SIGN_IN_REFUSED
from audit.models import EventType, Reason

from .factories import member
from .helpers import LOGIN_URL, events, sign_in

pytestmark = pytest.mark.django_db


def test_a_10kb_user_agent_is_truncated_and_noted(client):
    user = member()
    agent = "Mozilla/5.0 " + "A" * 10_000
    response = sign_in(client, user.email, HTTP_USER_AGENT=agent)

    assert response.status_code == 303
    [login] = events(EventType.LOGIN_SUCCEEDED)
    assert login.user_agent == agent[:512]
    assert login.details["user_agent_truncated_from"] == str(len(agent))


@pytest.mark.parametrize("username", ["a\x00b@example.test", "evil@example.test\r\nX-Injected: 1"])
def test_nul_or_crlf_in_the_username_is_a_plain_failed_sign_in(client, username):
    response = sign_in(client, username, "whatever")

    assert response.status_code == 200
    assert SIGN_IN_REFUSED in response.content.decode()
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.reason == Reason.UNKNOWN_USER
    assert "\x00" not in failed.actor_label
    assert "\r" not in failed.actor_label and "\n" not in failed.actor_label


def test_nul_in_the_password_of_a_real_account_is_a_wrong_password(client):
    user = member()
    response = sign_in(client, user.email, "correct horse\x00battery staple")
    assert SIGN_IN_REFUSED in response.content.decode()
    assert events(EventType.LOGIN_FAILED)[0].reason == Reason.INVALID_CREDENTIALS


def test_a_1mb_post_body_is_a_plain_failed_sign_in(client):
    huge = "x" * (1024 * 1024)
    response = client.post(LOGIN_URL, {"email": huge + "@example.test", "password": huge})

    assert response.status_code == 200
    assert SIGN_IN_REFUSED in response.content.decode()
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.reason == Reason.UNKNOWN_USER
    # No address is that long: stored masked (length and keyed hash), not a 254-character cut.
    assert failed.actor_label.startswith(f"masked:{len(huge) + len('@example.test')}:")


def test_a_1mb_password_for_a_real_account_is_refused_and_counted(client):
    user = member()
    response = sign_in(client, user.email, "p" * (1024 * 1024))
    assert SIGN_IN_REFUSED in response.content.decode()
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.reason == Reason.INVALID_CREDENTIALS
    assert failed.actor_id == user.pk


def test_binary_user_agent_and_forwarded_headers_do_not_break_sign_in(client, settings):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    user = member()
    response = sign_in(
        client,
        user.email,
        REMOTE_ADDR="10.0.0.1",
        HTTP_USER_AGENT="\x00\x01\xff\xfe binary",
        HTTP_X_FORWARDED_FOR="\x00\xff, ::::",
    )
    assert response.status_code == 303
    [login] = events(EventType.LOGIN_SUCCEEDED)
    assert "\x00" not in login.user_agent
    assert login.ip_address is None
