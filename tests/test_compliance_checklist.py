"""Settings → Security → Monitoring checklist: each item's status follows the system, green and
red, with the date it last changed; the guide and the retention acknowledgement; the registry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.checklist import (
    Evidence,
    EvidenceSource,
    Status,
    _sources,
    checklist_evidence_register,
)
from accounts.models import Role
from alerts.models import Alert, AlertRule, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from alerts.rules import alert_rules_ensure
from audit.models import EventType
from compliance.models import ChecklistState, Review
from compliance.services import review_schedules_ensure
from retention.models import ExportSchedule, Framework, RetentionSettings, StoredFile
from streams.models import StreamDestination, Transport

from .compliance_support import alert_at, record, review_of, team
from .helpers import client_as, events

pytestmark = pytest.mark.django_db

CHECKLIST = reverse("compliance:checklist")
GUIDE = reverse("compliance:guide")
GUIDE_EDIT = reverse("compliance:guide-edit")
ACKNOWLEDGE_GUIDE = reverse("compliance:guide-acknowledge")
RETENTION = reverse("compliance:retention-acknowledge")


@pytest.fixture
def acme():
    return team("Acme")


def _status(client, key: str) -> str:
    page = client.get(CHECKLIST).content.decode()
    marker = f'data-testid="checklist-{key}" data-status="'
    return str(page.split(marker, 1)[1].split('"', 1)[0])


@pytest.mark.parametrize(
    ("who", "checklist", "guide", "guide_edit", "retention"),
    [
        ("admin", 200, 200, 200, 200),
        ("analyst", 200, 200, 403, 403),
        ("officer", 200, 200, 403, 200),
        ("alice", 403, 403, 403, 403),
    ],
)
def test_each_page_by_role(acme, who, checklist, guide, guide_edit, retention):
    client = client_as(getattr(acme, who))
    assert client.get(CHECKLIST).status_code == checklist
    assert client.get(GUIDE).status_code == guide
    assert client.get(GUIDE_EDIT).status_code == guide_edit
    assert client.post(GUIDE_EDIT, {"body": "x"}).status_code in (guide_edit, 303)
    assert client.get(RETENTION).status_code == retention


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in (CHECKLIST, GUIDE, GUIDE_EDIT, RETENTION):
        assert client.get(url).status_code == 302
    assert client.post(ACKNOWLEDGE_GUIDE, {"version": "1"}).status_code == 302


def test_a_new_organization_has_all_but_its_default_alert_rules_to_do(acme):
    page = client_as(acme.officer).get(CHECKLIST).content.decode()
    # Every organization starts with the alert rules on, notifying its analysts and admins.
    assert page.count('data-status="to_do"') == 6
    assert 'data-testid="checklist-alerts" data-status="done"' in page
    for title in (
        "Configure alerts",
        "Set up scheduled exports",
        "Establish the review schedule",
        "Document retention requirements",
        "Test the export and archive process",
        "Correlate with security events",
        "Train the team on log analysis",
    ):
        assert title in page
    for fix in (
        "alerts:rule-list",
        "retention:archives",
        "compliance:guide",
        "alerts:webhook-list",
    ):
        assert reverse(fix) in page


def test_alerts_turn_green_when_on_and_routed_and_red_when_routed_nowhere(acme):
    client = client_as(acme.admin)
    alert_rules_ensure(organization_id=acme.org.pk)
    assert _status(client, "alerts") == "done"
    AlertRule.objects.filter(organization=acme.org).update(notify_email=False)
    assert _status(client, "alerts") == "failing"
    WebhookEndpoint.objects.create(
        organization=acme.org, url="https://siem.example.test/hook", secret="whsec_" + "a" * 32
    )
    assert _status(client, "alerts") == "done"
    AlertRule.objects.filter(organization=acme.org).update(enabled=False)
    assert _status(client, "alerts") == "to_do"


def test_a_scheduled_export_turns_green_and_its_failure_red(acme):
    client = client_as(acme.admin)
    schedule = ExportSchedule.objects.create(
        organization=acme.org,
        name="Daily",
        frequency="daily",
        window_days=1,
        next_run_at=timezone.now(),
    )
    assert _status(client, "scheduled_exports") == "done"
    schedule.last_error = "The storage refused the file"
    schedule.save()
    assert _status(client, "scheduled_exports") == "failing"


def test_the_review_schedule_is_green_until_a_review_is_overdue(acme):
    client = client_as(acme.admin)
    review_schedules_ensure(organization=acme.org)
    assert _status(client, "review_schedule") == "done"
    review = review_of(acme.org, Role.SECURITY_ANALYST, days_ago=5)
    Review.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    assert _status(client, "review_schedule") == "failing"


def test_retention_is_documented_once_acknowledged_and_again_after_a_change(acme):
    client = client_as(acme.officer)
    assert _status(client, "retention_documented") == "to_do"
    # Nothing to acknowledge before the frameworks are declared.
    refused = client.post(RETENTION, follow=True)
    assert "Declare the frameworks you follow" in refused.content.decode()
    settings_row = RetentionSettings.objects.create(
        organization=acme.org, frameworks=[Framework.HIPAA]
    )
    page = client.get(RETENTION).content.decode()
    assert "HIPAA §164.316(b)(2)" in page  # the warning the officer acknowledges

    assert client.post(RETENTION).status_code == 303

    assert _status(client, "retention_documented") == "done"
    [acknowledged] = events(EventType.SETTINGS_CHANGED)
    assert acknowledged.details["area"] == "retention_acknowledgement"
    assert acknowledged.details["new"]["frameworks"] == ["hipaa"]
    assert acknowledged.details["new"]["warnings"]
    settings_row.frameworks = [Framework.PCI_DSS, Framework.HIPAA]
    settings_row.save()
    assert _status(client, "retention_documented") == "to_do"


def test_export_and_archive_tested_follows_the_last_verifications(acme):
    client = client_as(acme.officer)
    now = timezone.now()
    record(acme.org, EventType.INTEGRITY_VERIFIED, now - timedelta(days=40))
    assert _status(client, "export_tested") == "to_do"  # too long ago
    record(acme.org, EventType.INTEGRITY_VERIFIED, now - timedelta(hours=1))
    assert _status(client, "export_tested") == "done"
    stored = StoredFile.objects.create(
        organization=acme.org,
        kind="export",
        name="acme/export.csv.gz",
        sha256="0" * 64,
        row_count=1,
        size=1,
        verified_at=now,
        verify_status="mismatch",
    )
    assert _status(client, "export_tested") == "failing"
    stored.verify_status = "ok"
    stored.save()
    assert _status(client, "export_tested") == "done"
    record(acme.org, EventType.INTEGRITY_FAILED, now)
    assert _status(client, "export_tested") == "failing"


def test_correlation_follows_the_last_webhook_delivery(acme):
    client = client_as(acme.admin)
    endpoint = WebhookEndpoint.objects.create(
        organization=acme.org, url="https://siem.example.test/hook", secret="whsec_" + "a" * 32
    )
    assert _status(client, "correlation") == "to_do"
    alert: Alert = alert_at(acme.org, timezone.now())
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, alert=alert, status=DeliveryStatus.SUCCEEDED, delivered_at=timezone.now()
    )
    assert _status(client, "correlation") == "done"
    WebhookDelivery.objects.create(endpoint=endpoint, alert=alert, status=DeliveryStatus.FAILED)
    assert _status(client, "correlation") == "failing"
    assert delivery.pk


def test_another_app_adds_its_evidence_to_an_item(acme):
    client = client_as(acme.admin)
    checklist_evidence_register(
        EvidenceSource(
            "correlation",
            "SIEM stream",
            lambda organization, now: Evidence(Status.DONE, "Streaming to the SIEM"),
        )
    )
    try:
        assert _status(client, "correlation") == "done"
        assert "Streaming to the SIEM" in client.get(CHECKLIST).content.decode()
    finally:
        del _sources["correlation", "SIEM stream"]
    assert _status(client, "correlation") == "to_do"


def test_the_team_is_trained_when_every_administrator_and_analyst_read_the_guide(acme):
    admin = client_as(acme.admin)
    assert admin.post(GUIDE_EDIT, {"body": "Look at failed sign-ins first."}).status_code == 303
    [edited] = events(EventType.SETTINGS_CHANGED)
    assert edited.details["area"] == "log_analysis_guide"
    assert edited.details["old"] == {"version": 0, "body": ""}
    assert edited.details["new"]["version"] == 1
    assert _status(admin, "team_trained") == "to_do"
    for person in (acme.admin, acme.second_admin, acme.analyst):
        response = client_as(person).post(ACKNOWLEDGE_GUIDE, {"version": "1"})
        assert response.status_code == 303
    assert _status(admin, "team_trained") == "done"
    assert "You acknowledged this version" in client_as(acme.analyst).get(GUIDE).content.decode()
    # A new version is read again.
    admin.post(GUIDE_EDIT, {"body": "Look at failed sign-ins first, then lockouts."})
    assert _status(admin, "team_trained") == "to_do"


@pytest.mark.parametrize("version", ["", "abc", "7"])
def test_a_stale_or_garbled_acknowledgement_is_refused_with_a_message(acme, version):
    client_as(acme.admin).post(GUIDE_EDIT, {"body": "Read the log."})
    response = client_as(acme.analyst).post(ACKNOWLEDGE_GUIDE, {"version": version}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "read the guide again" in page or "read it again" in page


def test_an_empty_or_oversized_guide_is_refused(acme):
    client = client_as(acme.admin)
    assert client.post(GUIDE_EDIT, {"body": "  "}).status_code == 400
    response = client.post(GUIDE_EDIT, {"body": "x" * 20_001})
    assert response.status_code == 400
    assert "at most 20000 characters" in response.content.decode()
    assert not events(EventType.SETTINGS_CHANGED)


def test_each_item_keeps_the_date_it_last_changed(acme):
    client = client_as(acme.admin)
    client.get(CHECKLIST)
    first = ChecklistState.objects.get(organization=acme.org, item="scheduled_exports")
    client.get(CHECKLIST)
    assert ChecklistState.objects.get(pk=first.pk).changed_at == first.changed_at
    ExportSchedule.objects.create(
        organization=acme.org,
        name="Daily",
        frequency="daily",
        window_days=1,
        next_run_at=timezone.now(),
    )
    client.get(CHECKLIST)
    changed = ChecklistState.objects.get(pk=first.pk)
    assert changed.status == "done" and changed.changed_at > first.changed_at
    # Another organization's items are its own.
    other = team("Globex")
    assert _status(client_as(other.admin), "scheduled_exports") == "to_do"


def test_a_delivering_siem_stream_is_correlation_and_a_failing_one_is_not(acme):
    client = client_as(acme.admin)
    assert _status(client, "correlation") == "to_do"
    stream = StreamDestination.objects.create(
        organization=acme.org, name="SOC syslog", transport=Transport.SYSLOG, host="siem.test"
    )
    assert _status(client, "correlation") == "to_do"  # set up, nothing delivered yet
    StreamDestination.objects.filter(pk=stream.pk).update(last_delivery_at=timezone.now())
    assert _status(client, "correlation") == "done"
    assert "Streaming to 1 destination(s)" in client.get(CHECKLIST).content.decode()
    StreamDestination.objects.filter(pk=stream.pk).update(failing_since=timezone.now())
    assert _status(client, "correlation") == "failing"
    assert "“SOC syslog” has been failing" in client.get(CHECKLIST).content.decode()
