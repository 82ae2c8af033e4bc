"""Alert rules per organization, the alerts they raise, the evaluation ledger and webhooks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class RuleKind(models.TextChoices):
    """Stable names of the rules; never rename a stored value."""

    FAILED_SIGN_INS = "failed_sign_ins", "Failed sign-ins for one account"
    PASSWORD_SPRAYING = "password_spraying", "Failed sign-ins for many accounts from one IP"
    NEW_DEVICE = "new_device", "Sign-in from a new device"
    NEW_COUNTRY = "new_country", "Sign-in from a new country"
    IMPOSSIBLE_TRAVEL = "impossible_travel", "Impossible travel"
    CONCURRENT_SESSIONS = "concurrent_sessions", "Concurrent sessions"
    MFA_FATIGUE = "mfa_fatigue", "Second factor worn down (MFA fatigue)"
    SESSION_ANOMALY = "session_anomaly", "Session used from another location"
    ANONYMISING_NETWORK = "anonymising_network", "Sign-in from an anonymising network"
    CREDENTIAL_STUFFING = "credential_stuffing", "Credential stuffing (many accounts, few tries)"
    INTEGRITY_FAILURE = "integrity_failure", "Audit log tampering found"
    REPORTED_BY_MEMBER = "reported_by_member", "Member reported activity that was not them"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    # Proof that the log itself was changed (integrity.failed): nothing else is trusted until
    # it is explained.
    CRITICAL = "critical", "Critical"


class AlertRule(models.Model):
    """One rule of one organization: on or off, its thresholds and where it notifies."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="alert_rules"
    )
    kind = models.CharField(max_length=32, choices=RuleKind.choices)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    # Thresholds, validated against the bounds in alerts.rules.RULES before they are stored.
    parameters = models.JSONField(default=dict, blank=True)
    notify_email = models.BooleanField(default=True)
    notify_webhook = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind"], name="alertrule_org_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.organization_id})"


# An alert keeps the ids of at most this many of its triggering events (the newest).
ALERT_EVENT_IDS_KEPT = 200


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """What a rule found about one subject (a user, an IP) in one window; repeats add to count."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="alerts"
    )
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=RuleKind.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts_about",
    )
    subject_label = models.CharField(max_length=254, blank=True)
    subject_ip = models.GenericIPAddressField(null=True, blank=True)
    # What the rule is about, e.g. "user:7" or "user:7:country:JP" or "ip:203.0.113.9".
    subject_key = models.CharField(max_length=160)
    # subject_key plus the start of its window: the database lets one alert exist per rule,
    # subject and window, whichever worker gets there first.
    window_key = models.CharField(max_length=200)
    summary = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts_assigned",
    )
    # [{"at": iso, "by": email, "action": "...", "text": "..."}], oldest first.
    notes = models.JSONField(default=list, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # How many times a rule matched (an evaluated event at or past its threshold), not how many
    # events it is about: five failures past a threshold of 5 match once. Pages show
    # event_count; webhooks carry both.
    count = models.PositiveIntegerField(default=1)
    # Ids of the audit events that triggered it, every finding's (the newest ALERT_EVENT_IDS_KEPT).
    event_ids = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Set when the alert is raised and its rule emails; cleared only after the email was sent.
    email_pending = models.BooleanField(default=False)
    # The sender holding the email (a conditional UPDATE claims it) until then; past it, the
    # sender is taken for dead and the sweep sends (at least once, never lost).
    email_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            # One alert per rule, subject and window. The organization leads so that the key
            # holds on a cluster distributed by organization (docs/scaling.md); it takes nothing
            # away, since a rule belongs to one organization and every alert is written with its
            # rule's (alerts.evaluation._fold_one).
            models.UniqueConstraint(
                fields=["organization", "rule", "window_key"], name="alert_org_rule_window_key"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status", "-id"], name="alert_org_status"),
            models.Index(
                fields=["created_at"],
                name="alert_email_pending",
                condition=models.Q(email_pending=True),
            ),
            models.Index(fields=["organization", "-id"], name="alert_org_recent"),
            models.Index(fields=["subject_user", "-id"], name="alert_subject_user"),
            models.Index(
                fields=["rule", "subject_key", "-last_seen_at"], name="alert_rule_subject"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} alert {self.pk} ({self.status})"

    @property
    def event_count(self) -> int:
        """How many events triggered the alert: the one figure pages show for it."""
        return len(self.event_ids) if isinstance(self.event_ids, list) else 0

    @property
    def event_count_capped(self) -> bool:
        """True when more events triggered the alert than it keeps the ids of."""
        return self.event_count >= ALERT_EVENT_IDS_KEPT

    @property
    def page_url(self) -> str:
        """The alert's triage page as a full URL (ALERTS_BASE_URL), for emails and webhooks."""
        return settings.ALERTS_BASE_URL.rstrip("/") + reverse("alerts:alert-detail", args=[self.pk])


class EvaluatedEvent(models.Model):
    """Ledger: an audit event claimed for evaluation, and when its rules ran.

    Events are append-only, so the ledger, not a flag on the event, says what is done. A row is
    claimed (evaluated_at null) by an evaluator's token for a lease, in a statement of its own
    that commits at once; the evaluation marks it done (evaluated_at) in the transaction that
    writes its alerts, and only while the claim is still that evaluator's. A claim whose lease
    ran out is the sweep's to take. A row created plainly (history, a test) is done.
    """

    event_id = models.BigIntegerField(primary_key=True)
    evaluated_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    # The evaluator holding the claim (a Celery task's id, so a redelivered message takes back
    # its own claims at once) and until when; both null once evaluated.
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        done = "evaluated" if self.evaluated_at else "claimed"
        return f"{done} {self.event_id}"


class SweepState(models.Model):
    """A single row: every relevant event with an id up to low_water_id has been evaluated."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    low_water_id = models.BigIntegerField(default=0)
    swept_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sweep state (low water {self.low_water_id})"


class WebhookEndpoint(models.Model):
    """An organization's receiver of alert notifications, signed with its own secret."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # The signing key the receiver shares (whsec_<base64>; older ones are 64 hex characters,
    # which Standard Webhooks reads as base64 too). Shown once, when the endpoint is added.
    secret = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "id"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One alert sent to one endpoint: the delivery log, with every attempt's outcome."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    # [{"at": iso, "status_code": int|None, "error": str, "ms": int}]
    log = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of alert {self.alert_id} ({self.status})"
