"""Profile → Activity Log: a person's own events only, filtered and paged like the Audit Log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from accounts.models import Role
from audit.models import EventType

from .factories import OrganizationFactory, member
from .test_audit_log import add, every_page, rows

pytestmark = pytest.mark.django_db

URL = reverse("accounts:activity")


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(URL).status_code == 302


def test_the_activity_log_keeps_its_address():
    """Routed once, under the name the navigation and the Profile page link to."""
    assert URL == "/profile/activity/"


@pytest.mark.parametrize(
    "role",
    [Role.MEMBER, Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER],
)
def test_every_role_sees_only_their_own_events(client, role):
    org = OrganizationFactory.create()
    me = member(org, role)
    mine = add(org, me)
    done_to_me = add(org, member(org, Role.ADMINISTRATOR), target_user=me)
    add(org, member(org))
    add(OrganizationFactory.create(), member())
    client.force_login(me)
    assert sorted(rows(client.get(URL))) == sorted([mine.pk, done_to_me.pk])


def test_filters_apply_to_own_events(client):
    me = member()
    org = me.membership.organization
    add(org, me)
    failed = add(org, me, event_type=EventType.LOGIN_FAILED, outcome="failure", country="FR")
    client.force_login(me)
    assert rows(client.get(URL, {"outcome": "failure", "country": "FR"})) == [failed.pk]


def test_the_user_filter_is_not_offered_or_used(client):
    me = member()
    add(me.membership.organization, me)
    client.force_login(me)
    response = client.get(URL, {"user": "someone@else.test"})
    assert response.status_code == 200
    assert 'name="user"' not in response.content.decode()
    assert len(rows(response)) == 1


def test_free_text_matches_the_names_own_events_kept(client):
    me = member(email="mia@acme.test")
    org = me.membership.organization
    mine = add(org, me)
    admin = member(org, Role.ADMINISTRATOR, email="ada@acme.test")
    done_to_me = add(org, admin, target_user=me, event_type=EventType.MFA_RESET_BY_ADMIN)
    # A triager's name is hidden from the person (audit.member_view): no search finds it.
    add(org, admin, target_user=me, event_type=EventType.ALERT_ACKNOWLEDGED)
    add(org, member(org, email="someone@else.test"))
    client.force_login(me)
    assert rows(client.get(URL, {"q": "ada@"})) == [done_to_me.pk]
    assert rows(client.get(URL, {"q": "else"})) == []
    assert rows(client.get(URL, {"q": "mia@acme"})) == [mine.pk]


def test_paging_by_cursor_covers_all_own_events(client):
    me = member()
    org = me.membership.organization
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [add(org, me, occurred_at=base + timedelta(hours=i)) for i in range(75)]
    client.force_login(me)
    first = client.get(URL)
    second = client.get(URL, {"cursor": first.context["page"].next_cursor})
    assert rows(first) + rows(second) == [e.pk for e in reversed(made)]


def test_another_users_cursor_is_refused(client):
    org = OrganizationFactory.create()
    other = member(org)
    for i in range(60):
        add(org, other, occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i))
    client.force_login(other)
    cursor = client.get(URL).context["page"].next_cursor
    client.logout()
    client.force_login(member(org))
    response = client.get(URL, {"cursor": cursor})
    assert response.status_code == 400
    assert "not valid here" in response.content.decode()


def test_htmx_swap_returns_the_results_partial(client):
    me = member()
    add(me.membership.organization, me)
    client.force_login(me)
    response = client.get(URL, HTTP_HX_REQUEST="true")
    assert "<html" not in response.content.decode()
    assert "HX-Request" in response["Vary"]


def test_own_event_detail_shows_fields_and_others_are_not_found(client):
    org = OrganizationFactory.create()
    me, other = member(org), member(org)
    mine = add(org, me, request_id="req-mine")
    theirs = add(org, other)
    client.force_login(me)
    response = client.get(reverse("accounts:activity-event", args=[mine.pk]))
    assert response.status_code == 200 and "req-mine" in response.content.decode()
    assert client.get(reverse("accounts:activity-event", args=[theirs.pk])).status_code == 404


def test_viewing_own_activity_is_not_an_audit_log_view(client):
    me = member()
    client.force_login(me)
    client.get(URL)
    from .helpers import events

    assert events(EventType.AUDIT_LOG_VIEWED) == []


def test_paging_merges_own_and_done_to_me_events_without_gaps_or_repeats(client):
    org = OrganizationFactory.create()
    me, admin = member(org), member(org, Role.ADMINISTRATOR)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i in range(70):
        when = base + timedelta(minutes=i // 2)  # ties in time, broken by id
        if i % 3 == 0:
            made.append(add(org, admin, target_user=me, occurred_at=when))
        elif i % 3 == 1:
            made.append(add(org, me, target_user=me, occurred_at=when))  # both: listed once
        else:
            made.append(add(org, me, occurred_at=when))
    client.force_login(me)
    seen = every_page(client, URL, {})
    expected = sorted(made, key=lambda e: (e.occurred_at, e.pk), reverse=True)
    assert seen == [e.pk for e in expected]
