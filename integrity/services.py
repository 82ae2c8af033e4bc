"""Seal an organization's events into signed, chained blocks; record purges; verify the chain.

docs/integrity.md says what a block holds and why sealing follows the API feed's commit order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from audit.models import EventType, Outcome
from audit.services import event_record

from . import canonical
from .keys import SigningKeyError, key_id, signing_key
from .models import Seal, SealKind
from .storage import name_of, seal_file_body, seal_file_read, seal_file_write, seal_sequences_stored

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock(SEAL_LOCK, organization id): one sealer per organization at a time.
SEAL_LOCK = 0x5EA1
GENESIS = "0" * 64
START = (-1, 0)  # before every position (txid, id)
VERIFIER = "integrity verification"
# A report names at most this many problems in its event (the command prints them all).
EVENT_PROBLEMS = 50


def _horizon() -> int:
    """Every transaction below this id has ended (api.feed explains; this app may not import
    it): rows below it are final and can be sealed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return int(cursor.fetchone()[0])


def _header_text(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(microseconds=1)


def _from_us(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)


def _seal_write(
    *,
    key: Ed25519PrivateKey,
    organization_id: int,
    previous: Seal | None,
    kind: str,
    last: tuple[int, int],
    entries: bytes,
    count: int,
    oldest_at: datetime | None,
    newest_at: datetime | None,
    purge: dict[str, Any] | None = None,
) -> Seal:
    """Sign, insert and copy to storage the next seal (the caller holds the organization's lock)."""
    sequence = previous.sequence + 1 if previous else 1
    now = timezone.now()
    header = _header_text(
        {
            "v": canonical.VERSION,
            "organization": organization_id,
            "sequence": sequence,
            "kind": kind,
            "after": [previous.last_txid, previous.last_id] if previous else list(START),
            "last": list(last),
            "count": count,
            "entries_sha256": hashlib.sha256(entries).hexdigest(),
            "previous": previous.digest if previous else GENESIS,
            "oldest_at": oldest_at.isoformat() if oldest_at else None,
            "newest_at": newest_at.isoformat() if newest_at else None,
            "purge": purge,
            "sealed_at": now.isoformat(),
        }
    )
    seal = Seal(
        organization_id=organization_id,
        sequence=sequence,
        kind=kind,
        last_txid=last[0],
        last_id=last[1],
        event_count=count,
        oldest_at=oldest_at,
        newest_at=newest_at,
        entries=entries,
        header=header,
        digest=hashlib.sha256(header.encode()).hexdigest(),
        signature=key.sign(header.encode()).hex(),
        key_id=key_id(key.public_key()),
        storage_name=name_of(organization_id, sequence),
        created_at=now,
    )
    seal.save(force_insert=True)
    # Written before the commit: a seal without its copy is never committed. A rolled-back
    # sealer's file is replaced by the next sealer of the same sequence.
    seal_file_write(seal)
    return seal


def _lock_and_last(organization_id: int) -> Seal | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [SEAL_LOCK, organization_id])
    return Seal.objects.filter(organization_id=organization_id).order_by("-sequence").first()


def events_seal(*, organization: Organization, block_max: int | None = None) -> list[Seal]:
    """Seal the organization's events that are final and not sealed yet, in blocks of at most
    `block_max` (INTEGRITY_BLOCK_MAX_EVENTS); the new seals. Raises SigningKeyError.

    Safe to run concurrently: each block is claimed under the organization's advisory lock,
    and the unique (organization, sequence) refuses a second block N even without it.
    """
    key = signing_key()
    block_max = block_max or settings.INTEGRITY_BLOCK_MAX_EVENTS
    sealed: list[Seal] = []
    if connection.vendor != "postgresql":
        return sealed  # the serialisation and the commit order are PostgreSQL's
    while True:
        with transaction.atomic():
            previous = _lock_and_last(organization.pk)
            after = (previous.last_txid, previous.last_id) if previous else START
            horizon = _horizon()
            with connection.cursor() as cursor:
                cursor.execute(canonical.PREPARE_SQL)
                cursor.execute(
                    canonical.RANGE_SQL,
                    [organization.pk, *after, horizon, 0, horizon, block_max],
                )
                rows = cursor.fetchall()
            if not rows:
                return sealed
            times = [row[2] for row in rows]
            sealed.append(
                _seal_write(
                    key=key,
                    organization_id=organization.pk,
                    previous=previous,
                    kind=SealKind.EVENTS,
                    last=(rows[-1][1], rows[-1][0]),
                    entries=canonical.pack(rows),
                    count=len(rows),
                    oldest_at=_from_us(min(times)),
                    newest_at=_from_us(max(times)),
                )
            )
        if len(rows) < block_max:
            return sealed


