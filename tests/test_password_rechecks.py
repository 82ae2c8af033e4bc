"""Passwords asked again of a signed-in user count like sign-ins: recorded, counted, locked."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import ACCOUNT_LOCKED
from accounts.models import LockoutState
from audit.models import EventType, Outcome, Reason

from .factories import PASSWORD, member
from .hashers import CountingMD5PasswordHasher
from .helpers import events, sign_in
from .mfa_support import totp_device

pytestmark = pytest.mark.django_db

CHANGE_URL = reverse("accounts:password-change")
NEW_PASSWORD = "a brand new passphrase 2026"


def _change(client: Client, old: str):
    return client.post(
        CHANGE_URL,
        {"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )


@pytest.fixture
def signed_in(client):
    user = member()
    sign_in(client, user.email)
    return user


def test_a_wrong_old_password_is_recorded_as_a_failed_check_with_its_purpose(client, signed_in):
    response = _change(client, "not it")

    assert response.status_code == 200
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.outcome == Outcome.FAILURE
    assert failed.reason == Reason.INVALID_CREDENTIALS
    assert failed.actor_id == signed_in.pk
    # From the browser the person is signed in with: a familiar source.
    assert failed.details == {
        "method": "password",
        "purpose": "password_change",
        "source": "familiar",
    }
    assert "not it" not in str(failed.details)


def test_thirty_wrong_old_passwords_lock_the_account_at_the_threshold(client, signed_in, settings):
    settings.PASSWORD_HASHERS = ["tests.hashers.CountingMD5PasswordHasher"]
    CountingMD5PasswordHasher.reset()

    for _ in range(30):
        _change(client, "guess")

    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    assert locked.target_user_id == signed_in.pk
    reasons = [e.reason for e in events(EventType.LOGIN_FAILED)]
    assert reasons == [Reason.INVALID_CREDENTIALS] * 10 + [Reason.ACCOUNT_LOCKED] * 20
    assert CountingMD5PasswordHasher.verified == 10
    assert LockoutState.objects.get(user=signed_in).locked_until is not None
    # Locked everywhere: the right password no longer signs in, nor changes the password.
    assert sign_in(Client(), signed_in.email).status_code == 200
    refused = _change(client, PASSWORD)
    assert ACCOUNT_LOCKED in refused.content.decode()
    assert events(EventType.PASSWORD_CHANGED) == []
    signed_in.refresh_from_db()
    assert signed_in.check_password(PASSWORD)


def test_the_right_old_password_after_a_wrong_one_changes_it(client, signed_in):
    _change(client, "guess")
    response = _change(client, PASSWORD)
    assert response.status_code == 303
    assert len(events(EventType.PASSWORD_CHANGED)) == 1
    assert len(events(EventType.LOGIN_FAILED)) == 1


def test_wrong_passwords_on_remove_device_are_recorded_and_lock_the_account(client, signed_in):
    device = totp_device(signed_in)
    url = reverse("accounts:mfa-device-remove", args=["totp", device.pk])

    for _ in range(30):
        assert client.post(url, {"password": "guess"}).status_code == 400

    failures = events(EventType.LOGIN_FAILED)
    assert len(failures) == 30
    assert {e.details["purpose"] for e in failures} == {"mfa_device_remove"}
    assert [e.reason for e in failures].count(Reason.INVALID_CREDENTIALS) == 10
    assert len(events(EventType.LOCKOUT_TRIGGERED)) == 1
    # The right password is refused while locked: the device stays.
    refused = client.post(url, {"password": PASSWORD})
    assert refused.status_code == 400
    assert ACCOUNT_LOCKED in refused.content.decode()
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert events(EventType.MFA_DEVICE_REMOVED) == []


def test_failed_rechecks_and_failed_sign_ins_count_together(client, signed_in):
    for _ in range(5):
        _change(client, "guess")
    for _ in range(5):
        sign_in(Client(), signed_in.email, "guess")

    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    assert locked.details["failures"] == 10
