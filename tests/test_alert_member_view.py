"""What a member sees of an alert about them: what happened, never the analyst's triage.

An analyst acknowledges and resolves an alert about Alice with notes, from their own address
and browser; Alice's Activity Log (list, event page, CSV) shows that it happened, not who did it,
what they wrote, or their client. The analyst still sees everything in the Audit Log.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Organization, Role, User
from alerts.models import Alert
from audit.member_view import SECURITY_TEAM
from audit.models import AuditEvent, EventType

from .alerts_support import CHROME_MAC, sign_in_from
from .factories import OrganizationFactory, member
from .helpers import client_as, events

pytestmark = pytest.mark.django_db

ANALYST_IP = "198.51.100.201"
ANALYST_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"
ACK_NOTE = "Rang her manager; looks like the phishing kit on 203.0.113.99"
RESOLVE_NOTE = "Confirmed credential stuffing, ticket SEC-4411"


@dataclass
class Triaged:
    organization: Organization
    alice: User
    analyst: User
    alert: Alert
    acknowledged: AuditEvent
    resolved: AuditEvent


@pytest.fixture
def triaged() -> Triaged:
    organization = OrganizationFactory.create()
    alice = member(organization)
    for _ in range(5):
        sign_in_from(Client(), alice.email, password="wrong", agent=CHROME_MAC)
    alert = Alert.objects.get()
    analyst = member(organization, role=Role.SECURITY_ANALYST)
    desk = client_as(analyst, REMOTE_ADDR=ANALYST_IP, HTTP_USER_AGENT=ANALYST_AGENT)
    assert (
        desk.post(reverse("alerts:alert-acknowledge", args=[alert.pk]), {"note": ACK_NOTE})
    ).status_code == 303
    assert (
        desk.post(reverse("alerts:alert-resolve", args=[alert.pk]), {"note": RESOLVE_NOTE})
    ).status_code == 303
    [acknowledged] = events(EventType.ALERT_ACKNOWLEDGED)
    [resolved] = events(EventType.ALERT_RESOLVED)
    assert acknowledged.ip_address == ANALYST_IP  # the analyst's client is recorded, as it must be
    return Triaged(organization, alice, analyst, alert, acknowledged, resolved)


def _triage_traces(triaged: Triaged) -> list[str]:
    return [ACK_NOTE, RESOLVE_NOTE, triaged.analyst.email, ANALYST_IP, "Firefox", ANALYST_AGENT]


def _assert_no_trace(triaged: Triaged, text: str) -> None:
    for trace in _triage_traces(triaged):
        assert trace not in text


def _subjects_page(triaged: Triaged, url: str) -> str:
    """The page at `url` as the alert's subject sees it: it loads and shows no triage trace."""
    response = client_as(triaged.alice).get(url)
    assert response.status_code == 200
    page = response.content.decode()
    _assert_no_trace(triaged, page)
    return page


def _activity_event(event: AuditEvent) -> str:
    return reverse("accounts:activity-event", args=[event.pk])


