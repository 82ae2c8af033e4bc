"""Settings → Security → Log integrity: who may see it and press Verify, and what it says."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role
from audit.models import EventType
from integrity.services import events_seal

from .factories import OrganizationFactory, member
from .helpers import events
from .integrity_support import as_attacker, events_made, signing_key_fixture  # noqa: F401
from .retention_support import archive_dir_fixture  # noqa: F401 (autouse fixture)

pytestmark = [
    pytest.mark.postgres(reason="seals follow PostgreSQL's commit order and hash in SQL"),
    pytest.mark.django_db(transaction=True),
]

PAGE = reverse("integrity:integrity")
VERIFY = reverse("integrity:verify")


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER])
def test_administrators_and_compliance_verify_and_read_the_result(client, role):
    organization = OrganizationFactory.create()
    user = member(organization, role=role)
    made = events_made(organization, 3)
    events_seal(organization=organization)
    client.force_login(user)
    assert "Never verified" in client.get(PAGE).content.decode()

    response = client.post(VERIFY, follow=True)

    page = response.content.decode()
    assert "Intact on" in page and "3 events in 1 seals" in page
    [verified] = events(EventType.INTEGRITY_VERIFIED)
    assert verified.actor_id == user.pk
    as_attacker(("DELETE FROM audit_auditevent WHERE id = %s", [made[0].pk]))
    page = client.post(VERIFY, follow=True).content.decode()
    assert f"event {made[0].pk} was deleted after sealing" in page


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST])
def test_members_and_analysts_are_refused(client, role):
    client.force_login(member(OrganizationFactory.create(), role=role))
    assert client.get(PAGE).status_code == 403
    assert client.post(VERIFY).status_code == 403
    assert not events(EventType.INTEGRITY_VERIFIED)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    assert client.get(PAGE).status_code == 302
    assert client.post(VERIFY).status_code == 302


def test_another_tenants_administrator_verifies_only_their_own(client):
    tampered = OrganizationFactory.create()
    made = events_made(tampered, 2)
    events_seal(organization=tampered)
    as_attacker(("DELETE FROM audit_auditevent WHERE id = %s", [made[0].pk]))
    other = OrganizationFactory.create()
    client.force_login(member(other, role=Role.ADMINISTRATOR))
    page = client.post(VERIFY, follow=True).content.decode()
    assert str(made[0].pk) not in page.split("Last verification")[1]
    [verified] = events(EventType.INTEGRITY_VERIFIED)
    assert verified.organization_id == other.pk
    assert not events(EventType.INTEGRITY_FAILED)


def test_without_a_key_the_page_says_it_cannot_verify(client, settings):
    settings.INTEGRITY_SIGNING_KEY = ""
    client.force_login(member(OrganizationFactory.create(), role=Role.ADMINISTRATOR))
    page = client.post(VERIFY, follow=True).content.decode()
    assert "Cannot verify: INTEGRITY_SIGNING_KEY is not set" in page
    assert "Could not verify on" in page
    assert "Intact on" not in page
