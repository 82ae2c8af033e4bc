"""GET /api/v1/events: tokens, tiers, filters, cursor, and exactly-once polling under writes."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import Role, Tier
from api.models import ApiToken
from api.services import api_token_create
from audit.models import AuditEvent, EventType
from audit.services import event_record

from .factories import OrganizationFactory, member
from .helpers import events
from .test_audit_log import add

# The API records its token use on the "audit" connection (a durable write of its own).
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])

URL = reverse("api:events")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def org(db):
    return OrganizationFactory.create(tier=Tier.ENTERPRISE)


@pytest.fixture
def admin(org):
    return member(org, Role.ADMINISTRATOR)


def token_for(organization, user=None) -> str:
    user = user or member(organization, Role.ADMINISTRATOR)
    _, secret = api_token_create(organization=organization, user=user, name="SIEM")
    return secret


def get(client, secret, **params):
    return client.get(URL, params, HTTP_AUTHORIZATION=f"Bearer {secret}")


def ids(response) -> list[int]:
    return [e["id"] for e in response.json()["events"]]


def poll_until(client, secret, want, **params) -> list[dict[str, Any]]:
    """Poll from the start until every id in `want` has arrived (or 15 s); return all events.

    Transaction ids are cluster-wide: an open writing transaction anywhere on the server (another
    test run's) holds the feed's horizon back for a moment, so one poll may not be enough.
    """
    got: list[dict[str, Any]] = []
    cursor, deadline = "", time.monotonic() + 15
    while time.monotonic() < deadline:
        body = get(client, secret, cursor=cursor, **params).json()
        got += body["events"]
        cursor = body["next_cursor"]
        if not body["has_more"] and set(want) <= {e["id"] for e in got}:
            break
        if not body["events"]:
            time.sleep(0.05)
    return got


def poll_all(client, secret, want, **params) -> list[int]:
    return [e["id"] for e in poll_until(client, secret, want, **params)]


# --- Authentication and tiers ------------------------------------------------------------------


def test_no_token_is_401_json(client, org):
    response = client.get(URL)
    assert response.status_code == 401
    assert "API token" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_is_401(client, org):
    token_for(org)
    assert get(client, "am_not-a-real-token").status_code == 401


def test_a_revoked_token_is_401(client, org, admin):
    secret = token_for(org, admin)
    client.force_login(admin)
    token = ApiToken.objects.get()
    client.post(reverse("api:token-revoke", args=[token.pk]))
    assert get(Client(), secret).status_code == 401


def test_other_tiers_get_403_saying_why(client, db):
    medium = OrganizationFactory.create(tier=Tier.MEDIUM_BUSINESS, name="Acme")
    response = get(client, token_for(medium))
    assert response.status_code == 403
    assert response.json()["error"] == (
        "The events API is part of the Enterprise tier; Acme is on Medium Business."
    )


def test_a_session_cookie_is_not_an_api_credential(client, org, admin):
    client.force_login(admin)
    assert client.get(URL).status_code == 401


# --- Content -----------------------------------------------------------------------------------


def test_events_use_the_briefs_field_names(client, org, admin):
    event = add(
        org,
        admin,
        ip_address="203.0.113.8",
        session_hash="s" * 16,
        details={"method": "password"},
        occurred_at=datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC),
    )
    secret = token_for(org, admin)
    [item] = poll_until(client, secret, {event.pk}, end="2026-04-01")
    assert item["id"] == event.pk
    assert item["occurred_at"] == "2026-03-01T12:00:00.000005+00:00"
    for name in ("event_type", "outcome", "reason", "user", "target_user", "ip_address"):
        assert name in item
    assert item["session"] == "s" * 16 and item["details"] == {"method": "password"}
    assert item["user"] == admin.email


def test_another_tenants_events_never_appear(client, org, admin):
    add(OrganizationFactory.create(tier=Tier.ENTERPRISE), None, actor_label="x@other.test")
    mine = add(org, admin)
    secret = token_for(org, admin)
    got = poll_all(client, secret, {mine.pk})
    foreign = AuditEvent.objects.exclude(organization=org).values_list("pk", flat=True)
    assert mine.pk in got and not set(got) & set(foreign)


def test_filters_apply(client, org, admin):
    add(org, admin, country="DE")
    failed = add(org, admin, event_type=EventType.LOGIN_FAILED, outcome="failure", country="FR")
    secret = token_for(org, admin)
    got = poll_all(client, secret, {failed.pk}, outcome="failure", country="FR")
    assert got == [failed.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"event_type": "nope"}, "event_type"),
        ({"start": "2026-02-30"}, "start"),
        ({"ip": "1.2.3.4/77"}, "ip"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"q": "q" * 10_000}, "q"),
        ({"cursor": "forged"}, "cursor"),
    ],
)
def test_bad_parameters_are_400_json(client, org, params, field):
    response = get(client, token_for(org), **params)
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_a_cursor_from_another_organization_is_400(client, org):
    other = OrganizationFactory.create(tier=Tier.ENTERPRISE)
    foreign = get(client, token_for(other)).json()["next_cursor"]
    assert get(client, token_for(org), cursor=foreign).status_code == 400


def test_pages_cover_every_event_once(client, org, admin):
    made = [add(org, admin).pk for _ in range(25)]
    secret = token_for(org, admin)
    got = poll_all(client, secret, set(made), limit=7)
    assert [pk for pk in got if pk in made] == made
    assert len(got) == len(set(got))


def test_use_is_attributed_to_the_token(client, org, admin):
    secret = token_for(org, admin)
    get(client, secret, outcome="failure", REMOTE_ADDR="198.51.100.4")
    get(client, secret, outcome="failure")
    [viewed] = events(EventType.AUDIT_LOG_VIEWED)
    token = ApiToken.objects.get()
    assert viewed.actor_label == token.label and viewed.actor_id == admin.pk
    assert viewed.details["api_token_prefix"] == token.prefix and viewed.details["via"] == "api"
    assert token.last_used_at is not None


def test_a_token_whose_creator_was_deleted_still_works_and_names_no_one(client, org, admin):
    secret = token_for(org, admin)
    admin.delete()
    response = get(client, secret)
    assert response.status_code == 200
    [viewed] = events(EventType.AUDIT_LOG_VIEWED)
    token = ApiToken.objects.get()
    assert viewed.actor_id is None and viewed.actor_label == token.label


# --- Token management page ---------------------------------------------------------------------

TOKENS = reverse("api:tokens")


def test_tokens_page_is_for_administrators(client, org):
    assert client.get(TOKENS).status_code == 302
    for role in (Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER):
        c = Client()
        c.force_login(member(org, role))
        assert c.get(TOKENS).status_code == 403


def test_a_new_token_is_shown_once_and_stored_hashed(client, org, admin):
    client.force_login(admin)
    response = client.post(TOKENS, {"name": "SIEM"})
    assert response.status_code == 303 and response["Location"] == TOKENS
    assert "am_" not in response["Location"]
    shown = client.get(TOKENS)
    assert shown["Cache-Control"] == "no-store"
    secret = shown.context["created_secret"]
    assert secret.startswith("am_") and secret in shown.content.decode()
    assert "Created the token “SIEM”" in shown.content.decode()
    token = ApiToken.objects.get()
    assert secret not in (token.token_hash, token.prefix) and len(token.token_hash) == 64
    assert secret not in client.get(TOKENS).content.decode()
    assert get(Client(), secret).status_code == 200
    [created] = events(EventType.SETTINGS_CHANGED)
    assert secret not in str(created.details)


def test_reloading_the_page_after_creating_a_token_creates_no_second_token(client, org, admin):
    client.force_login(admin)
    response = client.post(TOKENS, {"name": "SIEM"}, follow=True)
    # What a browser does on reload after the redirect: GET the page again.
    assert response.redirect_chain == [(TOKENS, 303)]
    assert response.context["created_secret"]
    reloaded = client.get(TOKENS)
    assert reloaded.context["created_secret"] is None
    assert ApiToken.objects.count() == 1
    assert len(events(EventType.SETTINGS_CHANGED)) == 1


def test_a_token_name_is_required(client, org, admin):
    client.force_login(admin)
    response = client.post(TOKENS, {"name": ""})
    assert response.status_code == 400
    html = response.content.decode()
    # The error sits under its labelled field, which points at it; a message says what happened.
    assert 'aria-describedby="id_name_helptext id_name_error"' in html
    assert '<ul class="errorlist" id="id_name_error"><li>Give the token a name' in html
    assert "The token was not created" in html
    assert not ApiToken.objects.exists()


def test_non_enterprise_administrators_cannot_create_tokens(client, db):
    admin = member(OrganizationFactory.create(tier=Tier.SMALL_BUSINESS), Role.ADMINISTRATOR)
    client.force_login(admin)
    assert "Enterprise tier" in client.get(TOKENS).content.decode()
    assert client.post(TOKENS, {"name": "x"}).status_code == 403


def test_revoking_asks_first_and_the_get_changes_nothing(client, org, admin):
    token_for(org, admin)
    token = ApiToken.objects.get()
    client.force_login(admin)
    page = client.get(reverse("api:token-revoke", args=[token.pk]))
    assert page.status_code == 200
    assert "Revoke the token" in page.content.decode()
    token.refresh_from_db()
    assert token.is_active


def test_revoking_says_so_after_the_redirect(client, org, admin):
    token_for(org, admin)
    token = ApiToken.objects.get()
    client.force_login(admin)
    response = client.post(reverse("api:token-revoke", args=[token.pk]), follow=True)
    assert response.redirect_chain == [(TOKENS, 303)]
    assert "Revoked the token" in response.content.decode()
    token.refresh_from_db()
    assert not token.is_active


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_tenants_administrator_cannot_revoke_our_token(client, org, method):
    token_for(org)
    token = ApiToken.objects.get()
    client.force_login(member(OrganizationFactory.create(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR))
    url = reverse("api:token-revoke", args=[token.pk])
    assert getattr(client, method)(url).status_code == 404
    token.refresh_from_db()
    assert token.is_active


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_analyst_cannot_revoke_a_token(client, org, method):
    token_for(org)
    token = ApiToken.objects.get()
    client.force_login(member(org, Role.SECURITY_ANALYST))
    url = reverse("api:token-revoke", args=[token.pk])
    assert getattr(client, method)(url).status_code == 403
    token.refresh_from_db()
    assert token.is_active


# --- Exactly once under concurrent writes (PostgreSQL) -----------------------------------------


def _write_in_thread(organization, user, started: threading.Event, release: threading.Event):
    try:
        with transaction.atomic():
            event_record(
                event_type=EventType.LOGIN_SUCCEEDED, actor=user, organization=organization
            )
            started.set()
            release.wait(10)
    finally:
        connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_that_commits_after_a_later_row_is_not_skipped(org):
    user = member(org)
    secret = token_for(org, user)
    client = Client()
    cursor = get(client, secret).json()["next_cursor"]
    started, release = threading.Event(), threading.Event()
    slow = threading.Thread(target=_write_in_thread, args=(org, user, started, release))
    slow.start()
    assert started.wait(10)  # the slow transaction has inserted its row (lower id), uncommitted
    fast = event_record(event_type=EventType.LOGIN_FAILED, actor=user, organization=org)
    body = get(client, secret, cursor=cursor).json()
    # The fast row (higher id) is committed but must wait: serving it would move the cursor
    # past the slow row's id.
    assert fast.pk not in [e["id"] for e in body["events"]]
    release.set()
    slow.join()
    got, cursor, deadline = [], body["next_cursor"], time.monotonic() + 20
    while len(got) < 2 and time.monotonic() < deadline:  # other open transactions may delay it
        body = get(client, secret, cursor=cursor).json()
        cursor = body["next_cursor"]
        got += [e["id"] for e in body["events"] if e["event_type"].startswith("login.")]
    slow_row = AuditEvent.objects.get(event_type=EventType.LOGIN_SUCCEEDED)
    assert slow_row.pk < fast.pk
    assert got == [slow_row.pk, fast.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_polling_under_concurrent_writes_receives_every_event_exactly_once(org):
    user = member(org)
    secret = token_for(org, user)
    committed: list[int] = []
    commit_order_lock = threading.Lock()
    stop_writing = threading.Event()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop_writing.is_set():
                try:
                    with transaction.atomic():
                        event = event_record(
                            event_type=EventType.LOGIN_SUCCEEDED, actor=user, organization=org
                        )
                        # Hold some transactions open so commits overtake each other.
                        time.sleep(rng.choice([0, 0, 0.001, 0.005, 0.02]))
                        if rng.random() < 0.1:
                            raise RuntimeError("roll back")
                    with commit_order_lock:
                        committed.append(event.pk)
                except RuntimeError:
                    pass
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    client, cursor, received = Client(), "", []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        body = get(client, secret, cursor=cursor, limit=50).json()
        received += [e["id"] for e in body["events"] if e["event_type"] == "login.succeeded"]
        cursor = body["next_cursor"]
    stop_writing.set()
    for thread in threads:
        thread.join()
    # Drain. Transaction ids are cluster-wide, so any open writing transaction on the server
    # (another database's too) may hold the horizon back for a moment: poll until everything
    # committed has arrived, or give up after a while (which fails the test below).
    deadline = time.monotonic() + 20
    while not set(committed) <= set(received) and time.monotonic() < deadline:
        body = get(client, secret, cursor=cursor, limit=1000).json()
        received += [e["id"] for e in body["events"] if e["event_type"] == "login.succeeded"]
        cursor = body["next_cursor"]
        if not body["events"]:
            time.sleep(0.05)

    assert len(committed) > 20
    # Commits really did overtake each other (else the test would prove nothing).
    assert any(a > b for a, b in zip(committed, committed[1:], strict=False))
    assert len(received) == len(set(received)), "an event was served twice"
    assert sorted(received) == sorted(committed), "an event was skipped or a rollback leaked"