def events_seal_all(*, block_max: int | None = None) -> int:
    """Seal every organization's pending events; how many events were sealed. Without a
    signing key, logs why and seals nothing."""
    total = 0
    for organization in Organization.objects.order_by("pk"):
        try:
            total += sum(
                s.event_count for s in events_seal(organization=organization, block_max=block_max)
            )
        except SigningKeyError as exc:
            logger.warning("events not sealed: %s", exc)
            return total
    return total


def purge_seal_record(
    *, organization: Organization, cutoff: datetime, max_id: int, purge_run: int
) -> Seal | None:
    """Record, before a retention purge deletes, what it will remove: the organization's events
    older than `cutoff` with ids up to `max_id`, and the sealed blocks holding such events.
    None when no key is set (nothing is sealed, so there is nothing to keep agreeing)."""
    if connection.vendor != "postgresql":
        return None
    try:
        key = signing_key()
    except SigningKeyError as exc:
        logger.warning("retention purge not sealed: %s", exc)
        return None
    with transaction.atomic():
        previous = _lock_and_last(organization.pk)
        if previous is None:
            return None  # nothing sealed yet: nothing the purge could contradict
        blocks = list(
            Seal.objects.filter(
                organization_id=organization.pk, kind=SealKind.EVENTS, oldest_at__lt=cutoff
            )
            .order_by("sequence")
            .values_list("sequence", flat=True)
        )
        return _seal_write(
            key=key,
            organization_id=organization.pk,
            previous=previous,
            kind=SealKind.PURGE,
            last=(previous.last_txid, previous.last_id),
            entries=b"",
            count=0,
            oldest_at=None,
            newest_at=None,
            purge={
                "cutoff": cutoff.isoformat(),
                "cutoff_us": _us(cutoff),
                "max_id": max_id,
                "purge_run": purge_run,
                "blocks": blocks,
            },
        )


# --- Verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing verification found wrong: with the event's id when it is about an event."""

    kind: str  # changed, deleted, truncated, inserted, reordered, seal, storage, chain
    message: str
    event_id: int | None = None
    sequence: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "sequence": self.sequence,
            "message": self.message,
        }


@dataclass
class Report:
    organization: Organization
    blocks: int = 0
    events: int = 0
    purged: int = 0
    problems: list[Problem] = field(default_factory=list)
    # Why nothing could be verified (no key, a key that is not the one the seals were signed
    # with): never reported as intact.
    cannot_verify: str = ""

    @property
    def intact(self) -> bool:
        return not self.cannot_verify and not self.problems

    def summary(self) -> str:
        if self.cannot_verify:
            return f"{self.organization.slug}: cannot verify: {self.cannot_verify}"
        if self.problems:
            return (
                f"{self.organization.slug}: {len(self.problems)} problem(s) in {self.blocks} "
                f"seals over {self.events} events"
            )
        return (
            f"{self.organization.slug}: intact: {self.blocks} seals, {self.events} events "
            f"re-derived, {self.purged} removed by retention purges"
        )


@dataclass
class _Missing:
    entry: canonical.Entry
    sequence: int
    last_of_newest: bool


