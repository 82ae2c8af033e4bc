"""Password change and reset through the real views: events, session ends, no secrets kept."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import LockoutState, UserSession
from audit.models import AuditEvent, EventType, Outcome, Reason

from .factories import PASSWORD, member
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 2026"


def _reset_link(email: str) -> str:
    body = str(mail.outbox[-1].body)
    assert email in body
    link = re.search(r"https?://[^/]+(/password-reset/reset/\S+/)", body)
    assert link is not None
    return link.group(1)


def test_password_change_records_the_event_and_ends_other_sessions(client):
    user = member()
    other_browser = Client()
    sign_in(other_browser, user.email)
    sign_in(client, user.email)

    response = client.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 303
    [changed] = events(EventType.PASSWORD_CHANGED)
    assert changed.actor_id == user.pk
    [ended] = events(EventType.SESSION_ENDED)
    assert ended.reason == Reason.PASSWORD_CHANGED
    assert ended.session_hash != changed.session_hash
    # This browser stays signed in; the other one is out.
    assert client.get(reverse("accounts:profile")).status_code == 200
    assert other_browser.get(reverse("accounts:profile")).status_code == 302
    # The session record follows the current session to its new key.
    current = UserSession.objects.get(session_hash=changed.session_hash)
    assert current.session_key == client.session.session_key
    assert current.ended_at is None


def test_a_wrong_old_password_changes_nothing(client):
    user = member()
    sign_in(client, user.email)
    response = client.post(
        reverse("accounts:password-change"),
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert events(EventType.PASSWORD_CHANGED) == []


def test_password_change_needs_a_signed_in_user(client):
    response = client.get(reverse("accounts:password-change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_reset_request_for_a_known_address_is_recorded_and_mailed(client):
    user = member()
    response = client.post(reverse("accounts:password-reset"), {"email": user.email})

    assert response.status_code == 303
    [requested] = events(EventType.PASSWORD_RESET_REQUESTED)
    assert requested.actor_id == user.pk
    assert requested.outcome == Outcome.SUCCESS
    assert len(mail.outbox) == 1


def test_reset_request_for_an_unknown_address_looks_the_same_and_is_recorded(client):
    known = member()
    response_known = client.post(reverse("accounts:password-reset"), {"email": known.email})
    response_unknown = client.post(
        reverse("accounts:password-reset"), {"email": "ghost@example.test"}
    )

    assert response_unknown.status_code == response_known.status_code == 303
    assert response_unknown["Location"] == response_known["Location"]
    assert len(mail.outbox) == 1
    unknown = events(EventType.PASSWORD_RESET_REQUESTED)[-1]
    assert unknown.outcome == Outcome.FAILURE
    assert unknown.reason == Reason.UNKNOWN_USER
    assert unknown.actor_id is None
    assert unknown.actor_label == "ghost@example.test"


def test_completed_reset_records_unlocks_and_ends_every_session(client):
    user = member()
    signed_in = Client()
    sign_in(signed_in, user.email)
    for _ in range(10):
        sign_in(client, user.email, "wrong")
    assert LockoutState.objects.get(user=user).locked_until is not None

    client.post(reverse("accounts:password-reset"), {"email": user.email})
    link = _reset_link(user.email)
    form_page = client.get(link, follow=True)
    assert b"Choose a new password" in form_page.content
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 303
    [completed] = events(EventType.PASSWORD_RESET_COMPLETED)
    assert completed.actor_id == user.pk
    [released] = events(EventType.LOCKOUT_RELEASED)
    assert released.reason == Reason.PASSWORD_RESET
    [ended] = events(EventType.SESSION_ENDED)
    assert ended.reason == Reason.PASSWORD_CHANGED
    assert signed_in.get(reverse("accounts:profile")).status_code == 302
    assert sign_in(Client(), user.email, NEW_PASSWORD).status_code == 303


def test_a_tampered_reset_link_is_refused_and_recorded(client):
    user = member()
    client.post(reverse("accounts:password-reset"), {"email": user.email})
    link = _reset_link(user.email)
    tampered = re.sub(r"/([^/]+)/$", "/abcdef-0123456789abcdef0123456789abcdef/", link)

    response = client.get(tampered, follow=True)

    assert response.status_code == 200
    assert b"This link does not work" in response.content
    [failed] = events(EventType.PASSWORD_RESET_FAILED)
    assert failed.reason == Reason.INVALID_TOKEN
    assert failed.actor_id == user.pk
    assert failed.outcome == Outcome.FAILURE


def test_a_garbage_uid_in_the_reset_link_is_refused_without_error(client):
    response = client.get("/password-reset/reset/%FF%00/zzz-zzz/")
    assert response.status_code == 200
    [failed] = events(EventType.PASSWORD_RESET_FAILED)
    assert failed.actor_id is None


def test_a_rejected_new_password_is_recorded_as_a_failed_reset(client):
    user = member()
    client.post(reverse("accounts:password-reset"), {"email": user.email})
    form_page = client.get(_reset_link(user.email), follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "123", "new_password2": "123"}
    )
    assert response.status_code == 200
    [failed] = events(EventType.PASSWORD_RESET_FAILED)
    assert failed.reason == Reason.PASSWORD_REJECTED
    assert events(EventType.PASSWORD_RESET_COMPLETED) == []


def test_no_event_ever_holds_a_password_token_or_session_key(client):
    user = member()
    sign_in(client, user.email, "my-secret-wrong-password")
    sign_in(client, user.email)
    session_key = client.session.session_key
    client.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    client.post(reverse("accounts:password-reset"), {"email": user.email})
    token = _reset_link(user.email).rstrip("/").rsplit("/", 1)[1]

    stored = "\n".join(str(row) for row in AuditEvent.objects.values_list())
    for secret in (PASSWORD, NEW_PASSWORD, "my-secret-wrong-password", session_key, token):
        assert secret not in stored
