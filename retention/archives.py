"""Files kept in the archive storage: the archive written before a purge, and every stored
file's record, verification and downloads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEvent, EventType
from audit.services import event_record
from exports.csv import EVENT_FIELDS

from .files import (
    FileCheckFailed,
    FileFacts,
    FileMissing,
    file_measure,
    file_write_csv,
    manifest_read,
    manifest_write,
)
from .models import ExportSchedule, FileKind, PurgeRun, StoredFile, VerifyStatus

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User


def stored_file_create(
    facts: FileFacts,
    *,
    kind: str,
    organization: Organization | None,
    manifest_name: str,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    schedule: ExportSchedule | None = None,
    created_by: User | None = None,
) -> StoredFile:
    """Record a file just written and read back (file_write_csv): verified as of now."""
    now = timezone.now()
    return StoredFile.objects.create(
        organization=organization,
        kind=kind,
        name=facts.name,
        manifest_name=manifest_name,
        sha256=facts.sha256,
        row_count=facts.row_count,
        size=facts.size,
        period_start=period_start,
        period_end=period_end,
        schedule=schedule,
        created_by=created_by,
        created_at=now,
        verified_at=now,  # it was just read back and checked
        verify_status=VerifyStatus.OK,
    )


def _beating(rows: Iterable[Any], beat: Callable[[], None] | None) -> Iterator[Any]:
    for number, row in enumerate(rows):
        if beat is not None and number % 10_000 == 0:
            beat()
        yield row


def archive_expired(
    *,
    run: PurgeRun,
    organization: Organization | None,
    events: QuerySet[AuditEvent],
    beat: Callable[[], None] | None = None,
) -> StoredFile:
    """Write a purge run's `events` to a verified gzip CSV with a manifest; raise if anything
    fails. `beat` is called as the rows are read, so a long archive keeps its run alive."""
    rows = _beating(
        events.order_by("occurred_at", "id").values_list(*EVENT_FIELDS).iterator(chunk_size=5000),
        beat,
    )
    scope = organization.slug if organization is not None else "_platform"
    stamp = f"{run.cutoff.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    name = f"{scope}/archives/events-before-{stamp}-run{run.pk}.csv.gz"
    facts = file_write_csv(name=name, rows=rows, compress=True)
    about = {
        "kind": FileKind.ARCHIVE.value,
        "organization": organization.slug if organization else None,
        "cutoff": run.cutoff.isoformat(),
        "max_event_id": run.max_id,
        "retention_days": run.retention_days,
        "created_at": timezone.now().isoformat(),
    }
    manifest = manifest_write(name=f"{facts.name}.manifest.json", facts=facts, about=about)
    return stored_file_create(
        facts,
        kind=FileKind.ARCHIVE,
        organization=organization,
        manifest_name=manifest,
        period_end=run.cutoff,
    )


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
        details={
            "file": stored_file.name,
            "kind": stored_file.kind,
            "sha256": stored_file.sha256,
            "rows": stored_file.row_count,
        },
        request=request,
    )
