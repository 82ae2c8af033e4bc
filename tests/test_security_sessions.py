"""Profile → Security: the user's own sessions, signing one or all others out, last activity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import SessionEndReason, UserSession
from accounts.sessions import SESSION_TOUCHED_KEY
from audit.context import SESSION_HASH_KEY
from audit.models import EventType, Reason

from .factories import member
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db

SECURITY_URL = reverse("accounts:security")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def _end_url(session_hash: str) -> str:
    return reverse("accounts:session-end", args=[session_hash])


def _browsers(user):
    """Two signed-in browsers of the same user: (this one, the phone)."""
    here, phone = Client(), Client()
    sign_in(here, user.email, HTTP_USER_AGENT=FIREFOX_LINUX, REMOTE_ADDR="198.51.100.7")
    sign_in(phone, user.email, HTTP_USER_AGENT=SAFARI_IPHONE, REMOTE_ADDR="203.0.113.20")
    return here, phone


def test_the_page_lists_open_sessions_with_where_and_when_and_marks_this_one():
    user = member()
    here, phone = _browsers(user)

    body = here.get(SECURITY_URL).content.decode()

    assert "Firefox 133" in body and "Linux" in body and "198.51.100.7" in body
    assert "Mobile Safari" in body and "iOS" in body and "203.0.113.20" in body
    assert "mobile" in body and "desktop" in body
    assert body.count("This session") == 1
    current = here.session[SESSION_HASH_KEY]
    assert 'class="current"' in body
    assert body.index(current) > 0


def test_another_users_sessions_are_not_listed():
    user = member()
    stranger = member(organization=user.membership.organization)
    here = Client()
    sign_in(here, user.email)
    sign_in(Client(), stranger.email, REMOTE_ADDR="192.0.2.99")

    assert "192.0.2.99" not in here.get(SECURITY_URL).content.decode()


def test_signing_out_another_session_ends_it_and_records_revoked_by_user():
    user = member()
    here, phone = _browsers(user)
    phone_hash = phone.session[SESSION_HASH_KEY]

    response = here.post(_end_url(phone_hash))

    assert response.status_code == 303
    assert phone.get(reverse("accounts:profile")).status_code == 302
    assert here.get(reverse("accounts:profile")).status_code == 200
    tracked = UserSession.objects.get(session_hash=phone_hash)
    assert tracked.end_reason == SessionEndReason.REVOKED_BY_USER
    [ended] = events(EventType.SESSION_ENDED)
    assert ended.reason == Reason.REVOKED_BY_USER
    assert ended.session_hash == phone_hash
    assert ended.actor_id == user.pk and ended.target_user_id is None


def test_the_htmx_sign_out_returns_the_refreshed_session_list_only():
    user = member()
    here, phone = _browsers(user)

    response = here.post(_end_url(phone.session[SESSION_HASH_KEY]), HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="sessions"' in body
    assert "That session was signed out." in body
    assert "Mobile Safari" not in body
    assert "HX-Request" in response["Vary"]


def test_the_security_page_serves_its_session_list_to_htmx():
    user = member()
    here, _ = _browsers(user)

    full = here.get(SECURITY_URL)
    fragment = here.get(SECURITY_URL, HTTP_HX_REQUEST="true")

    assert b"<html" in full.content and b"Two-step verification" in full.content
    assert b"<html" not in fragment.content and b'id="sessions"' in fragment.content
    assert "HX-Request" in fragment["Vary"]


def test_signing_out_someone_elses_session_is_not_found():
    user = member()
    victim = member(organization=user.membership.organization)
    here = Client()
    sign_in(here, user.email)
    theirs = Client()
    sign_in(theirs, victim.email)
    victim_hash = theirs.session[SESSION_HASH_KEY]

    response = here.post(_end_url(victim_hash))

    assert response.status_code == 404
    assert theirs.get(reverse("accounts:profile")).status_code == 200
    assert events(EventType.SESSION_ENDED) == []


@pytest.mark.parametrize("bad", ["nothex", "0" * 16, "x" * 300, "%00"])
def test_signing_out_an_unknown_session_is_not_found(client, bad):
    user = member()
    sign_in(client, user.email)
    assert client.post(_end_url(bad)).status_code == 404


def test_signing_out_an_ended_session_is_not_found():
    user = member()
    here, phone = _browsers(user)
    phone_hash = phone.session[SESSION_HASH_KEY]
    here.post(_end_url(phone_hash))

    assert here.post(_end_url(phone_hash)).status_code == 404
    assert len(events(EventType.SESSION_ENDED)) == 1


def test_signing_out_this_session_from_the_list_signs_out_here():
    user = member()
    here, phone = _browsers(user)
    here_hash = here.session[SESSION_HASH_KEY]

    response = here.post(_end_url(here_hash))

    assert response["Location"] == reverse("accounts:login")
    assert here.get(reverse("accounts:profile")).status_code == 302
    assert phone.get(reverse("accounts:profile")).status_code == 200
    assert UserSession.objects.get(session_hash=here_hash).end_reason == Reason.REVOKED_BY_USER
    assert len(events(EventType.LOGOUT)) == 1


def test_signing_out_all_other_sessions_keeps_this_one():
    user = member()
    here, phone = _browsers(user)
    tablet = Client()
    sign_in(tablet, user.email)

    response = here.post(reverse("accounts:sessions-end-others"))

    assert response.status_code == 303
    assert here.get(reverse("accounts:profile")).status_code == 200
    assert phone.get(reverse("accounts:profile")).status_code == 302
    assert tablet.get(reverse("accounts:profile")).status_code == 302
    ended = events(EventType.SESSION_ENDED)
    assert len(ended) == 2
    assert {e.reason for e in ended} == {Reason.REVOKED_BY_USER}
    assert here.session[SESSION_HASH_KEY] not in {e.session_hash for e in ended}


def test_session_actions_act_on_post_for_a_signed_in_user_only(client):
    user = member()
    here, phone = _browsers(user)
    url = _end_url(phone.session[SESSION_HASH_KEY])

    assert here.get(url).status_code == 200  # the question; it changes nothing
    assert client.get(reverse("accounts:sessions-end-others")).status_code == 302  # to sign in
    assert client.post(url).status_code == 302  # anonymous: to sign in
    assert client.post(reverse("accounts:sessions-end-others")).status_code == 302
    assert events(EventType.SESSION_ENDED) == []


def test_last_activity_is_written_at_most_once_a_minute(client):
    user = member()
    sign_in(client, user.email)
    tracked = UserSession.objects.get(user=user)
    long_ago = timezone.now() - timedelta(hours=1)
    UserSession.objects.filter(pk=tracked.pk).update(last_activity_at=long_ago)

    client.get(reverse("accounts:profile"))  # first request after sign-in: written
    tracked.refresh_from_db()
    first = tracked.last_activity_at
    assert first > long_ago
    UserSession.objects.filter(pk=tracked.pk).update(last_activity_at=long_ago)
    client.get(reverse("accounts:profile"))  # within the minute: not written
    tracked.refresh_from_db()
    assert tracked.last_activity_at == long_ago

    session = client.session
    session[SESSION_TOUCHED_KEY] -= 61
    session.save()
    client.get(reverse("accounts:profile"))  # a minute later: written again
    tracked.refresh_from_db()
    assert tracked.last_activity_at > long_ago


def test_a_revoked_session_is_gone_from_the_session_store():
    user = member()
    here, phone = _browsers(user)
    key = phone.session.session_key

    here.post(reverse("accounts:sessions-end-others"))

    assert not Session.objects.filter(session_key=key).exists()


def test_each_session_shows_where_it_was_started(geoip_db):
    user = member()
    here, phone = _browsers(user)

    body = here.get(SECURITY_URL).content.decode()

    assert "New York, US" in body  # 198.51.100.7, this browser
    assert "Berlin, DE" in body  # 203.0.113.20, the phone


def test_signing_out_all_others_asks_first_and_the_question_changes_nothing():
    user = member()
    here, phone = _browsers(user)

    page = here.get(reverse("accounts:sessions-end-others"))

    assert page.status_code == 200
    assert "Sign out all your other sessions?" in page.content.decode()
    assert "Mobile Safari" in page.content.decode()  # the phone, named in the question
    assert phone.get(reverse("accounts:profile")).status_code == 200
    assert events(EventType.SESSION_ENDED) == []


def test_signing_out_all_others_says_so_after_the_redirect():
    user = member()
    here, _phone = _browsers(user)

    response = here.post(reverse("accounts:sessions-end-others"), follow=True)

    assert response.redirect_chain == [(reverse("accounts:security"), 303)]
    assert "Signed out 1 other session." in response.content.decode()


def test_signing_out_all_others_by_htmx_returns_the_list_with_only_this_session():
    user = member()
    here, phone = _browsers(user)

    response = here.post(reverse("accounts:sessions-end-others"), HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert "<html" not in body and 'id="sessions"' in body
    assert "Signed out 1 other session." in body
    assert body.count("This session") == 1
    assert "Mobile Safari" not in body
    assert phone.get(reverse("accounts:profile")).status_code == 302
