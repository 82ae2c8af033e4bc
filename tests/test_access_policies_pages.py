"""Settings → Security → Access policies: who may open it, what each form records, bad input."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from audit.models import EventType
from policies.models import NetworkList, NetworkRule, SessionPolicy, TimeException, TimeWindow
from policies.services import network_list_create, network_rule_create

from .factories import OrganizationFactory, member
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db

PAGE = reverse("policies:access-policies")


@pytest.fixture
def acme():
    organization = OrganizationFactory.create(name="Acme")
    boss = member(organization, Role.ADMINISTRATOR, email="boss@acme.test")
    return organization, boss


@pytest.fixture
def boss_client(acme):
    client = Client()
    sign_in(client, acme[1].email)
    return client


@pytest.fixture
def office(acme):
    organization, boss = acme
    return network_list_create(
        admin=boss, organization=organization, name="Office", cidrs=["198.51.100.0/24"]
    )


def _changes():
    return events(EventType.SETTINGS_CHANGED)


def _post_urls(office_pk: int) -> list[str]:
    return [
        reverse("policies:network-list-add"),
        reverse("policies:network-list-edit", args=[office_pk]),
        reverse("policies:network-rule-add"),
        reverse("policies:settings"),
        reverse("policies:time-window-add"),
        reverse("policies:time-exception-add"),
        reverse("policies:sessions"),
        reverse("policies:remove", args=["network-list", office_pk]),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, office):
    for url in [PAGE, *_post_urls(office.pk)]:
        response = client.post(url) if url != PAGE else client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER])
def test_only_administrators_open_or_change_access_policies(acme, office, role):
    organization, _ = acme
    user = member(organization, role)
    client = Client()
    sign_in(client, user.email)
    response = client.get(PAGE)
    assert response.status_code == 403
    assert "Access policies are managed by the organization" in response.content.decode()
    assert (
        client.get(reverse("policies:remove", args=["network-list", office.pk])).status_code == 403
    )
    for url in _post_urls(office.pk):
        assert client.post(url, {"name": "X", "cidrs": "192.0.2.0/24"}).status_code == 403
    assert NetworkList.objects.filter(organization=organization).count() == 1
    assert len(_changes()) == 1  # the fixture's


def test_another_organizations_administrator_sees_and_changes_nothing_of_ours(acme, office):
    organization, boss = acme
    rule = network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=office
    )
    other = member(OrganizationFactory.create(name="Globex"), Role.ADMINISTRATOR)
    client = Client()
    sign_in(client, other.email)
    page = client.get(PAGE).content.decode()
    assert "Globex" in page and "198.51.100.0/24" not in page
    for kind, pk in [("network-list", office.pk), ("network-rule", rule.pk)]:
        url = reverse("policies:remove", args=[kind, pk])
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
    url = reverse("policies:network-list-edit", args=[office.pk])
    assert client.post(url, {"cidrs": "192.0.2.0/24"}).status_code == 404
    # Their rule form offers their lists only: ours is not a choice.
    response = client.post(
        reverse("policies:network-rule-add"),
        {"role": "", "action": "block", "network_list": office.pk},
    )
    assert response.status_code == 400
    assert "Choose one of your network lists." in response.content.decode()
    assert NetworkRule.objects.count() == 1
    assert NetworkList.objects.get(pk=office.pk).cidrs == ["198.51.100.0/24"]


def test_the_page_lists_the_policies_and_the_visitors_address(acme, boss_client, office):
    organization, boss = acme
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=office
    )
    page = boss_client.get(PAGE).content.decode()
    assert "Office" in page and "198.51.100.0/24" in page
    assert "You are signing in from <strong>127.0.0.1</strong>" in page


def test_adding_a_network_list_records_its_networks(acme, boss_client):
    response = boss_client.post(
        reverse("policies:network-list-add"),
        {"name": "  VPN  ", "cidrs": "192.0.2.0/28\n2001:db8::/32, 198.51.100.7"},
    )
    assert response.status_code == 303
    network_list = NetworkList.objects.get(name="VPN")
    assert network_list.cidrs == ["192.0.2.0/28", "2001:db8::/32", "198.51.100.7/32"]
    (change,) = _changes()
    assert change.actor == acme[1]
    assert change.details == {
        "setting": "access_policies.network_list",
        "old": None,
        "new": {"name": "VPN", "cidrs": network_list.cidrs},
    }


@pytest.mark.parametrize(
    ("cidrs", "message"),
    [
        ("192.0.2.0/33", "192.0.2.0/33 is not a network"),
        ("not-a-network", "not-a-network is not a network"),
        ("192.0.2.5/24", "192.0.2.5/24 has host bits set: the network is 192.0.2.0/24."),
        ("192.0.2.0/24\n192.0.2.128/25", "192.0.2.128/25 overlaps 192.0.2.0/24"),
        ("2001:db8::/32 2001:db8::/32", "2001:db8::/32 overlaps 2001:db8::/32"),
        ("   ", "This field is required."),
    ],
)
def test_malformed_or_overlapping_networks_are_refused_with_the_reason(boss_client, cidrs, message):
    response = boss_client.post(
        reverse("policies:network-list-add"), {"name": "Bad", "cidrs": cidrs}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not NetworkList.objects.exists()
    assert not _changes()


def test_a_duplicate_list_name_is_refused(boss_client, office):
    response = boss_client.post(
        reverse("policies:network-list-add"), {"name": "Office", "cidrs": "192.0.2.0/24"}
    )
    assert response.status_code == 400
    assert "already a network list named" in response.content.decode()


def test_editing_a_list_records_old_and_new(boss_client, office):
    url = reverse("policies:network-list-edit", args=[office.pk])
    assert boss_client.post(url, {"cidrs": "198.51.100.0/24\n192.0.2.0/24"}).status_code == 303
    change = _changes()[-1]
    assert change.details["old"]["cidrs"] == ["198.51.100.0/24"]
    assert change.details["new"]["cidrs"] == ["198.51.100.0/24", "192.0.2.0/24"]
    response = boss_client.post(url, {"cidrs": "192.0.2.0/24 192.0.2.1"})
    assert response.status_code == 400
    assert "192.0.2.1/32 overlaps 192.0.2.0/24" in response.content.decode()


def test_a_rule_is_added_and_recorded(acme, boss_client, office):
    response = boss_client.post(
        reverse("policies:network-rule-add"),
        {"role": Role.MEMBER, "action": "allow_only", "network_list": office.pk},
    )
    assert response.status_code == 303
    rule = NetworkRule.objects.get()
    assert (rule.role, rule.action) == (Role.MEMBER, "allow_only")
    assert _changes()[-1].details["new"] == {
        "role": Role.MEMBER,
        "action": "allow_only",
        "network_list": "Office",
    }


def test_a_rule_that_locks_out_every_administrator_is_refused(acme, boss_client):
    organization, boss = acme
    everywhere = network_list_create(
        admin=boss, organization=organization, name="Everywhere", cidrs=["0.0.0.0/0", "::/0"]
    )
    before = len(_changes())
    response = boss_client.post(
        reverse("policies:network-rule-add"),
        {"role": "", "action": "block", "network_list": everywhere.pk},
    )
    assert response.status_code == 400
    assert "administrators could then sign in from no address at all" in response.content.decode()
    assert not NetworkRule.objects.exists()
    assert len(_changes()) == before


def test_a_rule_that_refuses_the_acting_administrators_own_address_is_refused(
    acme, settings, office
):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.44")
    sign_in(client, acme[1].email)
    response = client.post(
        reverse("policies:network-rule-add"),
        {"role": Role.ADMINISTRATOR, "action": "allow_only", "network_list": office.pk},
    )
    assert response.status_code == 400
    assert "refuse your own sign-in from 192.0.2.44" in response.content.decode()
    assert not NetworkRule.objects.exists()
    # With the address among the break-glass networks it is accepted.
    glass = client.post(
        reverse("policies:network-list-add"), {"name": "Home", "cidrs": "192.0.2.44"}
    )
    assert glass.status_code == 303
    home = NetworkList.objects.get(name="Home")
    saved = client.post(
        reverse("policies:settings"),
        {"time_zone": "UTC", "break_glass": home.pk, "session_limit_action": "end_oldest"},
    )
    assert saved.status_code == 303
    response = client.post(
        reverse("policies:network-rule-add"),
        {"role": Role.ADMINISTRATOR, "action": "allow_only", "network_list": office.pk},
    )
    assert response.status_code == 303


def test_settings_record_only_what_changed(boss_client, office):
    response = boss_client.post(
        reverse("policies:settings"),
        {
            "time_zone": "Europe/Berlin",
            "break_glass": office.pk,
            "max_sessions": "3",
            "session_limit_action": "refuse",
        },
    )
    assert response.status_code == 303
    change = _changes()[-1]
    assert change.details["old"] == {
        "time_zone": "UTC",
        "break_glass": None,
        "max_sessions": None,
        "session_limit_action": "end_oldest",
    }
    assert change.details["new"] == {
        "time_zone": "Europe/Berlin",
        "break_glass": "Office",
        "max_sessions": 3,
        "session_limit_action": "refuse",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "Mars/Olympus_Mons is not one of the available"),
        ({"time_zone": "UTC", "max_sessions": "0"}, "greater than or equal to 1"),
        ({"time_zone": "UTC", "max_sessions": "many"}, "Enter a whole number."),
        ({"time_zone": "UTC", "break_glass": "999999"}, "Choose one of your network lists."),
    ],
)
def test_bad_settings_are_refused_with_a_message(boss_client, data, message):
    response = boss_client.post(
        reverse("policies:settings"), {"session_limit_action": "end_oldest", **data}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not _changes()


def test_hours_are_added_and_recorded(boss_client):
    response = boss_client.post(
        reverse("policies:time-window-add"),
        {
            "role": Role.MEMBER,
            "days": ["1", "2", "3"],
            "starts": "08:00",
            "ends": "24:00",
            "active": "on",
        },
    )
    assert response.status_code == 303
    window = TimeWindow.objects.get()
    assert window.hours_label == "08:00–24:00"
    assert window.days_label == "Mon, Tue, Wed"
    assert _changes()[-1].details["new"] == {
        "role": Role.MEMBER,
        "days": [1, 2, 3],
        "starts": "08:00",
        "ends": "24:00",
        "active": True,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"days": ["1"], "starts": "17:00", "ends": "09:00"}, "The window ends before it starts."),
        ({"days": ["1"], "starts": "09:00", "ends": "09:00"}, "The window ends before it starts."),
        ({"days": [], "starts": "09:00", "ends": "17:00"}, "Choose at least one day."),
        ({"days": ["8"], "starts": "09:00", "ends": "17:00"}, "Select a valid choice."),
        ({"days": ["1"], "starts": "25:00", "ends": "17:00"}, "Enter a valid time."),
    ],
)
def test_bad_hours_are_refused_with_a_message(boss_client, data, message):
    response = boss_client.post(reverse("policies:time-window-add"), {"role": "", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TimeWindow.objects.exists()


def test_hours_that_would_end_the_acting_administrators_session_are_refused(acme, boss_client):
    with time_machine.travel(datetime(2026, 12, 7, 20, 0, tzinfo=UTC), tick=False):
        response = boss_client.post(
            reverse("policies:time-window-add"),
            {
                "role": Role.ADMINISTRATOR,
                "days": ["1"],
                "starts": "09:00",
                "ends": "17:00",
                "active": "on",
            },
        )
        assert response.status_code == 400
        assert "refuse your own sign-in from 127.0.0.1" in response.content.decode()
        assert "outside the allowed hours" in response.content.decode()
        assert not TimeWindow.objects.exists()
        # Signing in from a break-glass network, an administrator is admitted at any hour.
        organization, boss = acme
        home = network_list_create(
            admin=boss, organization=organization, name="Home", cidrs=["127.0.0.0/8"]
        )
        assert (
            boss_client.post(
                reverse("policies:settings"),
                {"time_zone": "UTC", "break_glass": home.pk, "session_limit_action": "refuse"},
            ).status_code
            == 303
        )
        response = boss_client.post(
            reverse("policies:time-window-add"),
            {
                "role": Role.ADMINISTRATOR,
                "days": ["1"],
                "starts": "09:00",
                "ends": "17:00",
                "active": "on",
            },
        )
        assert response.status_code == 303
        assert boss_client.get(PAGE).status_code == 200


def test_a_date_exception_is_added_and_a_bad_date_refused(boss_client):
    url = reverse("policies:time-exception-add")
    response = boss_client.post(
        url, {"role": "", "on": "2026-12-24", "allowed": "0", "note": "Holiday"}
    )
    assert response.status_code == 303
    assert TimeException.objects.get().allowed is False
    assert _changes()[-1].details["new"]["date"] == "2026-12-24"
    bad = boss_client.post(url, {"role": "", "on": "2026-02-30", "allowed": "0"})
    assert bad.status_code == 400
    assert "Enter a valid date." in bad.content.decode()


def test_session_limits_record_old_and_new_per_role(boss_client):
    response = boss_client.post(
        reverse("policies:sessions"),
        {
            f"idle_{Role.ADMINISTRATOR}": "10",
            f"idle_{Role.SECURITY_ANALYST}": "15",
            f"idle_{Role.COMPLIANCE_OFFICER}": "15",
            f"idle_{Role.MEMBER}": "60",
            f"lifetime_{Role.MEMBER}": "12",
        },
    )
    assert response.status_code == 303
    assert set(SessionPolicy.objects.values_list("role", flat=True)) == {
        Role.ADMINISTRATOR,
        Role.MEMBER,
    }
    change = _changes()[-1]
    assert change.details["old"][Role.ADMINISTRATOR] == {"idle_minutes": 15, "lifetime_hours": None}
    assert change.details["new"][Role.MEMBER] == {"idle_minutes": 60, "lifetime_hours": 12}
    bad = boss_client.post(reverse("policies:sessions"), {f"idle_{Role.MEMBER}": "-5"})
    assert bad.status_code == 400
    assert "greater than or equal to 1" in bad.content.decode()


@pytest.mark.parametrize(
    ("query", "role", "expected"),
    [
        ("198.51.100.9", Role.MEMBER, "Refused: Office is blocked for everyone."),
        ("192.0.2.1", Role.MEMBER, "Allowed: no network rule applies."),
        ("::ffff:198.51.100.9", Role.ADMINISTRATOR, "Refused: Office is blocked"),
    ],
)
def test_the_preview_says_what_the_policy_would_do_and_which_rule(
    acme, boss_client, office, query, role, expected
):
    organization, boss = acme
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=office
    )
    response = boss_client.get(PAGE, {"ip": query, "role": role})
    assert response.status_code == 200
    page = response.content.decode()
    assert expected in page
    if expected.startswith("Refused"):
        assert "network_block:Office" in page


def test_a_bad_preview_address_is_a_400_with_a_message(boss_client):
    response = boss_client.get(PAGE, {"ip": "300.1.1.1", "role": Role.MEMBER})
    assert response.status_code == 400
    assert "Enter one IPv4 or IPv6 address" in response.content.decode()


def test_removing_asks_first_then_removes_and_records(acme, boss_client, office):
    url = reverse("policies:remove", args=["network-list", office.pk])
    page = boss_client.get(url)
    assert page.status_code == 200
    assert "Remove the network list “Office” (1 networks)?" in page.content.decode()
    assert NetworkList.objects.filter(pk=office.pk).exists()
    response = boss_client.post(url)
    assert response.status_code == 303
    assert not NetworkList.objects.filter(pk=office.pk).exists()
    assert _changes()[-1].details["new"] is None


def test_a_list_in_use_is_not_removed(acme, boss_client, office):
    organization, boss = acme
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=office
    )
    response = boss_client.post(reverse("policies:remove", args=["network-list", office.pk]))
    assert response.status_code == 400
    assert "is used by a network rule: remove the rule first." in response.content.decode()
    assert NetworkList.objects.filter(pk=office.pk).exists()


def test_an_unknown_kind_is_not_found(boss_client, office):
    assert (
        boss_client.get(reverse("policies:remove", args=["planet", office.pk])).status_code == 404
    )


@pytest.mark.parametrize("role", [Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER])
def test_the_security_overview_shows_the_policies_in_force(acme, office, role):
    organization, boss = acme
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=office
    )
    client = Client()
    sign_in(client, member(organization, role).email)
    page = client.get(reverse("accounts:security-settings")).content.decode()
    assert 'data-testid="overview-access-policies"' in page
    assert "Block Office (everyone)" in page
    assert "Administrator: 15 min" in page
    assert reverse("policies:access-policies") not in page  # theirs to read, not to change


def test_the_break_glass_list_cannot_be_dropped_while_it_is_the_only_way_in(acme, boss_client):
    organization, boss = acme
    home = network_list_create(
        admin=boss, organization=organization, name="Home", cidrs=["127.0.0.0/8"]
    )
    everywhere = network_list_create(
        admin=boss, organization=organization, name="Everywhere", cidrs=["0.0.0.0/0", "::/0"]
    )
    settings_url = reverse("policies:settings")
    with_glass = {"time_zone": "UTC", "break_glass": home.pk, "session_limit_action": "refuse"}
    assert boss_client.post(settings_url, with_glass).status_code == 303
    response = boss_client.post(
        reverse("policies:network-rule-add"),
        {"role": "", "action": "block", "network_list": everywhere.pk},
    )
    assert response.status_code == 303  # administrators still come in from Home
    response = boss_client.post(settings_url, {**with_glass, "break_glass": ""})
    assert response.status_code == 400
    assert "administrators could then sign in from no address at all" in response.content.decode()
    assert boss_client.get(PAGE).status_code == 200
    removed = boss_client.post(reverse("policies:remove", args=["network-list", home.pk]))
    assert removed.status_code == 400
    assert "is the break-glass list: choose another one first." in removed.content.decode()


def test_the_monitoring_checklist_shows_the_access_policies_in_force(acme, boss_client, office):
    organization, boss = acme
    checklist = reverse("compliance:checklist")
    page = boss_client.get(checklist).content.decode()
    assert "Restrict where, when and how long people sign in" in page
    assert 'data-testid="checklist-access_policies" data-status="done"' in page
    assert "No network rule or sign-in hours" in page
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=office
    )
    assert (
        "1 network rule(s) and 0 sign-in window(s) in force."
        in boss_client.get(checklist).content.decode()
    )
    # An administrator without an idle limit fails PCI DSS 8.2.8.
    boss_client.post(reverse("policies:sessions"), {f"idle_{Role.SECURITY_ANALYST}": "15"})
    page = boss_client.get(checklist).content.decode()
    assert 'data-testid="checklist-access_policies" data-status="failing"' in page
    assert "Administrator, Compliance officer: no idle limit of 15 minutes or less" in page
