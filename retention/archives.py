"""Files kept in the archive storage: the archive written before a purge, and every stored
file's record, verification and downloads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEvent, EventType
from audit.services import event_record
from exports.services import csv_chunks
from integrity.selectors import seal_head

from .files import (
    FileCheckFailed,
    FileMissing,
    file_measure,
    file_write_csv,
    is_compressed,
    manifest_read,
    manifest_write,
)
from .models import FileKind, PurgeRun, StoredFile, VerifyStatus

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User


def stored_file_write(
    *, record: StoredFile, chunks: Iterable[tuple[bytes, int]], about: dict[str, Any]
) -> StoredFile:
    """Write the CSV's `chunks` (exports.services.csv_chunks) to the file `record` names (gzip
    when it ends in .gz) and its manifest,
    read both back, and fill in what the record must hold; raise if anything fails.

    The record is not saved: the caller saves it with the change it belongs to.
    """
    facts = file_write_csv(name=record.name, chunks=chunks, compress=is_compressed(record.name))
    about = {
        "kind": FileKind(record.kind).value,
        **about,
        "created_at": timezone.now().isoformat(),
        # The organization's newest integrity seal when the file was written: a copy of the
        # chain's head outside the database (docs/integrity.md).
        "integrity_seal": seal_head(record.organization_id),
    }
    record.manifest_name = manifest_write(
        name=f"{facts.name}.manifest.json", facts=facts, about=about
    )
    record.name = facts.name  # the storage may have chosen another name
    record.sha256, record.row_count, record.size = facts.sha256, facts.row_count, facts.size
    record.created_at = record.verified_at = timezone.now()  # it was just read back and checked
    record.verify_status = VerifyStatus.OK
    return record


def _calling_every(
    chunks: Iterable[tuple[bytes, int]], beat: Callable[[], None] | None, every: int = 10_000
) -> Iterator[tuple[bytes, int]]:
    """The chunks, calling `beat` before the first and then once `every` rows have passed."""
    since = every
    for chunk in chunks:
        if beat is not None and since >= every:
            beat()
            since = 0
        since += chunk[1]
        yield chunk


def archive_expired(
    *,
    run: PurgeRun,
    organization: Organization | None,
    events: QuerySet[AuditEvent],
    beat: Callable[[], None] | None = None,
) -> StoredFile:
    """Write a purge run's `events` to a verified gzip CSV with a manifest and record it; raise
    if anything fails. `beat` is called as the rows are read, so a long archive keeps its run
    alive."""
    scope = organization.slug if organization is not None else "_platform"
    stamp = f"{run.cutoff.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    record = StoredFile(
        kind=FileKind.ARCHIVE,
        organization=organization,
        name=f"{scope}/archives/events-before-{stamp}-run{run.pk}.csv.gz",
        period_end=run.cutoff,
    )
    about = {
        "organization": organization.slug if organization else None,
        "cutoff": run.cutoff.isoformat(),
        "max_event_id": run.max_id,
        "retention_days": run.retention_days,
    }
    chunks = csv_chunks(events.order_by("occurred_at", "id"))
    stored_file_write(record=record, chunks=_calling_every(chunks, beat), about=about)
    record.save()
    return record


def stored_file_verify(*, stored_file: StoredFile) -> StoredFile:
    """Read the file back, recompute its SHA-256 and row count, and record the verdict."""
    problems: list[str] = []
    status = VerifyStatus.OK
    try:
        facts = file_measure(name=stored_file.name)
        if facts.sha256 != stored_file.sha256:
            problems.append(f"SHA-256 is {facts.sha256[:16]}…, expected {stored_file.sha256[:16]}…")
        if facts.row_count != stored_file.row_count:
            problems.append(f"{facts.row_count} rows, expected {stored_file.row_count}")
        if stored_file.manifest_name:
            manifest = manifest_read(name=stored_file.manifest_name)
            if (manifest.get("sha256"), manifest.get("rows")) != (
                stored_file.sha256,
                stored_file.row_count,
            ):
                problems.append("the manifest disagrees with the recorded checksum or rows")
        if problems:
            status = VerifyStatus.MISMATCH
    except FileMissing as exc:
        status, problems = VerifyStatus.MISSING, [str(exc)]
    except FileCheckFailed as exc:
        status, problems = VerifyStatus.ERROR, [str(exc)]
    stored_file.verify_status = status
    stored_file.verify_detail = "; ".join(problems)[:500]
    stored_file.verified_at = timezone.now()
    stored_file.save(update_fields=["verify_status", "verify_detail", "verified_at"])
    return stored_file


def stored_files_verify(*, files: QuerySet[StoredFile]) -> list[StoredFile]:
    """Verify each of the given files (a selector's result); returns them with verdicts."""
    return [stored_file_verify(stored_file=f) for f in files.order_by("created_at", "pk")]


def stored_file_download_record(
    *, stored_file: StoredFile, actor: User, request: HttpRequest | None = None
) -> None:
    """Record that someone downloaded a stored file (export.downloaded)."""
    event_record(
        event_type=EventType.EXPORT_DOWNLOADED,
        actor=actor,
        organization=stored_file.organization,
        details={**stored_file.describe(), "kind": stored_file.kind},
        request=request,
    )
