"""Retention settings, purge runs, scheduled exports and the files (archives, exports) kept."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

DAYS_PER_YEAR = 365


class Framework(models.TextChoices):
    PCI_DSS = "pci_dss", "PCI DSS"
    HIPAA = "hipaa", "HIPAA"
    SOC2 = "soc2", "SOC 2"
    SOX = "sox", "SOX"


# What each framework asks of audit-log retention, in days, and where it says so. SOC 2 sets no
# fixed period (auditors look for a policy that covers the audit period).
FRAMEWORK_REQUIREMENTS: dict[str, tuple[int | None, str]] = {
    Framework.PCI_DSS: (DAYS_PER_YEAR, "PCI DSS 10.5.1: keep audit log history for 12 months"),
    Framework.HIPAA: (
        6 * DAYS_PER_YEAR,
        "HIPAA §164.316(b)(2): keep documentation for 6 years",
    ),
    Framework.SOX: (7 * DAYS_PER_YEAR, "SOX §802 / SEC Rule 2-06: keep audit records 7 years"),
    Framework.SOC2: (None, "SOC 2 sets no fixed period; keep at least the audit period"),
}


class RetentionSettings(models.Model):
    """An organization's frameworks and archive choice; retention days live on Organization."""

    organization = models.OneToOneField(
        "accounts.Organization",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="retention_settings",
    )
    frameworks = models.JSONField(default=list, blank=True)
    archive_before_purge = models.BooleanField(
        default=False,
        help_text="Write expired events to a verified gzip CSV archive before deleting them.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "retention settings"

    def __str__(self) -> str:
        return f"retention settings of {self.organization_id}"

    @property
    def framework_names(self) -> list[str]:
        """The declared frameworks as people write them ("HIPAA", "PCI DSS"), not their codes."""
        labels = dict(Framework.choices)
        return [str(labels.get(value, value)) for value in self.frameworks]


class FileKind(models.TextChoices):
    ARCHIVE = "archive", "Archive before purge"
    EXPORT = "export", "Scheduled export"


class VerifyStatus(models.TextChoices):
    NOT_VERIFIED = "", "Not verified"
    OK = "ok", "Verified"
    MISMATCH = "mismatch", "Checksum or row count mismatch"
    MISSING = "missing", "Missing"
    ERROR = "error", "Could not be read"


class StoredFile(models.Model):
    """A file kept in the archive storage with what it must contain (SHA-256, row count)."""

    # Null for archives of events without an organization (platform events).
    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    kind = models.CharField(max_length=16, choices=FileKind.choices)
    name = models.CharField(max_length=512, unique=True)
    manifest_name = models.CharField(max_length=512, blank=True)
    sha256 = models.CharField(max_length=64)
    row_count = models.PositiveBigIntegerField()
    size = models.PositiveBigIntegerField()
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    schedule = models.ForeignKey(
        "retention.ExportSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="files",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_status = models.CharField(
        max_length=16, choices=VerifyStatus.choices, blank=True, default=VerifyStatus.NOT_VERIFIED
    )
    verify_detail = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="storedfile_org_created"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def filename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def describe(self) -> dict[str, object]:
        """The file as recorded in events: its name, SHA-256 and rows."""
        return {"file": self.name, "sha256": self.sha256, "rows": self.row_count}


class PurgeStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PurgeRun(models.Model):
    """One purge of one scope (an organization, or the platform's events without one)."""

    # "org:<id>" or "platform"; at most one running run per scope (the claim).
    scope = models.CharField(max_length=32)
    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    status = models.CharField(
        max_length=16, choices=PurgeStatus.choices, default=PurgeStatus.RUNNING
    )
    retention_days = models.PositiveIntegerField()
    cutoff = models.DateTimeField()
    # The newest event id this run may delete: rows inserted later wait for the next run, so an
    # archive always covers exactly what is deleted.
    max_id = models.BigIntegerField(null=True, blank=True)
    deleted = models.PositiveBigIntegerField(default=0)
    archive = models.ForeignKey(
        StoredFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope"],
                condition=models.Q(status="running"),
                name="purgerun_one_running_per_scope",
            )
        ]
        indexes = [models.Index(fields=["scope", "-started_at"], name="purgerun_scope_started")]

    def __str__(self) -> str:
        return f"purge {self.scope} {self.status} ({self.deleted})"


class Frequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


DEFAULT_WINDOW_DAYS = {Frequency.DAILY: 1, Frequency.WEEKLY: 7, Frequency.MONTHLY: 31}
MAX_WINDOW_DAYS = 366


class ExportSchedule(models.Model):
    """A recurring CSV export of the organization's events matching a filter."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="export_schedules"
    )
    name = models.CharField(max_length=100)
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    # The Audit Log's filters (audit.forms.EventFilterForm.canonical(), without dates): the
    # file holds exactly what the Audit Log shows with them, for the run's window.
    filters = models.JSONField(default=dict, blank=True)
    # Each run exports the events of the window_days before the run's scheduled time.
    window_days = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_DAYS)]
    )
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(window_days__gte=1, window_days__lte=MAX_WINDOW_DAYS),
                name="exportschedule_window_1_to_366",
            )
        ]
        indexes = [models.Index(fields=["next_run_at"], name="exportschedule_due")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_frequency_display()})"

    def describe(self) -> dict[str, object]:
        """The filter as recorded in events and manifests."""
        return {"filters": dict(self.filters), "window_days": self.window_days}
