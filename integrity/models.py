"""Signed seals over ranges of an organization's events (docs/integrity.md)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SealKind(models.TextChoices):
    # The next range of events, in the API feed's commit order (txid, id).
    EVENTS = "events", "Events"
    # What a retention purge removes: the scope, cutoff and highest id, and the blocks touched.
    PURGE = "purge", "Retention purge"


class Seal(models.Model):
    """One link of an organization's chain of seals. Append-only: the app's role may INSERT and
    SELECT it, never UPDATE or DELETE (integrity migration 0001 and audit.roles)."""

    # Like the events: no enforced foreign key, a seal outlives nothing it names.
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=SealKind.choices)
    # The position (txid, id) of the last event sealed so far, this block included: an events
    # block covers everything after the previous seal's position up to and including this one.
    last_txid = models.BigIntegerField()
    last_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField(default=0)
    oldest_at = models.DateTimeField(null=True, blank=True)
    newest_at = models.DateTimeField(null=True, blank=True)
    # Per event, in order: id, txid, occurred_at (µs since 1970) and the SHA-256 of its
    # canonical serialisation, packed (integrity.canonical.ENTRY); empty for a purge seal.
    entries = models.BinaryField(blank=True, default=b"")
    # The signed text (canonical JSON): what the signature and the next seal's `previous` cover.
    header = models.TextField()
    digest = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=32)
    storage_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # The claim: two sealers can never both write block N of one organization.
            models.UniqueConstraint(
                fields=["organization", "sequence"], name="integrity_seal_org_sequence"
            )
        ]

    def __str__(self) -> str:
        return f"seal {self.sequence} ({self.kind}) of organization {self.organization_id}"
