"""The compliance report's "Log reviews" section: the scheduled reviews due in the period, who
signed each and whether on time (PCI DSS 10.4.1, HIPAA 164.308(a)(1)(ii)(D), SOC 2 CC7.2).

Registered in the reports app's section registry by ComplianceConfig.ready (reports sits below
compliance and knows nothing of reviews).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reports.models import Framework
from reports.sections import Clause, Evidence, Period, ReportSection, Status

from .models import Review, ReviewStatus

if TYPE_CHECKING:
    from accounts.models import Organization


def reviews_done(organization: Organization, period: Period) -> Evidence:
    """Every review due in [start, end): signed on time, signed late, or still unsigned."""
    reviews = list(
        Review.objects.filter(
            organization=organization, due_at__gte=period.start, due_at__lt=period.end
        )
        .select_related("schedule")
        .order_by("due_at", "id")
    )
    signed = [r for r in reviews if r.status == ReviewStatus.COMPLETED and r.signed_at]
    on_time = [r for r in signed if r.signed_at and r.signed_at <= r.due_at]
    late = [r for r in signed if r not in on_time]
    unsigned = [r for r in reviews if r not in signed]
    figures = [
        ("Reviews due in the period", str(len(reviews))),
        ("Signed off on time", str(len(on_time))),
        ("Signed off late", str(len(late))),
        ("Not signed off", str(len(unsigned))),
    ]
    notes = []
    if not reviews:
        status = Status.NO_EVIDENCE
        notes.append("No scheduled review fell due in the period.")
    elif late or unsigned:
        status = Status.ATTENTION
        notes.append("Some reviews were signed off after their due time or not at all.")
    else:
        status = Status.MET
    rows = [
        (
            r.pk,
            r.schedule.name,
            r.period_start.isoformat(),
            r.period_end.isoformat(),
            r.due_at.isoformat(),
            r.signed_at.isoformat() if r.signed_at else "",
            r.signed_by_label,
            "yes" if r in on_time else "no",
        )
        for r in reviews
    ]
    header = [
        "review_id", "schedule", "period_start", "period_end", "due_at", "signed_at",
        "signed_by", "on_time",
    ]  # fmt: skip
    return Evidence(status, figures, notes, header, rows)


REVIEWS_SECTION = ReportSection(
    name="log_reviews",
    order=15,
    title="Log reviews",
    control="Scheduled reviews of the log, each signed off by its reviewer with a password.",
    clauses={
        Framework.SOC2: [Clause("CC7.2", "System components are monitored for anomalies.")],
        Framework.HIPAA: [
            Clause("164.308(a)(1)(ii)(D)", "Records of information system activity are reviewed.")
        ],
        Framework.PCI_DSS: [
            Clause("10.4.1", "Security events and audit logs are reviewed at least once daily.")
        ],
    },
    evidence=reviews_done,
)
