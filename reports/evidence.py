"""The report's own sections: each gathers one control's evidence for a period (reads only).

Figures are counted from the organization's rows for [start, end); what has no history (the
lockout policy, MFA enrolment, retention settings) is the configuration when the report is
generated, and the section says so.
"""

from __future__ import annotations

from datetime import timedelta
from statistics import median
from typing import TYPE_CHECKING

from django.db.models import Count, Max, Min, Q

from accounts.lockout import LockoutPolicy
from accounts.models import MfaPolicy, Role
from accounts.selectors import members_of, mfa_adoption_of
from alerts.models import Alert, AlertRule
from audit.models import AuditEvent, EventType, category_of
from exports.models import Export, ExportStatus
from integrity.selectors import integrity_status
from retention.models import Framework as RetentionFramework
from retention.models import StoredFile, VerifyStatus
from retention.selectors import purge_runs_for, retention_settings_of

from .models import AccessReview, Decision
from .models import Framework as F
from .sections import Clause, Evidence, Period, ReportSection, Status, report_section_register

if TYPE_CHECKING:
    from accounts.models import Organization

# PCI DSS 8.3.4: lock after at most 10 invalid attempts, for at least 30 minutes.
PCI_MAX_ATTEMPTS = 10
PCI_MIN_LOCKOUT_MINUTES = 30
# PCI DSS 10.5.1: a year of history; HIPAA 164.316(b)(2)(i): six years of documentation.
PCI_RETENTION_DAYS = 365
HIPAA_RETENTION_DAYS = 6 * 365
# PCI DSS 7.2.4: user accounts and access privileges reviewed at least once every six months.
ACCESS_REVIEW_EVERY_DAYS = 183


def _in(period: Period, field: str) -> Q:
    return Q(**{f"{field}__gte": period.start, f"{field}__lt": period.end})


