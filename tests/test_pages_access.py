"""Profile and Settings → Security pages: anonymous, wrong role and other tenant."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role

from .factories import OrganizationFactory, member
from .helpers import sign_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name",
    [
        "accounts:profile",
        "accounts:activity",
        "accounts:security-settings",
        "accounts:password-change",
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={url}"


def test_profile_shows_the_users_own_organization_and_role(client):
    user = member(role=Role.SECURITY_ANALYST)
    sign_in(client, user.email)
    page = client.get(reverse("accounts:profile")).content.decode()
    assert user.email in page
    assert user.membership.organization.name in page
    assert "Security analyst" in page


def test_members_may_not_open_security_settings(client):
    user = member(role=Role.MEMBER)
    sign_in(client, user.email)
    response = client.get(reverse("accounts:security-settings"))
    assert response.status_code == 403
    header = response.content.split(b"<main")[0]
    assert b"Settings" not in header
    assert reverse("accounts:security-settings").encode() not in header


def test_platform_users_without_an_organization_may_not_open_security_settings(client):
    from .factories import UserFactory

    operator = UserFactory.create(is_staff=True)
    sign_in(client, operator.email)
    assert client.get(reverse("accounts:security-settings")).status_code == 403


@pytest.mark.parametrize(
    "role", [Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER]
)
def test_staff_roles_see_their_own_organizations_security_settings(client, role):
    mine = OrganizationFactory.create(name="Mine Inc")
    theirs = OrganizationFactory.create(name="Theirs Ltd")
    user = member(mine, role=role)
    member(theirs, role=Role.ADMINISTRATOR)
    sign_in(client, user.email)
    page = client.get(reverse("accounts:security-settings")).content.decode()
    assert "Mine Inc" in page
    assert "Theirs Ltd" not in page


def test_the_activity_log_shows_only_the_users_own_events(client):
    organization = OrganizationFactory.create()
    alice = member(organization, email="alice@example.test")
    bob = member(organization, email="bob@example.test")
    sign_in(client, bob.email, "wrong", REMOTE_ADDR="198.51.100.66")
    sign_in(client, alice.email)
    page = client.get(reverse("accounts:activity")).content.decode()
    assert "login.succeeded" in page
    assert "198.51.100.66" not in page
    assert "bob@example.test" not in page
