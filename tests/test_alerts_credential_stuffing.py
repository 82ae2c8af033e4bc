"""Credential stuffing: failed sign-ins for many accounts, few tries each, from one address or one
network (IPv4 /24, IPv6 /48), through the real sign-in view and the real evaluation (run after
each sign-in's commit). Thresholds as Elastic's rule: 25 attempts, 15 accounts, at most 2 each."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import DomainProof, Organization, OrganizationDomain, Role, User
from alerts.models import AlertRule, RuleKind
from audit.models import EventType

from .alerts_support import alerts, committing
from .factories import OrganizationFactory, member
from .helpers import client_as, events, sign_in

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.66"
KIND = RuleKind.CREDENTIAL_STUFFING


def _owns(organization: Organization, domain: str) -> None:
    OrganizationDomain.objects.create(
        organization=organization,
        domain=domain,
        proof=DomainProof.OPERATOR,
        verified_at=timezone.now(),
    )


@pytest.fixture
def acme() -> Organization:
    """Acme with an administrator and fifteen people at acme.test, which it has verified."""
    organization = OrganizationFactory.create(name="Acme Corp", slug="acme")
    member(organization, Role.ADMINISTRATOR, email="admin@acme.test")
    for n in range(15):
        member(organization, email=f"person{n}@acme.test")
    _owns(organization, "acme.test")
    return organization


@pytest.fixture
def globex() -> Organization:
    organization = OrganizationFactory.create(name="Globex", slug="globex")
    member(organization, Role.ADMINISTRATOR, email="admin@globex.test")
    for n in range(15):
        member(organization, email=f"person{n}@globex.test")
    _owns(organization, "globex.test")
    return organization


def _people(domain: str = "acme.test", count: int = 15) -> list[str]:
    return [f"person{n}@{domain}" for n in range(count)]


def _fail(email: str, ip: str) -> None:
    """One failed sign-in through the real view, and its evaluation after the commit."""
    with committing():
        response = sign_in(Client(), email, "not-the-password", REMOTE_ADDR=ip)
    assert response.status_code == 200, response.status_code


def _stuff(accounts: list[str], *, attempts: int, ips: list[str] | str = ATTACKER) -> None:
    """`attempts` failures over the accounts in turn (each tried once, then again...)."""
    for n in range(attempts):
        ip = ips if isinstance(ips, str) else ips[n % len(ips)]
        _fail(accounts[n % len(accounts)], ip)


def _rule(organization: Organization) -> AlertRule:
    return AlertRule.objects.get(organization=organization, kind=KIND)


def test_25_failures_over_15_accounts_from_one_address_raise_one_alert(acme):
    _stuff(_people(), attempts=25)

    [alert] = alerts(KIND)
    assert alert.organization == acme
    assert alert.subject_ip == ATTACKER
    assert alert.subject_label == ATTACKER
    assert alert.subject_key == "net:198.51.100.0/24"
    assert alert.details["attempts"] == 25
    assert alert.details["distinct_accounts"] == 15
    assert alert.details["most_per_account"] == 2
    assert alert.details["addresses"] == [ATTACKER]
    assert alert.count == 1  # raised by the 25th attempt
    assert alert.event_ids == [e.pk for e in events(EventType.LOGIN_FAILED)]
    assert alert.summary == (
        f"25 failed sign-ins for 15 accounts (at most 2 each) from {ATTACKER} within 15 minutes"
    )
    # Password spraying (10 accounts from one address) has its own alert; this rule raises one.
    [raised] = events(EventType.ALERT_RAISED, reason=KIND)
    assert raised.details["alert_id"] == alert.pk


def test_more_attempts_add_to_the_same_alert(acme):
    _stuff(_people(), attempts=28)

    [alert] = alerts(KIND)
    assert alert.count == 4
    assert alert.details["attempts"] == 28


def test_25_addresses_of_one_network_raise_one_network_alert(acme):
    addresses = [f"203.0.113.{10 + n}" for n in range(25)]
    _stuff(_people(), attempts=25, ips=addresses)

    [alert] = alerts(KIND)
    assert alert.subject_label == "203.0.113.0/24"
    assert alert.subject_ip is None
    assert alert.details["address_count"] == 25
    assert alert.details["network"] == "203.0.113.0/24"
    assert "from 25 addresses of 203.0.113.0/24" in alert.summary
    page = client_as(User.objects.get(email="admin@acme.test")).get(
        reverse("alerts:alert-detail", args=[alert.pk])
    )
    assert "audit-log/?ip=203.0.113.0%2F24" in page.content.decode()


def test_ipv6_addresses_of_one_48_raise_one_network_alert(acme):
    # Each from another /64 of the same /48: rotating through a site's allocation.
    addresses = [f"2001:db8:77:{n:x}::5" for n in range(25)]
    _stuff(_people(), attempts=25, ips=addresses)

    [alert] = alerts(KIND)
    assert alert.subject_label == "2001:db8:77::/48"
    assert alert.subject_ip is None


def test_addresses_of_different_networks_raise_nothing(acme):
    addresses = [f"203.0.{n}.9" for n in range(25)]
    _stuff(_people(), attempts=25, ips=addresses)
    assert alerts(KIND) == []


def test_an_address_alert_widens_to_its_network_instead_of_a_second_alert(acme):
    _stuff(_people(), attempts=25)
    # Another address of the network tries an account no one tried yet.
    _fail("newcomer@acme.test", "198.51.100.67")

    [alert] = alerts(KIND)
    assert alert.subject_label == "198.51.100.0/24"
    assert alert.subject_ip is None
    assert alert.count == 2
    assert alert.details["addresses"] == [ATTACKER, "198.51.100.67"]
    assert alert.details["distinct_accounts"] == 16


def test_25_attempts_at_5_accounts_are_guessing_not_stuffing(acme):
    _stuff(_people(count=5), attempts=25)
    assert alerts(KIND) == []


@pytest.mark.parametrize(
    ("accounts", "attempts"),
    [(15, 24), (14, 25)],
    ids=["24 attempts", "14 accounts"],
)
def test_below_the_thresholds_nothing_is_raised(acme, accounts, attempts):
    _stuff(_people(count=accounts), attempts=attempts)
    assert alerts(KIND) == []


def test_one_account_tried_a_third_time_keeps_the_rule_quiet(acme):
    """Elastic's test is on every account (max per user at most 2), not on the average."""
    people = _people()
    _stuff(people, attempts=24)
    _fail(people[0], ATTACKER)  # person0's third try: the 25th attempt
    assert alerts(KIND) == []


