"""Access policies (issue 19) through the real sign-in view and real requests: networks from
inside and outside (a trusted proxy's X-Forwarded-For), hours at frozen times, session limits."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import LockoutState, Role, SessionEndReason, UserSession
from audit.models import EventType, Reason
from policies.models import NetworkAction, SessionLimitAction
from policies.services import (
    access_policy_update,
    network_list_create,
    network_rule_create,
    session_policies_update,
    time_exception_create,
    time_window_create,
)

from .factories import OrganizationFactory, member
from .helpers import client_as, events, sign_in
from .mfa_support import code_for, second_step, totp_device
from .passkey_support import ORIGIN, RP_ID, add_passkey, options_from

pytestmark = pytest.mark.django_db

PROFILE = reverse("accounts:profile")
PROXY = "10.0.0.2"
OFFICE = "198.51.100.0/24"
BLOCKED = "203.0.113.0/24"
# A Monday, 10:00 in Berlin (09:00 UTC in winter).
MONDAY_MORNING = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _behind_a_proxy(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


def from_ip(ip: str) -> dict[str, str]:
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": ip}


@pytest.fixture
def acme():
    organization = OrganizationFactory.create(name="Acme")
    boss = member(organization, Role.ADMINISTRATOR, email="boss@acme.test")
    return organization, boss


def _lists(organization, boss):
    office = network_list_create(
        admin=boss, organization=organization, name="Office", cidrs=[OFFICE, "2001:db8:1::/48"]
    )
    blocked = network_list_create(
        admin=boss, organization=organization, name="Blocked", cidrs=[BLOCKED]
    )
    return office, blocked


def _refusals(user):
    return events(EventType.LOGIN_FAILED, actor=user, reason=Reason.POLICY_DENIED)


ROLES = [Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR]


@pytest.mark.parametrize("role", ROLES)
def test_a_blocked_network_refuses_the_sign_in_of_every_role_and_records_the_rule(acme, role):
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss,
        organization=organization,
        role="",
        action=NetworkAction.BLOCK,
        network_list=blocked,
    )
    user = member(organization, role)
    client = Client()
    response = sign_in(client, user.email, **from_ip("203.0.113.9"))
    assert response.status_code == 403
    assert "does not allow signing in from this network" in response.content.decode()
    assert client.get(PROFILE).status_code == 302  # not signed in
    (refusal,) = _refusals(user)
    assert refusal.details["rule"] == "network_block:Blocked"
    assert refusal.details["network_list"] == "Blocked"
    assert refusal.ip_address == "203.0.113.9"
    assert not events(EventType.LOGIN_SUCCEEDED, actor=user)
    assert not UserSession.objects.filter(user=user).exists()
    # From elsewhere, the same person signs in.
    assert sign_in(Client(), user.email, **from_ip("192.0.2.10")).status_code == 303


def test_policy_refusals_do_not_count_towards_the_lockout(acme, lockout_alone):
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    user = member(organization)
    threshold = organization.lockout_threshold
    for _ in range(threshold + 2):
        assert sign_in(Client(), user.email, **from_ip("203.0.113.9")).status_code == 403
    assert len(_refusals(user)) == threshold + 2
    assert not events(EventType.LOCKOUT_TRIGGERED)
    state = LockoutState.objects.filter(user=user).first()
    assert state is None or not state.is_locked(datetime.now(UTC))
    assert sign_in(Client(), user.email, **from_ip("192.0.2.10")).status_code == 303


def test_a_wrong_password_from_a_blocked_network_is_a_wrong_password(acme):
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    user = member(organization)
    response = sign_in(Client(), user.email, "wrong", **from_ip("203.0.113.9"))
    assert response.status_code == 200
    assert "does not allow" not in response.content.decode()
    assert not _refusals(user)
    assert events(EventType.LOGIN_FAILED, actor=user, reason=Reason.INVALID_CREDENTIALS)


@pytest.mark.parametrize(
    ("role", "ip", "allowed"),
    [
        (Role.MEMBER, "198.51.100.20", True),
        (Role.MEMBER, "2001:db8:1::5", True),
        (Role.MEMBER, "192.0.2.10", False),
        (Role.MEMBER, "2001:db8:2::5", False),
        # The rule is for members: analysts and administrators sign in from anywhere.
        (Role.SECURITY_ANALYST, "192.0.2.10", True),
        (Role.ADMINISTRATOR, "192.0.2.10", True),
    ],
)
def test_allow_only_admits_the_role_from_inside_its_networks_only(acme, role, ip, allowed):
    organization, boss = acme
    office, _ = _lists(organization, boss)
    network_rule_create(
        admin=boss,
        organization=organization,
        role=Role.MEMBER,
        action=NetworkAction.ALLOW_ONLY,
        network_list=office,
    )
    user = member(organization, role)
    response = sign_in(Client(), user.email, **from_ip(ip))
    assert response.status_code == (303 if allowed else 403)
    if not allowed:
        assert _refusals(user)[0].details["rule"] == "network_allow_only:Office"


def test_administrators_always_sign_in_from_the_break_glass_networks(acme):
    organization, boss = acme
    office, _ = _lists(organization, boss)
    vpn = network_list_create(
        admin=boss, organization=organization, name="VPN", cidrs=["192.0.2.0/28"]
    )
    access_policy_update(
        admin=boss,
        organization=organization,
        time_zone="UTC",
        break_glass=vpn,
        max_sessions=None,
        session_limit_action=SessionLimitAction.END_OLDEST,
    )
    network_rule_create(
        admin=boss, organization=organization, role="", action="allow_only", network_list=office
    )
    analyst = member(organization, Role.SECURITY_ANALYST)
    assert sign_in(Client(), boss.email, **from_ip("192.0.2.5")).status_code == 303
    assert sign_in(Client(), analyst.email, **from_ip("192.0.2.5")).status_code == 403
    assert sign_in(Client(), boss.email, **from_ip("192.0.2.100")).status_code == 403


def test_with_a_second_factor_the_policy_refuses_only_after_the_code(acme):
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    user = member(organization)
    device = totp_device(user)
    client = Client()
    first = sign_in(client, user.email, **from_ip("203.0.113.9"))
    assert first.status_code == 303
    assert first["Location"] == reverse("accounts:mfa-verify")
    assert not _refusals(user)  # the password alone says nothing
    response = second_step(client, code_for(device), **from_ip("203.0.113.9"))
    assert response.status_code == 403
    assert events(EventType.MFA_VERIFIED, actor=user)
    (refusal,) = _refusals(user)
    assert refusal.details["method"] == "password+totp"
    assert refusal.details["rule"] == "network_block:Blocked"
    assert client.get(PROFILE).status_code == 302


# --- Hours ---------------------------------------------------------------------------------------


@pytest.fixture
def working_hours(acme):
    organization, boss = acme
    access_policy_update(
        admin=boss,
        organization=organization,
        time_zone="Europe/Berlin",
        break_glass=None,
        max_sessions=None,
        session_limit_action=SessionLimitAction.END_OLDEST,
    )
    time_window_create(
        admin=boss,
        organization=organization,
        role=Role.MEMBER,
        days=[1, 2, 3, 4, 5],
        starts=time(9, 0),
        ends=time(17, 0),
    )
    return organization, boss


@pytest.mark.parametrize(
    ("moment", "role", "allowed"),
    [
        (MONDAY_MORNING, Role.MEMBER, True),  # 10:00 Berlin
        (MONDAY_MORNING.replace(hour=16, minute=30), Role.MEMBER, False),  # 17:30 Berlin
        (MONDAY_MORNING.replace(hour=7, minute=59), Role.MEMBER, False),  # 08:59 Berlin
        (MONDAY_MORNING + timedelta(days=5), Role.MEMBER, False),  # Saturday
        # The hours are the members': others sign in at any time.
        (MONDAY_MORNING + timedelta(days=5), Role.SECURITY_ANALYST, True),
        (MONDAY_MORNING.replace(hour=22), Role.COMPLIANCE_OFFICER, True),
        (MONDAY_MORNING.replace(hour=22), Role.ADMINISTRATOR, True),
    ],
)
def test_hours_admit_members_inside_the_window_only(working_hours, moment, role, allowed):
    organization, _ = working_hours
    user = member(organization, role)
    with time_machine.travel(moment, tick=False):
        response = sign_in(Client(), user.email, **from_ip("192.0.2.10"))
    assert response.status_code == (303 if allowed else 403)
    if not allowed:
        (refusal,) = _refusals(user)
        assert refusal.details["rule"] == "time_window"
        assert refusal.details["zone"] == "Europe/Berlin"
        assert "only at set days and hours" in response.content.decode()


def test_a_closed_date_refuses_and_an_open_date_admits_all_day(working_hours):
    organization, boss = working_hours
    user = member(organization)
    time_exception_create(
        admin=boss, organization=organization, role="", on=MONDAY_MORNING.date(), allowed=False
    )
    saturday = MONDAY_MORNING + timedelta(days=5, hours=12)
    time_exception_create(
        admin=boss, organization=organization, role=Role.MEMBER, on=saturday.date(), allowed=True
    )
    with time_machine.travel(MONDAY_MORNING, tick=False):
        assert sign_in(Client(), user.email).status_code == 403
    assert _refusals(user)[0].details["rule"] == "time_exception"
    with time_machine.travel(saturday, tick=False):
        assert sign_in(Client(), user.email).status_code == 303


# --- Sessions the policy no longer admits ------------------------------------------------------


def _ended(user, event_type=EventType.SESSION_ENDED):
    return events(event_type, actor=user)


def test_a_session_whose_address_moves_to_a_blocked_network_ends_at_its_next_request(acme):
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    user = member(organization)
    client = Client()
    assert sign_in(client, user.email, **from_ip("192.0.2.10")).status_code == 303
    assert client.get(PROFILE, **from_ip("192.0.2.10")).status_code == 200
    response = client.get(PROFILE, **from_ip("203.0.113.50"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    (ended,) = _ended(user)
    assert ended.reason == Reason.POLICY
    assert ended.details["policy"] == "network_block:Blocked"
    assert not events(EventType.LOGOUT, actor=user)
    assert UserSession.objects.get(user=user).end_reason == SessionEndReason.POLICY
    # Signed out for good: back on the allowed network, the sign-in page again.
    assert client.get(PROFILE, **from_ip("192.0.2.10")).status_code == 302
    page = client.get(reverse("accounts:login")).content.decode()
    assert "does not allow this network" in page


def test_a_rule_added_while_signed_in_ends_the_session_at_its_next_request(acme):
    organization, boss = acme
    user = member(organization)
    client = Client()
    sign_in(client, user.email, **from_ip("203.0.113.50"))
    assert client.get(PROFILE, **from_ip("203.0.113.50")).status_code == 200
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    assert client.get(PROFILE, **from_ip("203.0.113.50")).status_code == 302
    assert _ended(user)[0].reason == Reason.POLICY


def test_a_session_ends_when_the_hours_are_over(working_hours):
    organization, _ = working_hours
    user = member(organization)
    client = Client()
    with time_machine.travel(MONDAY_MORNING.replace(hour=15, minute=50), tick=False) as clock:
        assert sign_in(client, user.email).status_code == 303
        assert client.get(PROFILE).status_code == 200
        clock.move_to(MONDAY_MORNING.replace(hour=16, minute=5))  # 17:05 Berlin
        assert client.get(PROFILE).status_code == 302
    (ended,) = _ended(user)
    assert ended.reason == Reason.POLICY
    assert ended.details["policy"] == "time_window"


# --- Session limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role", [Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER]
)
def test_staff_sessions_expire_after_15_minutes_idle_by_default(acme, role):
    organization, _ = acme
    user = member(organization, role)
    client = Client()
    with time_machine.travel(MONDAY_MORNING, tick=False) as clock:
        sign_in(client, user.email)
        clock.shift(timedelta(minutes=14))
        assert client.get(PROFILE).status_code == 200
        clock.shift(timedelta(minutes=14))  # 28 minutes in, 14 idle
        assert client.get(PROFILE).status_code == 200
        clock.shift(timedelta(minutes=16))
        response = client.get(PROFILE)
    assert response.status_code == 302
    (expired,) = _ended(user, EventType.SESSION_EXPIRED)
    assert expired.reason == Reason.EXPIRED
    assert expired.details["policy"] == "idle_timeout"
    assert UserSession.objects.get(user=user).end_reason == SessionEndReason.EXPIRED
    assert not _ended(user)


def test_members_have_no_idle_limit_unless_one_is_set(acme):
    organization, boss = acme
    alice, bob = member(organization), member(organization)
    session_policies_update(admin=boss, organization=organization, values={Role.MEMBER: (30, None)})
    first, second = Client(), Client()
    with time_machine.travel(MONDAY_MORNING, tick=False) as clock:
        sign_in(first, alice.email)
        session_policies_update(
            admin=boss, organization=organization, values={Role.MEMBER: (None, None)}
        )
        clock.shift(timedelta(hours=3))
        assert first.get(PROFILE).status_code == 200
        session_policies_update(
            admin=boss, organization=organization, values={Role.MEMBER: (30, None)}
        )
        sign_in(second, bob.email)
        clock.shift(timedelta(minutes=31))
        assert second.get(PROFILE).status_code == 302
    assert _ended(bob, EventType.SESSION_EXPIRED)[0].details["policy"] == "idle_timeout"


def test_a_session_ends_at_its_lifetime_however_busy(acme):
    organization, boss = acme
    session_policies_update(admin=boss, organization=organization, values={Role.MEMBER: (None, 1)})
    user = member(organization)
    client = Client()
    with time_machine.travel(MONDAY_MORNING, tick=False) as clock:
        sign_in(client, user.email)
        for _ in range(5):
            clock.shift(timedelta(minutes=11))
            assert client.get(PROFILE).status_code == 200
        clock.shift(timedelta(minutes=6))  # 61 minutes
        assert client.get(PROFILE).status_code == 302
    (expired,) = _ended(user, EventType.SESSION_EXPIRED)
    assert expired.details["policy"] == "lifetime"


def _limit(organization, boss, count, action):
    access_policy_update(
        admin=boss,
        organization=organization,
        time_zone="UTC",
        break_glass=None,
        max_sessions=count,
        session_limit_action=action,
    )


def test_beyond_the_session_limit_the_oldest_session_ends(acme):
    organization, boss = acme
    _limit(organization, boss, 2, SessionLimitAction.END_OLDEST)
    user = member(organization)
    clients = [Client(), Client(), Client()]
    for client in clients:
        assert sign_in(client, user.email).status_code == 303
    assert clients[0].get(PROFILE).status_code == 302
    assert clients[1].get(PROFILE).status_code == 200
    assert clients[2].get(PROFILE).status_code == 200
    (ended,) = _ended(user)
    assert ended.reason == Reason.POLICY
    assert UserSession.objects.filter(user=user, ended_at__isnull=True).count() == 2


def test_at_the_session_limit_a_new_sign_in_is_refused_if_chosen(acme):
    organization, boss = acme
    _limit(organization, boss, 1, SessionLimitAction.REFUSE)
    user = member(organization)
    first, second = Client(), Client()
    assert sign_in(first, user.email).status_code == 303
    response = sign_in(second, user.email)
    assert response.status_code == 403
    assert "as many as your organization allows" in response.content.decode()
    (refusal,) = _refusals(user)
    assert refusal.details["rule"] == "max_sessions"
    assert first.get(PROFILE).status_code == 200
    # Once the first signs out, the second may sign in.
    first.post(reverse("accounts:logout"))
    assert sign_in(second, user.email).status_code == 303


def test_sign_in_and_sessions_work_while_redis_is_down(acme, settings):
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    settings.CACHES = {
        "default": {
            "BACKEND": "activity_monitor.cache.FailSoftRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens here
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    user = member(organization)
    assert sign_in(Client(), user.email, **from_ip("203.0.113.9")).status_code == 403
    client = Client()
    assert sign_in(client, user.email, **from_ip("192.0.2.10")).status_code == 303
    assert client.get(PROFILE, **from_ip("192.0.2.10")).status_code == 200
    assert client.get(PROFILE, **from_ip("203.0.113.9")).status_code == 302


def test_an_htmx_request_of_an_ended_session_is_sent_to_sign_in_by_htmx(acme):
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    user = member(organization)
    client = Client()
    sign_in(client, user.email, **from_ip("192.0.2.10"))
    response = client.get(
        reverse("accounts:security"), HTTP_HX_REQUEST="true", **from_ip("203.0.113.50")
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("accounts:login") + "?next=")
    assert _ended(user)[0].reason == Reason.POLICY


def test_a_passkey_sign_in_from_a_blocked_network_is_refused_after_the_passkey(acme, settings):
    settings.OTP_WEBAUTHN_RP_ID = RP_ID
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [ORIGIN]
    organization, boss = acme
    _, blocked = _lists(organization, boss)
    network_rule_create(
        admin=boss, organization=organization, role="", action="block", network_list=blocked
    )
    user = member(organization)
    passkey = add_passkey(client_as(user))
    client = Client()
    options = options_from(client, "accounts:passkey-sign-in-options")
    response = client.post(
        reverse("accounts:passkey-sign-in"),
        {"credential": passkey.get(options)},
        **from_ip("203.0.113.9"),
    )
    assert response.status_code == 403
    assert "does not allow signing in from this network" in response.content.decode()
    assert events(EventType.MFA_VERIFIED, actor=user)  # the passkey was right
    (refusal,) = _refusals(user)
    assert refusal.details["method"] == "passkey"
    assert refusal.details["rule"] == "network_block:Blocked"
    assert client.get(PROFILE).status_code == 302
