"""One time-zone story: the person's zone, from their browser or Profile, on every page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import Role, User
from audit.models import AuditEvent, EventType

from .factories import PASSWORD, member
from .mfa_support import code_for, second_step, totp_device

pytestmark = pytest.mark.django_db

AUDIT_LOG = reverse("accounts:audit-log")
PROFILE = reverse("accounts:profile")
TIME_ZONE = reverse("accounts:time-zone")
DETECTED = reverse("accounts:time-zone-detected")
AT = datetime(2026, 3, 10, 23, 30, 15, tzinfo=UTC)


def _event(org) -> AuditEvent:
    event = AuditEvent(organization=org, event_type=EventType.LOGIN_SUCCEEDED, occurred_at=AT)
    event.save()
    return event


def _in_zone(user: User, zone: str) -> User:
    user.time_zone = zone
    user.save(update_fields=["time_zone"])
    return user


def test_pages_show_times_in_the_persons_zone_and_say_which(client, org, admin):
    _event(org)
    client.force_login(_in_zone(admin, "Asia/Tokyo"))

    body = client.get(AUDIT_LOG).content.decode()

    assert "Times in Asia/Tokyo" in body
    assert 'title="2026-03-11 08:30:15 JST (Asia/Tokyo)"' in body
    assert 'datetime="2026-03-10T23:30:15+00:00"' in body


def test_the_filtered_page_agrees_with_the_first_load(client, org, admin):
    _event(org)
    client.force_login(_in_zone(admin, "Asia/Tokyo"))

    first = client.get(AUDIT_LOG).content.decode()
    # What the filter form sends from a browser in another zone, through HTMX.
    swapped = client.get(
        AUDIT_LOG, {"tz": "America/New_York", "outcome": "success"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    for body in (first, swapped):
        assert "2026-03-11 08:30:15 JST" in body
        assert "EDT" not in body and "EST" not in body


def test_before_the_browser_tells_the_zone_times_are_in_utc(client, org, admin):
    client.force_login(admin)

    body = client.get(PROFILE).content.decode()

    assert "Times in UTC" in body
    assert f'data-time-zone-detect="{DETECTED}"' in body


def test_the_browsers_zone_is_stored_when_none_is(client, org, admin):
    client.force_login(admin)

    response = client.post(DETECTED, {"time_zone": "Europe/Berlin"})

    assert response.json() == {"stored": True, "time_zone": "Europe/Berlin"}
    assert User.objects.get(pk=admin.pk).time_zone == "Europe/Berlin"
    event = AuditEvent.objects.get(event_type=EventType.SETTINGS_CHANGED, actor=admin)
    assert event.details["time_zone"] == {"old": "", "new": "Europe/Berlin"}
    assert "data-time-zone-detect" not in client.get(PROFILE).content.decode()


def test_the_browsers_zone_never_overrides_a_chosen_one(client, org, admin):
    client.force_login(_in_zone(admin, "Asia/Tokyo"))

    response = client.post(DETECTED, {"time_zone": "Europe/Berlin"})

    assert response.json() == {"stored": False, "time_zone": "Asia/Tokyo"}
    assert User.objects.get(pk=admin.pk).time_zone == "Asia/Tokyo"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "x" * 10_000])
def test_a_browser_zone_that_is_no_zone_is_refused(client, org, admin, zone):
    client.force_login(admin)

    response = client.post(DETECTED, {"time_zone": zone})

    assert response.status_code == 400
    assert User.objects.get(pk=admin.pk).time_zone == ""


def test_profile_changes_the_zone_and_says_so(client, org, admin):
    client.force_login(admin)

    response = client.post(TIME_ZONE, {"time_zone": "America/Sao_Paulo"}, follow=True)

    assert response.redirect_chain == [(PROFILE, 303)]
    body = response.content.decode()
    assert "Times are now shown in America/Sao_Paulo." in body
    assert "Times in America/Sao_Paulo" in body
    assert '<option value="America/Sao_Paulo" selected>America/Sao Paulo</option>' in body


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "Europe/Berlin\x00", "é" * 300])
def test_profile_refuses_a_zone_that_does_not_exist_with_a_message(client, org, admin, zone):
    client.force_login(_in_zone(admin, "Asia/Tokyo"))

    response = client.post(TIME_ZONE, {"time_zone": zone})

    assert response.status_code == 400
    assert 'id="time-zone-errors"' in response.content.decode()
    assert User.objects.get(pk=admin.pk).time_zone == "Asia/Tokyo"


def test_an_old_alias_a_browser_sends_is_kept_and_shown(client, org, admin):
    client.force_login(_in_zone(admin, "Asia/Calcutta"))

    body = client.get(PROFILE).content.decode()

    assert '<option value="Asia/Calcutta" selected>Asia/Calcutta</option>' in body
    assert "Times in Asia/Calcutta" in body


@pytest.mark.parametrize("url", [TIME_ZONE, DETECTED])
def test_anonymous_cannot_set_a_zone(client, url):
    response = client.post(url, {"time_zone": "Europe/Berlin"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("url", [TIME_ZONE, DETECTED])
def test_setting_a_zone_takes_a_post(client, org, admin, url):
    client.force_login(admin)

    assert client.get(url).status_code == 405


def test_each_person_sets_only_their_own_zone(client, org, admin):
    other = member(org, Role.MEMBER)
    client.force_login(other)

    client.post(TIME_ZONE, {"time_zone": "Asia/Tokyo"})

    assert User.objects.get(pk=other.pk).time_zone == "Asia/Tokyo"
    assert User.objects.get(pk=admin.pk).time_zone == ""


def test_csv_stays_in_utc_whatever_the_persons_zone(client, org, admin, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path
    _event(org)
    client.force_login(_in_zone(admin, "Asia/Tokyo"))

    response = client.get(reverse("exports:audit-log-csv"))

    body = b"".join(response.streaming_content) if response.streaming else response.content
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert "2026-03-10T23:30:15.000000+00:00" in [row["occurred_at"] for row in rows]


LOGIN = reverse("accounts:login")


def test_the_sign_in_stores_the_browsers_zone_when_none_is(client):
    user = member(role=Role.MEMBER)

    response = client.post(
        LOGIN, {"email": user.email, "password": PASSWORD, "time_zone": "Asia/Tokyo"}
    )

    assert response.status_code == 303
    assert User.objects.get(pk=user.pk).time_zone == "Asia/Tokyo"
    [change] = AuditEvent.objects.filter(event_type=EventType.SETTINGS_CHANGED, actor=user)
    assert change.details == {"time_zone": {"old": "", "new": "Asia/Tokyo"}}


def test_the_sign_in_keeps_a_chosen_zone(client):
    user = member(role=Role.MEMBER, time_zone="Europe/Berlin")

    client.post(LOGIN, {"email": user.email, "password": PASSWORD, "time_zone": "Asia/Tokyo"})

    assert User.objects.get(pk=user.pk).time_zone == "Europe/Berlin"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "x" * 5000, "../../etc/passwd", ""])
def test_a_sign_in_with_no_real_zone_signs_in_and_stores_none(client, zone):
    user = member(role=Role.MEMBER)

    response = client.post(LOGIN, {"email": user.email, "password": PASSWORD, "time_zone": zone})

    assert response.status_code == 303
    assert User.objects.get(pk=user.pk).time_zone == ""


def test_a_wrong_password_stores_no_zone(client):
    user = member(role=Role.MEMBER)

    client.post(LOGIN, {"email": user.email, "password": "wrong-wrong", "time_zone": "Asia/Tokyo"})

    assert User.objects.get(pk=user.pk).time_zone == ""


def test_the_zone_waits_for_the_second_step(client):
    user = member(role=Role.MEMBER)
    device = totp_device(user)

    first = client.post(
        LOGIN, {"email": user.email, "password": PASSWORD, "time_zone": "Asia/Tokyo"}
    )
    assert first.status_code == 303
    assert User.objects.get(pk=user.pk).time_zone == ""

    second_step(client, code_for(device))

    assert User.objects.get(pk=user.pk).time_zone == "Asia/Tokyo"
