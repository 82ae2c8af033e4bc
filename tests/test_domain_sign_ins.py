"""Failed sign-ins for unknown addresses at an organization's verified domain are that
organization's: in its Audit Log (and no one else's), and counted by its password-spraying rule.

Every sign-in goes through the real sign-in view; alerts come from the real evaluation (tasks
run eagerly, after the sign-in's commit).
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.domains import organization_for_address
from accounts.models import DomainProof, OrganizationDomain, Role
from alerts.models import Alert, RuleKind
from audit.models import EventType, Reason

from .alerts_support import sign_in_from
from .factories import OrganizationFactory, member
from .helpers import client_as, events, sign_in

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.66"
AUDIT_LOG = reverse("accounts:audit-log")


def owns(organization, domain: str) -> OrganizationDomain:
    return OrganizationDomain.objects.create(
        organization=organization,
        domain=domain,
        proof=DomainProof.OPERATOR,
        verified_at=timezone.now(),
    )


@pytest.fixture
def acme():
    """Acme as in the demo: four people at acme.test, which it has verified."""
    organization = OrganizationFactory.create(name="Acme Corp", slug="acme")
    for email, role in [
        ("admin@acme.test", Role.ADMINISTRATOR),
        ("analyst@acme.test", Role.SECURITY_ANALYST),
        ("compliance@acme.test", Role.COMPLIANCE_OFFICER),
        ("alice@acme.test", Role.MEMBER),
    ]:
        member(organization, role, email=email)
    owns(organization, "acme.test")
    return organization


@pytest.fixture
def globex():
    organization = OrganizationFactory.create(name="Globex", slug="globex")
    member(organization, Role.ADMINISTRATOR, email="admin@globex.test")
    owns(organization, "globex.test")
    return organization


def unknown_failure():
    [failed] = events(EventType.LOGIN_FAILED, reason=Reason.UNKNOWN_USER)
    return failed


# --- Whose failure it is ---------------------------------------------------------------------


def test_an_unknown_address_at_a_verified_domain_belongs_to_its_organization(client, acme, globex):
    sign_in(client, "Nobody@ACME.test", "Spring2026!")
    failed = unknown_failure()
    assert failed.organization_id == acme.pk
    assert failed.actor_id is None
    assert failed.actor_label == "Nobody@ACME.test"  # as typed, as before
    assert failed.details["attempted_username"] == "Nobody@ACME.test"


def test_an_unknown_address_asks_whose_domain_it_is_once(client, acme):
    """The throttle and the failure's record share one lookup of the address's domain."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    table = OrganizationDomain._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        sign_in(client, "nobody@acme.test", "Spring2026!")
    assert unknown_failure().organization_id == acme.pk
    assert sum(f'"{table}"' in query["sql"] for query in queries.captured_queries) == 1


def test_an_unknown_address_at_a_pending_domain_belongs_to_no_organization(client):
    OrganizationDomain.objects.create(organization=OrganizationFactory.create(), domain="x.test")
    sign_in(client, "nobody@x.test", "Spring2026!")
    assert unknown_failure().organization_id is None


def test_a_subdomain_of_a_verified_domain_is_not_the_domain(client, acme):
    sign_in(client, "nobody@eu.acme.test", "Spring2026!")
    assert unknown_failure().organization_id is None


def test_a_name_that_is_not_an_address_belongs_to_no_organization(client, acme):
    sign_in(client, "hunter2 @acme.test", "Spring2026!")
    failed = unknown_failure()
    assert failed.organization_id is None
    assert failed.actor_label.startswith("masked:")


def test_a_unicode_address_matches_its_idna_domain(client):
    organization = OrganizationFactory.create()
    owns(organization, "xn--bcher-kva.example")
    sign_in(client, "nobody@Bücher.example", "Spring2026!")
    assert unknown_failure().organization_id == organization.pk


