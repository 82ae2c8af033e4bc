"""Saved searches: kept per person and log, shared within the organization only, opened as links
even when their syntax no longer reads, deleted only by their owner after a confirmation."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts.models import Role, SavedSearch, SearchLog
from audit.models import AuditEvent, EventType

from .factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db

AUDIT = reverse("accounts:audit-log")
ACTIVITY = reverse("accounts:activity")
SAVE = reverse("accounts:audit-log-search-save")
SAVE_OWN = reverse("accounts:activity-search-save")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def _delete_url(search: SavedSearch) -> str:
    name = "audit-log" if search.log == SearchLog.AUDIT else "activity"
    return reverse(f"accounts:{name}-search-delete", args=[search.pk])


def _saved(org, owner, *, name="Failures", query="q=outcome%3Afailure", shared=False, log=None):
    return SavedSearch.objects.create(
        organization=org,
        owner=owner,
        log=log or SearchLog.AUDIT,
        name=name,
        query=query,
        shared=shared,
    )


def test_saving_keeps_the_search_records_it_and_returns_to_it(client, org, admin):
    client.force_login(admin)
    response = client.post(
        SAVE, {"name": "Bob's failures", "query": "q=outcome%3Afailure&cursor=x&tz=UTC"}
    )
    assert response.status_code == 303
    assert response["Location"] == f"{AUDIT}?q=outcome%3Afailure"
    search = SavedSearch.objects.get()
    assert (search.owner, search.organization, search.log) == (admin, org, SearchLog.AUDIT)
    assert (search.query, search.shared) == ("q=outcome%3Afailure", False)
    event = AuditEvent.objects.get(event_type=EventType.SEARCH_SAVED)
    assert event.actor == admin and event.organization == org
    assert event.details["name"] == "Bob's failures"
    page = client.get(response["Location"]).content.decode()
    assert "Saved the search" in page and "Bob&#x27;s failures" in page


def test_a_search_that_does_not_read_is_not_saved(client, org, admin):
    client.force_login(admin)
    response = client.post(SAVE, {"name": "Broken", "query": "q=colour%3Ared"})
    assert response.status_code == 400
    assert "Unknown qualifier &quot;colour:&quot;" in response.content.decode()
    assert not SavedSearch.objects.exists()


def test_the_list_shows_ones_own_and_the_shared_ones_of_the_organization(client, org, admin):
    analyst = member(org, Role.SECURITY_ANALYST)
    _saved(org, admin, name="Mine")
    _saved(org, analyst, name="Theirs, shared", shared=True)
    _saved(org, analyst, name="Theirs, private")
    other = OrganizationFactory.create()
    _saved(other, member(other, Role.ADMINISTRATOR), name="Another tenant's", shared=True)
    client.force_login(admin)
    names = [s.name for s in client.get(AUDIT).context["saved_searches"]]
    assert names == ["Mine", "Theirs, shared"]


def test_a_saved_search_whose_syntax_no_longer_reads_opens_with_the_message(client, org, admin):
    search = _saved(org, admin, query="q=action%3Alogin")
    client.force_login(admin)
    page = client.get(AUDIT)
    assert f'href="{AUDIT}?q=action%3Alogin"' in page.content.decode()
    opened = client.get(f"{AUDIT}?{search.query}")
    assert opened.status_code == 400
    assert "Unknown qualifier &quot;action:&quot;" in opened.content.decode()
    assert 'value="action:login"' in opened.content.decode()


def test_deleting_asks_first_then_deletes_and_says_so(client, org, admin):
    search = _saved(org, admin)
    client.force_login(admin)
    ask = client.get(_delete_url(search))
    assert ask.status_code == 200 and "Delete the saved search" in ask.content.decode()
    assert SavedSearch.objects.filter(pk=search.pk).exists()
    done = client.post(_delete_url(search))
    assert done.status_code == 303 and done["Location"] == AUDIT
    assert not SavedSearch.objects.filter(pk=search.pk).exists()
    assert AuditEvent.objects.filter(event_type=EventType.SEARCH_DELETED, actor=admin).exists()
    assert "Deleted the saved search" in client.get(AUDIT).content.decode()


def test_another_persons_search_shared_or_not_cannot_be_deleted(client, org, admin):
    analyst = member(org, Role.SECURITY_ANALYST)
    shared = _saved(org, analyst, name="Shared", shared=True)
    private = _saved(org, analyst, name="Private")
    client.force_login(admin)
    for search in (shared, private):
        assert client.get(_delete_url(search)).status_code == 404
        assert client.post(_delete_url(search)).status_code == 404
    assert SavedSearch.objects.count() == 2


def test_another_tenants_search_is_not_found(client, org, admin):
    other = OrganizationFactory.create()
    foreign = _saved(other, member(other, Role.ADMINISTRATOR), shared=True)
    client.force_login(admin)
    assert client.post(_delete_url(foreign)).status_code == 404
    assert SavedSearch.objects.filter(pk=foreign.pk).exists()


def test_anonymous_is_sent_to_sign_in(client, org, admin):
    search = _saved(org, admin)
    for url in (SAVE, SAVE_OWN, _delete_url(search)):
        response = client.post(url, {"name": "x", "query": "q=a"})
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]
    assert SavedSearch.objects.count() == 1


def test_a_member_may_not_save_an_audit_log_search(client, org):
    client.force_login(member(org))
    assert client.post(SAVE, {"name": "x", "query": "q=a"}).status_code == 403
    assert not SavedSearch.objects.exists()


def test_a_member_keeps_searches_of_their_own_activity_log(client, org):
    alice = member(org)
    client.force_login(alice)
    response = client.post(SAVE_OWN, {"name": "My failures", "query": "q=outcome%3Afailure"})
    assert response["Location"] == f"{ACTIVITY}?q=outcome%3Afailure"
    search = SavedSearch.objects.get()
    assert (search.owner, search.log) == (alice, SearchLog.ACTIVITY)
    assert [s.name for s in client.get(ACTIVITY).context["saved_searches"]] == ["My failures"]
    # The Audit Log's list is another list.
    admin = member(org, Role.ADMINISTRATOR)
    client.force_login(admin)
    assert client.get(AUDIT).context["saved_searches"] == []
