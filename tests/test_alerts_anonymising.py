"""Sign-in from an anonymising network: Tor exits from the loaded list, hosting providers by AS
from a real (test-built) ASN database; either missing or damaged leaves the rest working."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from alerts.models import AlertRule, RuleKind
from audit.geo import reset_readers
from audit.models import EventType, TorExitNode

from .alerts_support import BERLIN, NEW_YORK, TOKYO, alerts, sign_in_from
from .factories import member
from .helpers import events

pytestmark = pytest.mark.django_db

TOR_FINGERPRINT = "0091174DE56EA5E9D1AC2AB5C1AE2AAB5E3D2F3F"


@pytest.fixture
def tor_list(tmp_path):
    """Load an exit list (exit-addresses format) that names Tokyo's test address."""
    path = tmp_path / "exit-addresses"
    path.write_text(
        f"ExitNode {TOR_FINGERPRINT}\n"
        "Published 2026-01-12 09:10:02\n"
        "LastStatus 2026-01-12 11:00:00\n"
        f"ExitAddress {TOKYO} 2026-01-12 11:09:21\n"
    )
    call_command("load_tor_exits", str(path), stdout=StringIO())
    return str(path)


def _switch(user, **parameters) -> None:
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.ANONYMISING_NETWORK
    ).update(parameters=parameters)


# --- Tor -------------------------------------------------------------------------------------


def test_a_sign_in_from_a_tor_exit_raises_an_alert_naming_the_exit_node(client, tor_list):
    user = member()
    sign_in_from(client, user.email, ip=TOKYO)

    [alert] = alerts(RuleKind.ANONYMISING_NETWORK)
    assert alert.subject_user == user
    assert alert.subject_ip == TOKYO
    assert alert.details["tor_exit"]["ip"] == TOKYO
    assert alert.details["tor_exit"]["fingerprint"] == TOR_FINGERPRINT
    assert alert.details["tor_exit"]["list_loaded_at"]
    assert f"through Tor (exit node {TOKYO})" in alert.summary
    [signed_in] = events(EventType.LOGIN_SUCCEEDED)
    assert alert.event_ids == [signed_in.pk]


def test_a_sign_in_from_an_address_not_on_the_list_raises_nothing(client, tor_list):
    user = member()
    sign_in_from(client, user.email, ip=BERLIN)
    assert alerts(RuleKind.ANONYMISING_NETWORK) == []


def test_without_a_tor_list_sign_ins_go_on_and_raise_nothing(client):
    assert not TorExitNode.objects.exists()
    user = member()
    assert sign_in_from(client, user.email, ip=TOKYO).status_code == 303
    assert alerts(RuleKind.ANONYMISING_NETWORK) == []


def test_a_failed_sign_in_from_a_tor_exit_is_left_to_the_failure_rules(client, tor_list):
    user = member()
    sign_in_from(client, user.email, ip=TOKYO, password="wrong")
    assert alerts(RuleKind.ANONYMISING_NETWORK) == []


def test_tor_detection_can_be_switched_off(client, tor_list):
    user = member()
    _switch(user, tor=False, hosting=True)
    sign_in_from(client, user.email, ip=TOKYO)
    assert alerts(RuleKind.ANONYMISING_NETWORK) == []


def test_repeated_tor_sign_ins_add_to_the_days_alert(client, tor_list):
    user = member()
    sign_in_from(client, user.email, ip=TOKYO)
    sign_in_from(Client(), user.email, ip=TOKYO)
    [alert] = alerts(RuleKind.ANONYMISING_NETWORK)
    assert alert.count == 2


# --- Hosting providers -----------------------------------------------------------------------


def test_a_sign_in_from_a_hosting_provider_raises_an_alert_with_the_as(client, asn_db):
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)

    [alert] = alerts(RuleKind.ANONYMISING_NETWORK)
    assert alert.details["asn"] == {"number": 16509, "organization": "AMAZON-02"}
    assert alert.details["hosting_provider"] is True
    assert "tor_exit" not in alert.details
    assert "from a hosting provider (AS16509 AMAZON-02)" in alert.summary


def test_a_sign_in_from_a_residential_network_raises_nothing(client, asn_db):
    user = member()
    sign_in_from(client, user.email, ip=BERLIN)
    assert alerts(RuleKind.ANONYMISING_NETWORK) == []


def test_hosting_detection_can_be_switched_off(client, asn_db):
    user = member()
    _switch(user, tor=True, hosting=False)
    sign_in_from(client, user.email, ip=NEW_YORK)
    assert alerts(RuleKind.ANONYMISING_NETWORK) == []


def test_the_hosting_list_is_configurable(client, asn_db, settings):
    settings.ALERTS_HOSTING_ASNS = [3320]
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)
    sign_in_from(Client(), user.email, ip=BERLIN)

    [alert] = alerts(RuleKind.ANONYMISING_NETWORK)
    assert alert.details["asn"]["number"] == 3320


def test_a_tor_exit_in_a_known_as_records_both(client, tor_list, asn_db, settings):
    settings.ALERTS_HOSTING_ASNS = [16509]
    TorExitNode.objects.update(ip_address=NEW_YORK)
    user = member()
    sign_in_from(client, user.email, ip=NEW_YORK)

    [alert] = alerts(RuleKind.ANONYMISING_NETWORK)
    assert alert.details["tor_exit"]["ip"] == NEW_YORK
    assert alert.details["asn"]["number"] == 16509
    assert "through Tor" in alert.summary and "hosting provider" in alert.summary


# --- A missing or damaged ASN database -------------------------------------------------------


@pytest.fixture
def broken_asn_db(request, tmp_path, settings):
    """GEOIP_ASN_DB naming a missing file, a file that is no database, or a City database."""
    kind = request.param
    if kind == "missing":
        settings.GEOIP_ASN_DB = str(tmp_path / "missing.mmdb")
    elif kind == "corrupt":
        (tmp_path / "corrupt.mmdb").write_bytes(b"\x00not a maxmind database" * 50)
        settings.GEOIP_ASN_DB = str(tmp_path / "corrupt.mmdb")
    else:
        settings.GEOIP_ASN_DB = request.getfixturevalue("geoip_db")  # a City database
    reset_readers()
    yield settings.GEOIP_ASN_DB
    reset_readers()


@pytest.mark.parametrize("broken_asn_db", ["missing", "corrupt", "wrong_kind"], indirect=True)
def test_a_broken_asn_database_is_logged_once_and_tor_detection_goes_on(
    client, broken_asn_db, tor_list, caplog
):
    user = member()
    with caplog.at_level(logging.ERROR, logger="audit.geo"):
        assert sign_in_from(client, user.email, ip=NEW_YORK).status_code == 303
        assert sign_in_from(Client(), user.email, ip=TOKYO).status_code == 303

    [alert] = alerts(RuleKind.ANONYMISING_NETWORK)
    assert alert.details["tor_exit"]["ip"] == TOKYO
    assert "asn" not in alert.details
    logged = [r for r in caplog.records if broken_asn_db in r.getMessage()]
    assert len(logged) == 1


def test_a_corrupt_city_database_leaves_events_unlocated_instead_of_failing(
    client, tmp_path, settings
):
    (tmp_path / "city.mmdb").write_bytes(b"\x00not a maxmind database" * 50)
    settings.GEOIP_CITY_DB = str(tmp_path / "city.mmdb")
    reset_readers()
    user = member()
    assert sign_in_from(client, user.email, ip=NEW_YORK).status_code == 303
    assert events(EventType.LOGIN_SUCCEEDED)[0].country == ""
    reset_readers()
