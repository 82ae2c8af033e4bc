"""Settings → Security → Retention: who may see and change it, what it says, and bad input."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Organization, Role, Tier
from audit.models import EventType
from retention.models import RetentionSettings

from .factories import OrganizationFactory, member
from .helpers import events
from .retention_support import archive_dir_fixture  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

URL = reverse("retention:retention")


def _signed_in(client, role=Role.ADMINISTRATOR, tier=Tier.MEDIUM_BUSINESS):
    user = member(OrganizationFactory(tier=tier), role=role)
    client.force_login(user)
    return user


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST])
def test_members_and_analysts_may_not_see_retention(client, role):
    _signed_in(client, role=role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"frameworks": ["sox"]}).status_code == 403


def test_administrator_sees_retention_in_dates(client):
    _signed_in(client, tier=Tier.SMALL_BUSINESS)
    response = client.get(URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert "90 days" in page
    assert "deletes events from before" in page
    assert "cannot" not in page  # no error on a plain view


def test_compliance_officer_reads_but_may_not_change_retention(client):
    user = _signed_in(client, role=Role.COMPLIANCE_OFFICER)
    page = client.get(URL).content.decode()
    assert "Only administrators change these settings" in page
    response = client.post(URL, {"frameworks": ["pci_dss"], "archive_before_purge": "on"})
    assert response.status_code == 403
    assert not RetentionSettings.objects.filter(organization=user.membership.organization).exists()


def test_frameworks_are_named_as_people_write_them(client):
    user = _signed_in(client, role=Role.COMPLIANCE_OFFICER)
    RetentionSettings.objects.create(
        organization=user.membership.organization, frameworks=["hipaa", "pci_dss"]
    )

    page = client.get(URL).content.decode()

    assert "Frameworks: HIPAA, PCI DSS." in page


def test_saving_frameworks_and_archive_records_settings_changed_with_old_and_new(client):
    user = _signed_in(client)
    response = client.post(URL, {"frameworks": ["pci_dss", "soc2"], "archive_before_purge": "on"})

    assert response.status_code == 303
    saved = RetentionSettings.objects.get(organization=user.membership.organization)
    assert saved.frameworks == ["pci_dss", "soc2"]
    assert saved.archive_before_purge is True
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.actor_id == user.pk
    assert changed.organization_id == user.membership.organization_id
    assert changed.details["area"] == "retention"
    assert changed.details["old"] == {"frameworks": [], "archive_before_purge": False}
    assert changed.details["new"] == {
        "frameworks": ["pci_dss", "soc2"],
        "archive_before_purge": True,
    }


def test_saving_unchanged_settings_records_nothing(client):
    _signed_in(client)
    client.post(URL, {"frameworks": ["sox"]})
    client.post(URL, {"frameworks": ["sox"]})
    assert len(events(EventType.SETTINGS_CHANGED)) == 1


def test_enterprise_administrator_sets_ten_years(client):
    user = _signed_in(client, tier=Tier.ENTERPRISE)
    response = client.post(URL, {"retention_years": "10"})

    assert response.status_code == 303
    organization = Organization.objects.get(pk=user.membership.organization_id)
    assert organization.retention_days == 3650
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.details["old"] == {"retention_days": 2555}
    assert changed.details["new"] == {"retention_days": 3650}


def test_enterprise_back_to_seven_years_stores_the_default(client):
    user = _signed_in(client, tier=Tier.ENTERPRISE)
    client.post(URL, {"retention_years": "2"})
    client.post(URL, {"retention_years": "7"})
    organization = Organization.objects.get(pk=user.membership.organization_id)
    assert organization.retention_days_override is None
    assert organization.retention_days == 2555


@pytest.mark.parametrize("years", ["0", "11", "-3", "ten", "1.5"])
def test_retention_out_of_range_is_a_400_with_a_message(client, years):
    user = _signed_in(client, tier=Tier.ENTERPRISE)
    response = client.post(URL, {"retention_years": years})

    assert response.status_code == 400
    page = response.content.decode()
    assert "1 to 10" in page or "whole number" in page
    organization = Organization.objects.get(pk=user.membership.organization_id)
    assert organization.retention_days == 2555
    assert events(EventType.SETTINGS_CHANGED) == []


@pytest.mark.parametrize("tier", [Tier.SMALL_BUSINESS, Tier.MEDIUM_BUSINESS])
def test_a_tier_without_configuration_cannot_set_retention(client, tier):
    user = _signed_in(client, tier=tier)
    response = client.post(URL, {"retention_years": "5", "frameworks": ["sox"]})

    assert response.status_code == 400
    assert "cannot be configured" in response.content.decode()
    organization = Organization.objects.get(pk=user.membership.organization_id)
    assert organization.retention_days_override is None
    assert events(EventType.SETTINGS_CHANGED) == []


def test_an_unknown_framework_is_a_400(client):
    _signed_in(client)
    response = client.post(URL, {"frameworks": ["gdpr-ish"]})
    assert response.status_code == 400
    assert "not one of the available choices" in response.content.decode()


@pytest.mark.parametrize(
    ("tier", "frameworks", "expected"),
    [
        (Tier.SMALL_BUSINESS, ["pci_dss"], ["PCI DSS"]),
        (Tier.MEDIUM_BUSINESS, ["pci_dss"], []),
        (Tier.MEDIUM_BUSINESS, ["hipaa", "sox", "soc2"], ["HIPAA", "SOX"]),
        (Tier.ENTERPRISE, ["hipaa", "sox"], []),
    ],
)
def test_warnings_where_the_tier_falls_short(client, tier, frameworks, expected):
    _signed_in(client, tier=tier)
    client.post(URL, {"frameworks": frameworks})
    page = client.get(URL).content.decode()
    warnings = page.split('id="framework-warnings"')[1].split("</section>")[0] if expected else ""
    for name in expected:
        assert f"<strong>{name}</strong>" in warnings
    if not expected:
        assert 'id="framework-warnings"' not in page
    if expected:
        assert "Upgrade to Enterprise" in warnings


def test_enterprise_with_short_retention_is_told_to_raise_it(client):
    _signed_in(client, tier=Tier.ENTERPRISE)
    client.post(URL, {"retention_years": "1", "frameworks": ["sox"]})
    page = client.get(URL).content.decode()
    assert "Raise retention to at least 7 years" in page


def test_security_settings_links_to_retention_for_administrators(client):
    _signed_in(client)
    page = client.get(reverse("accounts:security-settings")).content.decode()
    assert URL in page