def _seal_check(seal: Seal, previous: Seal | None, public: Any, report: Report) -> dict[str, Any]:
    """The seal's own problems (signature, chain, entries, storage copy); its header fields."""
    header: dict[str, Any] = json.loads(seal.header)
    problem = None
    try:
        public.verify(bytes.fromhex(seal.signature), seal.header.encode())
    except (InvalidSignature, ValueError):
        problem = "its signature does not match its contents (the seal was rewritten)"
    expected_previous = previous.digest if previous else GENESIS
    if problem is None and hashlib.sha256(seal.header.encode()).hexdigest() != seal.digest:
        problem = "its digest does not match its header"
    if problem is None and header.get("previous") != expected_previous:
        problem = "it does not chain to the seal before it (a seal was removed or replaced)"
    if problem is None and (
        header.get("sequence"),
        header.get("kind"),
        header.get("last"),
        header.get("entries_sha256"),
    ) != (
        seal.sequence,
        seal.kind,
        [seal.last_txid, seal.last_id],
        hashlib.sha256(bytes(seal.entries)).hexdigest(),
    ):
        problem = "its stored fields differ from what was signed"
    if problem:
        report.problems.append(
            Problem("seal", f"seal {seal.sequence}: {problem}", None, seal.sequence)
        )
    stored = seal_file_read(seal.storage_name)
    if stored is None:
        report.problems.append(
            Problem(
                "storage",
                f"seal {seal.sequence}: its copy {seal.storage_name} is missing from the "
                "archive storage",
                None,
                seal.sequence,
            )
        )
    elif stored != json.loads(seal_file_body(seal)):
        report.problems.append(
            Problem(
                "storage",
                f"seal {seal.sequence}: its copy in the archive storage differs from the database",
                None,
                seal.sequence,
            )
        )
    return header


def _block_rows(organization_id: int, after: tuple[int, int], last: tuple[int, int]) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(canonical.PREPARE_SQL)
        # No horizon: everything in a sealed range was final when it was sealed.
        cursor.execute(
            canonical.RANGE_SQL,
            [organization_id, *after, *last, 2**62, 2**62],
        )
        rows: list[Any] = cursor.fetchall()
        return rows


def _where_now(ids: list[int]) -> dict[int, tuple[int | None, int | None]]:
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, organization_id, txid FROM audit_auditevent WHERE id = ANY(%s)", [ids]
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def _purged(entry: canonical.Entry, purges: list[dict[str, Any]]) -> bool:
    return any(
        entry.occurred_us < purge["cutoff_us"] and entry.id <= purge["max_id"] for purge in purges
    )


