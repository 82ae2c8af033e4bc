"""The two-step sign-in through the real views: password, then a code or a backup code."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import SIGN_IN_REFUSED
from accounts.mfa import PENDING_SALT, PENDING_SESSION_KEY
from accounts.models import LockoutState
from accounts.views.sign_in import NO_SIGN_IN_PENDING, SECOND_STEP_REFUSED, SECOND_STEP_THROTTLED
from audit.models import EventType, Outcome, Reason

from .factories import PASSWORD, member
from .helpers import events, sign_in
from .mfa_support import (
    VERIFY_URL,
    backup_codes,
    code_for,
    second_step,
    sign_in_with_code,
    totp_device,
)

pytestmark = pytest.mark.django_db

PROFILE_URL = reverse("accounts:profile")


@pytest.fixture
def no_throttle(settings):
    """For tests about what comes after several wrong codes in a row, not about the back-off."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def test_the_password_step_of_a_user_with_mfa_does_not_sign_in(client):
    user = member()
    totp_device(user)

    response = sign_in(client, user.email)

    assert response.status_code == 303
    assert response["Location"] == VERIFY_URL
    assert "_auth_user_id" not in client.session
    assert events(EventType.LOGIN_SUCCEEDED) == []
    assert events(EventType.SESSION_STARTED) == []
    assert client.get(PROFILE_URL).status_code == 302


def test_the_second_step_page_names_the_account(client):
    user = member()
    totp_device(user)
    sign_in(client, user.email)

    response = client.get(VERIFY_URL)

    assert response.status_code == 200
    assert user.email in response.content.decode()


def test_a_right_app_code_signs_in_with_method_password_plus_totp(client):
    user = member()
    device = totp_device(user, name="Work phone")

    response = sign_in_with_code(client, user, code_for(device))

    assert response.status_code == 303
    assert response["Location"] == PROFILE_URL
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    [verified] = events(EventType.MFA_VERIFIED)
    [login] = events(EventType.LOGIN_SUCCEEDED)
    assert verified.id < login.id
    assert verified.actor_id == user.pk
    assert verified.details == {"device_kind": "totp", "device_name": "Work phone"}
    assert login.details == {"method": "password+totp"}
    assert len(events(EventType.SESSION_STARTED)) == 1
    assert PENDING_SESSION_KEY not in client.session
    assert client.get(PROFILE_URL).status_code == 200


def test_a_backup_code_signs_in_once_with_method_backup_code(client):
    user = member()
    totp_device(user)
    backup_codes(user, ("abcd2345", "wxyz6723"))

    response = sign_in_with_code(client, user, "ABCD-2345")

    assert response.status_code == 303
    [login] = events(EventType.LOGIN_SUCCEEDED)
    assert login.details == {"method": "backup_code"}
    [verified] = events(EventType.MFA_VERIFIED)
    assert verified.details["device_kind"] == "backup_codes"
    assert list(StaticToken.objects.values_list("token", flat=True)) == ["wxyz6723"]


def test_a_replayed_backup_code_is_refused(client):
    user = member()
    totp_device(user)
    backup_codes(user, ("abcd2345", "wxyz6723"))
    sign_in_with_code(client, user, "abcd2345")
    client.post(reverse("accounts:logout"))

    response = sign_in_with_code(client, user, "abcd2345")

    assert response.status_code == 400
    assert SECOND_STEP_REFUSED in response.content.decode()
    assert len(events(EventType.LOGIN_SUCCEEDED)) == 1
    [failed] = events(EventType.MFA_VERIFICATION_FAILED)
    assert failed.details == {"device_kind": "backup_codes"}


