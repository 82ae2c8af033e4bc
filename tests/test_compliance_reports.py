"""Settings → Security → Compliance reports: the job, the figures against events the test made,
the bundle and its manifest, audited creation and downloads, bad periods refused."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from alerts.models import Alert, AlertRule, RuleKind
from audit.models import EventType
from reports.models import (
    AccessReview,
    AccessReviewItem,
    ComplianceReport,
    Decision,
    ReportStatus,
)
from reports.sections import Evidence, Status

from .factories import OrganizationFactory, member
from .helpers import client_as, events
from .test_audit_log import add

pytestmark = pytest.mark.django_db

LIST = reverse("reports:reports")
# The period the tests report on: March 2026, [1 March, 1 April).
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
TODAY = datetime.now(UTC).date()
MARCH = {"framework": "pci_dss", "start": "2026-03-01", "end": "2026-03-31"}


@pytest.fixture
def officer(org):
    return member(org, Role.COMPLIANCE_OFFICER, email="compliance@acme.test")


def create(client, data=MARCH) -> ComplianceReport:
    """Ask for a report through the page; its job runs (eagerly) as the request commits."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(LIST, data)
    assert response.status_code == 303, response.content.decode()[:2000]
    report = ComplianceReport.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    report.refresh_from_db()
    return report


def section(report: ComplianceReport, name: str) -> dict[str, Any]:
    return next(s for s in report.content["sections"] if s["name"] == name)


def figure(report: ComplianceReport, name: str, label: str) -> str:
    return str(dict(section(report, name)["figures"])[label])


def alert(org, rule, *, raised, acknowledged=None, resolved=None, key="k") -> Alert:
    return Alert.objects.create(
        organization=org,
        rule=rule,
        kind=rule.kind,
        severity="high",
        subject_key=key,
        window_key=key,
        summary=f"alert {key}",
        first_seen_at=raised,
        last_seen_at=raised,
        created_at=raised,
        acknowledged_at=acknowledged,
        resolved_at=resolved,
        status="resolved" if resolved else ("acknowledged" if acknowledged else "open"),
    )


# --- Who may ----------------------------------------------------------------------------------


@pytest.fixture
def report(org, officer):
    return create(client_as(officer))


def urls_of(report) -> list[str]:
    return [
        reverse("reports:report", args=[report.pk]),
        reverse("reports:report-status", args=[report.pk]),
        reverse("reports:report-download", args=[report.pk]),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, report):
    for url in [LIST, *urls_of(report)]:
        assert client.get(url).status_code == 302


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST])
def test_other_roles_are_refused(org, report, role):
    client = client_as(member(org, role))
    for url in [LIST, *urls_of(report)]:
        assert client.get(url).status_code == 403, url
    assert client.post(LIST, {**MARCH, "framework": "soc2"}).status_code == 403
    assert events(EventType.REPORT_DOWNLOADED) == []
    assert ComplianceReport.objects.count() == 1


def test_another_tenants_administrator_finds_nothing(report):
    client = client_as(member(OrganizationFactory(), Role.ADMINISTRATOR))
    for url in urls_of(report):
        assert client.get(url).status_code == 404, url
    assert str(report.pk) not in client.get(LIST).content.decode()
    assert events(EventType.REPORT_DOWNLOADED) == []


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER])
def test_administrators_and_compliance_officers_open_every_view(org, report, role):
    client = client_as(member(org, role))
    assert client.get(LIST).status_code == 200
    page = client.get(urls_of(report)[0])
    assert page.status_code == 200 and "PCI DSS report" in page.content.decode()
    status = client.get(urls_of(report)[1], HTTP_HX_REQUEST="true")
    assert status.status_code == 286  # done: htmx stops polling
    assert client.get(urls_of(report)[2]).status_code == 200


