"""Geo location from a local City database, session expiry, and secrets kept out of logs."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import SessionEndReason, UserSession
from accounts.sessions import session_expire_stale
from accounts.tasks import session_expire_stale as session_expire_stale_task
from audit.geo import locate
from audit.logging import RedactSecretsFilter
from audit.models import EventType, Reason

from .factories import member
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db


def test_sign_in_records_country_city_and_coordinates(client, geoip_db):
    user = member()
    sign_in(client, user.email, REMOTE_ADDR="203.0.113.10")
    [login] = events(EventType.LOGIN_SUCCEEDED)
    assert (login.country, login.city) == ("DE", "Berlin")
    assert login.latitude == pytest.approx(52.52)
    assert login.longitude == pytest.approx(13.405)
    session = UserSession.objects.get(user=user)
    assert (session.country, session.city) == ("DE", "Berlin")


def test_ipv6_addresses_are_located_too(geoip_db):
    assert locate("2001:db8::5").country == "GB"


def test_addresses_outside_the_database_have_no_location(geoip_db):
    assert locate("10.1.2.3").country == ""
    assert locate(None).country == ""


def test_no_database_configured_means_empty_geo(client, settings):
    settings.GEOIP_CITY_DB = ""
    user = member()
    sign_in(client, user.email, REMOTE_ADDR="203.0.113.10")
    login = events(EventType.LOGIN_SUCCEEDED)[0]
    assert (login.country, login.city, login.latitude) == ("", "", None)


def test_a_missing_database_file_means_empty_geo_not_an_error(client, settings, tmp_path):
    from audit.geo import reset_readers

    settings.GEOIP_CITY_DB = str(tmp_path / "missing.mmdb")
    reset_readers()
    user = member()
    assert sign_in(client, user.email, REMOTE_ADDR="203.0.113.10").status_code == 303
    assert events(EventType.LOGIN_SUCCEEDED)[0].country == ""
    reset_readers()


def _expire(user) -> UserSession:
    tracked = UserSession.objects.get(user=user, ended_at__isnull=True)
    Session.objects.filter(session_key=tracked.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    return tracked


def test_a_session_that_ran_out_is_recorded_as_expired_exactly_once(client):
    user = member()
    sign_in(client, user.email)
    tracked = _expire(user)

    assert session_expire_stale_task.delay().get() == 1
    assert session_expire_stale() == 0

    [expired] = events(EventType.SESSION_EXPIRED)
    assert expired.actor_id == user.pk
    assert expired.reason == Reason.EXPIRED
    assert expired.session_hash == tracked.session_hash
    tracked.refresh_from_db()
    assert tracked.end_reason == SessionEndReason.EXPIRED
    assert client.get(reverse("accounts:profile")).status_code == 302


def test_live_and_signed_out_sessions_are_not_expired(client):
    user = member()
    sign_in(client, user.email)
    other = Client()
    sign_in(other, user.email)
    other.post(reverse("accounts:logout"))

    assert session_expire_stale() == 0
    assert events(EventType.SESSION_EXPIRED) == []


def test_a_session_deleted_by_clearsessions_is_expired_too(client):
    user = member()
    sign_in(client, user.email)
    tracked = _expire(user)
    Session.objects.filter(session_key=tracked.session_key).delete()
    assert session_expire_stale() == 1


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (
            '"GET /password-reset/reset/MQ/c9x2ab-5f1e2d3c4b5a69788796a5b4c3d2e1f0/ HTTP/1.1"',
            "c9x2ab-5f1e2d3c4b5a69788796a5b4c3d2e1f0",
        ),
        ("POST body password=hunter2&email=a@b.test", "hunter2"),
        ("otp=123456 sessionid=abcdefghijklmnop", "abcdefghijklmnop"),
    ],
)
def test_log_lines_are_redacted(line, secret):
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, "%s", (line,), None)
    assert RedactSecretsFilter().filter(record)
    assert secret not in record.getMessage()
    assert "[redacted]" in record.getMessage()


def test_the_set_password_step_is_left_readable():
    line = '"GET /password-reset/reset/MQ/set-password/ HTTP/1.1" 200'
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, line, None, None)
    RedactSecretsFilter().filter(record)
    assert record.getMessage() == line