def _csv_rows(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- The member the alert is about ------------------------------------------------------------


@pytest.mark.parametrize("which", ["acknowledged", "resolved"])
def test_the_subject_sees_that_the_alert_was_triaged_but_not_by_whom_or_what_was_noted(
    triaged, which
):
    page = _subjects_page(triaged, _activity_event(getattr(triaged, which)))
    assert f"alert.{which}" in page
    assert SECURITY_TEAM in page
    assert triaged.alert.kind in page


def test_the_subjects_activity_list_shows_no_trace_of_the_analyst(triaged):
    page = _subjects_page(triaged, reverse("accounts:activity"))
    assert "alert.acknowledged" in page
    assert "alert.resolved" in page


def test_the_subjects_activity_csv_shows_the_triage_without_the_analyst(triaged):
    response = client_as(triaged.alice).get(reverse("exports:activity-csv"))
    assert response.status_code == 200
    rows = _csv_rows(response)
    triage = [row for row in rows if row["event_type"].startswith("alert.")]
    assert {row["event_type"] for row in triage} >= {"alert.acknowledged", "alert.resolved"}
    for row in triage:
        if row["event_type"] in ("alert.acknowledged", "alert.resolved"):
            assert row["user"] == SECURITY_TEAM
            assert row["ip_address"] == row["browser"] == row["session"] == ""
            assert row["request_id"] == ""
    _assert_no_trace(triaged, "\n".join(",".join(row.values()) for row in rows))


def test_the_subjects_alerts_page_says_what_happened_and_what_to_do_not_who_triaged(triaged):
    page = _subjects_page(triaged, reverse("alerts:my-alerts"))
    assert triaged.alert.summary in page
    assert "choose a new, unique password" in page
    assert "Resolved" in page


def test_the_subject_still_sees_their_own_events_in_full(triaged):
    # The failed sign-ins on Alice's account are hers (what happened): address and browser stay.
    rows = _csv_rows(client_as(triaged.alice).get(reverse("exports:activity-csv")))
    failures = [row for row in rows if row["event_type"] == "login.failed"]
    assert len(failures) == 5
    assert all(row["ip_address"] and row["browser"].startswith("Chrome") for row in failures)


def test_an_administrators_action_on_a_member_hides_the_administrators_client(triaged):
    admin = member(triaged.organization, role=Role.ADMINISTRATOR)
    console = client_as(admin, REMOTE_ADDR=ANALYST_IP, HTTP_USER_AGENT=ANALYST_AGENT)
    response = console.post(
        reverse("accounts:member-role", args=[triaged.alice.membership.pk]),
        {"role": Role.COMPLIANCE_OFFICER},
    )
    assert response.status_code == 303
    [changed] = events(EventType.MEMBER_ROLE_CHANGED)
    page = client_as(triaged.alice).get(_activity_event(changed)).content.decode()
    assert "member.role_changed" in page
    assert admin.email in page  # who changed her role is hers to know
    assert ANALYST_IP not in page
    assert "Firefox" not in page


# --- Everyone else -----------------------------------------------------------------------------


def test_the_analyst_still_sees_the_whole_triage_in_the_audit_log(triaged):
    analyst = client_as(triaged.analyst)
    page = analyst.get(
        reverse("accounts:audit-log-event", args=[triaged.acknowledged.pk])
    ).content.decode()
    assert ACK_NOTE in page
    assert triaged.analyst.email in page
    assert ANALYST_IP in page
    assert "Firefox" in page
    alert_page = analyst.get(reverse("alerts:alert-detail", args=[triaged.alert.pk]))
    assert RESOLVE_NOTE in alert_page.content.decode()
    rows = _csv_rows(analyst.get(reverse("exports:audit-log-csv")))
    [resolved] = [row for row in rows if row["event_type"] == "alert.resolved"]
    assert RESOLVE_NOTE in resolved["details"]
    assert resolved["ip_address"] == ANALYST_IP


def test_the_analyst_sees_their_own_triage_in_full_in_their_activity_log(triaged):
    rows = _csv_rows(client_as(triaged.analyst).get(reverse("exports:activity-csv")))
    [resolved] = [row for row in rows if row["event_type"] == "alert.resolved"]
    assert resolved["user"] == triaged.analyst.email
    assert RESOLVE_NOTE in resolved["details"]


def test_another_member_sees_nothing_of_the_alert(triaged):
    colleague = client_as(member(triaged.organization))
    assert colleague.get(_activity_event(triaged.acknowledged)).status_code == 404
    mine = colleague.get(reverse("alerts:my-alerts")).content.decode()
    assert triaged.alert.summary not in mine
    assert colleague.get(reverse("alerts:alert-detail", args=[triaged.alert.pk])).status_code == 403
    rows = _csv_rows(colleague.get(reverse("exports:activity-csv")))
    assert not [row for row in rows if row["event_type"].startswith("alert.")]


def test_another_organizations_administrator_sees_nothing_of_the_alert(triaged):
    outsider = client_as(member(OrganizationFactory.create(), role=Role.ADMINISTRATOR))
    assert outsider.get(_activity_event(triaged.acknowledged)).status_code == 404
    detail = reverse("accounts:audit-log-event", args=[triaged.acknowledged.pk])
    assert outsider.get(detail).status_code == 404
    assert outsider.get(reverse("alerts:alert-detail", args=[triaged.alert.pk])).status_code == 404
    rows = _csv_rows(outsider.get(reverse("exports:audit-log-csv")))
    assert not [row for row in rows if row["event_type"].startswith("alert.")]


@pytest.mark.parametrize(
    "url",
    [
        lambda t: _activity_event(t.acknowledged),
        lambda t: reverse("exports:activity-csv"),
        lambda t: reverse("accounts:activity"),
        lambda t: reverse("alerts:my-alerts"),
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(client, triaged, url):
    response = client.get(url(triaged))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_showing_the_member_view_changes_no_stored_event(triaged):
    alice = client_as(triaged.alice)
    before = list(AuditEvent.objects.order_by("pk").values())
    alice.get(_activity_event(triaged.acknowledged))
    alice.get(reverse("accounts:activity"))
    b"".join(alice.get(reverse("exports:activity-csv")).streaming_content)
    stored = {row["id"]: row for row in AuditEvent.objects.order_by("pk").values()}
    for row in before:
        assert stored[row["id"]] == row
