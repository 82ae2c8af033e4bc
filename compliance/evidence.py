"""The monitoring checklist's seven items (the product page's) and the evidence compliance finds
for them in the other apps' tables; registered in ComplianceConfig.ready (accounts.checklist)."""

from __future__ import annotations

from datetime import datetime, timedelta

from accounts.checklist import (
    ChecklistItem,
    Evidence,
    EvidenceSource,
    Status,
    checklist_evidence_register,
    checklist_item_register,
)
from accounts.models import Organization

# A verification or delivery older than this no longer shows that the process works today.
FRESH_DAYS = 31

ITEMS = (
    ChecklistItem("alerts", 10, "Configure alerts", "alerts:rule-list", "Alert rules"),
    ChecklistItem(
        "scheduled_exports",
        20,
        "Set up scheduled exports",
        "retention:archives",
        "Archives & scheduled exports",
    ),
    ChecklistItem(
        "review_schedule", 30, "Establish the review schedule", "compliance:reviews", "Reviews"
    ),
    ChecklistItem(
        "retention_documented",
        40,
        "Document retention requirements",
        "compliance:retention-acknowledge",
        "Review and acknowledge retention",
    ),
    ChecklistItem(
        "export_tested",
        50,
        "Test the export and archive process",
        "integrity:integrity",
        "Log integrity",
    ),
    ChecklistItem(
        "correlation", 60, "Correlate with security events", "alerts:webhook-list", "Webhooks"
    ),
    ChecklistItem(
        "team_trained", 70, "Train the team on log analysis", "compliance:guide", "The guide"
    ),
)


def alert_rules_evidence(organization: Organization, now: datetime) -> Evidence:
    from alerts.models import AlertRule, WebhookEndpoint
    from alerts.selectors import notification_recipients

    rules = list(AlertRule.objects.filter(organization=organization, enabled=True))
    if not rules:
        return Evidence(Status.TO_DO, "No alert rule is on.")
    has_recipients = bool(notification_recipients(organization_id=organization.pk))
    has_webhook = WebhookEndpoint.objects.filter(organization=organization, enabled=True).exists()
    unrouted = [
        r
        for r in rules
        if not ((r.notify_email and has_recipients) or (r.notify_webhook and has_webhook))
    ]
    if unrouted:
        names = ", ".join(str(r.get_kind_display()) for r in unrouted[:3])
        return Evidence(
            Status.FAILING,
            f"{len(unrouted)} rule{'s' if len(unrouted) != 1 else ''} on but notifying nobody: "
            f"{names}.",
        )
    return Evidence(Status.DONE, f"{len(rules)} rules on, each notifying by email or webhook.")


def scheduled_export_evidence(organization: Organization, now: datetime) -> Evidence:
    from retention.models import ExportSchedule

    schedules = list(ExportSchedule.objects.filter(organization=organization))
    if not schedules:
        return Evidence(Status.TO_DO, "No scheduled export.")
    failing = [s for s in schedules if s.last_error]
    if failing:
        return Evidence(
            Status.FAILING,
            f"The scheduled export “{failing[0].name}” failed: {failing[0].last_error}",
        )
    last = max((s.last_run_at for s in schedules if s.last_run_at), default=None)
    text = f"{len(schedules)} scheduled export{'s' if len(schedules) != 1 else ''}"
    return Evidence(Status.DONE, text + (", last run" if last else ", not run yet") + ".", last)


def review_schedule_evidence(organization: Organization, now: datetime) -> Evidence:
    from .models import ReviewSchedule
    from .selectors import reviews_overdue

    active = ReviewSchedule.objects.filter(organization=organization, active=True).count()
    if not active:
        return Evidence(Status.TO_DO, "No active review schedule.")
    overdue = reviews_overdue(organization, now=now)
    if overdue:
        return Evidence(
            Status.FAILING,
            f"{len(overdue)} review{'s' if len(overdue) != 1 else ''} overdue, the oldest due",
            overdue[0].due_at,
        )
    return Evidence(Status.DONE, f"{active} active review schedules, none overdue.")


def retention_evidence(organization: Organization, now: datetime) -> Evidence:
    from .selectors import (
        retention_acknowledgement_latest,
        retention_facts,
        retention_fingerprint,
    )

    facts = retention_facts(organization)
    if not facts["frameworks"]:
        return Evidence(Status.TO_DO, "No compliance framework declared on the Retention page.")
    latest = retention_acknowledgement_latest(organization)
    if latest is None:
        return Evidence(Status.TO_DO, "The retention and its warnings are not acknowledged yet.")
    if latest.fingerprint != retention_fingerprint(facts):
        return Evidence(
            Status.TO_DO,
            "The retention changed since it was acknowledged: acknowledge it again.",
            latest.acknowledged_at,
        )
    who = latest.acknowledged_by.email if latest.acknowledged_by else "someone"
    return Evidence(Status.DONE, f"Acknowledged by {who}", latest.acknowledged_at)


