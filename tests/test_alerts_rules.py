"""Each alert rule fires on real sign-ins, and stays quiet when it should."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from alerts.evaluation import events_evaluate
from alerts.models import Alert, AlertRule, AlertStatus, EvaluatedEvent, RuleKind
from audit.context import RequestContext
from audit.geo import GeoLocation
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record

from .alerts_support import (
    BERLIN,
    CHROME_MAC,
    FIREFOX_LINUX,
    NEW_YORK,
    TOKYO,
    UNLOCATED,
    alerts,
    committing,
    failures_recorded,
    sign_in_from,
)
from .factories import OrganizationFactory, member
from .helpers import events

pytestmark = pytest.mark.django_db


def _sign_out(client: Client) -> None:
    with committing():
        client.post(reverse("accounts:logout"))


# --- Failed sign-ins -------------------------------------------------------------------------


def test_five_failed_sign_ins_for_one_account_raise_an_alert(client):
    user = member()
    for _ in range(5):
        sign_in_from(client, user.email, password="wrong")

    [alert] = alerts()
    assert alert.kind == RuleKind.FAILED_SIGN_INS
    assert alert.subject_user == user
    assert alert.status == AlertStatus.OPEN
    assert alert.count == 1
    failures = [e.pk for e in events(EventType.LOGIN_FAILED)]
    assert alert.event_ids == failures
    [raised] = events(EventType.ALERT_RAISED)
    assert raised.target_user_id == user.pk
    assert raised.organization_id == user.membership.organization_id
    assert raised.details["alert_id"] == alert.pk
    assert raised.details["related_event_ids"] == failures


def test_four_failed_sign_ins_raise_nothing(client):
    user = member()
    for _ in range(4):
        sign_in_from(client, user.email, password="wrong")
    assert alerts() == []
    assert EvaluatedEvent.objects.count() == 4


def test_more_failures_in_the_window_add_to_the_count_not_a_new_alert(client):
    user = member()
    for _ in range(7):
        sign_in_from(client, user.email, password="wrong")

    [alert] = alerts()
    assert alert.count == 3
    assert len(alert.event_ids) == 7
    assert len(events(EventType.ALERT_RAISED)) == 1


def test_failures_older_than_the_window_do_not_count(client):
    user = member()
    old = timezone.now() - timedelta(minutes=20)
    failures_recorded(user, count=4, at=old)
    sign_in_from(client, user.email, password="wrong")
    assert alerts() == []


def test_evaluating_the_same_events_again_raises_nothing_more(client):
    user = member()
    for _ in range(6):
        sign_in_from(client, user.email, password="wrong")
    ids = list(AuditEvent.objects.values_list("pk", flat=True))

    assert events_evaluate(event_ids=ids) == 0
    assert events_evaluate(event_ids=ids) == 0

    [alert] = alerts()
    assert alert.count == 2
    assert len(events(EventType.ALERT_RAISED)) == 1


def test_a_disabled_rule_raises_nothing(client):
    user = member()
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.FAILED_SIGN_INS
    ).update(enabled=False)
    for _ in range(6):
        sign_in_from(client, user.email, password="wrong")
    assert alerts() == []


def test_failed_sign_in_alerts_email_the_analysts_and_administrators(client):
    user = member()
    org = user.membership.organization
    analyst = member(org, role=Role.SECURITY_ANALYST)
    admin = member(org, role=Role.ADMINISTRATOR)
    member(org, role=Role.COMPLIANCE_OFFICER)
    member(OrganizationFactory.create(), role=Role.ADMINISTRATOR)
    for _ in range(5):
        sign_in_from(client, user.email, password="wrong")

    [message] = mail.outbox
    assert sorted(message.to) == sorted([analyst.email, admin.email])
    assert "failed sign-ins" in message.subject
    assert f"/settings/security/alerts/{alerts()[0].pk}/" in message.body


# --- Password spraying -----------------------------------------------------------------------


def test_failures_for_ten_accounts_from_one_ip_raise_a_spraying_alert(client):
    org = OrganizationFactory.create()
    users = [member(org) for _ in range(10)]
    for user in users:
        sign_in_from(client, user.email, ip=BERLIN, password="wrong")

    [alert] = alerts(RuleKind.PASSWORD_SPRAYING)
    assert alert.subject_ip == BERLIN
    assert alert.subject_user is None
    assert alert.details["distinct_accounts"] == 10
    assert alerts(RuleKind.FAILED_SIGN_INS) == []


def test_failures_for_nine_accounts_from_one_ip_raise_nothing(client):
    org = OrganizationFactory.create()
    for _ in range(9):
        sign_in_from(client, member(org).email, ip=BERLIN, password="wrong")
    assert alerts() == []


def test_failures_from_different_ips_are_not_spraying(client):
    org = OrganizationFactory.create()
    for n in range(10):
        sign_in_from(client, member(org).email, ip=f"203.0.113.{n + 10}", password="wrong")
    assert alerts() == []


# --- New device ------------------------------------------------------------------------------


def test_a_sign_in_from_a_new_browser_raises_a_new_device_alert_and_tells_the_user(client):
    user = member()
    sign_in_from(client, user.email)
    _sign_out(client)

    sign_in_from(Client(), user.email, agent=FIREFOX_LINUX)

    [alert] = alerts(RuleKind.NEW_DEVICE)
    assert alert.subject_user == user
    assert "Firefox" in alert.summary
    [message] = [m for m in mail.outbox if m.to == [user.email]]
    assert "new device" in message.subject


def test_the_first_sign_in_ever_is_not_a_new_device(client):
    user = member()
    sign_in_from(client, user.email)
    assert alerts() == []
    assert mail.outbox == []


def test_signing_in_again_from_the_same_browser_raises_nothing(client):
    user = member()
    sign_in_from(client, user.email)
    _sign_out(client)
    sign_in_from(client, user.email)
    assert alerts(RuleKind.NEW_DEVICE) == []


def test_a_new_device_is_alerted_once_however_often_it_signs_in(client):
    user = member()
    sign_in_from(client, user.email)
    other = Client()
    sign_in_from(other, user.email)
    _sign_out(other)
    sign_in_from(other, user.email)
    assert len(alerts(RuleKind.NEW_DEVICE)) == 1


# --- Geographic anomaly ----------------------------------------------------------------------


def test_a_sign_in_from_a_new_country_raises_an_alert_and_tells_the_user(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    _sign_out(client)
    sign_in_from(client, user.email, ip=BERLIN)

    [alert] = alerts(RuleKind.NEW_COUNTRY)
    assert alert.details["country"] == "DE"
    assert alert.details["previous_country"] == "US"
    assert any("new country" in m.subject and m.to == [user.email] for m in mail.outbox)


def test_a_sign_in_from_a_known_country_raises_no_country_alert(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    _sign_out(client)
    sign_in_from(client, user.email, ip="198.51.100.200")
    assert alerts(RuleKind.NEW_COUNTRY) == []


def test_the_first_located_sign_in_is_not_a_new_country(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=UNLOCATED)
    _sign_out(client)
    sign_in_from(client, user.email, ip=BERLIN)
    assert alerts(RuleKind.NEW_COUNTRY) == []


def test_a_country_last_seen_long_ago_counts_as_new(client, geoip_db):
    user = member()
    _recorded_sign_in(user, at=timezone.now() - timedelta(days=120), country="DE")
    _recorded_sign_in(user, at=timezone.now() - timedelta(days=2), country="US")
    sign_in_from(client, user.email, ip=BERLIN)
    [alert] = alerts(RuleKind.NEW_COUNTRY)
    assert alert.details["country"] == "DE"


def _recorded_sign_in(user, *, at, country="US", lat=40.7128, lon=-74.006):
    """An earlier sign-in, written through the one event path with its own time and place."""
    context = RequestContext(
        ip_address="198.51.100.50",
        geo=GeoLocation(country=country, city="Somewhere", latitude=lat, longitude=lon),
    )
    [event] = events_record(
        specs=[EventSpec(event_type=EventType.LOGIN_SUCCEEDED, actor=user, occurred_at=at)],
        context=context,
    )
    EvaluatedEvent.objects.create(event_id=event.pk)  # history, not news
    return event


def test_two_sign_ins_too_far_apart_for_the_time_between_raise_impossible_travel(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    sign_in_from(Client(), user.email, ip=TOKYO)

    [alert] = alerts(RuleKind.IMPOSSIBLE_TRAVEL)
    assert alert.details["from"]["country"] == "US"
    assert alert.details["to"]["country"] == "JP"
    assert alert.details["distance_km"] > 10_000


def test_travel_at_a_plausible_speed_raises_no_travel_alert(client, geoip_db):
    user = member()
    # New York to Berlin (about 6,400 km) in ten hours: 640 km/h.
    _recorded_sign_in(user, at=timezone.now() - timedelta(hours=10))
    sign_in_from(client, user.email, ip=BERLIN)
    assert alerts(RuleKind.IMPOSSIBLE_TRAVEL) == []


def test_sign_ins_without_a_location_are_ignored_for_travel(client, geoip_db):
    user = member()
    _recorded_sign_in(user, at=timezone.now() - timedelta(hours=10))
    sign_in_from(client, user.email, ip=UNLOCATED)
    sign_in_from(Client(), user.email, ip=BERLIN)
    # Compared with New York ten hours ago, not with the unlocated sign-in a moment ago.
    assert alerts(RuleKind.IMPOSSIBLE_TRAVEL) == []


def test_the_speed_limit_is_configurable(client, geoip_db):
    user = member()
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.IMPOSSIBLE_TRAVEL
    ).update(parameters={"max_speed_kmh": 500})
    _recorded_sign_in(user, at=timezone.now() - timedelta(hours=10))
    sign_in_from(client, user.email, ip=BERLIN)
    assert len(alerts(RuleKind.IMPOSSIBLE_TRAVEL)) == 1


# --- Concurrent sessions ---------------------------------------------------------------------


def test_a_fourth_active_session_raises_a_concurrent_sessions_alert(client):
    user = member()
    for _ in range(4):
        sign_in_from(Client(), user.email)

    [alert] = alerts(RuleKind.CONCURRENT_SESSIONS)
    assert alert.details["active_sessions"] == 4
    assert alert.details["limit"] == 3


def test_three_active_sessions_raise_nothing(client):
    user = member()
    for _ in range(3):
        sign_in_from(Client(), user.email)
    assert alerts(RuleKind.CONCURRENT_SESSIONS) == []


def test_sessions_that_were_signed_out_do_not_count(client):
    user = member()
    for _ in range(3):
        browser = Client()
        sign_in_from(browser, user.email)
        _sign_out(browser)
    sign_in_from(Client(), user.email)
    assert alerts(RuleKind.CONCURRENT_SESSIONS) == []


def test_active_sessions_from_two_countries_raise_an_alert(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    sign_in_from(Client(), user.email, ip=BERLIN)

    [alert] = alerts(RuleKind.CONCURRENT_SESSIONS)
    assert alert.details["countries"] == ["DE", "US"]


def test_a_session_from_another_country_after_signing_out_is_fine(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    _sign_out(client)
    sign_in_from(Client(), user.email, ip=BERLIN)
    assert alerts(RuleKind.CONCURRENT_SESSIONS) == []


# --- Rules and organizations -----------------------------------------------------------------


def test_every_new_organization_gets_every_rule_with_defaults():
    org = OrganizationFactory.create()
    rules = {rule.kind: rule for rule in AlertRule.objects.filter(organization=org)}
    assert set(rules) == set(RuleKind.values)
    assert rules[RuleKind.FAILED_SIGN_INS].parameters == {"threshold": 5, "window_minutes": 15}
    assert rules[RuleKind.CONCURRENT_SESSIONS].parameters == {
        "limit": 3,
        "multiple_countries": True,
    }


def test_one_organizations_events_never_raise_another_organizations_alert(client):
    user = member()
    for _ in range(5):
        sign_in_from(client, user.email, password="wrong")
    [alert] = Alert.objects.all()
    assert alert.organization_id == user.membership.organization_id
    assert alert.rule.organization_id == user.membership.organization_id


def test_failures_for_unknown_accounts_are_not_evaluated(client):
    for _ in range(6):
        sign_in_from(client, "nobody@example.test", password="wrong")
    assert alerts() == []
    assert EvaluatedEvent.objects.count() == 0


def _agent_sign_in(user, agent: str):
    """A sign-in that carried no device cookie (only its user agent tells devices apart)."""
    from audit.useragent import parse_user_agent

    parsed = parse_user_agent(agent)
    context = RequestContext(
        ip_address="198.51.100.60",
        user_agent=agent,
        browser=parsed.browser,
        os=parsed.os,
        device_type=parsed.device_type,
    )
    with committing():
        return events_record(
            specs=[EventSpec(event_type=EventType.LOGIN_SUCCEEDED, actor=user)], context=context
        )[0]


def test_without_a_device_cookie_a_new_browser_and_os_is_a_new_device():
    user = member()
    _agent_sign_in(user, CHROME_MAC)
    _agent_sign_in(user, FIREFOX_LINUX)
    [alert] = alerts(RuleKind.NEW_DEVICE)
    assert alert.details["browser"].startswith("Firefox")


def test_without_a_device_cookie_the_same_browser_family_and_os_is_not_new():
    user = member()
    _agent_sign_in(user, CHROME_MAC)
    _agent_sign_in(user, CHROME_MAC.replace("Chrome/130", "Chrome/131"))
    assert alerts(RuleKind.NEW_DEVICE) == []


def test_hand_edited_parameters_out_of_bounds_are_held_to_them(client):
    user = member()
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.FAILED_SIGN_INS
    ).update(parameters={"threshold": "banana", "window_minutes": -4})
    for _ in range(5):
        sign_in_from(client, user.email, password="wrong")
    # The default threshold (5) and the smallest window (1 minute) apply; nothing breaks.
    assert len(alerts(RuleKind.FAILED_SIGN_INS)) == 1
