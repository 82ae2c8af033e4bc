"""The search box (q) of the Audit Log and the Activity Log: qualifiers through the real views,
scoping by role and tenant, HTMX and full pages, chips, click-to-filter links, bad input."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from audit.models import EventType, Outcome

from .factories import OrganizationFactory, member
from .test_audit_log import add, rows

pytestmark = pytest.mark.django_db

AUDIT = reverse("accounts:audit-log")
ACTIVITY = reverse("accounts:activity")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def alice(org):
    return member(org, email="alice@acme.test", full_name="Alice Example")


def test_anonymous_is_sent_to_sign_in_from_either_log(client):
    for url in (AUDIT, ACTIVITY):
        response = client.get(url, {"q": "type:login.*"})
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]


def test_a_member_may_not_search_the_organizations_log(client, org, alice):
    client.force_login(alice)
    assert client.get(AUDIT, {"q": "actor:admin@acme.test"}).status_code == 403


def test_actor_names_a_member_by_email_or_id(client, org, admin, alice):
    hers = add(org, alice)
    add(org, admin)
    client.force_login(admin)
    assert rows(client.get(AUDIT, {"q": "actor:alice@acme.test"})) == [hers.pk]
    assert rows(client.get(AUDIT, {"q": "actor:ALICE@acme.test"})) == [hers.pk]
    assert rows(client.get(AUDIT, {"q": f"actor:{alice.pk}"})) == [hers.pk]


def test_actor_of_someone_not_a_member_finds_the_rows_that_kept_the_address(client, org, admin):
    unknown = add(org, None, actor_label="ghost@acme.test", event_type=EventType.LOGIN_FAILED)
    client.force_login(admin)
    assert rows(client.get(AUDIT, {"q": "actor:ghost@acme.test"})) == [unknown.pk]


def test_target_names_whom_it_was_done_to(client, org, admin, alice):
    reset = add(org, admin, target_user=alice, event_type=EventType.MFA_RESET_BY_ADMIN)
    add(org, alice)
    client.force_login(admin)
    assert rows(client.get(AUDIT, {"q": "target:alice@acme.test"})) == [reset.pk]


def test_type_prefix_and_its_negation(client, org, admin):
    ok = add(org, admin)
    failed = add(org, admin, event_type=EventType.LOGIN_FAILED, outcome=Outcome.FAILURE)
    mfa = add(org, admin, event_type=EventType.MFA_VERIFIED)
    client.force_login(admin)
    assert sorted(rows(client.get(AUDIT, {"q": "type:login.*"}))) == sorted([ok.pk, failed.pk])
    assert rows(client.get(AUDIT, {"q": "-type:login.*"})) == [mfa.pk]
    assert rows(client.get(AUDIT, {"q": "type:login.* -outcome:success"})) == [failed.pk]


def test_two_values_of_one_qualifier_match_either(client, org, admin):
    failed = add(org, admin, event_type=EventType.LOGIN_FAILED)
    mfa = add(org, admin, event_type=EventType.MFA_VERIFIED)
    add(org, admin)
    client.force_login(admin)
    found = rows(client.get(AUDIT, {"q": "type:login.failed type:mfa.verified"}))
    assert sorted(found) == sorted([failed.pk, mfa.pk])


def test_reason_country_and_ip_networks_v4_and_v6(client, org, admin):
    wrong = add(org, admin, reason="invalid_credentials", ip_address="203.0.113.9", country="DE")
    v6 = add(org, admin, ip_address="2001:db8::7", country="JP")
    add(org, admin, ip_address="198.51.100.1")
    client.force_login(admin)
    assert rows(client.get(AUDIT, {"q": "reason:invalid_credentials"})) == [wrong.pk]
    assert rows(client.get(AUDIT, {"q": "ip:203.0.113.0/24"})) == [wrong.pk]
    assert rows(client.get(AUDIT, {"q": "ip:2001:db8::/32"})) == [v6.pk]
    assert rows(client.get(AUDIT, {"q": "country:jp"})) == [v6.pk]
    # An event without an address is not in any network, so "not in it" keeps it.
    none = add(org, admin)
    found = rows(client.get(AUDIT, {"q": "-ip:203.0.113.0/24 -country:JP"}))
    assert wrong.pk not in found and v6.pk not in found and none.pk in found


def test_created_reads_days_in_the_persons_time_zone(client, org, admin):
    # 23:30 UTC on 9 March is already 10 March in Berlin (UTC+1).
    late = add(org, admin, occurred_at=datetime(2026, 3, 9, 23, 30, tzinfo=UTC))
    add(org, admin, occurred_at=datetime(2026, 3, 11, 23, 30, tzinfo=UTC))
    client.force_login(admin)
    admin.time_zone = "Europe/Berlin"  # activated for each request (accounts.middleware)
    admin.save(update_fields=["time_zone"])
    assert rows(client.get(AUDIT, {"q": "created:2026-03-10"})) == [late.pk]
    assert rows(client.get(AUDIT, {"q": "created:2026-03-01..2026-03-10"})) == [late.pk]
    assert rows(client.get(AUDIT, {"q": "created:<2026-03-10"})) == []
    admin.time_zone = "UTC"
    admin.save(update_fields=["time_zone"])
    assert rows(client.get(AUDIT, {"q": "created:2026-03-10"})) == []
    assert rows(client.get(AUDIT, {"q": "created:<=2026-03-09"})) == [late.pk]


def test_free_text_still_finds_people_by_name(client, org, admin, alice):
    hers = add(org, alice)
    add(org, admin)
    client.force_login(admin)
    assert rows(client.get(AUDIT, {"q": '"Alice Example"'})) == [hers.pk]
    assert rows(client.get(AUDIT, {"q": "alice type:login.succeeded"})) == [hers.pk]


def test_the_search_composes_with_the_advanced_fields(client, org, admin, alice):
    failed = add(org, alice, event_type=EventType.LOGIN_FAILED, outcome=Outcome.FAILURE)
    add(org, alice)
    add(org, admin, event_type=EventType.LOGIN_FAILED, outcome=Outcome.FAILURE)
    client.force_login(admin)
    found = rows(client.get(AUDIT, {"q": "actor:alice@acme.test", "outcome": "failure"}))
    assert found == [failed.pk]


def test_a_time_preset_reaches_back_from_now(client, org, admin):
    now = timezone.now()
    mfa = EventType.MFA_VERIFIED
    recent = add(org, admin, occurred_at=now - timedelta(minutes=30), event_type=mfa)
    add(org, admin, occurred_at=now - timedelta(hours=3), event_type=mfa)
    client.force_login(admin)
    response = client.get(AUDIT, {"period": "1h", "q": "type:mfa.verified"})
    assert [e.pk for e in response.context["page"].events] == [recent.pk]


def test_another_tenant_naming_our_member_finds_nothing_of_ours(client, org, alice):
    add(org, alice, ip_address="203.0.113.5")
    other_admin = member(OrganizationFactory.create(), Role.ADMINISTRATOR)
    client.force_login(other_admin)
    for q in ("actor:alice@acme.test", f"actor:{alice.pk}", "ip:203.0.113.0/24", "alice"):
        response = client.get(AUDIT, {"q": q})
        assert response.status_code == 200
        assert rows(response) == [], q


def test_the_activity_log_never_widens_to_someone_elses_events(client, org, admin, alice):
    add(org, admin)
    mine = add(org, alice)
    client.force_login(alice)
    assert rows(client.get(ACTIVITY, {"q": "actor:admin@acme.test"})) == []
    assert rows(client.get(ACTIVITY, {"q": f"actor:{admin.pk}"})) == []
    assert rows(client.get(ACTIVITY, {"q": "actor:alice@acme.test"})) == [mine.pk]


def test_the_activity_log_finds_what_was_done_to_the_person_by_whom(client, org, admin, alice):
    reset = add(org, admin, target_user=alice, event_type=EventType.MFA_RESET_BY_ADMIN)
    add(org, alice)
    client.force_login(alice)
    assert rows(client.get(ACTIVITY, {"q": "actor:admin@acme.test"})) == [reset.pk]
    assert rows(client.get(ACTIVITY, {"q": "type:mfa.*"})) == [reset.pk]


def test_the_activity_log_search_never_matches_what_the_person_may_not_see(
    client, org, admin, alice
):
    # The administrator's address and country are hidden from Alice (audit.member_view), and
    # so is who acknowledged an alert about her: no search may tell them.
    add(
        org,
        admin,
        target_user=alice,
        ip_address="198.51.100.7",
        country="FR",
        event_type=EventType.MFA_RESET_BY_ADMIN,
    )
    add(org, admin, target_user=alice, event_type=EventType.ALERT_ACKNOWLEDGED)
    client.force_login(alice)
    for q in (
        "ip:198.51.100.7",
        "ip:198.51.100.0/24",
        "country:FR",
        "actor:admin@acme.test type:alert.*",
    ):
        assert rows(client.get(ACTIVITY, {"q": q})) == [], q
    for params in ({"ip": "198.51.100.7"}, {"country": "FR"}):
        assert rows(client.get(ACTIVITY, params)) == [], params
    # Negating a hidden value hides nothing: both rows show without the address.
    assert len(rows(client.get(ACTIVITY, {"q": "-ip:198.51.100.7 -country:FR"}))) == 2


# --- Negated free text --------------------------------------------------------------------------


def _named(user, full_name: str):
    """A fixed name (factories make random ones, which a word might happen to match)."""
    user.full_name = full_name
    user.save(update_fields=["full_name"])
    return user


def test_negated_free_text_leaves_out_the_events_about_people_it_names(client, org, admin, alice):
    _named(admin, "Ada Admin")
    hers = add(org, alice)
    reset = add(org, admin, target_user=alice, event_type=EventType.MFA_RESET_BY_ADMIN)
    own = add(org, admin)
    ghost = add(
        org,
        None,
        actor_label="ghost@acme.test",
        event_type=EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
    )
    client.force_login(admin)
    everything = {hers.pk, reset.pk, own.pk, ghost.pk}
    for q in ("-alice", "NOT alice", "-EXAMPLE", 'NOT "Alice Example"'):
        assert set(rows(client.get(AUDIT, {"q": q}))) == {own.pk, ghost.pk}, q
    assert set(rows(client.get(AUDIT, {"q": "-ghost"}))) == everything - {ghost.pk}
    assert set(rows(client.get(AUDIT, {"q": "-alice -ghost"}))) == {own.pk}
    assert rows(client.get(AUDIT, {"q": "type:login.* -alice -outcome:failure"})) == [own.pk]
    assert set(rows(client.get(AUDIT, {"q": "-nobody-has-this"}))) == everything
    # A positive word and a negated one together: Alice's events not involving the admin.
    assert rows(client.get(AUDIT, {"q": "alice -admin"})) == [hers.pk]


def test_negated_free_text_is_one_chip_that_takes_its_not_out(client, org, admin):
    client.force_login(admin)
    response = client.get(AUDIT, {"q": "NOT alice type:login.*"})
    chips = {chip["label"]: chip["url"] for chip in response.context["chips"]}
    assert set(chips) == {"-alice", "type:login.*"}
    assert parse_qs(urlsplit(chips["-alice"]).query)["q"] == ["type:login.*"]
    assert parse_qs(urlsplit(chips["type:login.*"]).query)["q"] == ["NOT alice"]


def test_negated_free_text_in_the_activity_log_never_tells_what_is_hidden(
    client, org, admin, alice
):
    _named(admin, "Ada Admin")
    mine = add(org, alice)
    about_her = {"target_user": alice, "target_label": alice.email}
    reset = add(org, admin, event_type=EventType.MFA_RESET_BY_ADMIN, **about_her)
    # Who acknowledged an alert about Alice is hidden from her: -admin must not reveal it.
    triaged = add(org, admin, event_type=EventType.ALERT_ACKNOWLEDGED, **about_her)
    client.force_login(alice)
    assert set(rows(client.get(ACTIVITY, {"q": "-admin"}))) == {mine.pk, triaged.pk}
    assert set(rows(client.get(ACTIVITY, {"q": "NOT alice"}))) == set()
    assert set(rows(client.get(ACTIVITY, {"q": "-nobody"}))) == {mine.pk, reset.pk, triaged.pk}


def test_negated_free_text_searches_only_ones_own_tenant_and_role(client, org, admin, alice):
    add(org, alice)
    add(org, admin)
    other_admin = member(OrganizationFactory.create(), Role.ADMINISTRATOR)
    client.force_login(other_admin)
    assert rows(client.get(AUDIT, {"q": "-alice"})) == []  # nothing of ours, ever
    client.force_login(alice)
    assert client.get(AUDIT, {"q": "-admin"}).status_code == 403  # a member: no Audit Log


@pytest.mark.parametrize(
    ("q", "message"),
    [("alice NOT", "NOT at character 7 has nothing to negate"), ("NOT -bob", "negates twice")],
)
@pytest.mark.parametrize("url", [AUDIT, ACTIVITY])
def test_a_bad_negation_is_a_400_naming_it(client, org, admin, q, message, url):
    client.force_login(admin)
    response = client.get(url, {"q": q})
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_search_help_on_the_page_explains_negated_words(client, org, admin, alice):
    for person, url in ((admin, AUDIT), (alice, ACTIVITY)):
        client.force_login(person)
        text = client.get(url).content.decode()
        assert "<code>-bob</code>, <code>NOT bob</code>" in text
        assert "leaves out events about anyone whose name or email address contains it" in text


# --- The Advanced dropdowns: words shown, codes kept -----------------------------------------


def test_the_dropdowns_show_words_and_keep_the_codes(client, org, admin, alice):
    for person, url in ((admin, AUDIT), (alice, ACTIVITY)):
        client.force_login(person)
        text = client.get(url).content.decode()
        assert '<optgroup label="Sign-in">' in text
        assert '<option value="login.failed">Sign-in failed</option>' in text
        assert '<option value="failure">Failed</option>' in text
        assert '<option value="invalid_credentials">Wrong password</option>' in text
        assert '<option value="DE">Germany</option>' in text
        assert '<option value="authentication">Sign-in</option>' in text
        assert ">login.failed<" not in text and ">invalid_credentials<" not in text


def test_the_address_keeps_codes_and_the_chips_read_as_words(client, org, admin, alice):
    wrong = add(
        org,
        alice,
        event_type=EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
        reason="invalid_credentials",
        country="DE",
    )
    add(org, alice, event_type=EventType.LOGIN_FAILED, outcome=Outcome.FAILURE, reason="mfa_failed")
    add(org, alice, country="FR")
    client.force_login(admin)
    params = {"event_type": "login.failed", "reason": "invalid_credentials", "country": "de"}
    response = client.get(AUDIT, params)
    assert rows(response) == [wrong.pk]
    text = response.content.decode()
    assert '<option value="login.failed" selected>Sign-in failed</option>' in text
    assert '<option value="invalid_credentials" selected>Wrong password</option>' in text
    assert '<option value="DE" selected>Germany</option>' in text
    chips = {chip["label"]: chip["url"] for chip in response.context["chips"]}
    assert set(chips) == {
        "Event type: Sign-in failed",
        "Reason: Wrong password",
        "Country: Germany",
    }
    kept = parse_qs(urlsplit(chips["Country: Germany"]).query)
    assert kept["event_type"] == ["login.failed"] and kept["reason"] == ["invalid_credentials"]
    # The same in the person's own log.
    client.force_login(alice)
    assert rows(client.get(ACTIVITY, {"reason": "invalid_credentials"})) == [wrong.pk]


def test_an_unknown_code_in_a_dropdown_is_a_400_naming_the_field(client, org, admin):
    client.force_login(admin)
    response = client.get(AUDIT, {"reason": "made_up"})
    assert response.status_code == 400
    assert "made_up is not one of the available choices" in response.content.decode()


def test_htmx_gets_the_results_with_chips_and_the_full_page_the_box(client, org, admin):
    add(org, admin)
    client.force_login(admin)
    q = "type:login.* -outcome:failure"
    partial = client.get(AUDIT, {"q": q}, headers={"HX-Request": "true"})
    text = partial.content.decode()
    assert partial.status_code == 200
    assert "<html" not in text and 'data-testid="chips"' in text
    assert "HX-Request" in partial["Vary"]
    page = client.get(AUDIT, {"q": q}).content.decode()
    assert "<html" in page and 'role="search"' in page
    assert f'value="{html.escape(q)}"' in page


def test_each_chip_links_to_the_search_without_it(client, org, admin):
    client.force_login(admin)
    response = client.get(AUDIT, {"q": "type:login.* alice", "outcome": "failure", "period": "24h"})
    chips = {chip["label"]: chip["url"] for chip in response.context["chips"]}
    assert set(chips) == {"type:login.*", "alice", "Outcome: Failed", "Last 24 hours"}
    assert parse_qs(urlsplit(chips["type:login.*"]).query)["q"] == ["alice"]
    assert "outcome" not in parse_qs(urlsplit(chips["Outcome: Failed"]).query)
    assert "period" not in parse_qs(urlsplit(chips["Last 24 hours"]).query)


def test_values_in_the_table_link_to_a_narrower_search(client, org, admin, alice):
    add(org, alice, ip_address="2001:db8::7", country="DE", event_type=EventType.LOGIN_FAILED)
    client.force_login(admin)
    text = html.unescape(client.get(AUDIT, {"q": "outcome:success"}).content.decode())
    assert "?q=outcome%3Asuccess+actor%3Aalice%40acme.test" in text
    assert "?q=outcome%3Asuccess+type%3Alogin.failed" in text
    assert "?q=outcome%3Asuccess+ip%3A2001%3Adb8%3A%3A7" in text
    assert "?q=outcome%3Asuccess+country%3ADE" in text


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("foo:bar", "Unknown qualifier &quot;foo:&quot; at character 1"),
        ('actor:"alice', "Unbalanced quote"),
        ("created:2026-02-30", "is not a day of the calendar"),
        ("created:2026-11-30..2026-11-01", "the range is reversed"),
        ("ip:203.0.113.0/99", "CIDR network"),
        ("x" * 10_240, "10,240 characters long"),
    ],
)
@pytest.mark.parametrize("url", [AUDIT, ACTIVITY])
@pytest.mark.parametrize("htmx", [False, True])
def test_a_bad_search_is_a_400_with_the_message(client, org, admin, q, message, url, htmx):
    client.force_login(admin)
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(url, {"q": q}, headers=headers)
    assert response.status_code == 400
    text = response.content.decode()
    assert message in text
    assert ("<html" in text) == (not htmx)
    if not htmx:  # next to the box, too
        assert 'id="q-errors"' in text


@pytest.mark.parametrize(
    ("q", "message"),
    [("foo:bar", 'Unknown qualifier "foo:"'), ("ip:1.2.3.4/99", "CIDR network")],
)
def test_the_api_takes_the_search_and_refuses_a_bad_one(client, org, admin, q, message):
    from accounts.models import Tier
    from api.services import api_token_create

    org.tier = Tier.ENTERPRISE
    org.save()
    _, secret = api_token_create(organization=org, user=admin, name="SIEM")
    headers = {"Authorization": f"Bearer {secret}"}
    response = client.get(reverse("api:events"), {"q": q}, headers=headers)
    assert response.status_code == 400
    assert message in response.json()["fields"]["q"][0]
    assert (
        client.get(reverse("api:events"), {"q": "type:login.*"}, headers=headers).status_code == 200
    )