def integrity_verify_evidence(organization: Organization, now: datetime) -> Evidence:
    from audit.models import AuditEvent, EventType

    last = (
        AuditEvent.objects.filter(
            organization_id=organization.pk,
            event_type__in=[EventType.INTEGRITY_VERIFIED, EventType.INTEGRITY_FAILED],
        )
        .order_by("-occurred_at", "-id")
        .first()
    )
    if last is None:
        return Evidence(Status.TO_DO, "The log's integrity was never verified.")
    if last.event_type == EventType.INTEGRITY_FAILED:
        return Evidence(
            Status.FAILING, "The last integrity verification found problems", last.occurred_at
        )
    if last.occurred_at < now - timedelta(days=FRESH_DAYS):
        return Evidence(
            Status.TO_DO, f"Last verified intact more than {FRESH_DAYS} days ago", last.occurred_at
        )
    return Evidence(Status.DONE, "Last verified intact", last.occurred_at)


def archive_verify_evidence(organization: Organization, now: datetime) -> Evidence:
    from retention.models import StoredFile, VerifyStatus

    last = (
        StoredFile.objects.filter(organization=organization, verified_at__isnull=False)
        .order_by("-verified_at", "-id")
        .first()
    )
    if last is None:
        return Evidence(Status.TO_DO, "No archive or scheduled export verified yet.")
    if last.verify_status != VerifyStatus.OK:
        return Evidence(
            Status.FAILING,
            f"The last file verified, {last.filename}, is "
            f"{str(last.get_verify_status_display()).lower()}",
            last.verified_at,
        )
    if last.verified_at and last.verified_at < now - timedelta(days=FRESH_DAYS):
        return Evidence(
            Status.TO_DO, f"Last file verified more than {FRESH_DAYS} days ago", last.verified_at
        )
    return Evidence(Status.DONE, f"{last.filename} verified", last.verified_at)


def webhook_evidence(organization: Organization, now: datetime) -> Evidence:
    from alerts.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

    endpoints = WebhookEndpoint.objects.filter(organization=organization, enabled=True)
    if not endpoints.exists():
        return Evidence(Status.TO_DO, "No webhook sends alerts to another system.")
    last = (
        WebhookDelivery.objects.filter(endpoint__in=endpoints)
        .exclude(status=DeliveryStatus.PENDING)
        .order_by("-created_at", "-id")
        .first()
    )
    if last is None:
        return Evidence(Status.TO_DO, "A webhook is set up but has delivered nothing yet.")
    if last.status == DeliveryStatus.FAILED:
        return Evidence(Status.FAILING, "The last webhook delivery failed", last.created_at)
    return Evidence(Status.DONE, "Last webhook delivery succeeded", last.delivered_at)


def guide_evidence(organization: Organization, now: datetime) -> Evidence:
    from .selectors import guide_of, guide_readers

    guide = guide_of(organization)
    if not guide.body:
        return Evidence(Status.TO_DO, "The organization has no log-analysis guide yet.")
    reading = guide_readers(organization, guide)
    if reading.unread:
        names = ", ".join(p.email for p in reading.unread[:3])
        more = f" and {len(reading.unread) - 3} more" if len(reading.unread) > 3 else ""
        return Evidence(Status.TO_DO, f"Not acknowledged yet by {names}{more}.", guide.updated_at)
    return Evidence(
        Status.DONE,
        f"Every administrator and analyst ({len(reading.read)}) acknowledged version "
        f"{guide.version}.",
        guide.updated_at,
    )


SOURCES = (
    EvidenceSource("alerts", "Alert rules", alert_rules_evidence),
    EvidenceSource("scheduled_exports", "Scheduled exports", scheduled_export_evidence),
    EvidenceSource("review_schedule", "Review schedule", review_schedule_evidence),
    EvidenceSource("retention_documented", "Retention", retention_evidence),
    EvidenceSource("export_tested", "Integrity verification", integrity_verify_evidence),
    EvidenceSource("export_tested", "Archive verification", archive_verify_evidence),
    EvidenceSource("correlation", "Alert webhooks", webhook_evidence),
    EvidenceSource("team_trained", "Log-analysis guide", guide_evidence),
)


def checklist_register() -> None:
    for item in ITEMS:
        checklist_item_register(item)
    for source in SOURCES:
        checklist_evidence_register(source)
