"""Settings → Security → Audit Log: who may see it, filters, cursor paging, audit_log.viewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from accounts.selectors import event_filters_with_members
from audit.models import AuditEvent, EventType, Outcome
from audit.selectors import EventFilters, events_matching

from .factories import OrganizationFactory, member
from .helpers import events

pytestmark = pytest.mark.django_db

URL = reverse("accounts:audit-log")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def add(organization, user=None, **fields) -> AuditEvent:
    """Insert one event directly (tests stand in for the generator here)."""
    fields.setdefault("event_type", EventType.LOGIN_SUCCEEDED)
    fields.setdefault("occurred_at", datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    event = AuditEvent(
        organization=organization,
        actor=user,
        actor_label=user.email if user else fields.pop("actor_label", ""),
        **fields,
    )
    event.save()
    return event


# Events made by add() are dated before this; signing in (force_login) records its own, now.
MADE_BEFORE = datetime(2026, 6, 1, tzinfo=UTC)


def rows(response) -> list[int]:
    """The listed events that the test made, leaving out those of signing the viewer in."""
    return [e.pk for e in response.context["page"].events if e.occurred_at < MADE_BEFORE]


def every_page(client: Client, url: str, params: dict[str, str]) -> list[int]:
    """rows() of each page in turn, following the cursor until the last page."""
    seen: list[int] = []
    page_params = params
    while True:
        response = client.get(url, page_params)
        seen += rows(response)
        cursor = response.context["page"].next_cursor
        if not cursor:
            return seen
        page_params = {**params, "cursor": cursor}


# The roles that may read the organization's Audit Log (and export it).
AUDIT_LOG_ROLES = [Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER]


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_member_is_refused(client, org):
    client.force_login(member(org))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("role", AUDIT_LOG_ROLES)
def test_each_audit_role_sees_the_organizations_events(client, org, role):
    someone = member(org)
    event = add(org, someone)
    client.force_login(member(org, role))
    response = client.get(URL)
    assert response.status_code == 200
    assert rows(response) == [event.pk]
    assert someone.email in response.content.decode()


def test_another_tenants_administrator_never_sees_our_events(client, org):
    add(org, member(org), ip_address="203.0.113.5")
    other_admin = member(OrganizationFactory.create(), Role.ADMINISTRATOR)
    client.force_login(other_admin)
    response = client.get(URL, {"ip": "203.0.113.5"})
    assert response.status_code == 200
    assert rows(response) == []


def test_another_tenants_event_detail_is_not_found(client, org, admin):
    foreign = add(OrganizationFactory.create(), None, actor_label="x@other.test")
    client.force_login(admin)
    response = client.get(reverse("accounts:audit-log-event", args=[foreign.pk]))
    assert response.status_code == 404


def test_events_come_newest_first(client, org, admin):
    old = add(org, admin, occurred_at=datetime(2026, 1, 1, tzinfo=UTC))
    new = add(org, admin, occurred_at=datetime(2026, 2, 1, tzinfo=UTC))
    client.force_login(admin)
    assert rows(client.get(URL))[:2] == [new.pk, old.pk]


def test_filter_by_event_type_and_outcome(client, org, admin):
    add(org, admin)
    failed = add(org, admin, event_type=EventType.LOGIN_FAILED, outcome=Outcome.FAILURE)
    client.force_login(admin)
    response = client.get(URL, {"event_type": "login.failed", "outcome": "failure"})
    assert rows(response) == [failed.pk]


def test_filter_by_category(client, org, admin):
    add(org, admin)
    mfa = add(org, admin, event_type=EventType.MFA_VERIFIED)
    client.force_login(admin)
    assert rows(client.get(URL, {"category": "mfa"})) == [mfa.pk]


def test_filter_by_exact_ip_and_by_cidr(client, org, admin):
    inside = add(org, admin, ip_address="203.0.113.77")
    add(org, admin, ip_address="198.51.100.1")
    v6 = add(org, admin, ip_address="2001:db8::1")
    client.force_login(admin)
    assert rows(client.get(URL, {"ip": "203.0.113.77"})) == [inside.pk]
    assert rows(client.get(URL, {"ip": "203.0.113.0/24"})) == [inside.pk]
    assert rows(client.get(URL, {"ip": "2001:db8::/32"})) == [v6.pk]


def test_filter_by_country(client, org, admin):
    german = add(org, admin, country="DE")
    add(org, admin, country="US")
    client.force_login(admin)
    assert rows(client.get(URL, {"country": "de"})) == [german.pk]


def test_filter_by_user_id_or_email_includes_events_done_to_them(client, org, admin):
    alice = member(org, email="alice@acme.test")
    own = add(org, alice)
    done_to_her = add(org, admin, event_type=EventType.MEMBER_ROLE_CHANGED, target_user=alice)
    add(org, admin)
    client.force_login(admin)
    expected = [done_to_her.pk, own.pk]
    assert sorted(rows(client.get(URL, {"user": str(alice.pk)}))) == sorted(expected)
    assert sorted(rows(client.get(URL, {"user": "ALICE@acme.test"}))) == sorted(expected)


def test_text_search_finds_people_by_name_or_email(client, org, admin):
    alice = member(org, email="alice@acme.test", full_name="Alice Anders")
    hers = add(org, alice)
    add(org, admin)
    client.force_login(admin)
    assert rows(client.get(URL, {"q": "anders"})) == [hers.pk]
    assert rows(client.get(URL, {"q": "alice@"})) == [hers.pk]


def test_date_range_is_read_in_the_viewers_time_zone(client, org, admin):
    # 23:30 UTC on 9 March is already 10 March in Berlin (UTC+1).
    late = add(org, admin, occurred_at=datetime(2026, 3, 9, 23, 30, tzinfo=UTC))
    add(org, admin, occurred_at=datetime(2026, 3, 11, 23, 30, tzinfo=UTC))
    client.force_login(admin)
    berlin = {"start": "2026-03-10", "end": "2026-03-10", "tz": "Europe/Berlin"}
    assert rows(client.get(URL, berlin)) == [late.pk]
    assert rows(client.get(URL, {**berlin, "tz": "UTC"})) == []


def test_pages_follow_the_cursor_without_overlap_or_gaps(client, org, admin):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [add(org, admin, occurred_at=base + timedelta(minutes=i // 3)) for i in range(120)]
    client.force_login(admin)
    seen = every_page(client, URL, {"outcome": "success"})
    expected = [e.pk for e in sorted(made, key=lambda e: (e.occurred_at, e.pk), reverse=True)]
    assert seen == expected


def test_events_inserted_while_paging_do_not_shift_the_next_page(client, org, admin):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [add(org, admin, occurred_at=base + timedelta(minutes=i)) for i in range(60)]
    client.force_login(admin)
    first = client.get(URL)
    cursor = first.context["page"].next_cursor
    add(org, admin, occurred_at=base + timedelta(days=1))  # newer than everything
    second = client.get(URL, {"cursor": cursor})
    remaining = [e.pk for e in reversed(made) if e.pk not in rows(first)]
    assert rows(second) == remaining
    assert len(remaining) >= 10


def test_htmx_request_gets_only_the_results_and_pushes_the_url(client, org, admin):
    add(org, admin)
    client.force_login(admin)
    response = client.get(URL, {"outcome": "success"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="results"' in body and "<html" not in body
    assert response["HX-Push-Url"] == f"{URL}?outcome=success"
    assert "HX-Request" in response["Vary"]


def test_full_page_has_a_real_get_form_and_links(client, org, admin):
    add(org, admin)
    client.force_login(admin)
    body = client.get(URL).content.decode()
    assert '<form method="get"' in body and "hx-get=" in body
    assert "<html" in body


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-13-45"}, "Enter a date as YYYY-MM-DD"),
        ({"start": "2026-03-10", "end": "2026-03-01"}, "before the start"),
        ({"event_type": "login.hacked"}, "Select a valid choice"),
        ({"ip": "300.1.1.1/99"}, "CIDR network"),
        ({"q": "x" * 10_000}, "at most 1,000 are read"),
        ({"tz": "Mars/Olympus"}, "Unknown time zone"),
        ({"cursor": "not-a-cursor"}, "not valid here"),
        ({"country": "<b>"}, "two-letter"),
        ({"category": "mfa", "event_type": "login.failed"}, "not in category"),
    ],
)
def test_bad_filters_give_a_clear_400(client, org, admin, params, message):
    client.force_login(admin)
    response = client.get(URL, params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_sql_and_html_in_filters_are_just_text(client, org, admin):
    add(org, admin)
    client.force_login(admin)
    response = client.get(URL, {"q": "'; DROP TABLE audit_auditevent; --<script>", "user": "<i>"})
    assert response.status_code == 200
    assert rows(response) == []
    body = response.content.decode()
    assert "--<script>" not in body and "&lt;script&gt;" in body


def test_a_cursor_from_another_organization_is_refused(client, org, admin):
    other = OrganizationFactory.create()
    other_admin = member(other, Role.ADMINISTRATOR)
    for _ in range(60):
        add(other, other_admin)
    other_client = Client()
    other_client.force_login(other_admin)
    foreign_cursor = other_client.get(URL).context["page"].next_cursor
    assert foreign_cursor
    client.force_login(admin)
    response = client.get(URL, {"cursor": foreign_cursor})
    assert response.status_code == 400
    assert "not valid here" in response.content.decode()


def test_a_script_user_agent_or_username_is_shown_escaped(client, org, admin):
    event = add(
        org,
        None,
        actor_label="<script>alert(1)</script>@x.test",
        user_agent="<script>ua()</script>",
    )
    client.force_login(admin)
    list_body = client.get(URL).content.decode()
    detail_body = client.get(reverse("accounts:audit-log-event", args=[event.pk])).content.decode()
    for body in (list_body, detail_body):
        assert "<script>alert(1)" not in body and "<script>ua()" not in body
    assert "&lt;script&gt;ua()" in detail_body


def test_viewing_is_recorded_once_per_distinct_filter(client, org, admin):
    client.force_login(admin)
    client.get(URL)
    client.get(URL, HTTP_HX_REQUEST="true")
    client.get(URL, {"outcome": "failure"}, HTTP_HX_REQUEST="true")
    client.get(URL, {"outcome": "failure"})
    viewed = events(EventType.AUDIT_LOG_VIEWED)
    assert [e.details for e in viewed] == [{"filters": {}}, {"filters": {"outcome": "failure"}}]
    assert viewed[0].actor_id == admin.pk and viewed[0].organization_id == org.pk


def test_event_detail_shows_every_field_and_the_timeline_with_pivots(client, org, admin):
    alice = member(org, email="alice@acme.test")
    before = add(org, alice, ip_address="203.0.113.9", occurred_at=datetime(2026, 3, 1, tzinfo=UTC))
    event = add(
        org,
        alice,
        ip_address="203.0.113.9",
        request_id="req-123",
        session_hash="abcd1234abcd1234",
        details={"method": "password"},
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    from_ip = add(
        org, admin, ip_address="203.0.113.9", occurred_at=datetime(2026, 3, 3, tzinfo=UTC)
    )
    client.force_login(admin)
    response = client.get(reverse("accounts:audit-log-event", args=[event.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "req-123" in body and "abcd1234abcd1234" in body and "&quot;method&quot;" in body
    timeline = response.context["timeline"]
    assert [e.pk for e in timeline["user"]] == [event.pk, before.pk]
    assert [e.pk for e in timeline["ip"]] == [from_ip.pk, event.pk, before.pk]
    assert f"?user={alice.pk}" in body and "?ip=203.0.113.9" in body


def test_event_detail_is_refused_to_members(client, org):
    alice = member(org)
    event = add(org, alice)
    client.force_login(alice)
    assert client.get(reverse("accounts:audit-log-event", args=[event.pk])).status_code == 403


def test_filter_by_the_email_of_someone_not_a_member_finds_labelled_rows(client, org, admin):
    guess = add(org, None, actor_label="ghost@acme.test", event_type=EventType.LOGIN_FAILED)
    add(org, admin)
    client.force_login(admin)
    assert rows(client.get(URL, {"user": "ghost@acme.test"})) == [guess.pk]


def test_user_filter_pages_merge_acting_and_acted_upon(client, org, admin):
    alice = member(org, email="alice@acme.test")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [
        add(
            org,
            alice if i % 2 else admin,
            target_user=None if i % 2 else alice,
            occurred_at=base + timedelta(minutes=i),
        )
        for i in range(80)
    ]
    add(org, admin)  # not about alice
    client.force_login(admin)
    first = client.get(URL, {"user": str(alice.pk)})
    second = client.get(URL, {"user": str(alice.pk), "cursor": first.context["page"].next_cursor})
    assert rows(first) + rows(second) == [e.pk for e in reversed(made)]


def test_user_and_text_together_narrow_both_ways(client, org, admin):
    alice = member(org, email="alice@acme.test", full_name="Alice Anders")
    bob = member(org, email="bob@acme.test", full_name="Bob Anders")
    hers = add(org, alice)
    add(org, bob)
    client.force_login(admin)
    assert rows(client.get(URL, {"user": alice.email, "q": "anders"})) == [hers.pk]


def test_htmx_history_restore_gets_the_whole_page(client, org, admin):
    client.force_login(admin)
    response = client.get(
        URL, {"outcome": "failure"}, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


@pytest.mark.parametrize("filters", [{"user": "alice@acme.test"}, {"text": "alice"}])
def test_an_organizations_names_are_read_only_once_its_members_are_looked_up(org, filters):
    """Who belongs to the organization is accounts' to say; audit refuses unresolved names
    rather than reading labels only."""
    with pytest.raises(ValueError, match="event_filters_with_members"):
        events_matching(filters=EventFilters(**filters), organization=org)
    resolved = event_filters_with_members(EventFilters(**filters), organization=org)
    assert list(events_matching(filters=resolved, organization=org)) == []
