"""Triage, rules, webhooks and own-alert pages: who may see and do what, and bad input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Organization, Role, User
from alerts.models import Alert, AlertRule, AlertStatus, RuleKind, WebhookEndpoint
from audit.models import EventType

from .alerts_support import sign_in_from
from .factories import OrganizationFactory, member
from .helpers import client_as, events

pytestmark = pytest.mark.django_db


@dataclass
class Org:
    organization: Organization
    admin: User
    analyst: User
    compliance: User
    victim: User
    alert: Alert


@pytest.fixture
def acme() -> Org:
    org = OrganizationFactory.create()
    victim = member(org)
    for _ in range(5):
        sign_in_from(Client(), victim.email, password="wrong")
    return Org(
        organization=org,
        admin=member(org, role=Role.ADMINISTRATOR),
        analyst=member(org, role=Role.SECURITY_ANALYST),
        compliance=member(org, role=Role.COMPLIANCE_OFFICER),
        victim=victim,
        alert=Alert.objects.get(),
    )


@pytest.fixture
def other_admin() -> User:
    return member(OrganizationFactory.create(), role=Role.ADMINISTRATOR)


def _triage(user: User, action: str, alert: Alert, **data: object):
    """POST one triage action (acknowledge, assign, resolve) on `alert` as `user`."""
    return client_as(user).post(_url(f"alert-{action}", alert.pk), data)


def _url(name: str, *args: object) -> str:
    return reverse(f"alerts:{name}", args=args)


# --- List ------------------------------------------------------------------------------------


def test_alert_list_sends_anonymous_visitors_to_sign_in(client, acme):
    response = client.get(_url("alert-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", ["victim", "compliance"])
def test_alert_list_is_refused_to_members_and_compliance(acme, role):
    response = client_as(getattr(acme, role)).get(_url("alert-list"))
    assert response.status_code == 403


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_analysts_and_administrators_see_their_organizations_alerts(acme, role):
    response = client_as(getattr(acme, role)).get(_url("alert-list"))
    assert response.status_code == 200
    assert acme.alert.summary in response.content.decode()


def test_another_organizations_administrator_sees_none_of_them(acme, other_admin):
    response = client_as(other_admin).get(_url("alert-list"))
    assert response.status_code == 200
    assert acme.alert.summary not in response.content.decode()


def test_alert_list_htmx_request_gets_only_the_results(acme):
    response = client_as(acme.analyst).get(_url("alert-list"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert acme.alert.summary in body
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"status": "open"}, True),
        ({"status": "resolved"}, False),
        ({"rule": RuleKind.FAILED_SIGN_INS}, True),
        ({"rule": RuleKind.NEW_DEVICE}, False),
        ({"severity": "high"}, True),
        ({"severity": "low"}, False),
    ],
)
def test_alert_list_filters(acme, query, shown):
    response = client_as(acme.analyst).get(_url("alert-list"), query)
    assert (acme.alert.summary in response.content.decode()) is shown


def test_alert_list_filters_by_user(acme):
    analyst = client_as(acme.analyst)
    assert (
        acme.alert.summary
        in analyst.get(_url("alert-list"), {"user": acme.victim.email}).content.decode()
    )
    assert (
        acme.alert.summary
        not in analyst.get(_url("alert-list"), {"user": "x@y.test"}).content.decode()
    )


def test_alert_list_refuses_an_unknown_status_with_a_clear_message(acme):
    response = client_as(acme.analyst).get(_url("alert-list"), {"status": "exploded"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_navigation_shows_the_open_alert_count_to_analysts(acme):
    body = client_as(acme.analyst).get(reverse("accounts:profile")).content.decode()
    assert 'data-testid="nav-open-alerts">1<' in body


def test_navigation_shows_no_alerts_to_members(acme):
    body = client_as(acme.victim).get(reverse("accounts:profile")).content.decode()
    assert "nav-open-alerts" not in body


# --- Detail ----------------------------------------------------------------------------------


def test_alert_detail_shows_the_triggering_events_and_audit_log_links(acme):
    response = client_as(acme.analyst).get(_url("alert-detail", acme.alert.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('<code class="code-secondary">login.failed</code>') == 5
    assert body.count("Sign-in failed: Wrong password") == 5
    assert "/settings/security/audit-log/?user=" + acme.victim.email.replace("@", "%40") in body
    assert "/settings/security/audit-log/?ip=198.51.100.7" in body


def test_alert_detail_gives_times_and_notes_in_the_viewers_zone(acme):
    User.objects.filter(pk=acme.analyst.pk).update(time_zone="Asia/Tokyo")
    _triage(acme.analyst, "acknowledge", acme.alert, note="on it")
    acme.alert.refresh_from_db()
    [note] = acme.alert.notes

    body = client_as(acme.analyst).get(_url("alert-detail", acme.alert.pk)).content.decode()

    at = datetime.fromisoformat(note["at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert f'title="{at:%Y-%m-%d %H:%M:%S} JST (Asia/Tokyo)"' in body
    assert f"<time>{note['at'][:19]}</time>" not in body  # no raw ISO text as before
    assert "Acknowledged: on it" in body
    assert "Times in Asia/Tokyo" in body


def test_alert_detail_of_another_organization_does_not_exist(acme, other_admin):
    assert client_as(other_admin).get(_url("alert-detail", acme.alert.pk)).status_code == 404


def test_alert_detail_is_refused_to_members(acme):
    assert client_as(acme.victim).get(_url("alert-detail", acme.alert.pk)).status_code == 403


def test_alert_detail_sends_anonymous_visitors_to_sign_in(client, acme):
    assert client.get(_url("alert-detail", acme.alert.pk)).status_code == 302


# --- Acknowledge, assign, resolve ------------------------------------------------------------


def test_acknowledging_records_who_and_moves_the_alert_on(acme):
    response = _triage(acme.analyst, "acknowledge", acme.alert, note="on it")

    assert response.status_code == 303
    acme.alert.refresh_from_db()
    assert acme.alert.status == AlertStatus.ACKNOWLEDGED
    assert acme.alert.assignee == acme.analyst
    [event] = events(EventType.ALERT_ACKNOWLEDGED)
    assert event.actor_id == acme.analyst.pk
    assert event.target_user_id == acme.victim.pk
    assert event.details["alert_id"] == acme.alert.pk
    assert event.details["note"] == "on it"


def test_acknowledging_with_htmx_returns_the_triage_panel(acme):
    response = client_as(acme.analyst).post(
        _url("alert-acknowledge", acme.alert.pk), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert "Acknowledged" in body


def test_acknowledging_twice_is_a_clear_400(acme):
    analyst = client_as(acme.analyst)
    analyst.post(_url("alert-acknowledge", acme.alert.pk))
    response = analyst.post(_url("alert-acknowledge", acme.alert.pk))
    assert response.status_code == 400
    assert "Only open alerts can be acknowledged" in response.content.decode()
    assert len(events(EventType.ALERT_ACKNOWLEDGED)) == 1


def test_acknowledge_needs_post(acme):
    assert client_as(acme.analyst).get(_url("alert-acknowledge", acme.alert.pk)).status_code == 405


def test_another_organization_cannot_acknowledge(acme, other_admin):
    response = _triage(other_admin, "acknowledge", acme.alert)
    assert response.status_code == 404
    acme.alert.refresh_from_db()
    assert acme.alert.status == AlertStatus.OPEN


def test_members_cannot_resolve(acme):
    response = _triage(acme.victim, "resolve", acme.alert, note="fine")
    assert response.status_code == 403
    acme.alert.refresh_from_db()
    assert acme.alert.status == AlertStatus.OPEN


def test_assigning_to_an_administrator_records_old_and_new_assignee(acme):
    response = _triage(acme.analyst, "assign", acme.alert, assignee=acme.admin.pk)
    assert response.status_code == 303
    acme.alert.refresh_from_db()
    assert acme.alert.assignee == acme.admin
    [event] = events(EventType.ALERT_ACKNOWLEDGED)
    assert event.details["action"] == "assigned"
    assert event.details["new_assignee"] == acme.admin.email
    assert event.details["old_assignee"] is None


@pytest.mark.parametrize("who", ["member", "stranger"])
def test_assigning_to_someone_who_cannot_triage_is_refused(acme, other_admin, who):
    assignee = acme.victim if who == "member" else other_admin
    response = _triage(acme.analyst, "assign", acme.alert, assignee=assignee.pk)
    assert response.status_code == 400
    assert "Choose an analyst or administrator" in response.content.decode()
    acme.alert.refresh_from_db()
    assert acme.alert.assignee is None


def test_resolving_needs_a_note(acme):
    response = _triage(acme.analyst, "resolve", acme.alert, note="  ")
    assert response.status_code == 400
    assert "Say in a note how the alert was resolved" in response.content.decode()
    acme.alert.refresh_from_db()
    assert acme.alert.status == AlertStatus.OPEN


def test_resolving_with_a_note_records_it(acme):
    response = _triage(acme.admin, "resolve", acme.alert, note="User mistyped; reset password.")
    assert response.status_code == 303
    acme.alert.refresh_from_db()
    assert acme.alert.status == AlertStatus.RESOLVED
    assert acme.alert.notes[-1]["text"] == "User mistyped; reset password."
    [event] = events(EventType.ALERT_RESOLVED)
    assert event.actor_id == acme.admin.pk
    assert event.details["note"] == "User mistyped; reset password."


def test_a_resolved_alert_cannot_be_resolved_again(acme):
    admin = client_as(acme.admin)
    admin.post(_url("alert-resolve", acme.alert.pk), {"note": "done"})
    response = admin.post(_url("alert-resolve", acme.alert.pk), {"note": "again"})
    assert response.status_code == 400
    assert "already resolved" in response.content.decode()


def test_the_rule_matching_again_reopens_a_resolved_alert(acme):
    _triage(acme.admin, "resolve", acme.alert, note="done")
    sign_in_from(Client(), acme.victim.email, password="wrong")
    acme.alert.refresh_from_db()
    assert acme.alert.status == AlertStatus.OPEN
    assert Alert.objects.count() == 1
    assert events(EventType.ALERT_RAISED)[-1].details["reopened"] is True


# --- Rules -----------------------------------------------------------------------------------


def test_rule_list_shows_analysts_the_rules_without_edit_links(acme):
    response = client_as(acme.analyst).get(_url("rule-list"))
    assert response.status_code == 200
    assert "Impossible travel" in response.content.decode()
    assert _url("rule-edit", "new_device") not in response.content.decode()


def test_rule_list_writes_flags_as_yes_and_no(acme):
    body = client_as(acme.analyst).get(_url("rule-list")).content.decode()

    assert "Also alert on another network in the same country: No" in body
    assert ": False" not in body and ": True" not in body


def test_rule_list_offers_administrators_edit_links(acme):
    response = client_as(acme.admin).get(_url("rule-list"))
    assert _url("rule-edit", "new_device") in response.content.decode()


def test_rule_list_is_refused_to_members(acme):
    assert client_as(acme.victim).get(_url("rule-list")).status_code == 403


def test_rule_edit_is_for_administrators_only(acme):
    assert client_as(acme.analyst).get(_url("rule-edit", "failed_sign_ins")).status_code == 403
    assert client_as(acme.admin).get(_url("rule-edit", "failed_sign_ins")).status_code == 200


def test_rule_edit_sends_anonymous_visitors_to_sign_in(client):
    assert client.get(_url("rule-edit", "failed_sign_ins")).status_code == 302


def _rule_form(**changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "enabled": "on",
        "severity": "high",
        "notify_email": "on",
        "notify_webhook": "on",
        "threshold": 5,
        "window_minutes": 15,
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_saving_a_rule_records_settings_changed_with_old_and_new_values(acme, other_admin):
    response = client_as(acme.admin).post(
        _url("rule-edit", "failed_sign_ins"), _rule_form(threshold=8, notify_email=None)
    )
    assert response.status_code == 303
    rule = AlertRule.objects.get(organization=acme.organization, kind="failed_sign_ins")
    assert rule.parameters == {"threshold": 8, "window_minutes": 15}
    assert rule.notify_email is False
    [event] = events(EventType.SETTINGS_CHANGED)
    assert event.actor_id == acme.admin.pk
    assert event.details["old"]["parameters"]["threshold"] == 5
    assert event.details["new"]["parameters"]["threshold"] == 8
    assert set(event.details["changed"]) == {"parameters", "notify_email"}
    other = AlertRule.objects.get(
        organization=other_admin.membership.organization, kind="failed_sign_ins"
    )
    assert other.parameters["threshold"] == 5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, "at least 2"),
        (5000, "at most 1000"),
        ("five", "enter a whole number"),
        ("", "enter a number"),
    ],
)
def test_a_threshold_out_of_range_or_not_a_number_is_refused(acme, value, message):
    response = client_as(acme.admin).post(
        _url("rule-edit", "failed_sign_ins"), _rule_form(threshold=value)
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    rule = AlertRule.objects.get(organization=acme.organization, kind="failed_sign_ins")
    assert rule.parameters["threshold"] == 5
    assert events(EventType.SETTINGS_CHANGED) == []


def test_an_unknown_rule_is_404(acme):
    assert client_as(acme.admin).get(_url("rule-edit", "teleportation")).status_code == 404


def test_a_rule_edited_to_fire_later_takes_effect(acme):
    client_as(acme.admin).post(_url("rule-edit", "failed_sign_ins"), _rule_form(threshold=8))
    someone = member(acme.organization)
    for _ in range(6):
        sign_in_from(Client(), someone.email, password="wrong")
    assert Alert.objects.filter(subject_user=someone).count() == 0


# --- Webhooks --------------------------------------------------------------------------------


def test_webhook_list_is_for_administrators_only(acme, client):
    assert client_as(acme.admin).get(_url("webhook-list")).status_code == 200
    assert client_as(acme.analyst).get(_url("webhook-list")).status_code == 403
    assert client_as(acme.victim).get(_url("webhook-list")).status_code == 403
    assert client.get(_url("webhook-list")).status_code == 302


def test_adding_a_public_https_webhook_records_settings_changed_without_the_secret(acme):
    response = client_as(acme.admin).post(
        _url("webhook-list"), {"url": "https://93.184.215.14/hooks", "description": "SIEM"}
    )
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 303
    assert response["Location"] == _url("webhook-detail", endpoint.pk)
    assert endpoint.secret.startswith("whsec_")
    [event] = events(EventType.SETTINGS_CHANGED)
    assert event.details["new"]["url"] == "https://93.184.215.14/hooks"
    assert endpoint.secret not in str(event.details)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.215.14/hooks", "must use https"),
        ("https://127.0.0.1/hooks", "private, loopback or reserved"),
        ("https://192.168.1.10/hooks", "private, loopback or reserved"),
        ("not a url", "Enter a full URL"),
    ],
)
def test_a_webhook_that_is_not_public_https_is_refused_with_a_clear_message(acme, url, message):
    response = client_as(acme.admin).post(_url("webhook-list"), {"url": url})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_private_webhooks_are_allowed_when_the_development_setting_says_so(acme, settings):
    settings.ALERTS_WEBHOOK_ALLOW_PRIVATE = True
    response = client_as(acme.admin).post(_url("webhook-list"), {"url": "http://127.0.0.1:9/hooks"})
    assert response.status_code == 303


def test_the_webhook_secret_is_shown_once_right_after_it_is_added(acme):
    admin = client_as(acme.admin)
    response = admin.post(_url("webhook-list"), {"url": "https://93.184.215.14/hooks"}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 200
    assert endpoint.secret in response.content.decode()
    again = admin.get(_url("webhook-detail", endpoint.pk)).content.decode()
    assert endpoint.secret not in again
    assert "Shown once" in again
    assert "Delivery log" in again


def test_the_webhook_detail_page_later_does_not_show_the_stored_secret(acme):
    endpoint = WebhookEndpoint.objects.create(
        organization=acme.organization, url="https://93.184.215.14/h", secret="ab" * 32
    )
    response = client_as(acme.admin).get(_url("webhook-detail", endpoint.pk))
    assert response.status_code == 200
    assert "ab" * 32 not in response.content.decode()
    assert "Delivery log" in response.content.decode()


def test_another_organizations_webhook_does_not_exist(acme, other_admin):
    endpoint = WebhookEndpoint.objects.create(
        organization=acme.organization, url="https://93.184.215.14/h", secret="ab" * 32
    )
    assert client_as(other_admin).get(_url("webhook-detail", endpoint.pk)).status_code == 404
    assert client_as(other_admin).post(_url("webhook-delete", endpoint.pk)).status_code == 404
    assert WebhookEndpoint.objects.count() == 1


def test_removing_a_webhook_records_settings_changed(acme):
    endpoint = WebhookEndpoint.objects.create(
        organization=acme.organization, url="https://93.184.215.14/h", secret="ab" * 32
    )
    response = client_as(acme.admin).post(_url("webhook-delete", endpoint.pk))
    assert response.status_code == 303
    assert WebhookEndpoint.objects.count() == 0
    [event] = events(EventType.SETTINGS_CHANGED)
    assert event.details["old"]["url"] == "https://93.184.215.14/h"
    assert event.details["new"] is None


def test_analysts_cannot_remove_webhooks(acme):
    endpoint = WebhookEndpoint.objects.create(
        organization=acme.organization, url="https://93.184.215.14/h", secret="ab" * 32
    )
    assert client_as(acme.analyst).post(_url("webhook-delete", endpoint.pk)).status_code == 403


# --- Own alerts ------------------------------------------------------------------------------


def test_members_see_alerts_about_their_own_account(acme):
    response = client_as(acme.victim).get(_url("my-alerts"))
    assert response.status_code == 200
    assert acme.alert.summary in response.content.decode()


def test_members_do_not_see_alerts_about_others(acme):
    colleague = member(acme.organization)
    response = client_as(colleague).get(_url("my-alerts"))
    assert acme.alert.summary not in response.content.decode()


def test_own_alerts_send_anonymous_visitors_to_sign_in(client):
    assert client.get(_url("my-alerts")).status_code == 302


def test_the_audit_log_links_of_an_alert_open_the_filtered_audit_log(acme):
    analyst = client_as(acme.analyst)
    link = f"/settings/security/audit-log/?user={acme.victim.email}"
    response = analyst.get(link)
    assert response.status_code == 200
    assert "login.failed" in response.content.decode()
    assert analyst.get("/settings/security/audit-log/?ip=198.51.100.7").status_code == 200