def test_a_wrong_code_is_refused_recorded_and_counted_towards_the_lockout(client):
    user = member()
    device = totp_device(user)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"

    response = sign_in_with_code(client, user, wrong)

    assert response.status_code == 400
    assert SECOND_STEP_REFUSED in response.content.decode()
    assert f'value="{wrong}"' not in response.content.decode()
    assert "_auth_user_id" not in client.session
    [failed] = events(EventType.MFA_VERIFICATION_FAILED)
    assert failed.outcome == Outcome.FAILURE
    assert failed.reason == Reason.MFA_FAILED
    assert failed.actor_id == user.pk
    assert wrong not in str(failed.details)
    [login_failed] = events(EventType.LOGIN_FAILED)
    assert login_failed.reason == Reason.MFA_FAILED
    # Counted in the class of source its password step was decided in: a new browser's.
    assert login_failed.details == {"method": "mfa", "source": "unfamiliar"}
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_the_second_step_can_be_retried_after_a_wrong_code(client, no_throttle):
    user = member()
    device = totp_device(user)
    sign_in_with_code(client, user, "000000" if code_for(device) != "000000" else "111111")

    response = second_step(client, code_for(device))

    assert response.status_code == 303
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_reused_app_code_is_refused(client):
    user = member()
    device = totp_device(user)
    code = code_for(device)
    sign_in_with_code(client, user, code)
    client.post(reverse("accounts:logout"))

    response = sign_in_with_code(client, user, code)

    assert response.status_code == 400
    assert SECOND_STEP_REFUSED in response.content.decode()
    assert len(events(EventType.LOGIN_SUCCEEDED)) == 1


def test_an_expired_app_code_is_refused(client):
    user = member()
    device = totp_device(user)

    response = sign_in_with_code(client, user, code_for(device, steps_from_now=-4))

    assert response.status_code == 400
    assert events(EventType.LOGIN_SUCCEEDED) == []
    assert len(events(EventType.MFA_VERIFICATION_FAILED)) == 1


@pytest.mark.parametrize("garbage", ["12345", "abc!de", "1234567", "", "12 34 5x", "ä" * 6])
def test_a_malformed_code_is_a_clear_form_error_and_changes_nothing(client, garbage):
    user = member()
    device = totp_device(user)
    sign_in(client, user.email)
    before = len(events())

    response = second_step(client, garbage)

    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter the 6-digit code" in body or "This field is required" in body
    assert len(events()) == before
    device.refresh_from_db()
    assert device.throttling_failure_count == 0
    assert PENDING_SESSION_KEY in client.session


def test_django_otp_throttling_refuses_a_quick_second_guess(client):
    user = member()
    device = totp_device(user)
    sign_in_with_code(client, user, "000000" if code_for(device) != "000000" else "111111")

    response = second_step(client, code_for(device))

    assert response.status_code == 400
    assert SECOND_STEP_THROTTLED in response.content.decode()
    assert "_auth_user_id" not in client.session
    first, second = events(EventType.MFA_VERIFICATION_FAILED)
    assert (first.reason, second.reason) == (Reason.MFA_FAILED, "throttled")
    # Only the checked guess counts towards the lockout.
    assert len(events(EventType.LOGIN_FAILED)) == 1


def test_wrong_codes_lock_the_account_and_then_a_right_code_is_refused(client, no_throttle):
    user = member()
    organization = user.membership.organization
    organization.lockout_threshold = 3
    organization.save()
    device = totp_device(user)
    wrong = "000000" if code_for(device) != "000000" else "111111"
    sign_in(client, user.email)
    second_step(client, wrong)
    second_step(client, wrong)

    locking = second_step(client, wrong)

    assert locking.status_code == 403
    assert SIGN_IN_REFUSED in locking.content.decode()
    [triggered] = events(EventType.LOGIN_FAILED, reason=Reason.MFA_FAILED)[-1:]
    assert len(events(EventType.LOCKOUT_TRIGGERED)) == 1
    assert LockoutState.objects.get(user=user).unfamiliar_locked_until is not None
    assert PENDING_SESSION_KEY not in client.session
    # The pending sign-in is gone, and the password step refuses while locked.
    assert second_step(client, code_for(device)).status_code == 400
    sign_in(client, user.email)
    assert second_step(client, code_for(device)).status_code == 400
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_posting_the_second_step_without_the_first_is_refused(client):
    user = member()
    device = totp_device(user)

    response = second_step(client, code_for(device))

    assert response.status_code == 400
    assert NO_SIGN_IN_PENDING in response.content.decode()
    assert events() == []
    assert "_auth_user_id" not in client.session


