"""Access reviews (a campaign, one row per member reviewed) and compliance reports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role


class AccessReview(models.Model):
    """One access-review campaign of an organization; read-only evidence once completed."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="access_reviews"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Copies of who started and completed it, so the evidence survives their deletion.
    started_by_label = models.CharField(max_length=254)
    started_at = models.DateTimeField(default=timezone.now)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_by_label = models.CharField(max_length=254, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One campaign open at a time: two would decide on the same members twice.
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(completed_at__isnull=True),
                name="accessreview_one_open",
            )
        ]
        indexes = [models.Index(fields=["organization", "-started_at"], name="accessreview_org")]

    def __str__(self) -> str:
        return f"access review {self.pk} of organization {self.organization_id}"

    @property
    def is_completed(self) -> bool:
        return self.completed_at is not None


class Decision(models.TextChoices):
    KEEP = "keep", "Keep"
    CHANGE_ROLE = "change_role", "Change role"
    REMOVE = "remove", "Remove"


class AccessReviewItem(models.Model):
    """A member as the campaign found them, and the reviewer's decision with who and when."""

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="items")
    # The review's organization, so every row carries its tenant (docs/scaling.md).
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    email = models.CharField(max_length=254)
    role = models.CharField(max_length=32, choices=Role.choices)
    has_mfa = models.BooleanField(default=False)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    # Privileged actions (role changes, settings, exports, ...) in the days before the start.
    privileged_actions = models.PositiveIntegerField(default=0)
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    new_role = models.CharField(max_length=32, choices=Role.choices, blank=True)
    note = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(max_length=254, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "user"], name="accessreviewitem_once")
        ]

    def __str__(self) -> str:
        return f"{self.email} in access review {self.review_id}"


class Framework(models.TextChoices):
    SOC2 = "soc2", "SOC 2"
    HIPAA = "hipaa", "HIPAA"
    PCI_DSS = "pci_dss", "PCI DSS"


class ReportStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ComplianceReport(models.Model):
    """A compliance report for a period and framework, built by a job into a zip bundle."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="compliance_reports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254, blank=True)
    framework = models.CharField(max_length=16, choices=Framework.choices)
    # The period [period_start, period_end): start inclusive, end exclusive.
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.PENDING
    )
    sections_total = models.PositiveSmallIntegerField(default=0)
    sections_done = models.PositiveSmallIntegerField(default=0)
    # What the page shows: every section's figures and rows, as built (JSON, no markup).
    content = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # When the current attempt claimed the build (the sweep takes over one running too long).
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="report_org_created")]

    def __str__(self) -> str:
        return f"compliance report {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {ReportStatus.DONE, ReportStatus.FAILED}

    @property
    def percent(self) -> int:
        if self.status == ReportStatus.DONE:
            return 100
        if not self.sections_total:
            return 0
        return min(99, int(100 * self.sections_done / self.sections_total))