def test_the_domain_is_found_in_one_query(acme, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert organization_for_address("nobody@acme.test") == acme
    with django_assert_num_queries(0):
        assert organization_for_address("not an address") is None


def test_a_known_accounts_failure_is_its_own_organizations_as_before(client, acme, globex):
    """An account at acme.test that is a member of Globex stays Globex's."""
    consultant = member(globex, email="consultant@acme.test")
    sign_in(client, "consultant@acme.test", "wrong password")
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.reason == Reason.INVALID_CREDENTIALS
    assert failed.actor_id == consultant.pk
    assert failed.organization_id == globex.pk


# --- Who sees it -----------------------------------------------------------------------------


def test_the_domains_organization_sees_the_failure_in_its_audit_log(client, acme, globex):
    sign_in(client, "ghost@acme.test", "Spring2026!", REMOTE_ADDR=ATTACKER)
    page = client_as(member(acme, Role.ADMINISTRATOR)).get(AUDIT_LOG, {"ip": ATTACKER})
    assert [event.actor_label for event in page.context["page"].events] == ["ghost@acme.test"]
    assert "ghost@acme.test" in page.content.decode()


def test_the_audit_log_finds_the_failure_by_the_attempted_address(client, acme):
    sign_in(client, "ghost@acme.test", "Spring2026!")
    page = client_as(member(acme, Role.SECURITY_ANALYST)).get(
        AUDIT_LOG, {"user": "ghost@acme.test"}
    )
    assert [event.reason for event in page.context["page"].events] == [Reason.UNKNOWN_USER]


def test_no_other_organization_sees_the_failure(client, acme, globex):
    sign_in(client, "ghost@acme.test", "Spring2026!", REMOTE_ADDR=ATTACKER)
    failed = unknown_failure()
    other = client_as(member(globex, Role.ADMINISTRATOR))
    page = other.get(AUDIT_LOG, {"ip": ATTACKER})
    assert page.status_code == 200
    assert list(page.context["page"].events) == []
    assert "ghost@acme.test" not in page.content.decode()
    detail = reverse("accounts:audit-log-event", kwargs={"event_id": failed.pk})
    assert other.get(detail).status_code == 404


# --- Password spraying (the scenario) ------------------------------------------------

KNOWN = ["admin@acme.test", "analyst@acme.test", "compliance@acme.test", "alice@acme.test"]
UNKNOWN = [f"{name}@acme.test" for name in ("root", "test", "info", "sales", "hr", "it", "ceo")]


def spray(addresses: list[str]) -> None:
    for address in addresses:
        response = sign_in_from(Client(), address, ip=ATTACKER, password="Spring2026!")
        assert response.status_code == 200  # refused, the same page for every address


def test_eleven_failures_seven_unknown_from_one_ip_raise_password_spraying(acme, globex):
    spray(KNOWN + UNKNOWN)

    [alert] = Alert.objects.filter(kind=RuleKind.PASSWORD_SPRAYING)
    assert alert.organization_id == acme.pk
    assert alert.subject_ip == ATTACKER
    assert alert.details["distinct_accounts"] == 11
    assert not Alert.objects.exclude(organization=acme).exists()


def test_without_the_domain_the_unknown_addresses_count_nowhere(acme, globex):
    OrganizationDomain.objects.filter(organization=acme).delete()
    spray(KNOWN + UNKNOWN)
    assert not Alert.objects.filter(kind=RuleKind.PASSWORD_SPRAYING).exists()
    assert all(
        failed.organization_id is None
        for failed in events(EventType.LOGIN_FAILED, reason=Reason.UNKNOWN_USER)
    )


def test_an_attempted_address_counts_once_whatever_its_case(acme):
    """Nine distinct accounts, one of them tried twice in two cases: below the threshold."""
    spray([*KNOWN, *UNKNOWN[:5], UNKNOWN[0].upper()])
    assert not Alert.objects.filter(kind=RuleKind.PASSWORD_SPRAYING).exists()
