"""The MFA policy's phishing-resistant requirement: members of the chosen roles must have a
passkey and sign in with it; an authenticator app alone does not satisfy it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import MfaPolicy, Organization, Role
from audit.models import EventType, Reason

from .factories import PASSWORD, OrganizationFactory, member
from .helpers import client_as, events, sign_in
from .mfa_support import VERIFY_URL, code_for, second_step, totp_device
from .passkey_support import ORIGIN, RP_ID, add_passkey, options_from

pytestmark = pytest.mark.django_db

POLICY_URL = reverse("accounts:mfa-policy")
ADD_URL = reverse("accounts:passkey-add")
PROFILE_URL = reverse("accounts:profile")


@pytest.fixture(autouse=True)
def _relying_party(settings):
    settings.OTP_WEBAUTHN_RP_ID = RP_ID
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [ORIGIN]


def _org(passkey_roles: list[str]) -> Organization:
    return OrganizationFactory.create(
        mfa_policy=MfaPolicy.ALL, mfa_required_roles=[], mfa_passkey_roles=passkey_roles
    )


# --- Setting it ------------------------------------------------------------------------------


def test_requiring_a_passkey_records_settings_changed_with_old_and_new(admin):
    client = client_as(admin)
    data = {
        "policy": MfaPolicy.ROLES,
        "roles": [Role.ADMINISTRATOR, Role.MEMBER],
        "passkey_roles": [Role.ADMINISTRATOR],
    }

    response = client.post(POLICY_URL, data)

    assert response.status_code == 303
    organization = Organization.objects.get(pk=admin.membership.organization_id)
    assert organization.mfa_passkey_roles == ["administrator"]
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.details == {
        "setting": "mfa_policy",
        "old": {"mfa_policy": "off", "mfa_required_roles": [], "mfa_passkey_roles": []},
        "new": {
            "mfa_policy": "roles",
            "mfa_required_roles": ["administrator", "member"],
            "mfa_passkey_roles": ["administrator"],
        },
    }

    # Taking it away again is a change of its own, with the old value.
    client.post(POLICY_URL, {**data, "passkey_roles": []})
    latest = events(EventType.SETTINGS_CHANGED)[-1]
    assert latest.details["old"]["mfa_passkey_roles"] == ["administrator"]
    assert latest.details["new"]["mfa_passkey_roles"] == []


@pytest.mark.parametrize(
    "data",
    [
        {"policy": MfaPolicy.OFF, "passkey_roles": [Role.MEMBER]},
        {"policy": MfaPolicy.ROLES, "roles": [Role.ADMINISTRATOR], "passkey_roles": [Role.MEMBER]},
        {"policy": MfaPolicy.ALL, "passkey_roles": ["king"]},
    ],
)
def test_a_passkey_requirement_outside_the_mfa_policy_is_refused_with_the_reason(admin, data):
    response = client_as(admin).post(POLICY_URL, data)

    assert response.status_code == 400
    body = response.content.decode()
    assert "The two-step verification policy was not changed" in body
    assert 'id="id_passkey_roles_error"' in body
    assert events(EventType.SETTINGS_CHANGED) == []


def test_only_administrators_may_require_passkeys():
    analyst = member(role=Role.SECURITY_ANALYST)
    response = client_as(analyst).post(
        POLICY_URL, {"policy": MfaPolicy.ALL, "passkey_roles": [Role.MEMBER]}
    )
    assert response.status_code == 403
    assert analyst.membership.organization.mfa_passkey_roles == []


def test_an_administrator_sets_only_their_own_organizations_policy(admin):
    other = OrganizationFactory.create()
    client_as(admin).post(POLICY_URL, {"policy": MfaPolicy.ALL, "passkey_roles": [Role.MEMBER]})

    other.refresh_from_db()
    assert other.mfa_passkey_roles == [] and other.mfa_policy == MfaPolicy.OFF
    assert Organization.objects.get(pk=admin.membership.organization_id).mfa_passkey_roles == [
        "member"
    ]


def test_the_members_page_shows_the_passkey_roles(admin):
    organization = admin.membership.organization
    organization.mfa_policy = MfaPolicy.ALL
    organization.mfa_passkey_roles = [Role.ADMINISTRATOR]
    organization.save()

    body = client_as(admin).get(reverse("accounts:members")).content.decode()

    assert "Roles that must use a passkey" in body
    assert 'name="passkey_roles" value="administrator" id="id_passkey_roles_1" checked' in body


# --- Enforcing it ----------------------------------------------------------------------------


def test_an_authenticator_app_alone_leads_to_adding_a_passkey(client):
    user = member(organization=_org([Role.MEMBER]))
    device = totp_device(user)
    sign_in(client, user.email)

    response = second_step(client, code_for(device))

    assert response["Location"] == ADD_URL
    page = client.get(ADD_URL)
    assert "requires a passkey for your role" in page.content.decode()
    # Until then every other page leads back to adding one.
    assert client.get(PROFILE_URL)["Location"] == ADD_URL
    assert client.get(reverse("accounts:security"))["Location"] == ADD_URL

    add_passkey(client)

    assert client.get(PROFILE_URL).status_code == 200


def test_without_any_method_the_member_is_sent_to_add_a_passkey(client):
    user = member(organization=_org([Role.MEMBER]))

    assert sign_in(client, user.email)["Location"] == ADD_URL


def test_an_app_added_instead_does_not_free_the_member(client):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = member(organization=_org([Role.MEMBER]))
    sign_in(client, user.email)
    enrol = reverse("accounts:mfa-enrol")
    client.get(enrol)
    device = TOTPDevice.objects.get(user=user, confirmed=False)

    response = client.post(enrol, {"code": f"{totp(device.bin_key):06d}"})

    assert response["Location"] == ADD_URL
    assert client.get(PROFILE_URL)["Location"] == ADD_URL


def test_a_code_is_refused_where_a_passkey_is_required_and_recorded(client):
    user = member(organization=_org([Role.MEMBER]))
    device = totp_device(user)
    add_passkey(client_as(user))
    sign_in(client, user.email)
    assert (
        "codes from an app and backup codes are not accepted"
        in client.get(VERIFY_URL).content.decode()
    )

    response = second_step(client, code_for(device))

    assert response.status_code == 400
    assert "requires your passkey for this step" in response.content.decode()
    assert "_auth_user_id" not in client.session
    [failed] = events(EventType.MFA_VERIFICATION_FAILED)
    assert failed.reason == Reason.PASSKEY_REQUIRED
    assert failed.details == {"device_kind": "totp"}
    # Not a wrong code: nothing counts towards the lockout.
    assert events(EventType.LOGIN_FAILED) == []


def test_the_passkey_passes_where_it_is_required(client):
    user = member(organization=_org([Role.MEMBER]))
    totp_device(user)
    passkey = add_passkey(client_as(user))
    sign_in(client, user.email)

    answer = passkey.get(options_from(client, "accounts:passkey-verify-options"))
    response = client.post(reverse("accounts:passkey-verify"), {"credential": answer})

    assert response["Location"] == PROFILE_URL
    assert client.get(PROFILE_URL).status_code == 200


def test_other_roles_keep_their_authenticator_app(client):
    user = member(organization=_org([Role.ADMINISTRATOR]), role=Role.MEMBER)
    device = totp_device(user)
    sign_in(client, user.email)

    response = second_step(client, code_for(device))

    assert response["Location"] == PROFILE_URL


def test_removing_the_last_passkey_under_the_policy_leads_to_adding_one():
    user = member(organization=_org([Role.MEMBER]))
    totp_device(user)
    client = Client()
    client.force_login(user)
    add_passkey(client)
    from django_otp_webauthn.models import WebAuthnCredential

    device = WebAuthnCredential.objects.get(user=user)
    response = client.post(
        reverse("accounts:mfa-device-remove", args=["passkey", device.pk]), {"password": PASSWORD}
    )

    assert response["Location"] == ADD_URL
    assert client.get(PROFILE_URL)["Location"] == ADD_URL
