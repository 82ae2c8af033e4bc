"""An organization that requires MFA sends members without it to enrolment, and nowhere else."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import MfaPolicy, Role
from audit.models import EventType

from .factories import OrganizationFactory, member
from .helpers import events, sign_in
from .mfa_support import code_for, sign_in_with_code, totp_device

pytestmark = pytest.mark.django_db

ENROL_URL = reverse("accounts:mfa-enrol")
PROFILE_URL = reverse("accounts:profile")


def _org(policy: str, roles: list[str] | None = None):
    return OrganizationFactory.create(mfa_policy=policy, mfa_required_roles=roles or [])


def _enrol(client, user):
    client.get(ENROL_URL)
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    return client.post(ENROL_URL, {"code": f"{totp(device.bin_key):06d}"})


def test_a_member_without_mfa_is_sent_to_enrolment_after_the_password(client):
    user = member(organization=_org(MfaPolicy.ALL))

    response = sign_in(client, user.email)

    assert response["Location"] == ENROL_URL
    # The sign-in itself is recorded: the password was right.
    assert events(EventType.LOGIN_SUCCEEDED)[0].details == {"method": "password"}
    page = client.get(ENROL_URL)
    assert page.status_code == 200
    assert "Your organization requires two-step verification" in page.content.decode()


@pytest.mark.parametrize(
    "name",
    ["accounts:profile", "accounts:activity", "accounts:security", "accounts:password-change"],
)
def test_until_enrolled_every_other_page_leads_back_to_enrolment(client, name):
    user = member(organization=_org(MfaPolicy.ALL))
    sign_in(client, user.email)

    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"] == ENROL_URL


def test_until_enrolled_an_htmx_request_is_redirected_by_htmx(client):
    user = member(organization=_org(MfaPolicy.ALL))
    sign_in(client, user.email)

    response = client.get(reverse("accounts:security"), HTTP_HX_REQUEST="true")

    assert response["HX-Redirect"] == ENROL_URL


def test_until_enrolled_signing_out_still_works(client):
    user = member(organization=_org(MfaPolicy.ALL))
    sign_in(client, user.email)

    response = client.post(reverse("accounts:logout"))

    assert response["Location"] == reverse("accounts:login")
    assert "_auth_user_id" not in client.session


def test_enrolling_frees_the_member(client):
    user = member(organization=_org(MfaPolicy.ALL))
    sign_in(client, user.email)

    _enrol(client, user)

    assert client.get(PROFILE_URL).status_code == 200
    assert len(events(EventType.MFA_DEVICE_ADDED)) == 1


def test_a_policy_for_chosen_roles_applies_to_them(client):
    organization = _org(MfaPolicy.ROLES, [Role.ADMINISTRATOR])
    admin = member(organization=organization, role=Role.ADMINISTRATOR)

    assert sign_in(client, admin.email)["Location"] == ENROL_URL


def test_a_policy_for_chosen_roles_spares_the_other_roles(client):
    organization = _org(MfaPolicy.ROLES, [Role.ADMINISTRATOR])
    plain = member(organization=organization, role=Role.MEMBER)

    assert sign_in(client, plain.email)["Location"] == PROFILE_URL
    assert client.get(PROFILE_URL).status_code == 200


def test_a_member_with_a_device_goes_through_the_second_step_and_is_free(client):
    user = member(organization=_org(MfaPolicy.ALL))
    device = totp_device(user)

    response = sign_in_with_code(client, user, code_for(device))

    assert response["Location"] == PROFILE_URL
    assert client.get(PROFILE_URL).status_code == 200


def test_removing_the_only_app_under_the_policy_sends_back_to_enrolment(client):
    from .factories import PASSWORD

    user = member(organization=_org(MfaPolicy.ALL))
    device = totp_device(user)
    sign_in_with_code(client, user, code_for(device))

    response = client.post(
        reverse("accounts:mfa-device-remove", args=["totp", device.pk]), {"password": PASSWORD}
    )

    assert response["Location"] == ENROL_URL
    assert client.get(PROFILE_URL)["Location"] == ENROL_URL


def test_without_a_policy_nobody_is_sent_to_enrolment(client):
    user = member()
    assert sign_in(client, user.email)["Location"] == PROFILE_URL