def integrity_verify(*, organization: Organization) -> Report:
    """Re-derive every seal of the organization from its events and report, by event id, every
    event changed, deleted, moved in the commit order, inserted into a sealed range or missing
    at the end; and every seal rewritten, removed or missing from the archive storage."""
    report = Report(organization=organization)
    if connection.vendor != "postgresql":
        report.cannot_verify = "seals are made and checked on PostgreSQL only (make run is SQLite)"
        return report
    try:
        key = signing_key()
    except SigningKeyError as exc:
        report.cannot_verify = str(exc)
        return report
    public = key.public_key()
    seals = list(Seal.objects.filter(organization_id=organization.pk).order_by("sequence"))
    own = key_id(public)
    foreign = {s.key_id for s in seals} - {own}
    if foreign:
        report.cannot_verify = (
            f"seals were signed with key(s) {', '.join(sorted(foreign))}, and "
            f"INTEGRITY_SIGNING_KEY is key {own}: set the key they were signed with."
        )
        return report
    report.blocks = len(seals)
    purges = [json.loads(s.header)["purge"] for s in seals if s.kind == SealKind.PURGE]
    missing: list[_Missing] = []
    inserted: dict[int, Problem] = {}
    previous: Seal | None = None
    after = START
    newest_events = max((s.sequence for s in seals if s.kind == SealKind.EVENTS), default=0)
    for index, seal in enumerate(seals):
        if seal.sequence != index + 1:
            report.problems.append(
                Problem("chain", f"seal {index + 1} is missing from the database", None, index + 1)
            )
        _seal_check(seal, previous, public, report)
        previous = seal
        if seal.kind != SealKind.EVENTS:
            continue
        last = (seal.last_txid, seal.last_id)
        sealed = {entry.id: entry for entry in canonical.unpack(bytes(seal.entries))}
        report.events += len(sealed)
        for event_id, txid, _occurred, digest in _block_rows(organization.pk, after, last):
            entry = sealed.pop(event_id, None)
            if entry is None:
                inserted[event_id] = Problem(
                    "inserted",
                    f"event {event_id} is in the range of seal {seal.sequence} but was not "
                    "sealed (inserted after sealing, or out of order)",
                    event_id,
                    seal.sequence,
                )
            elif bytes(digest) != entry.digest:
                report.problems.append(
                    Problem(
                        "changed",
                        f"event {event_id} was changed after sealing",
                        event_id,
                        seal.sequence,
                    )
                )
            elif txid != entry.txid:
                report.problems.append(
                    Problem(
                        "reordered",
                        f"event {event_id} moved in the commit order (txid {entry.txid} → {txid})",
                        event_id,
                        seal.sequence,
                    )
                )
        survivors = [e for e in canonical.unpack(bytes(seal.entries)) if e.id not in sealed]
        tail = max(((e.txid, e.id) for e in survivors), default=START)
        for entry in sealed.values():
            missing.append(
                _Missing(
                    entry,
                    seal.sequence,
                    seal.sequence == newest_events and (entry.txid, entry.id) > tail,
                )
            )
        after = last
    # Reconcile: a sealed event found elsewhere moved; one found nowhere was deleted, unless a
    # retention purge recorded its removal.
    gone = [m for m in missing if not _purged(m.entry, purges)]
    report.purged = len(missing) - len(gone)
    now_at = _where_now([m.entry.id for m in gone])
    for m in gone:
        event_id = m.entry.id
        if event_id in now_at:
            org, txid = now_at[event_id]
            inserted.pop(event_id, None)
            where = "another organization" if org != organization.pk else f"txid {txid}"
            report.problems.append(
                Problem(
                    "reordered",
                    f"event {event_id} moved out of seal {m.sequence} (now at {where})",
                    event_id,
                    m.sequence,
                )
            )
        elif m.last_of_newest:
            report.problems.append(
                Problem(
                    "truncated",
                    f"event {event_id} is missing at the end of the log (seal {m.sequence}): "
                    "the newest events were removed",
                    event_id,
                    m.sequence,
                )
            )
        else:
            report.problems.append(
                Problem(
                    "deleted", f"event {event_id} was deleted after sealing", event_id, m.sequence
                )
            )
    report.problems.extend(inserted.values())
    stored = seal_sequences_stored(organization.pk)
    known = {s.sequence for s in seals}
    for sequence in stored:
        if sequence not in known:
            report.problems.append(
                Problem(
                    "chain",
                    f"seal {sequence} is in the archive storage but not in the database "
                    "(seals were removed: the newest events may be gone with them)",
                    None,
                    sequence,
                )
            )
    report.problems.sort(key=lambda p: (p.sequence or 0, p.event_id or 0, p.kind))
    return report


def integrity_verify_record(*, organization: Organization, actor: User | None = None) -> Report:
    """Verify the organization and record the result as integrity.verified or
    integrity.failed (which raises a critical alert: alerts.detectors)."""
    report = integrity_verify(organization=organization)
    details: dict[str, Any] = {
        "seals": report.blocks,
        "events": report.events,
        "purged": report.purged,
        "problems": len(report.problems),
        "found": [p.as_dict() for p in report.problems[:EVENT_PROBLEMS]],
    }
    if report.cannot_verify:
        details["cannot_verify"] = report.cannot_verify
    event_record(
        event_type=EventType.INTEGRITY_VERIFIED if report.intact else EventType.INTEGRITY_FAILED,
        outcome=Outcome.SUCCESS if report.intact else Outcome.FAILURE,
        organization=organization,
        actor=actor,
        actor_label="" if actor else VERIFIER,
        details=details,
    )
    return report
