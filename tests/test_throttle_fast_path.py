"""The throttle's fast path (accounts.throttle_fast), through the real views on the real Redis.

An address whose IP bucket the full path refused is answered before Django's stack: no database
query (every connection's queries captured), no password hash (a counting hasher), HTTP 429 with
Retry-After and the page's sentence, the attempt still counted in its window's login.throttled.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import DomainProof, OrganizationDomain, Role, Tier
from audit.models import EventType

from .factories import OrganizationFactory, member
from .fault_support import (
    REDIS_URL,
    app_on_private_redis,
    private_redis,
    redis_empty_if_ours,
    redis_url_for_tests,
)
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db

ATTACKER_IP = "198.51.100.66"
RESET_URL = reverse("accounts:password-reset")
API_URL = reverse("api:events")
THROTTLED_SENTENCE = "Too many sign-in attempts from your network or for this account."


@pytest.fixture(scope="module")
def real_redis_url() -> Iterator[str]:
    with redis_url_for_tests() as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_buckets(real_redis_url: str) -> None:
    redis_empty_if_ours(real_redis_url)


@pytest.fixture(autouse=True)
def small_limits(settings, real_redis_url):
    """The fast path is tested on a real Redis."""
    settings.THROTTLE_REDIS_URL = real_redis_url
    settings.THROTTLE_IP_BURST = 5
    settings.THROTTLE_IP_REFILL_SECONDS = 600
    settings.THROTTLE_ACCOUNT_BURST = 4


@contextmanager
def no_queries() -> Iterator[list[CaptureQueriesContext]]:
    """Capture the queries of every database connection (the durable alias included)."""
    with ExitStack() as stack:
        captured = [
            stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in connections
        ]
        yield captured
    assert [q["sql"] for c in captured for q in c.captured_queries] == []


def spray(client: Client, times: int, domain: str = "example.test", tag: str = "s") -> list[int]:
    return [
        sign_in(client, f"{tag}{n}@{domain}", "wrong password").status_code for n in range(times)
    ]


def refused_once(client: Client, domain: str = "example.test") -> None:
    """Spend the address's burst; its first refusal (the full path) opens the window."""
    assert spray(client, 5, domain) == [200] * 5
    assert sign_in(client, f"first-refused@{domain}", "x").status_code == 429


def throttled_events(**filters):
    return events(EventType.LOGIN_THROTTLED, **filters)


def test_a_refused_address_is_answered_without_a_query_or_a_hash(counted_checks):
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    refused_once(attacker)
    spent = (counted_checks.verified, counted_checks.hashed)

    with no_queries():
        response = sign_in(attacker, "next@example.test", "wrong password")

    assert (counted_checks.verified, counted_checks.hashed) == spent
    assert response.status_code == 429
    assert 590 <= int(response["Retry-After"]) <= 600
    page = response.content.decode()
    assert THROTTLED_SENTENCE in page and "wait 10 minutes" in page
    assert "<title>Sign in · Activity Monitor</title>" in page
    assert 'href="/sign-in/"' in page and 'href="/password-reset/"' in page


def test_the_fast_answer_carries_the_security_headers_and_sets_no_session():
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    refused_once(attacker)
    response = sign_in(attacker, "next@example.test", "x")

    assert response.status_code == 429
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["X-Request-ID"]
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


def test_fast_refusals_are_counted_in_the_window_the_full_path_recorded(settings):
    settings.THROTTLE_EVENT_WINDOW_SECONDS = 2
    time.sleep(2 - time.time() % 2 + 0.05)  # a window's start: the test fits in it
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    refused_once(attacker)
    with no_queries():
        for n in range(6):
            assert sign_in(attacker, f"fast{n}@example.test", "x").status_code == 429
    [first] = throttled_events()  # written by the full path's refusal, once
    assert first.details["attempted_username"] == "first-refused@example.test"
    assert first.details["throttle"] == "ip" and first.details["purpose"] == "sign_in"

    time.sleep(2 - time.time() % 2 + 0.05)  # the next window: the full path opens it
    assert sign_in(attacker, "later@example.test", "x").status_code == 429
    [_, second] = throttled_events()
    assert second.details["previous_window"]["count"] == 7  # the full path's 1 + the fast 6
    assert second.details["previous_window"]["started_at"] == first.details["window_started_at"]
    assert second.details["attempted_username"] == "later@example.test"


