"""Stream destinations: where an organization's events are sent, and how far they have got."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Transport(models.TextChoices):
    SYSLOG = "syslog", "Syslog over TLS (RFC 5424)"
    SPLUNK_HEC = "splunk_hec", "Splunk HTTP Event Collector"
    HTTPS = "https", "HTTPS endpoint (JSON lines, signed)"
    S3 = "s3", "S3-compatible object storage (gzip JSON lines)"


class StreamDestination(models.Model):
    """One receiver of an organization's events, with its cursor in the API feed's order.

    The cursor (cursor_txid, cursor_event_id) is the last position delivered: everything after it
    in (txid, id) order is still to send. The database holds it, never the broker, so a lost task
    or a Redis outage only delays delivery.
    """

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="stream_destinations"
    )
    name = models.CharField(max_length=100)
    transport = models.CharField(max_length=16, choices=Transport.choices)
    # A code of streams.formats.FORMATS.
    format = models.CharField(max_length=16, default="json")
    # Syslog: the receiver's host and port. HTTPS and Splunk HEC: its URL.
    host = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    url = models.URLField(max_length=500, blank=True)
    # S3: the bucket, a key prefix, the region and the access key id (the secret access
    # key is `secret`); the endpoint is `url`.
    bucket = models.CharField(max_length=63, blank=True)
    key_prefix = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=32, blank=True)
    access_key_id = models.CharField(max_length=128, blank=True)
    # A private CA's certificate (PEM) the receiver's certificate is checked against instead of
    # the system's authorities. Public, not a secret.
    ca_certificate = models.TextField(blank=True)
    # The Splunk HEC token, the Standard Webhooks signing secret (whsec_...) or the S3 secret
    # access key: never shown
    # again after saving, never in events, logs or streams.
    secret = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Paused by an administrator, or by delivery after failing for STREAMS_PAUSE_AFTER_HOURS.
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True)
    # The feed position delivered up to (api.feed.START: nothing yet).
    cursor_txid = models.BigIntegerField(default=-1)
    cursor_event_id = models.BigIntegerField(default=0)
    # One deliverer at a time: a lease taken with a conditional UPDATE (no row lock, which
    # would hold a transaction id open and with it the feed's horizon).
    lease_token = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Health.
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.BigIntegerField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    delivered_count = models.BigIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization", "id"]
        indexes = [models.Index(fields=["paused_at", "next_attempt_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    @property
    def where(self) -> str:
        """Where events go, for people: host:port or the URL."""
        if self.transport == Transport.SYSLOG:
            return f"{self.host}:{self.port}"
        if self.transport == Transport.S3:
            return f"{self.url.rstrip('/')}/{self.bucket}/{self.key_prefix}"
        return self.url
