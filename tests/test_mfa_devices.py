"""Enrolling an authenticator app, backup codes and removing devices, through the real views."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent, EventType

from .factories import PASSWORD, member
from .helpers import events, sign_in
from .mfa_support import backup_codes, code_for, totp_device

pytestmark = pytest.mark.django_db

ENROL_URL = reverse("accounts:mfa-enrol")
SECURITY_URL = reverse("accounts:security")
BACKUP_URL = reverse("accounts:mfa-backup-codes")
NEW_BACKUP_URL = reverse("accounts:mfa-backup-codes-new")


def _manual_key(body: str) -> bytes:
    from base64 import b32decode

    shown = re.search(r'data-testid="manual-key">([A-Z2-7 ]+)<', body)
    assert shown is not None
    key = shown.group(1).replace(" ", "")
    return b32decode(key + "=" * (-len(key) % 8))


def _code_from_page(body: str, steps_from_now: int = 0) -> str:
    return f"{totp(_manual_key(body), drift=steps_from_now):06d}"


def _no_secret_in_events(*secrets: str) -> None:
    for event in AuditEvent.objects.all():
        text = f"{event.details} {event.reason}".lower()
        for secret in secrets:
            assert secret.lower() not in text


@pytest.fixture
def signed_in(client):
    user = member()
    sign_in(client, user.email)
    return user


def test_anonymous_visitors_are_sent_to_sign_in_from_every_mfa_page(client):
    for url in [ENROL_URL, SECURITY_URL, reverse("accounts:mfa-device-remove", args=["totp", 1])]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert client.post(NEW_BACKUP_URL).status_code == 302
    assert TOTPDevice.objects.count() == 0


def test_the_enrolment_page_shows_a_qr_code_and_the_manual_key(client, signed_in):
    response = client.get(ENROL_URL)

    body = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in body
    device = TOTPDevice.objects.get(user=signed_in)
    assert device.confirmed is False
    assert _manual_key(body) == device.bin_key


def test_reloading_the_enrolment_page_keeps_the_same_key(client, signed_in):
    first = _manual_key(client.get(ENROL_URL).content.decode())
    second = _manual_key(client.get(ENROL_URL).content.decode())
    assert first == second
    assert TOTPDevice.objects.filter(user=signed_in).count() == 1


def test_confirming_with_the_first_code_adds_the_device_and_shows_ten_backup_codes(
    client, signed_in
):
    body = client.get(ENROL_URL).content.decode()
    code = _code_from_page(body)

    response = client.post(ENROL_URL, {"name": "Work phone", "code": code}, follow=True)

    assert response.redirect_chain == [(BACKUP_URL, 303)]
    device = TOTPDevice.objects.get(user=signed_in)
    assert device.confirmed and device.name == "Work phone"
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    page = response.content.decode()
    shown = re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4})</code></li>", page)
    assert len(shown) == 10
    tokens = set(StaticToken.objects.filter(device__user=signed_in).values_list("token", flat=True))
    assert {c.replace("-", "") for c in shown} == tokens
    [added] = events(EventType.MFA_DEVICE_ADDED)
    assert added.actor_id == signed_in.pk
    assert added.details == {"device_kind": "totp", "device_name": "Work phone"}
    [generated] = events(EventType.MFA_BACKUP_CODES_GENERATED)
    assert generated.details["count"] == 10
    _no_secret_in_events(device.key, code, *tokens)


def test_the_backup_codes_can_be_downloaded_from_the_page_that_shows_them(client, signed_in):
    body = client.get(ENROL_URL).content.decode()
    page = client.post(ENROL_URL, {"code": _code_from_page(body)}, follow=True).content.decode()

    href = re.search(r'<a download="[^"]+" href="data:text/plain;charset=utf-8,([^"]+)"', page)
    text = unquote(href.group(1))
    tokens = StaticToken.objects.filter(device__user=signed_in).values_list("token", flat=True)
    for token in tokens:
        assert f"{token[:4]}-{token[4:]}" in text


def test_backup_codes_are_shown_once_only(client, signed_in):
    body = client.get(ENROL_URL).content.decode()
    client.post(ENROL_URL, {"code": _code_from_page(body)})
    token = StaticToken.objects.filter(device__user=signed_in).first().token

    security_page = client.get(SECURITY_URL).content.decode()

    assert f"{token[:4]}-{token[4:]}" not in security_page
    assert "10 of 10 left" in security_page


def test_a_wrong_first_code_confirms_nothing(client, signed_in):
    body = client.get(ENROL_URL).content.decode()
    right = _code_from_page(body)
    wrong = "000000" if right != "000000" else "111111"

    response = client.post(ENROL_URL, {"code": wrong})

    assert response.status_code == 400
    assert "That code did not match" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=signed_in, confirmed=True).exists()
    assert events(EventType.MFA_DEVICE_ADDED) == []


@pytest.mark.parametrize("garbage", ["abcdef", "12345", "1234567", ""])
def test_a_malformed_first_code_is_a_clear_error(client, signed_in, garbage):
    client.get(ENROL_URL)

    response = client.post(ENROL_URL, {"code": garbage})

    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter the 6-digit code" in body or "This field is required" in body
    assert TOTPDevice.objects.get(user=signed_in).throttling_failure_count == 0


def test_a_device_name_with_control_characters_is_refused(client, signed_in):
    body = client.get(ENROL_URL).content.decode()

    response = client.post(ENROL_URL, {"name": "phone\x07", "code": _code_from_page(body)})

    assert response.status_code == 400
    assert not TOTPDevice.objects.filter(user=signed_in, confirmed=True).exists()


def test_regenerating_backup_codes_replaces_the_old_ones(client, signed_in):
    totp_device(signed_in)
    backup_codes(signed_in, ("aaaabbbb", "ccccdddd"))

    response = client.post(NEW_BACKUP_URL, follow=True)

    assert response.redirect_chain == [(BACKUP_URL, 303)]
    tokens = list(
        StaticToken.objects.filter(device__user=signed_in).values_list("token", flat=True)
    )
    assert len(tokens) == 10
    assert "aaaabbbb" not in tokens
    assert "Your earlier codes no longer work" in response.content.decode()
    [generated] = events(EventType.MFA_BACKUP_CODES_GENERATED)
    assert generated.details == {
        "device_kind": "backup_codes",
        "device_name": "Backup codes",
        "count": 10,
    }
    assert StaticDevice.objects.filter(user=signed_in).count() == 1


def test_reloading_the_backup_codes_page_makes_no_new_codes(client, signed_in):
    totp_device(signed_in)
    shown = client.post(NEW_BACKUP_URL, follow=True)
    codes = re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4})</code></li>", shown.content.decode())

    reloaded = client.get(BACKUP_URL, follow=True)

    assert reloaded.redirect_chain == [(SECURITY_URL, 302)]
    body = reloaded.content.decode()
    assert "shown only once" in body and not any(code in body for code in codes)
    assert len(events(EventType.MFA_BACKUP_CODES_GENERATED)) == 1
    assert {c.replace("-", "") for c in codes} == set(
        StaticToken.objects.filter(device__user=signed_in).values_list("token", flat=True)
    )


def test_backup_codes_need_an_authenticator_app_first(client, signed_in):
    response = client.post(NEW_BACKUP_URL)

    assert response.status_code == 400
    assert b"Set up an authenticator app or a passkey first" in response.content
    assert StaticToken.objects.count() == 0


def test_removing_a_device_asks_for_the_password(client, signed_in):
    device = totp_device(signed_in)
    url = reverse("accounts:mfa-device-remove", args=["totp", device.pk])

    page = client.get(url)
    refused = client.post(url, {"password": "not my password"})

    assert page.status_code == 200
    assert refused.status_code == 400
    assert "That is not your password." in refused.content.decode()
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert events(EventType.MFA_DEVICE_REMOVED) == []


def test_removing_the_last_app_removes_the_backup_codes_too(client, signed_in):
    device = totp_device(signed_in, name="Old phone")
    backup_codes(signed_in)
    url = reverse("accounts:mfa-device-remove", args=["totp", device.pk])

    response = client.post(url, {"password": PASSWORD})

    assert response.status_code == 303
    assert not TOTPDevice.objects.filter(user=signed_in).exists()
    assert not StaticDevice.objects.filter(user=signed_in).exists()
    removed = events(EventType.MFA_DEVICE_REMOVED)
    assert [e.details for e in removed] == [
        {"device_kind": "totp", "device_name": "Old phone"},
        {"device_kind": "backup_codes", "device_name": "Backup codes"},
    ]
    assert all(e.actor_id == signed_in.pk for e in removed)


def test_removing_one_of_two_apps_keeps_the_other_and_the_backup_codes(client, signed_in):
    old = totp_device(signed_in, name="Old phone")
    totp_device(signed_in, name="New phone")
    backup_codes(signed_in)

    client.post(
        reverse("accounts:mfa-device-remove", args=["totp", old.pk]), {"password": PASSWORD}
    )

    assert list(TOTPDevice.objects.values_list("name", flat=True)) == ["New phone"]
    assert StaticDevice.objects.filter(user=signed_in).exists()
    assert len(events(EventType.MFA_DEVICE_REMOVED)) == 1


def test_removing_someone_elses_device_is_not_found(client, signed_in):
    other = member(organization=signed_in.membership.organization)
    device = totp_device(other)

    url = reverse("accounts:mfa-device-remove", args=["totp", device.pk])
    response = client.post(url, {"password": PASSWORD})

    assert response.status_code == 404
    assert client.get(url).status_code == 404
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert events(EventType.MFA_DEVICE_REMOVED) == []


def test_an_unknown_device_kind_is_not_found(client, signed_in):
    device = totp_device(signed_in)
    response = client.get(reverse("accounts:mfa-device-remove", args=["sms", device.pk]))
    assert response.status_code == 404


def test_after_enrolment_the_next_sign_in_asks_for_the_code(client, signed_in):
    body = client.get(ENROL_URL).content.decode()
    client.post(ENROL_URL, {"code": _code_from_page(body)})
    client.post(reverse("accounts:logout"))

    response = sign_in(client, signed_in.email)
    verified = client.post(reverse("accounts:mfa-verify"), {"code": _code_from_page(body, 1)})

    assert response["Location"] == reverse("accounts:mfa-verify")
    assert verified.status_code == 303
    assert events(EventType.LOGIN_SUCCEEDED)[-1].details == {"method": "password+totp"}


def test_the_security_page_lists_devices_and_mfa_status(client, signed_in):
    assert "Off." in client.get(SECURITY_URL).content.decode()
    totp_device(signed_in, name="Pixel 9")
    backup_codes(signed_in, ("aaaabbbb",))

    body = client.get(SECURITY_URL).content.decode()

    assert "On." in body
    assert "Pixel 9" in body
    assert "1 of 10 left" in body


def test_a_code_from_another_device_cannot_confirm_an_enrolment(client, signed_in):
    client.get(ENROL_URL)
    stranger = totp_device(member())

    response = client.post(ENROL_URL, {"code": code_for(stranger)})

    assert response.status_code == 400
    assert not TOTPDevice.objects.filter(user=signed_in, confirmed=True).exists()


def test_two_users_enrol_independently(signed_in):
    other = Client()
    other_user = member()
    sign_in(other, other_user.email)
    other.get(ENROL_URL)
    assert TOTPDevice.objects.filter(user=other_user).count() == 1
    assert TOTPDevice.objects.filter(user=signed_in).count() == 0


def test_pages_with_the_secret_or_the_codes_are_never_cached(client, signed_in):
    enrol = client.get(ENROL_URL)
    totp_device(signed_in)
    codes = client.post(NEW_BACKUP_URL, follow=True)

    for response in (enrol, codes):
        assert "no-store" in response["Cache-Control"]
