"""Throttling before the password hash (issue 14, item 3), through the real views.

Each behaviour runs with the buckets in the real Redis (THROTTLE_REDIS_URL = REDIS_URL, as CI
sets it) and in the database (no Redis, as in `make run`): the `store` fixture. A browser is a
test Client with its own REMOTE_ADDR. Limits are set small per test through settings, so that a
test sends a handful of requests; the defaults are the README's.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.forms import SIGN_IN_REFUSED
from accounts.models import DomainProof, OrganizationDomain, Role, ThrottleBucket, Tier
from api.services import api_token_create
from audit.models import AuditEvent, EventType, Reason

from .factories import PASSWORD, OrganizationFactory, member
from .fault_support import redis_empty_if_ours, redis_url_for_tests
from .helpers import client_as, events, sign_in

pytestmark = pytest.mark.django_db

ATTACKER_IP = "198.51.100.66"
OFFICE_IP = "203.0.113.10"
LOGOUT_URL = reverse("accounts:logout")
RESET_URL = reverse("accounts:password-reset")
THROTTLING_URL = reverse("accounts:throttling")
AUDIT_LOG_URL = reverse("accounts:audit-log")
API_URL = reverse("api:events")
THROTTLED_SENTENCE = "Too many sign-in attempts from your network or for this account."


@pytest.fixture(scope="module")
def real_redis_url() -> Iterator[str]:
    with redis_url_for_tests() as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_buckets(real_redis_url: str) -> None:
    redis_empty_if_ours(real_redis_url)


@pytest.fixture(params=["redis", "database"])
def store(request, settings, real_redis_url):
    """Where the buckets live: a real Redis (REDIS_URL, or one of the tests' own), or the
    database without Redis."""
    if request.param == "redis":
        settings.THROTTLE_REDIS_URL = real_redis_url
    else:
        settings.THROTTLE_REDIS_URL = ""
    return request.param


@pytest.fixture
def small_limits(settings):
    settings.THROTTLE_IP_BURST = 5
    settings.THROTTLE_IP_REFILL_SECONDS = 600
    settings.THROTTLE_ACCOUNT_BURST = 4
    settings.THROTTLE_ACCOUNT_REFILL_SECONDS = 300


def browser(ip: str) -> Client:
    return Client(REMOTE_ADDR=ip)


def statuses(client: Client, email: str, times: int, password: str = "wrong password") -> list[int]:
    return [sign_in(client, email, password).status_code for _ in range(times)]


def spray(client: Client, times: int, domain: str = "example.test", tag: str = "s") -> list[int]:
    """Wrong passwords for `times` different addresses (no account's bucket runs out)."""
    return [
        sign_in(client, f"{tag}{n}@{domain}", "wrong password").status_code for n in range(times)
    ]


def owns(organization, domain: str) -> OrganizationDomain:
    return OrganizationDomain.objects.create(
        organization=organization,
        domain=domain,
        proof=DomainProof.OPERATOR,
        verified_at=timezone.now(),
    )


def throttled_events(**filters) -> list[AuditEvent]:
    return events(EventType.LOGIN_THROTTLED, **filters)


# --- The sign-in page --------------------------------------------------------------------------


def test_a_burst_is_allowed_then_the_page_answers_429_with_retry_after(store, small_limits):
    attacker = browser(ATTACKER_IP)

    assert spray(attacker, 5) == [200] * 5
    response = sign_in(attacker, "someone-else@example.test", "wrong password")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 600
    page = response.content.decode()
    assert THROTTLED_SENTENCE in page and "wait 10 minutes" in page
    assert '<form method="post"' in page  # the sign-in page itself, rendered
    assert SIGN_IN_REFUSED not in page


def test_a_throttled_attempt_reaches_no_hasher(store, small_limits, counted_checks):
    user = member()
    attacker = browser(ATTACKER_IP)
    counted_checks.reset()
    statuses(attacker, user.email, 2)
    statuses(attacker, "unknown@example.test", 2)
    statuses(attacker, "other-unknown@example.test", 1)
    spent = (counted_checks.verified, counted_checks.hashed)
    assert spent[0] == 2 and spent[1] >= 3  # two password checks; a dummy hash per unknown

    # The right password, a wrong one, an unknown address (whose refusal costs a dummy hash
    # without the throttle): each refused unchecked.
    for email, password in [
        (user.email, PASSWORD),
        (user.email, "wrong"),
        ("unknown@example.test", "x"),
    ]:
        assert sign_in(attacker, email, password).status_code == 429
    assert (counted_checks.verified, counted_checks.hashed) == spent


def test_a_successful_sign_in_gives_its_attempt_back(store, small_limits):
    """An office behind one address: its people signing in use nothing up, only failures do."""
    people = [member() for _ in range(8)]
    office = browser(OFFICE_IP)
    for user in people:
        assert sign_in(office, user.email).status_code == 303
        office.post(LOGOUT_URL)
    assert statuses(office, people[0].email, 4) == [200] * 4  # typos: 4 of the 5
    assert sign_in(office, people[1].email).status_code == 303


def test_one_account_is_throttled_across_many_addresses(store, small_limits):
    user = member()
    codes = [
        sign_in(browser(f"198.51.100.{n}"), user.email, "wrong").status_code for n in range(1, 6)
    ]
    assert codes == [200, 200, 200, 200, 429]
    [event] = throttled_events()
    assert event.reason == Reason.ACCOUNT_RATE_LIMIT
    assert event.actor_id == user.pk
    assert event.organization_id == user.membership.organization_id
    # The same attacker addresses are free to try other accounts: their IP buckets are not empty.
    assert sign_in(browser("198.51.100.1"), "other@example.test", "x").status_code == 200


def test_the_owners_familiar_browser_is_not_kept_out_by_a_drained_account(store, small_limits):
    user = member()
    owner = browser(OFFICE_IP)
    assert sign_in(owner, user.email).status_code == 303
    owner.post(LOGOUT_URL)
    for n in range(1, 6):
        sign_in(browser(f"198.51.100.{n}"), user.email, "wrong")
    assert (
        sign_in(browser("192.0.2.9"), user.email).status_code == 429
    )  # a stranger, right password

    assert sign_in(owner, user.email).status_code == 303


def test_the_attack_of_the_issue_is_throttled_and_the_owners_still_sign_in(store, settings):
    """One client, ten wrong passwords each for twelve accounts: the IP runs out at the default
    burst (100), before the last accounts are even locked; the owners sign in from their own
    browsers."""
    organization = OrganizationFactory()
    owners = [member(organization) for _ in range(12)]
    browsers = [browser(f"203.0.113.{n + 1}") for n in range(12)]
    for user, own in zip(owners, browsers, strict=True):
        assert sign_in(own, user.email).status_code == 303
        own.post(LOGOUT_URL)
    attacker = browser(ATTACKER_IP)
    codes = [code for user in owners for code in statuses(attacker, user.email, 10)]
    assert codes == [200] * settings.THROTTLE_IP_BURST + [429] * (120 - settings.THROTTLE_IP_BURST)
    assert len(throttled_events()) == 1  # 20 refusals, one event
    for user, own in zip(owners, browsers, strict=True):
        assert sign_in(own, user.email).status_code == 303


def test_an_ipv6_client_is_throttled_by_its_64(store, small_limits):
    codes = [
        sign_in(browser(f"2001:db8:1:2::{n:x}"), f"u{n}@example.test", "x").status_code
        for n in range(1, 7)
    ]
    assert codes == [200] * 5 + [429]
    assert sign_in(browser("2001:db8:1:3::1"), "u9@example.test", "x").status_code == 200


def test_a_client_through_a_trusted_proxy_is_throttled_by_its_own_address(
    store, small_limits, settings
):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]
    proxy = Client(REMOTE_ADDR="127.0.0.1")

    def attempt(client_ip: str) -> int:
        response = proxy.post(
            reverse("accounts:login"),
            {"email": f"x{time.monotonic_ns()}@example.test", "password": "x"},
            HTTP_X_FORWARDED_FOR=client_ip,
        )
        status: int = response.status_code
        return status

    assert [attempt(ATTACKER_IP) for _ in range(6)] == [200] * 5 + [429]
    assert attempt("192.0.2.5") == 200  # another client behind the same proxy


# --- Allowlists and organizations' limits ------------------------------------------------------


def test_an_allowlisted_network_is_not_throttled(store, small_limits, settings):
    settings.THROTTLE_ALLOWLIST = [ipaddress.ip_network("198.51.100.0/24")]
    assert statuses(browser(ATTACKER_IP), "load-test@example.test", 12) == [200] * 12
    assert throttled_events() == []
    assert statuses(browser("192.0.2.1"), "load-test@example.test", 6)[-1] == 429


def test_an_organizations_allowlist_covers_its_accounts_and_its_domain(store, small_limits):
    acme = OrganizationFactory(throttle_allowlist=["203.0.113.0/24"])
    owns(acme, "acme.test")
    alice = member(acme, email="alice@acme.test")
    office = browser(OFFICE_IP)

    assert statuses(office, alice.email, 8) == [200] * 8
    assert statuses(office, "temp-42@acme.test", 8) == [200] * 8  # unknown, at its domain
    # Another organization's account from that office network is throttled as anywhere.
    assert statuses(office, "bob@globex.test", 6)[-1] == 429


def test_an_organizations_limits_apply_to_its_accounts_and_unknown_addresses_at_its_domain(
    store, small_limits
):
    acme = OrganizationFactory(throttle_account_burst=10)
    owns(acme, "acme.test")
    alice = member(acme, email="alice@acme.test")
    codes = [
        sign_in(browser(f"198.51.100.{n}"), alice.email, "x").status_code for n in range(1, 12)
    ]
    assert codes == [200] * 10 + [429]
    codes = [
        sign_in(browser(f"192.0.2.{n}"), "nobody@acme.test", "x").status_code for n in range(1, 12)
    ]
    assert codes == [200] * 10 + [429]


# --- login.throttled ---------------------------------------------------------------------------


def test_login_throttled_is_recorded_once_per_window_with_the_count(store, small_limits, settings):
    settings.THROTTLE_EVENT_WINDOW_SECONDS = 2
    acme = OrganizationFactory()
    owns(acme, "acme.test")
    attacker = browser(ATTACKER_IP)
    # Start just after a window opens, so the burst below falls in one window.
    time.sleep(2 - time.time() % 2 + 0.05)
    spray(attacker, 5, "acme.test")
    assert statuses(attacker, "spray-2@acme.test", 7) == [429] * 7

    [first] = throttled_events()
    assert first.reason == Reason.IP_RATE_LIMIT
    assert first.organization_id == acme.pk
    assert first.ip_address == ATTACKER_IP
    assert first.details["purpose"] == "sign_in"
    assert first.details["attempted_username"] == "spray-2@acme.test"
    assert "previous_window" not in first.details
    assert not events(EventType.LOGIN_FAILED, details__attempted_username="spray-2@acme.test")

    time.sleep(2 - time.time() % 2 + 0.05)  # the next window
    assert sign_in(attacker, "spray-3@acme.test", "x").status_code == 429
    [_, second] = throttled_events()
    assert second.details["previous_window"]["count"] == 7
    assert second.details["previous_window"]["started_at"] == first.details["window_started_at"]


def test_throttled_attempts_are_in_their_organizations_audit_log_only(store, small_limits):
    acme, globex = OrganizationFactory(), OrganizationFactory()
    owns(acme, "acme.test")
    acme_admin = member(acme, Role.ADMINISTRATOR)
    globex_admin = member(globex, Role.ADMINISTRATOR)
    attacker = browser(ATTACKER_IP)
    spray(attacker, 5, "acme.test")
    assert sign_in(attacker, "b@acme.test", "x").status_code == 429

    [for_acme] = throttled_events(organization=acme)
    assert not throttled_events(organization=None)

    seen = client_as(acme_admin).get(AUDIT_LOG_URL, {"event_type": "login.throttled"})
    assert seen.status_code == 200
    assert f"/settings/security/audit-log/{for_acme.pk}/" in seen.content.decode()
    not_seen = client_as(globex_admin).get(AUDIT_LOG_URL, {"event_type": "login.throttled"})
    assert not_seen.status_code == 200
    assert f"/audit-log/{for_acme.pk}/" not in not_seen.content.decode()


def test_without_redis_each_organization_an_address_attacks_gets_its_window(small_limits, settings):
    settings.THROTTLE_REDIS_URL = ""  # the database's buckets: every attempt takes the full path
    acme = OrganizationFactory()
    owns(acme, "acme.test")
    attacker = browser(ATTACKER_IP)
    spray(attacker, 5, "acme.test")
    assert sign_in(attacker, "b@acme.test", "x").status_code == 429
    assert sign_in(attacker, "someone@nowhere.test", "x").status_code == 429

    [_] = throttled_events(organization=acme)
    [for_nobody] = throttled_events(organization=None)
    assert for_nobody.details["attempted_username"] == "someone@nowhere.test"


# --- Password reset and the API ----------------------------------------------------------------


def test_password_reset_requests_are_throttled_per_address(store, small_limits):
    user = member()
    codes = [
        browser(f"198.51.100.{n}").post(RESET_URL, {"email": user.email}).status_code
        for n in range(1, 7)
    ]
    assert codes == [303] * 4 + [429] * 2
    assert len(mail.outbox) == 4
    refused = browser("198.51.100.9").post(RESET_URL, {"email": user.email})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many reset requests" in refused.content.decode()
    [event] = throttled_events()
    assert event.details["purpose"] == "password_reset"
    # Signing in is not what was throttled: its buckets are apart.
    assert sign_in(browser(ATTACKER_IP), user.email).status_code == 303


def test_api_token_guesses_are_throttled_and_a_valid_token_is_not(store, small_limits):
    admin = member(OrganizationFactory(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR)
    _, secret = api_token_create(organization=admin.membership.organization, user=admin, name="S")
    siem = browser(OFFICE_IP)
    for _ in range(12):
        assert siem.get(API_URL, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200

    guesser = browser(ATTACKER_IP)
    codes = [
        guesser.get(API_URL, HTTP_AUTHORIZATION=f"Bearer am_guess{n}").status_code for n in range(6)
    ]
    assert codes == [401] * 5 + [429]
    refused = guesser.get(API_URL, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["retry_after"] == int(refused["Retry-After"])
    [event] = throttled_events()
    assert event.details["purpose"] == "api_token" and event.organization_id is None


# --- Settings → Security → Sign-in throttling --------------------------------------------------


def test_an_administrator_sets_limits_and_the_change_is_recorded(small_limits):
    admin = member(role=Role.ADMINISTRATOR)
    client = client_as(admin)
    assert client.get(THROTTLING_URL).status_code == 200
    response = client.post(
        THROTTLING_URL,
        {"ip_burst": "300", "account_burst": "", "allowlist": "203.0.113.7/24\n2001:db8:5::/48"},
    )
    assert response.status_code == 303
    organization = admin.membership.organization
    organization.refresh_from_db()
    assert organization.throttle_ip_burst == 300
    assert organization.throttle_allowlist == ["203.0.113.0/24", "2001:db8:5::/48"]
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.details == {
        "setting": "throttling",
        "old": {"throttle_ip_burst": None, "throttle_allowlist": []},
        "new": {
            "throttle_ip_burst": 300,
            "throttle_allowlist": ["203.0.113.0/24", "2001:db8:5::/48"],
        },
    }
    assert changed.actor_id == admin.pk


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ip_burst": "5"}, "Attempts per client IP must be a whole number from 10 to 10,000"),
        ({"ip_burst": "99999"}, "Attempts per client IP must be a whole number from 10 to 10,000"),
        ({"account_burst": "1000"}, "Attempts per account must be a whole number from 10 to 200"),
        ({"ip_refill_seconds": "0"}, "must be a whole number from 1 to 86,400 seconds"),
        ({"ip_burst": "ten"}, "Attempts per client IP must be a whole number"),
        (
            {"allowlist": "203.0.113.0/24\nnot-a-network"},
            "Line 2: &#x27;not-a-network&#x27; is not",
        ),
        ({"allowlist": "10.0.0.0/8"}, "10.0.0.0/8 is too broad"),
        ({"allowlist": "0.0.0.0/0"}, "0.0.0.0/0 is too broad"),
        ({"allowlist": "2001:db8::/32"}, "2001:db8::/32 is too broad"),
        ({"allowlist": "203.0.113.0/24\x00"}, "Null characters are not allowed"),
    ],
)
def test_limits_out_of_bounds_and_bad_networks_are_refused_with_a_message(data, message):
    admin = member(role=Role.ADMINISTRATOR)
    response = client_as(admin).post(THROTTLING_URL, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    organization = admin.membership.organization
    organization.refresh_from_db()
    assert organization.throttle_ip_burst is None and organization.throttle_allowlist == []
    assert events(EventType.SETTINGS_CHANGED) == []


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER])
def test_only_administrators_see_or_change_throttling(role):
    user = member(role=role)
    client = client_as(user)
    assert client.get(THROTTLING_URL).status_code == 403
    refused = client.post(THROTTLING_URL, {"ip_burst": "500"})
    assert refused.status_code == 403
    assert "managed by the organization" in refused.content.decode()
    user.membership.organization.refresh_from_db()
    assert user.membership.organization.throttle_ip_burst is None


def test_anonymous_is_sent_to_sign_in():
    response = Client().get(THROTTLING_URL)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_an_administrator_changes_only_their_own_organization():
    admin = member(role=Role.ADMINISTRATOR)
    other = OrganizationFactory()
    client_as(admin).post(THROTTLING_URL, {"ip_burst": "500", "organization": str(other.pk)})
    other.refresh_from_db()
    assert other.throttle_ip_burst is None
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.organization_id == admin.membership.organization_id


# --- The database store ------------------------------------------------------------------------


def test_without_redis_the_buckets_are_rows_and_a_flood_adds_none(settings, small_limits):
    settings.THROTTLE_REDIS_URL = ""
    attacker = browser(ATTACKER_IP)
    spray(attacker, 5)
    rows = ThrottleBucket.objects.count()
    spray(attacker, 20, tag="t")
    assert ThrottleBucket.objects.count() == rows + 1  # the window's counter, once
    assert len(throttled_events()) == 1


def test_idle_database_buckets_are_purged(settings, small_limits):
    from datetime import timedelta

    from accounts.tasks import throttle_buckets_purge

    settings.THROTTLE_REDIS_URL = ""
    spray(browser(ATTACKER_IP), 2)
    ThrottleBucket.objects.filter(key__contains=":account:").update(
        updated_at=timezone.now() - timedelta(days=2)
    )
    assert throttle_buckets_purge() == 2
    assert list(ThrottleBucket.objects.values_list("key", flat=True)) == [
        f"am:throttle:sign_in:ip:{ATTACKER_IP}"
    ]


def test_a_throttled_flood_writes_no_log_line_per_request(store, small_limits, caplog):
    attacker = browser(ATTACKER_IP)
    spray(attacker, 5)
    caplog.clear()
    assert spray(attacker, 20, tag="t") == [429] * 20
    assert "Too Many Requests" not in caplog.text


# --- The opt-in budget of unfamiliar checks per organization -----------------------------------


@pytest.fixture
def unfamiliar_budget(settings, small_limits):
    settings.THROTTLE_UNFAMILIAR_BURST = 3
    settings.THROTTLE_UNFAMILIAR_REFILL_SECONDS = 600


def test_many_addresses_against_one_organization_meet_its_unfamiliar_budget(
    store, unfamiliar_budget, counted_checks
):
    acme, globex = OrganizationFactory(), OrganizationFactory()
    owns(acme, "acme.test")
    owns(globex, "globex.test")
    alice = member(acme, email="alice@acme.test")
    alices_browser = browser(OFFICE_IP)
    assert sign_in(alices_browser, alice.email).status_code == 303  # familiar from now
    alices_browser.post(LOGOUT_URL)
    counted_checks.reset()

    codes = [
        sign_in(browser(f"198.51.100.{n}"), f"guess{n}@acme.test", "x").status_code
        for n in range(1, 7)
    ]
    assert codes == [200] * 3 + [429] * 3  # six addresses, each far from its own limit
    assert counted_checks.hashed == 3  # the budget's three dummy hashes, no more
    [event] = throttled_events()
    assert event.reason == Reason.ORGANIZATION_RATE_LIMIT
    assert event.organization_id == acme.pk

    # Alice on her own browser is not charged; a stranger with her password is.
    assert sign_in(alices_browser, alice.email).status_code == 303
    assert sign_in(browser("192.0.2.77"), alice.email).status_code == 429
    # Another organization's budget is its own.
    assert sign_in(browser("192.0.2.78"), "someone@globex.test", "x").status_code == 200


def test_without_a_budget_nothing_is_charged_per_organization(store, small_limits):
    acme = OrganizationFactory()
    owns(acme, "acme.test")
    codes = [
        sign_in(browser(f"198.51.100.{n}"), f"guess{n}@acme.test", "x").status_code
        for n in range(1, 21)
    ]
    assert codes == [200] * 20
