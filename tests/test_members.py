"""Settings → Security → Members: the administrator's account controls, by role and tenant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import LockoutState, Membership, MfaPolicy, Role, UserSession
from audit.models import EventType, Reason

from .factories import member
from .helpers import events, sign_in
from .mfa_support import backup_codes, totp_device

pytestmark = pytest.mark.django_db

MEMBERS_URL = reverse("accounts:members")
ACTIONS = ["accounts:member-role", "accounts:member-unlock", "accounts:member-sign-out",
           "accounts:member-mfa-reset"]  # fmt: skip


@pytest.fixture
def admin(client):
    user = member(role=Role.ADMINISTRATOR)
    sign_in(client, user.email)
    return user


def _colleague(admin, **kwargs):
    return member(organization=admin.membership.organization, **kwargs)


def _lock(user) -> None:
    now = timezone.now()
    LockoutState.objects.create(
        user=user, locked_at=now, locked_until=now + timedelta(minutes=30), counter_reset_at=now
    )


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(MEMBERS_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER])
def test_only_administrators_may_open_members(client, role):
    user = member(role=role)
    sign_in(client, user.email)
    assert client.get(MEMBERS_URL).status_code == 403


@pytest.mark.parametrize("name", ACTIONS)
def test_non_administrators_may_not_act_on_members(client, name):
    user = member(role=Role.SECURITY_ANALYST)
    colleague = member(organization=user.membership.organization)
    sign_in(client, user.email)

    response = client.post(
        reverse(name, args=[colleague.membership.pk]), {"role": Role.ADMINISTRATOR}
    )

    assert response.status_code == 403
    assert Membership.objects.get(pk=colleague.membership.pk).role == Role.MEMBER


def test_the_list_shows_role_mfa_lock_and_last_sign_in(client, admin):
    with_mfa = _colleague(admin, email="mfa@example.test")
    totp_device(with_mfa)
    locked = _colleague(admin, email="locked@example.test")
    _lock(locked)
    outsider = member(email="outsider@example.test")

    body = client.get(MEMBERS_URL).content.decode()

    assert "mfa@example.test" in body and "locked@example.test" in body
    assert "outsider@example.test" not in body
    assert outsider.email not in body
    row = body.split('data-member="mfa@example.test"')[1].split("</tr>")[0]
    assert '<span class="ok">On</span>' in row
    row = body.split('data-member="locked@example.test"')[1].split("</tr>")[0]
    assert "Locked until" in row and "Unlock" in row
    row = body.split(f'data-member="{admin.email}"')[1].split("</tr>")[0]
    assert "never" not in row  # the admin's own sign-in is shown


def test_changing_a_role_records_old_and_new(client, admin):
    colleague = _colleague(admin)

    response = client.post(
        reverse("accounts:member-role", args=[colleague.membership.pk]),
        {"role": Role.SECURITY_ANALYST},
    )

    assert response.status_code == 303
    assert Membership.objects.get(user=colleague).role == Role.SECURITY_ANALYST
    [changed] = events(EventType.MEMBER_ROLE_CHANGED)
    assert changed.actor_id == admin.pk
    assert changed.target_user_id == colleague.pk
    assert changed.details == {"old": "member", "new": "security_analyst"}
    assert changed.organization_id == admin.membership.organization_id


def test_the_same_role_again_records_nothing(client, admin):
    colleague = _colleague(admin)
    client.post(
        reverse("accounts:member-role", args=[colleague.membership.pk]), {"role": Role.MEMBER}
    )
    assert events(EventType.MEMBER_ROLE_CHANGED) == []


@pytest.mark.parametrize("bad", ["owner", "", "administrator'--"])
def test_an_unknown_role_is_refused(client, admin, bad):
    colleague = _colleague(admin)

    response = client.post(
        reverse("accounts:member-role", args=[colleague.membership.pk]), {"role": bad}
    )

    assert response.status_code == 400
    assert b"Choose one of the listed roles" in response.content
    assert Membership.objects.get(user=colleague).role == Role.MEMBER


def test_the_last_administrator_cannot_be_demoted(client, admin):
    response = client.post(
        reverse("accounts:member-role", args=[admin.membership.pk]),
        {"role": Role.MEMBER, "confirmed": "on"},
    )

    assert response.status_code == 409
    assert "last administrator" in response.content.decode()
    assert Membership.objects.get(user=admin).role == Role.ADMINISTRATOR
    assert events(EventType.MEMBER_ROLE_CHANGED) == []


def test_an_administrator_may_step_down_when_another_remains(client, admin):
    _colleague(admin, role=Role.ADMINISTRATOR)

    client.post(
        reverse("accounts:member-role", args=[admin.membership.pk]),
        {"role": Role.MEMBER, "confirmed": "on"},
    )

    assert Membership.objects.get(user=admin).role == Role.MEMBER
    assert client.get(MEMBERS_URL).status_code == 403


@pytest.mark.parametrize("name", ACTIONS)
def test_an_administrator_cannot_act_on_another_organizations_member(client, admin, name):
    outsider = member(role=Role.ADMINISTRATOR)
    totp_device(outsider)
    _lock(outsider)
    Client().post(reverse("accounts:login"), {"email": outsider.email, "password": "x"})

    response = client.post(reverse(name, args=[outsider.membership.pk]), {"role": Role.MEMBER})

    assert response.status_code == 404
    assert Membership.objects.get(user=outsider).role == Role.ADMINISTRATOR
    assert TOTPDevice.objects.filter(user=outsider).exists()
    assert LockoutState.objects.get(user=outsider).locked_until is not None
    assert events(EventType.MEMBER_ROLE_CHANGED) == []
    assert events(EventType.MFA_RESET_BY_ADMIN) == []
    assert events(EventType.LOCKOUT_RELEASED) == []


def test_unlocking_releases_the_lock_as_admin_unlock(client, admin):
    locked = _colleague(admin)
    _lock(locked)

    response = client.post(reverse("accounts:member-unlock", args=[locked.membership.pk]))

    assert response.status_code == 303
    assert LockoutState.objects.get(user=locked).locked_until is None
    [released] = events(EventType.LOCKOUT_RELEASED)
    assert released.reason == Reason.ADMIN_UNLOCK
    assert released.actor_id == admin.pk and released.target_user_id == locked.pk
    assert sign_in(Client(), locked.email).status_code == 303


def test_unlocking_an_account_that_is_not_locked_records_nothing(client, admin):
    colleague = _colleague(admin)
    client.post(reverse("accounts:member-unlock", args=[colleague.membership.pk]))
    assert events(EventType.LOCKOUT_RELEASED) == []


def test_signing_a_member_out_everywhere_ends_their_sessions_as_revoked_by_admin(client, admin):
    colleague = _colleague(admin)
    laptop, phone = Client(), Client()
    sign_in(laptop, colleague.email)
    sign_in(phone, colleague.email)

    response = client.post(reverse("accounts:member-sign-out", args=[colleague.membership.pk]))

    assert response.status_code == 303
    assert laptop.get(reverse("accounts:profile")).status_code == 302
    assert phone.get(reverse("accounts:profile")).status_code == 302
    ended = events(EventType.SESSION_ENDED)
    assert len(ended) == 2
    for event in ended:
        assert event.reason == Reason.REVOKED_BY_ADMIN
        assert event.actor_id == admin.pk and event.target_user_id == colleague.pk
    assert not UserSession.objects.filter(user=colleague, ended_at__isnull=True).exists()
    assert client.get(reverse("accounts:profile")).status_code == 200


def test_an_administrator_signs_out_their_own_sessions_on_their_own_page(client, admin):
    response = client.post(reverse("accounts:member-sign-out", args=[admin.membership.pk]))

    assert response.status_code == 409
    assert "Profile → Security" in response.content.decode()
    assert events(EventType.SESSION_ENDED) == []


def test_resetting_mfa_removes_every_device_and_records_it(client, admin):
    colleague = _colleague(admin)
    totp_device(colleague, name="Lost phone")
    backup_codes(colleague)

    response = client.post(reverse("accounts:member-mfa-reset", args=[colleague.membership.pk]))

    assert response.status_code == 303
    assert not TOTPDevice.objects.filter(user=colleague).exists()
    assert not StaticDevice.objects.filter(user=colleague).exists()
    [reset] = events(EventType.MFA_RESET_BY_ADMIN)
    assert reset.actor_id == admin.pk and reset.target_user_id == colleague.pk
    assert reset.details == {
        "devices": [
            {"device_kind": "totp", "device_name": "Lost phone"},
            {"device_kind": "backup_codes", "device_name": "Backup codes"},
        ]
    }
    # The member signs in with the password alone again.
    assert sign_in(Client(), colleague.email)["Location"] == reverse("accounts:profile")


def test_an_administrator_cannot_reset_their_own_mfa_here(client, admin):
    totp_device(admin)
    response = client.post(reverse("accounts:member-mfa-reset", args=[admin.membership.pk]))
    assert response.status_code == 409
    assert TOTPDevice.objects.filter(user=admin).exists()


def test_unlocking_needs_post(client, admin):
    colleague = _colleague(admin)
    url = reverse("accounts:member-unlock", args=[colleague.membership.pk])
    assert client.get(url).status_code == 405


def test_an_unknown_member_id_is_not_found(client, admin):
    assert client.post(reverse("accounts:member-unlock", args=[999_999])).status_code == 404


def test_setting_the_mfa_policy_records_settings_changed(client, admin):
    response = client.post(
        reverse("accounts:mfa-policy"),
        {"policy": MfaPolicy.ROLES, "roles": [Role.ADMINISTRATOR, Role.SECURITY_ANALYST]},
    )

    assert response.status_code == 303
    organization = admin.membership.organization
    organization.refresh_from_db()
    assert organization.mfa_policy == MfaPolicy.ROLES
    assert organization.mfa_required_roles == ["administrator", "security_analyst"]
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.actor_id == admin.pk
    assert changed.details == {
        "setting": "mfa_policy",
        "old": {"mfa_policy": "off", "mfa_required_roles": [], "mfa_passkey_roles": []},
        "new": {
            "mfa_policy": "roles",
            "mfa_required_roles": ["administrator", "security_analyst"],
            "mfa_passkey_roles": [],
        },
    }


@pytest.mark.parametrize(
    "data",
    [{"policy": MfaPolicy.ROLES}, {"policy": "sometimes"}, {"policy": "all", "roles": ["king"]}],
)
def test_a_bad_mfa_policy_is_refused_with_a_message(client, admin, data):
    response = client.post(reverse("accounts:mfa-policy"), data)

    assert response.status_code == 400
    body = response.content.decode()
    assert 'role="alert">The two-step verification policy was not changed' in body
    assert '<ul class="errorlist" id="id_' in body
    assert events(EventType.SETTINGS_CHANGED) == []


def test_only_administrators_may_set_the_mfa_policy(client):
    analyst = member(role=Role.SECURITY_ANALYST)
    sign_in(client, analyst.email)
    response = client.post(reverse("accounts:mfa-policy"), {"policy": MfaPolicy.ALL})
    assert response.status_code == 403


def test_admin_events_carry_where_the_admin_acted_from(client):
    admin = member(role=Role.ADMINISTRATOR)
    colleague = _colleague(admin)
    sign_in(client, admin.email, REMOTE_ADDR="198.51.100.44", HTTP_USER_AGENT="Mozilla/5.0 Firefox")

    client.post(
        reverse("accounts:member-role", args=[colleague.membership.pk]),
        {"role": Role.COMPLIANCE_OFFICER},
        REMOTE_ADDR="198.51.100.44",
    )

    [changed] = events(EventType.MEMBER_ROLE_CHANGED)
    assert changed.ip_address == "198.51.100.44"
    assert changed.actor_label == admin.email
    assert changed.target_label == colleague.email
    assert len(changed.session_hash) == 16
    assert len(changed.request_id) == 32
