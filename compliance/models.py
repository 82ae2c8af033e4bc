"""Review schedules and their reviews (with the items under review), and the monitoring
checklist's state: retention acknowledged, the log-analysis guide and who acknowledged it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Frequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class Focus(models.TextChoices):
    """What a review looks at: which kinds of item its queue holds (compliance.queue)."""

    ALL_ACTIVITY = "all_activity", "All activity and configuration changes"
    SECURITY_OPERATIONS = "security_operations", "Security operations and anomalies"
    AUDIT_TRAIL = "audit_trail", "Audit trail completeness"


class ReviewSchedule(models.Model):
    """A recurring review of one organization's log: its focus, frequency and who signs it."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="review_schedules"
    )
    name = models.CharField(max_length=100)
    focus = models.CharField(max_length=32, choices=Focus.choices)
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    # Who signs: the named person when set, else anyone of the role.
    assigned_role = models.CharField(max_length=32, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="reviewschedule_org_name"
            ),
            models.CheckConstraint(
                condition=~models.Q(assigned_role="") | models.Q(assignee__isnull=False),
                name="reviewschedule_assigned",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_frequency_display()})"

    @property
    def signer_label(self) -> str:
        """Who signs, as people read it: the person's address, else "any <role>"."""
        from accounts.models import Role

        if self.assignee_id and self.assignee:
            return self.assignee.email
        if self.assigned_role in Role.values:
            return f"any {str(Role(self.assigned_role).label).lower()}"
        return "—"

    def describe(self) -> dict[str, object]:
        """The schedule as settings.changed events record it (old and new values)."""
        return {
            "name": self.name,
            "focus": self.focus,
            "frequency": self.frequency,
            "assigned_role": self.assigned_role,
            "assignee": self.assignee.email if self.assignee_id and self.assignee else None,
            "active": self.active,
        }


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Due"
    COMPLETED = "completed", "Signed off"


class Review(models.Model):
    """One period of one schedule: the queue prepared from the log, the marks and the sign-off."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    schedule = models.ForeignKey(ReviewSchedule, on_delete=models.CASCADE, related_name="reviews")
    # [period_start, period_end): the events of this half-open range are under review.
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # Past this an open review is overdue (the beat task marks it, once).
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN
    )
    # Set when the queue was built from the log (items below), once.
    prepared_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(null=True, blank=True)
    # The overdue email owed to the assignees: set with overdue_at, cleared once sent.
    overdue_email_pending = models.BooleanField(default=False)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A copy, so history still says who signed after the person is deleted.
    signed_by_label = models.CharField(max_length=254, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    sign_off_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "schedule", "period_start"], name="review_schedule_period"
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="review_period_not_empty",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "due_at"], name="review_org_due"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule.name} {self.period_start:%Y-%m-%d}"

    @property
    def is_overdue(self) -> bool:
        return self.status == ReviewStatus.OPEN and self.due_at <= timezone.now()


class ItemKind(models.TextChoices):
    ALERT = "alert", "Alert raised"
    CONFIGURATION = "configuration", "Configuration change"
    ROLE_CHANGE = "role_change", "Role change"
    LOCKOUT = "lockout", "Lockout"
    EXPORT = "export", "Export or download"
    FAILURE_SPIKE = "failure_spike", "Sign-in failure spike"
    NEW_COUNTRY = "new_country", "Session from a new country"
    LOG_INTEGRITY = "log_integrity", "Log integrity and retention"


class Decision(models.TextChoices):
    UNDECIDED = "", "Not marked"
    EXPECTED = "expected", "Expected"
    FOLLOWED_UP = "followed_up", "Followed up"


class ReviewItem(models.Model):
    """One thing of the period for the reviewer to mark: an event, an alert or a spike."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=ItemKind.choices)
    occurred_at = models.DateTimeField()
    summary = models.CharField(max_length=300)
    # The event or alert it stands for (none for a spike, which is many events).
    event_id = models.BigIntegerField(null=True, blank=True)
    alert_id = models.BigIntegerField(null=True, blank=True)
    # Who made the change (separation of duties: nobody signs off only their own changes).
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    decision = models.CharField(
        max_length=16, choices=Decision.choices, blank=True, default=Decision.UNDECIDED
    )
    note = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"


class RetentionAcknowledgement(models.Model):
    """Someone read the organization's retention (tier, frameworks, warnings) and accepted it.

    `fingerprint` is of what they read: a change to any of it makes the acknowledgement stale."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    fingerprint = models.CharField(max_length=64)
    summary = models.JSONField(default=dict)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-acknowledged_at"], name="retentionack_org_at")
        ]

    def __str__(self) -> str:
        return f"retention acknowledged for {self.organization_id}"


class LogAnalysisGuide(models.Model):
    """The organization's guide to reading its logs; every edit is a new version."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    body = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"log-analysis guide of {self.organization_id} (v{self.version})"


class GuideAcknowledgement(models.Model):
    """A person read one version of their organization's log-analysis guide."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    acknowledged_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "version"], name="guideack_org_user_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read guide v{self.version}"


class ChecklistState(models.Model):
    """The last status seen of one checklist item, and when it last changed."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    item = models.CharField(max_length=64)
    status = models.CharField(max_length=16)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "item"], name="checkliststate_org_item")
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.status}"