def test_fast_refusals_are_counted_for_the_organization_whose_refusal_opened_the_window():
    acme = OrganizationFactory()
    OrganizationDomain.objects.create(
        organization=acme,
        domain="acme.test",
        proof=DomainProof.OPERATOR,
        verified_at=timezone.now(),
    )
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    refused_once(attacker, "acme.test")
    # The next attempt is for no organization; the fast path cannot tell without the database
    # and counts it in the open window, acme's.
    assert sign_in(attacker, "someone@nowhere.test", "x").status_code == 429

    [event] = throttled_events()
    assert event.organization == acme
    assert not throttled_events(organization=None)


def test_an_address_on_the_platform_allowlist_is_never_refused(settings):
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    refused_once(attacker)
    settings.THROTTLE_ALLOWLIST = [ipaddress.ip_network("198.51.100.0/24")]

    assert sign_in(attacker, "now-allowed@example.test", "x").status_code == 200  # checked


def test_an_address_on_an_organizations_allowlist_is_left_to_the_full_path():
    office = OrganizationFactory(throttle_allowlist=["198.51.100.0/24"])
    person = member(office, Role.MEMBER)
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    refused_once(attacker)  # addresses of no organization: refused by the address's bucket

    # Not noted for the fast path: the full path knows the attempt's organization.
    assert sign_in(attacker, "stranger@example.test", "x").status_code == 429
    assert sign_in(attacker, person.email).status_code == 303


def test_a_refused_reset_request_is_answered_without_a_query():
    user = member()
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    codes = [
        attacker.post(RESET_URL, {"email": f"r{n}@example.test"}).status_code for n in range(6)
    ]
    assert codes == [303] * 5 + [429]

    with no_queries():
        response = attacker.post(RESET_URL, {"email": user.email})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    page = response.content.decode()
    assert "Too many reset requests from your network or for this address." in page
    assert "<title>Reset your password · Activity Monitor</title>" in page
    [event] = throttled_events()
    assert event.details["purpose"] == "password_reset"


def test_a_refused_api_client_is_answered_without_a_query():
    member(OrganizationFactory(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR)
    guesser = Client(REMOTE_ADDR=ATTACKER_IP)
    codes = [
        guesser.get(API_URL, HTTP_AUTHORIZATION=f"Bearer am_guess{n}").status_code for n in range(6)
    ]
    assert codes == [401] * 5 + [429]

    with no_queries():
        response = guesser.get(API_URL, HTTP_AUTHORIZATION="Bearer am_guess9")
    assert response.status_code == 429
    assert response.json()["retry_after"] == int(response["Retry-After"]) > 0
    assert "Too many requests with invalid API tokens" in response.json()["error"]


def test_other_pages_and_other_addresses_are_not_answered_by_the_fast_path():
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    refused_once(attacker)
    assert attacker.get(reverse("accounts:login")).status_code == 200  # the page itself
    assert sign_in(Client(REMOTE_ADDR="198.51.100.67"), "x@example.test", "x").status_code == 200


def test_with_redis_down_the_full_path_answers_and_records_the_attempt(settings):
    settings.THROTTLE_REDIS_DOWN = "database"
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    with private_redis() as redis, app_on_private_redis(settings):
        settings.THROTTLE_REDIS_URL = REDIS_URL
        refused_once(attacker)
        assert sign_in(attacker, "fast@example.test", "x").status_code == 429  # fast path
        redis.stop()

        # The fast path stands aside; the database's buckets start full: checked, recorded.
        response = sign_in(attacker, "during@example.test", "x")
        assert response.status_code == 200
    assert events(EventType.LOGIN_FAILED, details__attempted_username="during@example.test")
