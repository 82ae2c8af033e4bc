"""Passkeys through the real views, answered by a software authenticator (tests/passkey_support):
adding one, the second step with one, the passkey alone, and every answer that must be refused.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import LockoutState, Role
from audit.models import EventType, Reason

from .factories import OrganizationFactory, member
from .helpers import client_as, events, sign_in
from .mfa_support import VERIFY_URL, code_for, second_step, totp_device
from .passkey_support import ORIGIN, RP_ID, SoftPasskey, add_passkey, b64url, options_from

pytestmark = pytest.mark.django_db

ADD_URL = reverse("accounts:passkey-add")
PASSKEY_VERIFY_URL = reverse("accounts:passkey-verify")
PASSKEY_SIGN_IN_URL = reverse("accounts:passkey-sign-in")
PROFILE_URL = reverse("accounts:profile")


@pytest.fixture(autouse=True)
def _relying_party(settings):
    settings.OTP_WEBAUTHN_RP_ID = RP_ID
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [ORIGIN]


@pytest.fixture
def user_with_passkey():
    user = member()
    passkey = add_passkey(client_as(user))
    return user, passkey


def _failures() -> list[str]:
    return [e.reason for e in events(EventType.MFA_VERIFICATION_FAILED)]


def _signed_in_as(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value else None


# --- Adding a passkey ------------------------------------------------------------------------


def test_adding_a_passkey_records_device_added_with_kind_passkey_and_shows_backup_codes():
    user = member()
    client = client_as(user)
    passkey = SoftPasskey()
    options = options_from(client, "accounts:passkey-add-options")
    assert options["rp"] == {"id": RP_ID, "name": "Activity Monitor"}
    assert options["authenticatorSelection"]["residentKey"] == "required"

    response = client.post(ADD_URL, {"name": "Work laptop", "credential": passkey.create(options)})

    assert response.status_code == 303
    assert response["Location"] == reverse("accounts:mfa-backup-codes")
    device = WebAuthnCredential.objects.get(user=user)
    assert device.name == "Work laptop" and device.confirmed
    added = events(EventType.MFA_DEVICE_ADDED)[0]
    assert added.actor_id == user.pk
    assert added.details == {"device_kind": "passkey", "device_name": "Work laptop"}


def test_a_new_passkey_for_another_origin_is_refused():
    user = member()
    client = client_as(user)
    answer = SoftPasskey().create(
        options_from(client, "accounts:passkey-add-options"), origin="https://evil.example"
    )

    response = client.post(ADD_URL, {"name": "x", "credential": answer})

    assert response.status_code == 400
    assert "made for another site" in response.content.decode()
    assert not WebAuthnCredential.objects.exists()
    assert not events(EventType.MFA_DEVICE_ADDED)


def test_a_new_passkey_without_a_challenge_handed_out_is_refused():
    user = member()
    client = client_as(user)
    answer = SoftPasskey().create({"challenge": "bm90LWFza2Vk", "user": {"id": "dXNlcg"}})

    response = client.post(ADD_URL, {"name": "x", "credential": answer})

    assert response.status_code == 400
    assert "already used or was not asked for" in response.content.decode()
    assert not WebAuthnCredential.objects.exists()


@pytest.mark.parametrize("answer", ["", "not json", "[]", '{"rawId": 5}', "x" * 70_000])
def test_a_malformed_answer_is_a_clear_400(answer):
    client = client_as(member())
    options_from(client, "accounts:passkey-add-options")

    response = client.post(ADD_URL, {"name": "x", "credential": answer})

    assert response.status_code == 400
    assert "The passkey was not added" in response.content.decode()


def test_adding_a_passkey_needs_a_signed_in_person(client):
    assert client.get(ADD_URL).status_code == 302
    response = client.post(reverse("accounts:passkey-add-options"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# --- The second step -------------------------------------------------------------------------


def _password_step(client: Client, user) -> None:
    response = sign_in(client, user.email)
    assert response["Location"] == VERIFY_URL


def test_the_second_step_with_a_passkey_signs_in(user_with_passkey):
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)
    page = client.get(VERIFY_URL)
    assert "Use your passkey" in page.content.decode()

    options = options_from(client, "accounts:passkey-verify-options")
    # Only this person's passkeys are offered.
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(passkey.credential_id)]
    response = client.post(PASSKEY_VERIFY_URL, {"credential": passkey.get(options)})

    assert response.status_code == 303
    assert response["Location"] == PROFILE_URL
    assert _signed_in_as(client) == user.pk
    assert events(EventType.LOGIN_SUCCEEDED)[-1].details == {"method": "password+passkey"}
    [verified] = events(EventType.MFA_VERIFIED)
    assert verified.details["device_kind"] == "passkey"
    assert WebAuthnCredential.objects.get(user=user).sign_count == 1


def test_the_passkey_options_need_the_password_step_first(client):
    response = client.post(reverse("accounts:passkey-verify-options"))
    assert response.status_code == 400
    assert "Sign in again" in response.json()["error"]
    response = client.post(PASSKEY_VERIFY_URL, {"credential": "{}"})
    assert response.status_code == 400


def test_another_accounts_passkey_is_refused_at_the_second_step(user_with_passkey):
    user, _ = user_with_passkey
    other_passkey = add_passkey(client_as(member()))
    client = Client()
    _password_step(client, user)

    answer = other_passkey.get(options_from(client, "accounts:passkey-verify-options"))
    response = client.post(PASSKEY_VERIFY_URL, {"credential": answer})

    assert response.status_code == 400
    assert "belongs to another account" in response.content.decode()
    assert _signed_in_as(client) is None
    [failed] = events(EventType.MFA_VERIFICATION_FAILED)
    assert failed.reason == Reason.PASSKEY_OTHER_USER
    assert failed.actor_id == user.pk
    assert failed.details == {"device_kind": "passkey"}


def test_an_answer_from_another_origin_is_refused_and_recorded(user_with_passkey):
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)

    answer = passkey.get(
        options_from(client, "accounts:passkey-verify-options"), origin="https://evil.example"
    )
    response = client.post(PASSKEY_VERIFY_URL, {"credential": answer})

    assert response.status_code == 400
    assert "made for another site" in response.content.decode()
    assert _failures() == [Reason.PASSKEY_WRONG_ORIGIN]
    assert _signed_in_as(client) is None


def test_an_answer_for_another_rp_id_is_refused(user_with_passkey):
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)

    options = options_from(client, "accounts:passkey-verify-options")
    answer = passkey.get(options, rp_id="evil.example")
    response = client.post(PASSKEY_VERIFY_URL, {"credential": answer})

    assert response.status_code == 400
    assert _failures() == [Reason.PASSKEY_WRONG_ORIGIN]


def test_a_replayed_answer_is_refused(user_with_passkey):
    """The same answer twice: the second finds its challenge used (and a new one not signed)."""
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)
    answer = passkey.get(options_from(client, "accounts:passkey-verify-options"))
    # Any answer takes the challenge out, even a malformed one: the real one then finds none.
    assert client.post(PASSKEY_VERIFY_URL, {"credential": "{}"}).status_code == 400
    response = client.post(PASSKEY_VERIFY_URL, {"credential": answer})
    assert response.status_code == 400
    assert "already used or was not asked for" in response.content.decode()

    # Sent after new options: it signed the old challenge.
    options_from(client, "accounts:passkey-verify-options")
    response = client.post(PASSKEY_VERIFY_URL, {"credential": answer})

    assert response.status_code == 400
    assert _failures()[-2:] == [Reason.PASSKEY_REPLAYED, Reason.PASSKEY_REPLAYED]
    assert _signed_in_as(client) is None


def test_an_answer_replayed_after_it_signed_in_is_refused(user_with_passkey):
    user, passkey = user_with_passkey
    first = Client()
    _password_step(first, user)
    answer = passkey.get(options_from(first, "accounts:passkey-verify-options"))
    assert first.post(PASSKEY_VERIFY_URL, {"credential": answer}).status_code == 303

    thief = Client()
    _password_step(thief, user)
    options_from(thief, "accounts:passkey-verify-options")
    response = thief.post(PASSKEY_VERIFY_URL, {"credential": answer})

    assert response.status_code == 400
    assert _failures() == [Reason.PASSKEY_REPLAYED]
    assert _signed_in_as(thief) is None


def test_a_sign_count_that_did_not_go_up_is_refused(user_with_passkey):
    """A cloned authenticator answers with a count the server has already seen."""
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)
    answer = passkey.get(options_from(client, "accounts:passkey-verify-options"), count=5)
    assert client.post(PASSKEY_VERIFY_URL, {"credential": answer}).status_code == 303
    client.post(reverse("accounts:logout"))

    _password_step(client, user)
    answer = passkey.get(options_from(client, "accounts:passkey-verify-options"), count=5)
    response = client.post(PASSKEY_VERIFY_URL, {"credential": answer})

    assert response.status_code == 400
    assert _failures() == [Reason.PASSKEY_REPLAYED]
    assert WebAuthnCredential.objects.get(user=user).sign_count == 5


def test_a_tampered_signature_is_refused(user_with_passkey):
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)
    options = options_from(client, "accounts:passkey-verify-options")
    other = SoftPasskey()
    other.credential_id = passkey.credential_id  # the right id, signed by another key

    response = client.post(PASSKEY_VERIFY_URL, {"credential": other.get(options)})

    assert response.status_code == 400
    assert _failures() == [Reason.PASSKEY_INVALID]


def test_a_locked_account_is_refused_at_the_passkey_step(user_with_passkey):
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)
    _lock(user)

    answer = passkey.get(options_from(client, "accounts:passkey-verify-options"))
    response = client.post(PASSKEY_VERIFY_URL, {"credential": answer})

    assert response.status_code == 403
    assert _signed_in_as(client) is None


def _lock(user) -> None:
    now = timezone.now()
    LockoutState.objects.update_or_create(
        user=user, defaults={"locked_at": now, "locked_until": now + timedelta(minutes=30)}
    )


# --- The passkey alone -----------------------------------------------------------------------


def test_a_passkey_alone_signs_in(user_with_passkey):
    user, passkey = user_with_passkey
    client = Client()
    page = client.get(reverse("accounts:login"))
    assert "Use a passkey instead" in page.content.decode()

    options = options_from(client, "accounts:passkey-sign-in-options")
    assert options["userVerification"] == "required"
    assert options.get("allowCredentials", []) == []
    response = client.post(
        PASSKEY_SIGN_IN_URL, {"credential": passkey.get(options), "next": "/profile/activity/"}
    )

    assert response.status_code == 303
    assert response["Location"] == "/profile/activity/"
    assert _signed_in_as(client) == user.pk
    assert events(EventType.LOGIN_SUCCEEDED)[-1].details == {"method": "passkey"}
    assert events(EventType.MFA_VERIFIED)[-1].details["device_kind"] == "passkey"


def test_an_unknown_passkey_is_refused_and_recorded(client):
    answer = SoftPasskey().get(options_from(client, "accounts:passkey-sign-in-options"))

    response = client.post(PASSKEY_SIGN_IN_URL, {"credential": answer})

    assert response.status_code == 400
    assert "not known here" in response.content.decode()
    [failed] = events(EventType.MFA_VERIFICATION_FAILED)
    assert failed.reason == Reason.PASSKEY_UNKNOWN and failed.actor_id is None


def test_a_passkey_alone_from_another_origin_is_refused(user_with_passkey, client):
    user, passkey = user_with_passkey
    answer = passkey.get(
        options_from(client, "accounts:passkey-sign-in-options"), origin="http://localhost:9999"
    )

    response = client.post(PASSKEY_SIGN_IN_URL, {"credential": answer})

    assert response.status_code == 400
    [failed] = events(EventType.MFA_VERIFICATION_FAILED)
    assert failed.reason == Reason.PASSKEY_WRONG_ORIGIN and failed.actor_id == user.pk
    assert _signed_in_as(client) is None


def test_options_of_the_second_step_do_not_serve_the_passkey_alone(user_with_passkey):
    """A challenge handed out for one person's second step is no passkey-only sign-in's."""
    user, passkey = user_with_passkey
    client = Client()
    _password_step(client, user)
    answer = passkey.get(options_from(client, "accounts:passkey-verify-options"))

    response = client.post(PASSKEY_SIGN_IN_URL, {"credential": answer})

    assert response.status_code == 400
    assert _failures() == [Reason.PASSKEY_REPLAYED]


def test_a_passkey_of_a_deactivated_account_does_not_sign_in(user_with_passkey, client):
    user, passkey = user_with_passkey
    user.is_active = False
    user.save(update_fields=["is_active"])

    answer = passkey.get(options_from(client, "accounts:passkey-sign-in-options"))
    response = client.post(PASSKEY_SIGN_IN_URL, {"credential": answer})

    assert response.status_code == 403
    assert events(EventType.LOGIN_FAILED)[-1].reason == Reason.INACTIVE_ACCOUNT
    assert _signed_in_as(client) is None


def test_a_passkey_of_a_locked_account_does_not_sign_in(user_with_passkey, client):
    user, passkey = user_with_passkey
    _lock(user)

    answer = passkey.get(options_from(client, "accounts:passkey-sign-in-options"))
    response = client.post(PASSKEY_SIGN_IN_URL, {"credential": answer})

    assert response.status_code == 403
    assert events(EventType.LOGIN_FAILED)[-1].reason == Reason.ACCOUNT_LOCKED
    assert _signed_in_as(client) is None


# --- Removal ---------------------------------------------------------------------------------


def test_removing_a_passkey_records_device_removed(user_with_passkey):
    user, _ = user_with_passkey
    device = WebAuthnCredential.objects.get(user=user)
    client = client_as(user)
    url = reverse("accounts:mfa-device-remove", kwargs={"kind": "passkey", "pk": device.pk})
    assert "This passkey will no longer sign you in" in client.get(url).content.decode()

    response = client.post(url, {"password": "correct horse battery staple"})

    assert response.status_code == 303
    assert not WebAuthnCredential.objects.exists()
    kinds = [e.details["device_kind"] for e in events(EventType.MFA_DEVICE_REMOVED)]
    # The last passkey takes the backup codes along, as the last authenticator app does.
    assert kinds == ["passkey", "backup_codes"]


def test_someone_elses_passkey_cannot_be_removed(user_with_passkey):
    user, _ = user_with_passkey
    device = WebAuthnCredential.objects.get(user=user)
    url = reverse("accounts:mfa-device-remove", kwargs={"kind": "passkey", "pk": device.pk})
    # Another member of the same organization, and a member of another organization.
    colleague = member(organization=user.membership.organization, role=Role.ADMINISTRATOR)
    stranger = member(organization=OrganizationFactory.create(), role=Role.ADMINISTRATOR)

    for other in (colleague, stranger):
        response = client_as(other).post(url, {"password": "correct horse battery staple"})
        assert response.status_code == 404
    assert WebAuthnCredential.objects.filter(pk=device.pk).exists()


def test_an_administrator_reset_removes_passkeys(user_with_passkey):
    user, _ = user_with_passkey
    admin = member(organization=user.membership.organization, role=Role.ADMINISTRATOR)
    url = reverse("accounts:member-mfa-reset", kwargs={"membership_id": user.membership.pk})

    response = client_as(admin).post(url)

    assert response.status_code == 303
    assert not WebAuthnCredential.objects.exists()
    [reset] = events(EventType.MFA_RESET_BY_ADMIN)
    assert {d["device_kind"] for d in reset.details["devices"]} == {"passkey", "backup_codes"}


def test_a_code_still_works_beside_a_passkey_when_no_policy_asks_for_one(user_with_passkey):
    user, _ = user_with_passkey
    device = totp_device(user)
    client = Client()
    _password_step(client, user)

    response = second_step(client, code_for(device))

    assert response.status_code == 303 and _signed_in_as(client) == user.pk


def test_a_flood_of_passkey_answers_is_throttled_by_address(client, settings):
    settings.THROTTLE_IP_BURST = 2
    statuses = []
    for _ in range(3):
        answer = SoftPasskey().get(options_from(client, "accounts:passkey-sign-in-options"))
        statuses.append(client.post(PASSKEY_SIGN_IN_URL, {"credential": answer}).status_code)

    assert statuses == [400, 400, 429]
    assert _failures() == [Reason.PASSKEY_UNKNOWN, Reason.PASSKEY_UNKNOWN]
    assert events(EventType.LOGIN_THROTTLED)[0].reason == Reason.IP_RATE_LIMIT


@pytest.mark.parametrize(
    ("rp_id", "origins", "debug", "ids"),
    [
        ("localhost", ["http://localhost:8000"], True, []),
        ("example.com", ["https://example.com", "https://app.example.com"], False, []),
        ("127.0.0.1", ["http://127.0.0.1:8000"], True, ["accounts.E101"]),
        ("example.com", ["https://example.org"], False, ["accounts.E102"]),
        ("localhost", ["http://localhost:8000"], False, ["accounts.W101"]),
    ],
)
def test_the_settings_check_names_passkey_settings_no_browser_accepts(
    settings, rp_id, origins, debug, ids
):
    from accounts.checks import passkey_settings_check

    settings.OTP_WEBAUTHN_RP_ID, settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = rp_id, origins
    settings.DEBUG = debug

    assert [problem.id for problem in passkey_settings_check()] == ids
