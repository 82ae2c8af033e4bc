"""seed_demo's weeks of activity (several countries, devices, attacks) and its recent attacks,
evaluated like real events, which raise their alerts; the demo's GeoIP database locates them."""

from __future__ import annotations

import pytest
from django.db.models import Count
from django.utils import timezone

from accounts.models import LockoutState, Membership
from alerts.models import Alert, RuleKind
from audit.geo import locate, reset_readers
from audit.models import AuditEvent, EventType, Outcome, TorExitNode
from demo.activity import CITIES
from demo.geoip import demo_geoip_build, demo_places
from demo.scenarios import SPRAYER_IP, STUFFER_IP, TOR_EXIT
from demo.seed import seed_demo

from .alerts_support import committing

pytestmark = pytest.mark.django_db

NEW_RULES = [
    RuleKind.MFA_FATIGUE,
    RuleKind.SESSION_ANOMALY,
    RuleKind.ANONYMISING_NETWORK,
    RuleKind.CREDENTIAL_STUFFING,
]


def _acme_alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(organization__slug="acme", kind=kind))


def test_the_demo_attacks_raise_an_alert_of_each_new_rule_in_acme():
    with committing():
        seed_demo(days=2)

    [fatigue] = _acme_alerts(RuleKind.MFA_FATIGUE)
    assert fatigue.subject_label == "compliance@acme.test"
    assert fatigue.details["failures"] == 6
    [anomaly] = _acme_alerts(RuleKind.SESSION_ANOMALY)
    assert anomaly.subject_label == "admin@acme.test"
    assert anomaly.details["new"]["country"] == "SG"
    assert anomaly.details["started"]["country"] not in ("", "SG")
    [tor] = _acme_alerts(RuleKind.ANONYMISING_NETWORK)
    assert tor.details["tor_exit"]["ip"] == TOR_EXIT
    assert TorExitNode.objects.filter(ip_address=TOR_EXIT).exists()
    [stuffing] = _acme_alerts(RuleKind.CREDENTIAL_STUFFING)
    assert stuffing.subject_ip == STUFFER_IP
    assert stuffing.details["attempts"] == 33
    assert stuffing.details["distinct_accounts"] == 18
    assert "payroll@acme.test" in stuffing.details["accounts"]  # an unknown name at acme.test
    # Besides Acme, only Initech is attacked now (password spraying); Globex keeps its history.
    assert set(Alert.objects.values_list("organization__slug", flat=True)) == {"acme", "initech"}


def test_the_credential_stuffing_run_is_many_accounts_few_attempts_each_from_one_address():
    with committing():
        seed_demo(days=2)
    stuffing = AuditEvent.objects.filter(
        organization__slug="acme", event_type=EventType.LOGIN_FAILED, ip_address=STUFFER_IP
    )
    per_account: dict[str, int] = {}
    for label in stuffing.values_list("actor_label", flat=True):
        per_account[label] = per_account.get(label, 0) + 1
    assert stuffing.count() >= 25
    assert len(per_account) >= 15
    assert max(per_account.values()) <= 2
    assert "alice@acme.test" not in per_account


def test_seeding_again_adds_no_attack():
    with committing():
        seed_demo(days=2)
    events, alerts = AuditEvent.objects.count(), Alert.objects.count()
    with committing():
        seed_demo(days=2)
    assert (AuditEvent.objects.count(), Alert.objects.count()) == (events, alerts)
    assert all(len(_acme_alerts(kind)) == 1 for kind in NEW_RULES)


def test_a_password_spray_on_initech_raises_its_alert():
    with committing():
        seed_demo(days=2)
    [spray] = Alert.objects.filter(organization__slug="initech", kind=RuleKind.PASSWORD_SPRAYING)
    assert spray.subject_ip == SPRAYER_IP
    assert Alert.objects.filter(organization__slug="initech").count() == 1


def test_alice_signs_in_from_a_new_country_and_a_new_device():
    with committing():
        seed_demo(days=2)
    alice = {a.kind for a in Alert.objects.filter(subject_label="alice@acme.test")}
    assert {RuleKind.NEW_COUNTRY, RuleKind.NEW_DEVICE} <= alice
    new_country = Alert.objects.get(subject_label="alice@acme.test", kind=RuleKind.NEW_COUNTRY)
    assert "Australia" in new_country.summary


def test_weeks_of_activity_hold_thousands_of_events_from_several_countries():
    seed_demo()  # the default four weeks, as make run seeds
    for slug in ("acme", "globex", "initech"):
        rows = AuditEvent.objects.filter(organization__slug=slug)
        assert rows.count() >= 1000, slug
        sign_ins = rows.filter(event_type=EventType.LOGIN_SUCCEEDED)
        assert sign_ins.exclude(country="").values("country").distinct().count() >= 3, slug
        assert sign_ins.exclude(city="").values("city").distinct().count() >= 3, slug
        assert sign_ins.values("agent__browser").distinct().count() >= 3, slug
        assert sign_ins.values("agent__device_type").distinct().count() >= 2, slug
        assert Membership.objects.filter(organization__slug=slug).count() >= 10, slug
        # A brute force that locked an account, and a night of spraying: failures spike.
        assert rows.filter(event_type=EventType.LOCKOUT_TRIGGERED).exists(), slug
        busiest = (
            rows.filter(outcome=Outcome.FAILURE, event_type=EventType.LOGIN_FAILED)
            .values("ip_address")
            .annotate(accounts=Count("actor", distinct=True))
            .order_by("-accounts")
            .first()
        )
        assert busiest is not None and busiest["accounts"] >= 10, slug


def test_the_demo_addresses_are_documentation_or_benchmarking_ranges():
    seed_demo(days=3)
    for ip in AuditEvent.objects.exclude(ip_address=None).values_list("ip_address", flat=True):
        assert ip.startswith(("192.0.2.", "198.51.100.", "203.0.113.", "198.18.", "198.19.")), ip


def test_the_demo_geoip_database_locates_every_demo_city(tmp_path, settings):
    settings.GEOIP_CITY_DB = str(demo_geoip_build(tmp_path / "demo" / "city.mmdb"))
    reset_readers()
    try:
        for country, city, _, _, prefix in CITIES.values():
            found = locate(f"{prefix}77")
            assert (found.country, found.city) == (country, city)
        assert len(demo_places()) >= len(CITIES)
        assert locate("8.8.8.8").country == ""  # nothing real is in it
    finally:
        reset_readers()


def test_with_the_demo_database_the_recorded_attacks_are_located_by_it(tmp_path, settings):
    settings.GEOIP_CITY_DB = str(demo_geoip_build(tmp_path / "city.mmdb"))
    reset_readers()
    try:
        with committing():
            seed_demo(days=2)
    finally:
        reset_readers()
    sprayed = AuditEvent.objects.filter(ip_address=SPRAYER_IP).first()
    assert sprayed is not None and (sprayed.country, sprayed.city) == ("NG", "Lagos")


def test_an_acme_colleague_is_locked_out_now_after_ten_wrong_passwords():
    with committing():
        seed_demo(days=2)
    [state] = LockoutState.objects.filter(user__membership__organization__slug="acme")
    assert state.is_locked(timezone.now())
    lock = AuditEvent.objects.get(event_type=EventType.LOCKOUT_TRIGGERED, target_user=state.user)
    assert lock.organization.slug == "acme" and lock.country == "RU"
