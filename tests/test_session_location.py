"""A signed-in session used from another network records session.location_changed, once per move,
and the session-anomaly rule raises an alert when the country differs from the session's start."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.models import UserSession
from accounts.sessions import session_location_track
from alerts.models import AlertRule, RuleKind
from audit.context import SESSION_HASH_KEY
from audit.models import AuditEvent, Category, EventType, category_of

from .alerts_support import BERLIN, NEW_YORK, TOKYO, UNLOCATED, alerts, committing, sign_in_from
from .factories import member
from .helpers import all_at_once, client_as, events, sign_in
from .mfa_support import code_for, second_step, totp_device

pytestmark = pytest.mark.django_db

PROFILE_URL = reverse("accounts:profile")
# Two IPv6 links in the test GeoIP database's United Kingdom (2001:db8::/32): two /64 networks.
LONDON_SITE_A = "2001:db8:1::10"
LONDON_SITE_B = "2001:db8:2::10"


def _visit(client: Client, ip: str) -> None:
    """A signed-in page view from `ip`, and what follows its commit (the evaluation)."""
    with committing():
        assert client.get(PROFILE_URL, REMOTE_ADDR=ip).status_code == 200


def _moves() -> list[AuditEvent]:
    return events(EventType.SESSION_LOCATION_CHANGED)


def test_a_session_used_from_another_country_is_recorded_and_raises_an_alert(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    tracked = UserSession.objects.get(user=user)

    _visit(client, BERLIN)

    [moved] = _moves()
    assert category_of(moved.event_type) == Category.SESSION
    assert moved.actor_id == user.pk
    assert moved.session_hash == tracked.session_hash
    assert (moved.ip_address, moved.country) == (BERLIN, "DE")
    assert moved.details["started"] == {
        "ip": NEW_YORK,
        "network": "198.51.100.0/24",
        "country": "US",
    }
    assert moved.details["previous"] == moved.details["started"]
    assert moved.details["new"] == {"ip": BERLIN, "network": "203.0.113.0/24", "country": "DE"}
    assert tracked.session_key not in str(moved.details)

    [alert] = alerts(RuleKind.SESSION_ANOMALY)
    assert alert.subject_user == user
    assert alert.details["change"] == "country"
    assert alert.details["session"] == tracked.session_hash
    assert alert.event_ids == [moved.pk]
    assert "from Germany, not United States" in alert.summary


def test_requests_from_the_sessions_own_network_record_nothing(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    _visit(client, NEW_YORK)
    _visit(client, "198.51.100.200")  # another address of the same /24
    assert _moves() == []
    assert alerts(RuleKind.SESSION_ANOMALY) == []


def test_a_move_is_recorded_once_however_often_the_session_goes_back_and_forth(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    for ip in (BERLIN, BERLIN, NEW_YORK, BERLIN, NEW_YORK):
        _visit(client, ip)

    assert len(_moves()) == 1
    [alert] = alerts(RuleKind.SESSION_ANOMALY)
    assert alert.count == 1


def test_each_new_place_is_recorded_and_adds_to_the_sessions_one_alert(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    _visit(client, BERLIN)
    _visit(client, TOKYO)

    first, second = _moves()
    assert second.details["previous"]["country"] == "DE"
    assert second.details["new"]["country"] == "JP"
    [alert] = alerts(RuleKind.SESSION_ANOMALY)
    assert alert.count == 2
    assert alert.event_ids == [first.pk, second.pk]


def test_another_network_in_the_same_country_is_recorded_but_raises_nothing_by_default(
    client, geoip_db
):
    user = member()
    sign_in_from(client, user.email, ip=LONDON_SITE_A)
    _visit(client, LONDON_SITE_B)

    [moved] = _moves()
    assert moved.details["started"]["network"] == "2001:db8:1::/64"
    assert moved.details["new"]["network"] == "2001:db8:2::/64"
    assert alerts(RuleKind.SESSION_ANOMALY) == []


def test_network_changes_alert_when_the_rule_asks_for_them(client, geoip_db):
    user = member()
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.SESSION_ANOMALY
    ).update(parameters={"network_changes": True})
    sign_in_from(client, user.email, ip=LONDON_SITE_A)
    _visit(client, LONDON_SITE_B)

    [alert] = alerts(RuleKind.SESSION_ANOMALY)
    assert alert.details["change"] == "network"
    assert "2001:db8:2::/64" in alert.summary


def test_without_a_geoip_database_moves_are_recorded_without_countries(client, settings):
    settings.GEOIP_CITY_DB = ""
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    _visit(client, BERLIN)

    [moved] = _moves()
    assert moved.details["new"] == {"ip": BERLIN, "network": "203.0.113.0/24", "country": ""}
    assert alerts(RuleKind.SESSION_ANOMALY) == []


def test_an_unlocated_new_place_is_not_a_country_change(client, geoip_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    _visit(client, UNLOCATED)
    assert len(_moves()) == 1
    assert alerts(RuleKind.SESSION_ANOMALY) == []


def test_the_rule_switched_off_raises_nothing_but_the_move_is_still_recorded(client, geoip_db):
    user = member()
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.SESSION_ANOMALY
    ).update(enabled=False)
    sign_in_from(client, user.email, ip=NEW_YORK)
    _visit(client, BERLIN)
    assert len(_moves()) == 1
    assert alerts() == []


def test_a_session_started_without_an_address_takes_its_first_place_as_where_it_is(geoip_db):
    user = member()
    browser = client_as(user)  # Django's force_login: a session whose start had no address
    assert UserSession.objects.get(user=user).ip_address is None
    _visit(browser, BERLIN)
    assert _moves() == []

    _visit(browser, TOKYO)

    [moved] = _moves()
    assert moved.details["started"]["network"] == ""
    assert moved.details["previous"]["country"] == "DE"
    [alert] = alerts(RuleKind.SESSION_ANOMALY)
    assert "from Japan, not Germany" in alert.summary


def test_a_request_from_the_same_network_costs_no_query(client, django_assert_num_queries):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    request = RequestFactory().get(PROFILE_URL, REMOTE_ADDR="198.51.100.99")
    request.session = SessionStore(session_key=client.session.session_key)
    # Loaded before this runs, as AuthenticationMiddleware has loaded it to find the user.
    assert request.session.get(SESSION_HASH_KEY)

    with django_assert_num_queries(0):
        assert session_location_track(request=request, user=user) is None


def test_a_session_signed_in_with_a_second_factor_is_followed_too(client, geoip_db, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = member()
    device = totp_device(user)
    sign_in(client, user.email, REMOTE_ADDR=NEW_YORK)
    with committing():
        second_step(client, code_for(device), REMOTE_ADDR=NEW_YORK)
    _visit(client, NEW_YORK)
    assert _moves() == []
    _visit(client, TOKYO)
    assert len(_moves()) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_requests_from_a_new_place_at_once_record_one_move(geoip_db):
    user = member()
    browser = Client()
    sign_in_from(browser, user.email, ip=NEW_YORK)
    cookie = browser.cookies

    def visit() -> int:
        twin = Client()
        twin.cookies = cookie
        return twin.get(PROFILE_URL, REMOTE_ADDR=BERLIN).status_code

    assert all_at_once(visit, visit) == [200, 200]
    assert len(_moves()) == 1
    assert len(alerts(RuleKind.SESSION_ANOMALY)) == 1
