"""Signing in where a session already is: the old one ends on record, the key is always new."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.models import User, UserSession
from audit.models import AuditEvent, EventType, Reason

from .factories import member
from .helpers import events, sign_in
from .mfa_support import code_for, second_step, totp_device

pytestmark = pytest.mark.django_db

PROFILE_URL = reverse("accounts:profile")


def _browser() -> Client:
    # A server error raises here instead of passing as a 500 page.
    return Client(raise_request_exception=True)


def _signed_in(user: User) -> tuple[Client, str | None, AuditEvent]:
    """A browser signed in as `user`, its session key, and the one session.started so far."""
    browser = _browser()
    sign_in(browser, user.email)
    [started] = events(EventType.SESSION_STARTED)
    return browser, browser.session.session_key, started


def _signed_in_as(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def _assert_ended_by_sign_in(session_hash: str, actor_id: int) -> None:
    [ended] = events(EventType.SESSION_ENDED)
    assert ended.reason == Reason.LOGOUT
    assert ended.details["ended_by"] == "sign_in"
    assert ended.session_hash == session_hash
    assert ended.actor_id == actor_id
    assert UserSession.objects.get(session_hash=session_hash).ended_at is not None


def _dead(session_key: str) -> bool:
    """The key no longer opens a session: the stored session is gone."""
    probe = Client()
    probe.cookies["sessionid"] = session_key
    return not Session.objects.filter(session_key=session_key).exists() and (
        probe.get(PROFILE_URL).status_code == 302
    )


def test_signing_in_as_another_user_ends_the_first_session():
    admin, bob = member(), member()
    browser, old_key, first = _signed_in(admin)

    response = sign_in(browser, bob.email)

    assert response.status_code == 303
    assert _signed_in_as(browser) == str(bob.pk)
    assert browser.session.session_key != old_key
    assert _dead(old_key)
    _assert_ended_by_sign_in(first.session_hash, admin.pk)
    login = events(EventType.LOGIN_SUCCEEDED)[-1]
    started = events(EventType.SESSION_STARTED)[-1]
    assert login.actor_id == started.actor_id == bob.pk
    assert started.session_hash not in (first.session_hash, "")
    assert UserSession.objects.get(session_hash=started.session_hash).session_key == (
        browser.session.session_key
    )
    assert browser.get(PROFILE_URL).status_code == 200


def test_signing_in_again_as_the_same_user_ends_the_session_and_gives_a_new_key():
    user = member()
    browser, old_key, first = _signed_in(user)

    response = sign_in(browser, user.email)

    assert response.status_code == 303
    assert browser.session.session_key != old_key
    assert _dead(old_key)
    _assert_ended_by_sign_in(first.session_hash, user.pk)
    assert len(events(EventType.LOGIN_SUCCEEDED)) == 2
    assert len(UserSession.objects.filter(user=user, ended_at__isnull=True)) == 1


def test_a_planted_signed_in_session_is_ended_and_not_kept():
    """An attacker plants their own signed-in session key in the victim's browser."""
    attacker, victim = member(), member()
    attackers_browser, planted, attackers = _signed_in(attacker)
    victims_browser = _browser()
    victims_browser.cookies["sessionid"] = planted

    response = sign_in(victims_browser, victim.email)

    assert response.status_code == 303
    assert victims_browser.session.session_key != planted
    assert _signed_in_as(victims_browser) == str(victim.pk)
    _assert_ended_by_sign_in(attackers.session_hash, attacker.pk)
    # The attacker's copy of the key opens nothing: not the victim's session, not their own.
    assert attackers_browser.get(PROFILE_URL).status_code == 302


def test_a_planted_anonymous_session_key_is_not_kept():
    user = member()
    planted = Client()
    session = planted.session
    session["planted"] = True
    session.save()
    browser = _browser()
    browser.cookies["sessionid"] = session.session_key

    assert sign_in(browser, user.email).status_code == 303

    assert browser.session.session_key != session.session_key
    assert _dead(session.session_key)
    assert events(EventType.SESSION_ENDED) == []  # nobody was signed in there


def test_a_forged_session_cookie_is_replaced():
    user = member()
    browser = _browser()
    browser.cookies["sessionid"] = "forgedforgedforgedforgedforged00"

    assert sign_in(browser, user.email).status_code == 303

    assert browser.session.session_key != "forgedforgedforgedforgedforged00"
    assert _signed_in_as(browser) == str(user.pk)
    assert events(EventType.SESSION_ENDED) == []


def test_the_two_step_sign_in_over_another_users_session_ends_it():
    carol, other = member(), member()
    device = totp_device(other)
    browser, carols_key, carols = _signed_in(carol)

    assert sign_in(browser, other.email).status_code == 303  # the password step
    _assert_ended_by_sign_in(carols.session_hash, carol.pk)
    assert _signed_in_as(browser) is None
    assert _dead(carols_key)

    response = second_step(browser, code_for(device))

    assert response.status_code == 303
    assert _signed_in_as(browser) == str(other.pk)
    assert events(EventType.LOGIN_SUCCEEDED)[-1].actor_id == other.pk
    assert len(events(EventType.SESSION_ENDED)) == 1


def test_a_refused_sign_in_leaves_the_current_session_alone():
    user, other = member(), member()
    browser = _browser()
    sign_in(browser, user.email)
    key = browser.session.session_key

    assert sign_in(browser, other.email, "wrong").status_code == 200

    assert browser.session.session_key == key
    assert _signed_in_as(browser) == str(user.pk)
    assert events(EventType.SESSION_ENDED) == []


def test_any_login_over_another_users_session_is_recorded_not_a_500():
    """Django's login() outside our sign-in views (here the test client's) flushes the other
    user's session and leaves the new key for later; the session is recorded all the same."""
    first, second = member(), member()
    browser = _browser()
    browser.force_login(first)
    browser.force_login(second)

    assert browser.get(PROFILE_URL).status_code == 200
    assert _signed_in_as(browser) == str(second.pk)
    started = events(EventType.SESSION_STARTED)
    assert [e.actor_id for e in started] == [first.pk, second.pk]
    assert UserSession.objects.get(session_hash=started[-1].session_hash).session_key