def test_a_tampered_pending_marker_is_refused(client):
    user = member()
    device = totp_device(user)
    victim = member()
    totp_device(victim)
    sign_in(client, user.email)
    session = client.session
    payload = session[PENDING_SESSION_KEY]
    # Point the marker at someone else without the key that signs it.
    session[PENDING_SESSION_KEY] = payload.replace(payload.split(":")[0], "eyJ1Ijo5OTk5OX0")
    session.save()

    response = second_step(client, code_for(device))

    assert response.status_code == 400
    assert NO_SIGN_IN_PENDING in response.content.decode()
    assert events(EventType.LOGIN_SUCCEEDED) == []
    assert PENDING_SESSION_KEY not in client.session


def test_a_pending_marker_older_than_five_minutes_is_refused(client):
    user = member()
    device = totp_device(user)

    class FiveMinutesAgo(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time()) - 301)

    sign_in(client, user.email)
    session = client.session
    session[PENDING_SESSION_KEY] = FiveMinutesAgo(salt=PENDING_SALT).sign_object(
        {"u": user.pk, "h": user.get_session_auth_hash(), "n": "/profile/"}
    )
    session.save()

    response = second_step(client, code_for(device))

    assert response.status_code == 400
    assert NO_SIGN_IN_PENDING in response.content.decode()


def test_a_password_change_between_the_steps_ends_the_pending_sign_in(client):
    user = member()
    device = totp_device(user)
    sign_in(client, user.email)
    user.set_password("another passphrase entirely")
    user.save()

    response = second_step(client, code_for(device))

    assert response.status_code == 400
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_a_user_disabled_between_the_steps_is_not_signed_in(client):
    user = member()
    device = totp_device(user)
    sign_in(client, user.email)
    user.is_active = False
    user.save()

    response = second_step(client, code_for(device))

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_the_second_step_follows_next_from_the_first(client):
    user = member()
    device = totp_device(user)
    client.post(
        reverse("accounts:login"),
        {"email": user.email, "password": PASSWORD, "next": "/profile/activity/"},
    )

    response = second_step(client, code_for(device))

    assert response["Location"] == "/profile/activity/"


def test_a_code_of_another_users_device_does_not_work(client):
    user = member()
    totp_device(user)
    other = member()
    other_device = totp_device(other)

    response = sign_in_with_code(client, user, code_for(other_device))

    assert response.status_code == 400
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_a_wrong_password_never_reaches_the_second_step(client):
    user = member()
    totp_device(user)

    response = sign_in(client, user.email, "not the password")

    assert response.status_code == 200
    assert SIGN_IN_REFUSED in response.content.decode()
    assert PENDING_SESSION_KEY not in client.session


def test_getting_the_second_step_without_the_first_offers_to_sign_in_again():
    response = Client().get(VERIFY_URL)
    assert response.status_code == 400
    assert NO_SIGN_IN_PENDING in response.content.decode()
    assert b'name="password"' in response.content


def test_an_unconfirmed_device_does_not_ask_for_a_second_step(client):
    user = member()
    TOTPDevice.objects.create(user=user, name="half set up", confirmed=False)

    response = sign_in(client, user.email)

    assert response["Location"] == PROFILE_URL
    assert events(EventType.LOGIN_SUCCEEDED)[0].details == {"method": "password"}


def test_the_password_step_gives_the_session_a_new_key(client):
    user = member()
    device = totp_device(user)
    client.get(reverse("accounts:login"))
    session = client.session
    session["planted"] = True
    session.save()
    planted_key = session.session_key
    client.cookies["sessionid"] = planted_key

    sign_in(client, user.email)

    assert client.session.session_key != planted_key
    attacker = Client()
    attacker.cookies["sessionid"] = planted_key
    assert second_step(attacker, code_for(device)).status_code == 400