def test_thresholds_are_the_organizations_own(acme):
    AlertRule.objects.filter(organization=acme, kind=KIND).update(
        parameters={
            "attempts": 6,
            "distinct_accounts": 3,
            "max_per_account": 2,
            "window_minutes": 5,
        }
    )
    _stuff(_people(count=3), attempts=6)

    [alert] = alerts(KIND)
    assert alert.details["threshold_attempts"] == 6
    assert "within 5 minutes" in alert.summary


def test_a_disabled_rule_raises_nothing(acme):
    AlertRule.objects.filter(organization=acme, kind=KIND).update(enabled=False)
    _stuff(_people(), attempts=25)
    assert alerts(KIND) == []


def test_unknown_addresses_at_a_verified_domain_count_as_accounts(acme):
    accounts = [*_people(count=5), *(f"Guess{n}@ACME.test" for n in range(10))]
    _stuff(accounts, attempts=25)

    [alert] = alerts(KIND)
    assert alert.details["distinct_accounts"] == 15
    assert "guess0@acme.test" in alert.details["accounts"]


def test_unknown_addresses_at_a_domain_no_one_verified_do_not_count(acme):
    accounts = [*_people(count=5), *(f"guess{n}@elsewhere.test" for n in range(10))]
    _stuff(accounts, attempts=25)
    assert alerts(KIND) == []


def test_another_organizations_failures_do_not_count(acme, globex):
    # 25 attempts over 15 accounts from one address, split between two organizations.
    accounts = [*_people(count=8), *_people("globex.test", count=7)]
    _stuff(accounts, attempts=25)
    assert alerts(KIND) == []


def test_another_organization_does_not_see_the_alert(acme, globex):
    _stuff(_people(), attempts=25)
    [alert] = alerts(KIND)
    outsider = client_as(User.objects.get(email="admin@globex.test"))

    listed = outsider.get(reverse("alerts:alert-list"))
    assert listed.status_code == 200
    assert alert.summary not in listed.content.decode()
    assert outsider.get(reverse("alerts:alert-detail", args=[alert.pk])).status_code == 404
    insider = client_as(User.objects.get(email="admin@acme.test"))
    assert alert.summary in insider.get(reverse("alerts:alert-list")).content.decode()


def test_an_organization_without_the_rule_gets_it_at_its_next_event(acme):
    AlertRule.objects.filter(organization=acme, kind=KIND).delete()
    _stuff(_people(), attempts=25)
    assert _rule(acme).enabled
    [_alert] = alerts(KIND)


# --- The rule form ---------------------------------------------------------------------------


def _form(**changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "enabled": "on",
        "severity": "high",
        "notify_email": "on",
        "notify_webhook": "on",
        "attempts": 25,
        "distinct_accounts": 15,
        "max_per_account": 2,
        "window_minutes": 15,
    }
    form.update(changes)
    return form


def _edit(organization: Organization, **changes: object):
    admin = User.objects.get(email=f"admin@{organization.slug}.test")
    return client_as(admin).post(reverse("alerts:rule-edit", args=[KIND]), _form(**changes))


def test_an_administrator_changes_the_thresholds(acme):
    response = _edit(acme, attempts=50, distinct_accounts=30, max_per_account=3)
    assert response.status_code == 303
    assert _rule(acme).parameters == {
        "attempts": 50,
        "distinct_accounts": 30,
        "max_per_account": 3,
        "window_minutes": 15,
    }
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.details["setting"] == "alert_rule.credential_stuffing"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attempts": 1}, "Failed sign-ins: at least 2."),
        ({"attempts": 5001}, "Failed sign-ins: at most 5000."),
        ({"distinct_accounts": 5001}, "Over distinct accounts: at most 5000."),
        ({"distinct_accounts": 1}, "Over distinct accounts: at least 2."),
        ({"max_per_account": 0}, "Tries per account, at most: at least 1."),
        ({"max_per_account": 101}, "Tries per account, at most: at most 100."),
        ({"window_minutes": 0}, "Within: at least 1."),
        ({"window_minutes": 24 * 60 + 1}, "Within: at most 1440."),
        ({"attempts": "many"}, "Failed sign-ins: enter a whole number."),
        (
            {"attempts": 10, "distinct_accounts": 11},
            "Distinct accounts cannot be more than failed sign-ins",
        ),
    ],
)
def test_thresholds_out_of_bounds_are_refused_with_a_message(acme, changes, message):
    response = _edit(acme, **changes)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert _rule(acme).parameters["attempts"] == 25
    assert events(EventType.SETTINGS_CHANGED) == []