def _iso(value: object) -> str:
    return (
        value.isoformat() if hasattr(value, "isoformat") else ("" if value is None else str(value))
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"


# --- Audit trail -----------------------------------------------------------------------------


def audit_trail(organization: Organization, period: Period) -> Evidence:
    """How many events the period holds, by type: the log was on and recording."""
    counts = (
        AuditEvent.objects.filter(organization=organization)
        .filter(_in(period, "occurred_at"))
        .values("event_type")
        .annotate(n=Count("id"))
        .order_by("event_type")
    )
    rows = [(row["event_type"], category_of(row["event_type"]), row["n"]) for row in counts]
    total = sum(n for _, _, n in rows)
    figures = [("Events recorded in the period", str(total)), ("Event types seen", str(len(rows)))]
    if not total:
        return Evidence(
            Status.NO_EVIDENCE,
            figures,
            notes=["No events were recorded for this organization in the period."],
            header=["event_type", "category", "events"],
        )
    return Evidence(Status.MET, figures, header=["event_type", "category", "events"], rows=rows)


# --- Alerts ----------------------------------------------------------------------------------


def alerts_watched(organization: Organization, period: Period) -> Evidence:
    """Alerts raised in the period, and how long they took to acknowledge and resolve."""
    alerts = list(
        Alert.objects.filter(organization=organization)
        .filter(_in(period, "created_at"))
        .order_by("created_at", "id")
    )
    rules_on = AlertRule.objects.filter(organization=organization, enabled=True).count()
    to_ack = [
        (a.acknowledged_at - a.created_at).total_seconds() for a in alerts if a.acknowledged_at
    ]
    to_resolve = [(a.resolved_at - a.created_at).total_seconds() for a in alerts if a.resolved_at]
    unhandled = [a for a in alerts if a.acknowledged_at is None and a.resolved_at is None]
    figures = [
        ("Alert rules switched on (now)", str(rules_on)),
        ("Alerts raised", str(len(alerts))),
        ("Acknowledged", str(len(to_ack))),
        ("Resolved", str(len(to_resolve))),
        ("Never acknowledged nor resolved", str(len(unhandled))),
        ("Median time to acknowledge", _duration(median(to_ack) if to_ack else None)),
        ("Longest time to acknowledge", _duration(max(to_ack) if to_ack else None)),
        ("Median time to resolve", _duration(median(to_resolve) if to_resolve else None)),
        ("Longest time to resolve", _duration(max(to_resolve) if to_resolve else None)),
    ]
    rows = [
        (
            a.pk,
            a.kind,
            a.severity,
            a.status,
            a.summary,
            _iso(a.created_at),
            _iso(a.acknowledged_at),
            _iso(a.resolved_at),
            ""
            if a.acknowledged_at is None
            else int((a.acknowledged_at - a.created_at).total_seconds()),
            "" if a.resolved_at is None else int((a.resolved_at - a.created_at).total_seconds()),
        )
        for a in alerts
    ]
    notes = []
    if not rules_on:
        status = Status.ATTENTION
        notes.append("No alert rule is switched on: nothing watches the log.")
    elif unhandled:
        status = Status.ATTENTION
        notes.append(f"{len(unhandled)} alert(s) raised in the period were never acknowledged.")
    elif not alerts:
        status = Status.NO_EVIDENCE
        notes.append("No alert was raised in the period.")
    else:
        status = Status.MET
    header = [
        "alert_id", "kind", "severity", "status", "summary", "raised_at", "acknowledged_at",
        "resolved_at", "seconds_to_acknowledge", "seconds_to_resolve",
    ]  # fmt: skip
    return Evidence(status, figures, notes, header, rows)


# --- Lockout ---------------------------------------------------------------------------------


def lockout_policy(organization: Organization, period: Period) -> Evidence:
    """The lockout policy against PCI DSS 8.3.4, and the lockouts of the period."""
    policy = LockoutPolicy.of(organization)
    meets = (
        policy.threshold <= PCI_MAX_ATTEMPTS and policy.duration_minutes >= PCI_MIN_LOCKOUT_MINUTES
    )
    lockouts = list(
        AuditEvent.objects.filter(
            organization=organization,
            event_type__in=[EventType.LOCKOUT_TRIGGERED, EventType.LOCKOUT_RELEASED],
        )
        .filter(_in(period, "occurred_at"))
        .order_by("occurred_at", "id")
        .values_list("occurred_at", "event_type", "target_label", "actor_label", "reason")
    )
    triggered = sum(1 for row in lockouts if row[1] == EventType.LOCKOUT_TRIGGERED)
    figures = [
        (
            "Failed sign-ins before a lock (now)",
            f"{policy.threshold} in {policy.window_minutes} min",
        ),
        ("Lock lasts (now)", f"{policy.duration_minutes} min"),
        ("PCI DSS 8.3.4 (at most 10 attempts, at least 30 min)", "met" if meets else "not met"),
        ("Lockouts in the period", str(triggered)),
    ]
    notes = (
        []
        if meets
        else [
            f"The policy allows {policy.threshold} attempts and locks for "
            f"{policy.duration_minutes} minutes; PCI DSS 8.3.4 asks for at most "
            f"{PCI_MAX_ATTEMPTS} and at least {PCI_MIN_LOCKOUT_MINUTES}."
        ]
    )
    rows = [
        (_iso(at), kind, target or actor, reason) for at, kind, target, actor, reason in lockouts
    ]
    return Evidence(
        Status.MET if meets else Status.ATTENTION,
        figures,
        notes,
        ["occurred_at", "event_type", "account", "reason"],
        rows,
    )


# --- MFA -------------------------------------------------------------------------------------


def mfa_adoption(organization: Organization, period: Period) -> Evidence:
    """Who has a second factor now, and whether the organization's policy asks for one."""
    adoption = mfa_adoption_of(organization)
    members = list(members_of(organization))
    required_roles = organization.mfa_required_roles or []
    figures = [
        ("Members", str(adoption.members)),
        ("With an authenticator app", f"{adoption.with_device} ({adoption.percent}%)"),
        ("Policy", MfaPolicy(organization.mfa_policy).label),
    ]
    if organization.mfa_policy == MfaPolicy.ROLES:
        figures.append(("Required for", ", ".join(Role(r).label for r in required_roles)))
    privileged = [m for m in members if m.role != Role.MEMBER]
    privileged_without = [m for m in privileged if not getattr(m, "has_mfa", False)]
    figures.append(
        ("Administrators, analysts and compliance without MFA", str(len(privileged_without)))
    )
    verified = (
        AuditEvent.objects.filter(organization=organization, event_type=EventType.MFA_VERIFIED)
        .filter(_in(period, "occurred_at"))
        .count()
    )
    figures.append(("Second-factor checks passed in the period", str(verified)))
    rows = [
        (m.user.email, m.role, "yes" if getattr(m, "has_mfa", False) else "no") for m in members
    ]
    status = Status.MET if adoption.members and not privileged_without else Status.ATTENTION
    notes = ["Enrolment is as at the report's generation; the log keeps no earlier snapshot."]
    if privileged_without:
        notes.append(
            "Without a second factor: " + ", ".join(m.user.email for m in privileged_without) + "."
        )
    return Evidence(status, figures, notes, ["email", "role", "mfa"], rows)


# --- Retention -------------------------------------------------------------------------------


def retention_configuration(organization: Organization, period: Period) -> Evidence:
    """The retention promised, the frameworks documented, and the oldest and newest event held."""
    settings = retention_settings_of(organization)
    held = AuditEvent.objects.filter(organization=organization).aggregate(
        oldest=Min("occurred_at"), newest=Max("occurred_at")
    )
    days = organization.retention_days
    documented = [RetentionFramework(f).label for f in settings.frameworks]
    purges = list(purge_runs_for(organization, limit=100))
    purges_in = [p for p in purges if period.start <= p.started_at < period.end]
    figures = [
        ("Events kept for (now)", f"{days} days"),
        ("Archive before purge (now)", "on" if settings.archive_before_purge else "off"),
        ("Frameworks documented", ", ".join(documented) or "none"),
        ("Oldest event held", _iso(held["oldest"]) or "none"),
        ("Newest event held", _iso(held["newest"]) or "none"),
        ("Retention purges in the period", str(len(purges_in))),
    ]
    notes = []
    if period.framework == F.PCI_DSS and days < PCI_RETENTION_DAYS:
        notes.append(f"PCI DSS 10.5.1 asks for a year of history; events are kept {days} days.")
    if (
        period.framework == F.HIPAA
        and days < HIPAA_RETENTION_DAYS
        and not settings.archive_before_purge
    ):
        notes.append("HIPAA asks for six years: keep archives, or raise retention (Enterprise).")
    if not documented:
        notes.append("No framework is documented on the Retention page.")
    rows = [
        (_iso(p.started_at), p.status, p.retention_days, _iso(p.cutoff), p.deleted)
        for p in purges_in
    ]
    return Evidence(
        Status.ATTENTION if notes else Status.MET,
        figures,
        notes,
        ["started_at", "status", "retention_days", "cutoff", "deleted"],
        rows,
    )


# --- Exports and archives --------------------------------------------------------------------


def exports_and_archives(organization: Organization, period: Period) -> Evidence:
    """Exports made and archives written in the period, and how their verification stands."""
    exports = list(
        Export.objects.filter(organization=organization).filter(_in(period, "created_at"))
    )
    files = list(
        StoredFile.objects.filter(organization=organization)
        .filter(_in(period, "created_at"))
        .order_by("created_at", "id")
    )
    downloads = (
        AuditEvent.objects.filter(organization=organization, event_type=EventType.EXPORT_DOWNLOADED)
        .filter(_in(period, "occurred_at"))
        .count()
    )
    ok = [f for f in files if f.verify_status == VerifyStatus.OK]
    bad = [f for f in files if f.verify_status not in (VerifyStatus.OK, VerifyStatus.NOT_VERIFIED)]
    unverified = [f for f in files if f.verify_status == VerifyStatus.NOT_VERIFIED]
    figures = [
        ("Background exports", str(len(exports))),
        (
            "Of which completed",
            str(sum(1 for e in exports if e.status in (ExportStatus.DONE, ExportStatus.EXPIRED))),
        ),
        ("Export downloads", str(downloads)),
        ("Archives and scheduled exports written", str(len(files))),
        ("Verified intact", str(len(ok))),
        ("Failed verification", str(len(bad))),
        ("Never verified", str(len(unverified))),
    ]
    rows: list[tuple[object, ...]] = [
        ("export", str(e.pk), _iso(e.created_at), e.status, e.rows_written, e.sha256, "", "")
        for e in exports
    ]
    rows += [
        (
            f.kind,
            f.name,
            _iso(f.created_at),
            "written",
            f.row_count,
            f.sha256,
            f.verify_status or "not_verified",
            _iso(f.verified_at),
        )
        for f in files
    ]
    notes = []
    if bad:
        notes.append(f"{len(bad)} file(s) failed verification: see the CSV.")
    if unverified:
        notes.append(f"{len(unverified)} file(s) were never verified.")
    if bad or unverified:
        status = Status.ATTENTION
    elif not files and not exports:
        status = Status.NO_EVIDENCE
        notes.append("No export or archive was made in the period.")
    else:
        status = Status.MET
    header = [
        "kind",
        "name",
        "created_at",
        "status",
        "rows",
        "sha256",
        "verify_status",
        "verified_at",
    ]
    return Evidence(status, figures, notes, header, rows)


# --- Integrity -------------------------------------------------------------------------------


def integrity_verification(organization: Organization, period: Period) -> Evidence:
    """The seals over the events, and every verification of them in the period."""
    state = integrity_status(organization.pk)
    checks = list(
        AuditEvent.objects.filter(
            organization=organization,
            event_type__in=[EventType.INTEGRITY_VERIFIED, EventType.INTEGRITY_FAILED],
        )
        .filter(_in(period, "occurred_at"))
        .order_by("occurred_at", "id")
        .values_list("occurred_at", "event_type", "actor_label", "details")
    )
    failed = [c for c in checks if c[1] == EventType.INTEGRITY_FAILED]
    last = state["last_check"]
    figures = [
        ("Seals (now)", str(state["seals"])),
        ("Events sealed (now)", str(state["events"])),
        ("Verifications in the period", str(len(checks))),
        ("Of which found a problem or could not verify", str(len(failed))),
        (
            "Latest verification",
            f"{'intact' if last.event_type == EventType.INTEGRITY_VERIFIED else 'FAILED'} "
            f"on {_iso(last.occurred_at)}"
            if last
            else "never",
        ),
    ]
    rows = [
        (_iso(at), kind, actor, details.get("problems", 0), details.get("events", ""))
        for at, kind, actor, details in checks
    ]
    notes = []
    if failed:
        status = Status.ATTENTION
        notes.append("A verification in the period failed: see Log integrity for the events named.")
    elif not checks:
        status = Status.NO_EVIDENCE
        notes.append("The seals were not verified in the period.")
    else:
        status = Status.MET
    return Evidence(
        status, figures, notes, ["occurred_at", "result", "by", "problems", "events"], rows
    )


# --- Access reviews --------------------------------------------------------------------------


def access_reviews(organization: Organization, period: Period) -> Evidence:
    """Access-review campaigns completed in the period, with their decisions."""
    reviews = list(
        AccessReview.objects.filter(organization=organization)
        .filter(_in(period, "completed_at"))
        .annotate(
            members=Count("items"),
            kept=Count("items", filter=Q(items__decision=Decision.KEEP)),
            changed=Count("items", filter=Q(items__decision=Decision.CHANGE_ROLE)),
            removed=Count("items", filter=Q(items__decision=Decision.REMOVE)),
        )
        .order_by("completed_at", "id")
    )
    figures = [
        ("Campaigns completed in the period", str(len(reviews))),
        ("Members reviewed", str(sum(r.members for r in reviews))),
        ("Kept", str(sum(r.kept for r in reviews))),
        ("Role changed", str(sum(r.changed for r in reviews))),
        ("Removed", str(sum(r.removed for r in reviews))),
    ]
    last = (
        AccessReview.objects.filter(organization=organization, completed_at__lt=period.end)
        .order_by("-completed_at")
        .first()
    )
    notes = []
    if last is None or last.completed_at is None:
        status = Status.ATTENTION
        notes.append("No access review has been completed.")
    elif period.end - last.completed_at > timedelta(days=ACCESS_REVIEW_EVERY_DAYS):
        status = Status.ATTENTION
        notes.append("The last access review is more than six months older than the period's end.")
    else:
        status = Status.MET
    rows = [
        (
            r.pk,
            _iso(r.started_at),
            r.started_by_label,
            _iso(r.completed_at),
            r.completed_by_label,
            r.members,
            r.kept,
            r.changed,
            r.removed,
        )
        for r in reviews
    ]
    header = [
        "access_review_id", "started_at", "started_by", "completed_at", "completed_by",
        "members", "kept", "role_changed", "removed",
    ]  # fmt: skip
    return Evidence(status, figures, notes, header, rows)


def _c(reference: str, requirement: str) -> Clause:
    return Clause(reference, requirement)


SECTIONS = (
    ReportSection(
        name="audit_trail",
        order=10,
        title="Audit trail",
        control="Every security-relevant account event is recorded, append-only, per organization.",
        clauses={
            F.SOC2: [_c("CC7.2", "System components are monitored for anomalies.")],
            F.HIPAA: [_c("164.312(b)", "Audit controls record and examine activity.")],
            F.PCI_DSS: [
                _c("10.2.1", "Audit logs are enabled and active for all system components.")
            ],
        },
        evidence=audit_trail,
    ),
    ReportSection(
        name="alerts",
        order=20,
        title="Alerts raised and handled",
        control="Alert rules watch the log; analysts acknowledge and resolve each alert.",
        clauses={
            F.SOC2: [
                _c("CC7.2", "Anomalies are identified and analysed."),
                _c("CC7.3", "Security events are evaluated and responded to."),
            ],
            F.HIPAA: [
                _c("164.308(a)(1)(ii)(D)", "Information system activity is regularly reviewed."),
                _c("164.308(a)(6)(ii)", "Security incidents are identified and responded to."),
            ],
            F.PCI_DSS: [
                _c("10.4.1", "Security events are reviewed at least once daily."),
                _c("10.7.2", "Failures of critical security controls are detected and alerted."),
            ],
        },
        evidence=alerts_watched,
    ),
    ReportSection(
        name="lockout",
        order=30,
        title="Account lockout",
        control="Repeated failed sign-ins lock the account for a set time.",
        clauses={
            F.SOC2: [_c("CC6.1", "Logical access is protected against unauthorised attempts.")],
            F.HIPAA: [_c("164.308(a)(5)(ii)(C)", "Log-in attempts are monitored.")],
            F.PCI_DSS: [
                _c("8.3.4", "Invalid attempts: locked after at most 10, for at least 30 minutes.")
            ],
        },
        evidence=lockout_policy,
    ),
    ReportSection(
        name="mfa",
        order=40,
        title="Multi-factor authentication",
        control="Members sign in with a second factor; the organization may require it by role.",
        clauses={
            F.SOC2: [_c("CC6.1", "Users are authenticated before access is granted.")],
            F.HIPAA: [_c("164.312(d)", "Person or entity authentication.")],
            F.PCI_DSS: [_c("8.4.2", "MFA is implemented for all access into the CDE.")],
        },
        evidence=mfa_adoption,
    ),
    ReportSection(
        name="retention",
        order=50,
        title="Retention",
        control="Events are kept as long as the tier promises; expired ones archived, then purged.",
        clauses={
            F.SOC2: [_c("CC7.2", "Monitoring history is kept for the period under review.")],
            F.HIPAA: [_c("164.316(b)(2)(i)", "Documentation is retained for six years.")],
            F.PCI_DSS: [_c("10.5.1", "Audit log history is retained for at least 12 months.")],
        },
        evidence=retention_configuration,
    ),
    ReportSection(
        name="exports",
        order=60,
        title="Exports and archives verified",
        control="Exports and archives are written with a SHA-256 and verified against it.",
        clauses={
            F.SOC2: [_c("A1.2", "Backups of data are made and their recovery tested.")],
            F.HIPAA: [_c("164.308(a)(7)(ii)(A)", "Retrievable exact copies are created.")],
            F.PCI_DSS: [
                _c("10.3.3", "Audit log files are promptly backed up to a secure store."),
                _c("10.5.1", "Audit log history is available for analysis."),
            ],
        },
        evidence=exports_and_archives,
    ),
    ReportSection(
        name="integrity",
        order=70,
        title="Log integrity",
        control="Events are sealed in signed, chained blocks; verification re-derives them.",
        clauses={
            F.SOC2: [_c("CC7.1", "Changes that could compromise the system are detected.")],
            F.HIPAA: [_c("164.312(c)(1)", "Protected information is not improperly altered.")],
            F.PCI_DSS: [_c("10.3.4", "Changes to audit logs are detected (change detection).")],
        },
        evidence=integrity_verification,
    ),
    ReportSection(
        name="access_reviews",
        order=80,
        title="Access reviews",
        control="A reviewer keeps, changes or removes each member's access, applied and recorded.",
        clauses={
            F.SOC2: [
                _c("CC6.2", "Access is granted and removed on authorisation."),
                _c("CC6.3", "Access is modified or removed based on roles and reviews."),
            ],
            F.HIPAA: [_c("164.308(a)(4)(ii)(C)", "Access is established, reviewed and modified.")],
            F.PCI_DSS: [_c("7.2.4", "User accounts and privileges are reviewed every six months.")],
        },
        evidence=access_reviews,
    ),
)


def register_sections() -> None:
    for section in SECTIONS:
        report_section_register(section)