# --- Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**MARCH, "end": "2026-02-28"}, "must end on or after the day it starts"),
        ({**MARCH, "end": str(TODAY + timedelta(days=3))}, "must be over"),
        ({**MARCH, "start": str(TODAY), "end": str(TODAY)}, "must be over"),
        ({**MARCH, "start": "2024-01-01"}, "at most 366 days"),
        ({**MARCH, "framework": "iso27001"}, "Select a valid choice"),
        ({**MARCH, "start": "yesterday"}, "Enter a valid date"),
    ],
)
def test_bad_periods_are_refused_with_a_clear_message(officer, data, message):
    response = client_as(officer).post(LIST, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ComplianceReport.objects.count() == 0
    assert events(EventType.REPORT_CREATED) == []


def test_an_overlapping_period_of_the_same_framework_is_refused(officer, report):
    client = client_as(officer)
    response = client.post(LIST, {**MARCH, "start": "2026-03-31", "end": "2026-04-10"})
    assert response.status_code == 400
    assert "already covers part of this period" in response.content.decode()
    # The next day on, or another framework, is no overlap.
    create(client, {**MARCH, "start": "2026-04-01", "end": "2026-04-10"})
    create(client, {**MARCH, "framework": "soc2"})
    assert ComplianceReport.objects.count() == 3


# --- The report -------------------------------------------------------------------------------


def test_a_period_with_no_events_gives_an_honest_empty_report(officer):
    report = create(
        client_as(officer), {"framework": "soc2", "start": "2025-01-01", "end": "2025-01-31"}
    )
    assert report.status == ReportStatus.DONE
    assert report.content["empty"] is True
    assert section(report, "audit_trail")["status"] == Status.NO_EVIDENCE
    assert figure(report, "audit_trail", "Events recorded in the period") == "0"
    assert figure(report, "alerts", "Alerts raised") == "0"
    page = client_as(officer).get(reverse("reports:report", args=[report.pk])).content.decode()
    assert "No events were recorded for this organization in the period" in page


def test_the_figures_are_those_of_the_events_and_rows_of_the_period(org, admin, officer):
    other = OrganizationFactory()
    at = START + timedelta(days=10)
    for _ in range(4):
        add(org, admin, event_type=EventType.LOGIN_SUCCEEDED, occurred_at=at)
    add(org, admin, event_type=EventType.LOGIN_SUCCEEDED, occurred_at=END)  # the day after
    add(org, admin, event_type=EventType.LOGIN_SUCCEEDED, occurred_at=START - timedelta(seconds=1))
    add(other, None, event_type=EventType.LOCKOUT_TRIGGERED, occurred_at=at)  # another tenant
    add(
        org,
        admin,
        event_type=EventType.LOCKOUT_TRIGGERED,
        occurred_at=at,
        target_label="alice@acme.test",
    )
    add(
        org,
        admin,
        event_type=EventType.LOCKOUT_TRIGGERED,
        occurred_at=at,
        target_label="bob@acme.test",
    )
    add(
        org,
        admin,
        event_type=EventType.INTEGRITY_VERIFIED,
        occurred_at=at,
        details={"events": 6, "problems": 0},
    )
    rule, _ = AlertRule.objects.get_or_create(organization=org, kind=RuleKind.FAILED_SIGN_INS)
    AlertRule.objects.filter(pk=rule.pk).update(enabled=True)
    alert(
        org,
        rule,
        raised=at,
        acknowledged=at + timedelta(minutes=10),
        resolved=at + timedelta(hours=3),
        key="a",
    )
    alert(org, rule, raised=at, acknowledged=at + timedelta(minutes=30), key="b")
    alert(org, rule, raised=at, key="c")
    alert(org, rule, raised=END + timedelta(hours=1), key="d")  # after the period
    review = AccessReview.objects.create(
        organization=org,
        started_by=officer,
        started_by_label=officer.email,
        started_at=at,
        completed_at=at + timedelta(hours=1),
        completed_by_label=officer.email,
    )
    for email, decision in [("x@acme.test", Decision.KEEP), ("y@acme.test", Decision.REMOVE)]:
        AccessReviewItem.objects.create(
            review=review, organization=org, email=email, role=Role.MEMBER, decision=decision
        )

    report = create(client_as(officer))

    assert report.status == ReportStatus.DONE and report.sections_done == report.sections_total
    assert report.content["empty"] is False
    assert figure(report, "audit_trail", "Events recorded in the period") == "7"
    assert section(report, "audit_trail")["preview"] == [
        ["integrity.verified", "administration", "1"],
        ["lockout.triggered", "lockout", "2"],
        ["login.succeeded", "authentication", "4"],
    ]
    assert figure(report, "alerts", "Alerts raised") == "3"
    assert figure(report, "alerts", "Acknowledged") == "2"
    assert figure(report, "alerts", "Resolved") == "1"
    assert figure(report, "alerts", "Never acknowledged nor resolved") == "1"
    assert figure(report, "alerts", "Median time to acknowledge") == "20 min"
    assert figure(report, "alerts", "Longest time to acknowledge") == "30 min"
    assert figure(report, "alerts", "Median time to resolve") == "3.0 h"
    assert section(report, "alerts")["status"] == Status.ATTENTION
    assert figure(report, "lockout", "Lockouts in the period") == "2"
    assert (
        figure(report, "lockout", "PCI DSS 8.3.4 (at most 10 attempts, at least 30 min)") == "met"
    )
    assert [c["reference"] for c in section(report, "lockout")["clauses"]] == ["8.3.4"]
    assert figure(report, "integrity", "Verifications in the period") == "1"
    assert figure(report, "access_reviews", "Campaigns completed in the period") == "1"
    assert figure(report, "access_reviews", "Removed") == "1"
    assert section(report, "access_reviews")["status"] == Status.MET
    assert (
        figure(report, "retention", "Oldest event held")
        == (START - timedelta(seconds=1)).isoformat()
    )


def test_a_lockout_policy_weaker_than_pci_8_3_4_is_reported(org, officer):
    org.lockout_threshold, org.lockout_duration_minutes = 12, 15
    org.save()
    report = create(client_as(officer))
    assert (
        figure(report, "lockout", "PCI DSS 8.3.4 (at most 10 attempts, at least 30 min)")
        == "not met"
    )
    assert section(report, "lockout")["status"] == Status.ATTENTION
    assert "at most 10" in section(report, "lockout")["notes"][0]


def test_each_framework_names_its_own_clauses(officer):
    client = client_as(officer)
    soc2 = create(client, {**MARCH, "framework": "soc2"})
    hipaa = create(client, {**MARCH, "framework": "hipaa"})
    assert [c["reference"] for c in section(soc2, "access_reviews")["clauses"]] == [
        "CC6.2",
        "CC6.3",
    ]
    assert [c["reference"] for c in section(hipaa, "integrity")["clauses"]] == ["164.312(c)(1)"]


# --- The bundle -------------------------------------------------------------------------------


def test_the_bundle_holds_the_report_csvs_and_a_manifest_whose_hashes_match(org, admin, officer):
    add(org, admin, event_type=EventType.LOGIN_SUCCEEDED, occurred_at=START + timedelta(days=1))
    add(
        org,
        None,
        actor_label="=cmd|' /C calc'!A0",
        event_type=EventType.LOCKOUT_TRIGGERED,
        occurred_at=START + timedelta(days=2),
    )
    client = client_as(officer)
    report = create(client)
    assert [e.details["report_id"] for e in events(EventType.REPORT_CREATED)] == [str(report.pk)]

    response = client.get(reverse("reports:report-download", args=[report.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == report.sha256 == response["X-Content-SHA256"]
    bundle = zipfile.ZipFile(io.BytesIO(body))
    manifest = json.loads(bundle.read("manifest.json"))
    names = [f["name"] for f in manifest["files"]]
    assert names[0] == "report.html" and "lockout.csv" in names and "alerts.csv" in names
    assert set(bundle.namelist()) == {*names, "manifest.json"}
    for entry in manifest["files"]:
        data = bundle.read(entry["name"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["size"]
    assert manifest["period_start"] == START.isoformat() and manifest["framework"] == "pci_dss"
    html = bundle.read("report.html").decode()
    assert "<style>" in html and "8.3.4" in html and "<script" not in html
    assert 'href="/' not in html and 'src="' not in html  # self-contained
    lockouts = bundle.read("lockout.csv").decode()
    assert "'=cmd" in lockouts  # a formula is neutralised as exports do
    [downloaded] = events(EventType.REPORT_DOWNLOADED)
    assert downloaded.actor_id == officer.pk and downloaded.organization_id == org.pk
    assert downloaded.details == {
        "report_id": str(report.pk),
        "framework": "pci_dss",
        "sha256": report.sha256,
    }


def test_a_report_not_built_yet_is_not_downloadable_and_the_sweep_builds_it(org, officer):
    from reports.services import reports_sweep

    report = ComplianceReport.objects.create(
        organization=org,
        framework="soc2",
        period_start=START,
        period_end=END,
        created_at=timezone.now() - timedelta(hours=1),
    )
    client = client_as(officer)
    assert client.get(reverse("reports:report-download", args=[report.pk])).status_code == 409
    status = client.get(reverse("reports:report-status", args=[report.pk]), HTTP_HX_REQUEST="true")
    assert status.status_code == 200 and b"hx-get" in status.content
    assert reports_sweep() == 1
    report.refresh_from_db()
    assert report.status == ReportStatus.DONE
    assert events(EventType.REPORT_DOWNLOADED) == []


def test_the_overview_shows_the_latest_report_to_those_who_may_open_it(org, report, officer):
    overview = reverse("accounts:security-settings")
    page = client_as(officer).get(overview).content.decode()
    assert 'data-testid="overview-compliance"' in page
    assert "Latest report: PCI DSS, 2026-03-01 to 2026-04-01 (end excluded), done." in page
    assert "No access review yet." in page
    analyst_page = client_as(member(org, Role.SECURITY_ANALYST)).get(overview).content.decode()
    assert "overview-compliance" not in analyst_page


def test_retention_is_weighed_against_the_chosen_frameworks_own_period(org, officer):
    org.tier = "small_business"  # 90 days
    org.save()
    client = client_as(officer)
    pci = create(client)
    soc2 = create(client, {**MARCH, "framework": "soc2"})
    assert any("PCI DSS 10.5.1" in note for note in section(pci, "retention")["notes"])
    assert section(pci, "retention")["status"] == Status.ATTENTION
    assert not any("PCI" in note for note in section(soc2, "retention")["notes"])


@pytest.fixture
def extra_section():
    """A section registered as another app would (the review schedule), removed afterwards."""
    from reports import sections

    def register(evidence) -> None:
        sections.report_section_register(
            sections.ReportSection(
                name="reviews_on_time",
                order=90,
                title="Reviews done on time",
                control="Scheduled log reviews, signed off by their assignee.",
                clauses={"pci_dss": [sections.Clause("10.4.1", "Logs reviewed daily.")]},
                evidence=evidence,
            )
        )

    yield register
    sections._sections.pop("reviews_on_time", None)


def test_another_app_adds_a_section_through_the_registry(officer, extra_section):
    extra_section(
        lambda organization, period: Evidence(
            Status.MET,
            [("Reviews due", "31"), ("Signed on time", "31")],
            header=["day"],
            rows=[["2026-03-01"]],
        )
    )
    client = client_as(officer)
    report = create(client)
    assert figure(report, "reviews_on_time", "Signed on time") == "31"
    assert section(report, "reviews_on_time")["clauses"] == [
        {"reference": "10.4.1", "requirement": "Logs reviewed daily."}
    ]
    soc2 = create(client, {**MARCH, "framework": "soc2"})  # it answers no SOC 2 clause
    assert "reviews_on_time" not in [s["name"] for s in soc2.content["sections"]]


def test_a_section_that_fails_fails_the_report_and_says_why(officer, extra_section):
    def broken(organization, period):
        raise RuntimeError("the schedule's table is missing")

    extra_section(broken)
    client = client_as(officer)
    create(client)  # the job's failure is logged by enqueue, never the request's
    report = ComplianceReport.objects.get()
    assert report.status == ReportStatus.FAILED
    assert report.error == "the schedule's table is missing"
    page = client.get(reverse("reports:report", args=[report.pk])).content.decode()
    assert "Failed: the schedule&#x27;s table is missing" in page
    assert client.get(reverse("reports:report-download", args=[report.pk])).status_code == 409
