"""CSV export of filtered events: streamed in the request, or built by a job above a threshold."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.selectors import event_filters_with_members
from activity_monitor.celery import enqueue
from audit.forms import EventFilterForm
from audit.models import AuditEvent, EventType
from audit.selectors import events_matching
from audit.services import DURABLE_ALIAS, event_record

from . import csv as csv_format
from .copy import copy_csv_chunks
from .models import Export, ExportStatus

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

PROGRESS_EVERY = 10_000
# A running build says it is alive (and how far it got) at least this often, between batches.
HEARTBEAT_SECONDS = 5.0


def stream_max_rows() -> int:
    """Exports up to this many rows stream in the request; larger ones become a job."""
    return int(getattr(settings, "EXPORT_STREAM_MAX_ROWS", 100_000))


def export_root() -> Path:
    return Path(getattr(settings, "EXPORT_ROOT", Path(settings.BASE_DIR) / "var" / "exports"))


def export_ttl() -> timedelta:
    return timedelta(hours=int(getattr(settings, "EXPORT_TTL_HOURS", 72)))


def rows_at_most(queryset: QuerySet[AuditEvent], limit: int) -> int:
    """Count the rows up to `limit` + 1: enough to choose stream or job, never a full COUNT."""
    return queryset.order_by()[: limit + 1].count()


def csv_chunks(
    queryset: QuerySet[AuditEvent], *, viewer_id: int | None = None
) -> Iterator[tuple[bytes, int]]:
    """The brief's CSV of the queryset's events, in its order, as (bytes, rows) chunks, the
    header first; constant memory. What every export, download and archive writes.

    PostgreSQL writes it itself (COPY, exports/copy.py); other databases (SQLite in `make run`)
    through the Python writer of exports/csv.py, byte for byte the same.
    `viewer_id`: the person whose own Activity Log this is (what they see of others' actions).
    """
    if connections[queryset.db].vendor == "postgresql":
        return copy_csv_chunks(queryset, viewer_id=viewer_id)
    return csv_format.python_csv_chunks(queryset, viewer_id=viewer_id)


def csv_stream(queryset: QuerySet[AuditEvent]) -> Iterator[bytes]:
    """The header and one line per event of the queryset, in its order; constant memory."""
    return (data for data, _ in csv_chunks(queryset))


def csv_stream_seen_by(queryset: QuerySet[AuditEvent], *, viewer_id: int) -> Iterator[bytes]:
    """The person's own rows as csv_stream writes them, each as they may see it."""
    return (data for data, _ in csv_chunks(queryset, viewer_id=viewer_id))


def export_streamed_record(
    *,
    request: HttpRequest,
    user: User,
    organization: Organization | None,
    filters: dict[str, str],
    scope: str,
) -> None:
    """Record a CSV streamed straight to the person: it is created and downloaded at once."""
    details = {"filters": filters, "scope": scope, "delivery": "stream"}
    for event_type in (EventType.EXPORT_CREATED, EventType.EXPORT_DOWNLOADED):
        event_record(
            event_type=event_type,
            actor=user,
            organization=organization,
            details=details,
            request=request,
        )


def export_create(
    *, request: HttpRequest | None, user: User, organization: Organization, filters: dict[str, str]
) -> Export:
    """Queue a background export of the organization's events matching `filters`."""
    from .tasks import export_build as export_build_task

    export = Export.objects.create(
        organization=organization, requested_by=user, filters=filters, queued_at=timezone.now()
    )
    event_record(
        event_type=EventType.EXPORT_CREATED,
        actor=user,
        organization=organization,
        details={"export_id": str(export.pk), "filters": filters, "delivery": "job"},
        request=request,
    )
    export_id = str(export.pk)
    # Not queued (broker down)? The row is pending in the database: exports_sweep queues it.
    transaction.on_commit(lambda: enqueue(export_build_task, export_id))
    return export


def _export_queryset(export: Export) -> QuerySet[AuditEvent]:
    form = EventFilterForm(export.filters, paged=False)
    if not form.is_valid():  # stored from a valid form; a change of rules must not go silent
        raise ValueError(f"stored filters no longer valid: {form.error_text()}")
    filters = event_filters_with_members(form.filters(), organization=export.organization)
    return events_matching(filters=filters, organization=export.organization)


class _ClaimLost(Exception):
    """A sweep took the build over (this builder went silent): stop, change nothing."""


def _part_path(export: Export, attempt: int) -> Path:
    return export_root() / f"{export.pk}.csv.{attempt}.part"


def _read_one_snapshot(queryset: QuerySet[AuditEvent]) -> None:
    """Make the current transaction's statements read one snapshot (PostgreSQL).

    Under READ COMMITTED, Django's default, each statement sees what had committed when it
    began, so the count and the COPY that follows could disagree by an event committed between
    them. Raw SQL because Django sets an isolation level per connection, not per transaction;
    it must be the transaction's first statement, so the caller runs it only in a transaction
    of its own. SQLite reads one snapshot per transaction already.
    """
    connection = connections[queryset.db]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def export_build(*, export_id: str) -> Export | None:
    """Write the export's CSV file with its SHA-256, from scratch; idempotent (claims the row).

    The file is written under a temporary name and renamed into place in the transaction that
    marks the export done, so no reader ever sees a partial file under the export's name, and
    a builder that dies leaves only its temporary file, which the next attempt deletes.
    """
    claimed = Export.objects.filter(pk=export_id, status=ExportStatus.PENDING).update(
        status=ExportStatus.RUNNING,
        attempts=F("attempts") + 1,
        heartbeat_at=timezone.now(),
        rows_written=0,
    )
    if not claimed:
        return None
    export = Export.objects.select_related("organization").get(pk=export_id)
    # Every write names this attempt: once a sweep has handed the build to another attempt,
    # this builder's updates match no row and it stops.
    mine = Export.objects.filter(
        pk=export.pk, status=ExportStatus.RUNNING, attempts=export.attempts
    )
    # The rows are read in one transaction (below), where an update would stay unseen by the
    # sweep until the end: progress commits through the second connection to the database.
    progress = mine.using(DURABLE_ALIAS)
    root = export_root()
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.glob(f"{export.pk}.csv.*.part"):  # an earlier attempt died writing it
        leftover.unlink(missing_ok=True)
    name = f"{export.pk}.csv"
    part = _part_path(export, export.attempts)
    digest = hashlib.sha256()
    size = written = reported = 0
    try:
        queryset = _export_queryset(export)
        # Count and rows are read in one transaction and one snapshot, so the file holds exactly
        # the rows counted even while events keep arriving; progress commits through the second
        # connection, above.
        outermost = transaction.get_autocommit(using=queryset.db)
        with part.open("wb") as handle, transaction.atomic(using=queryset.db):
            if outermost:  # inside a caller's transaction the snapshot is the caller's choice
                _read_one_snapshot(queryset)
            if not progress.update(
                rows_expected=queryset.order_by().count(), heartbeat_at=timezone.now()
            ):
                raise _ClaimLost
            beat = time.monotonic()
            for data, rows in csv_chunks(queryset):
                handle.write(data)
                digest.update(data)
                size += len(data)
                written += rows
                if (
                    written - reported >= PROGRESS_EVERY
                    or time.monotonic() - beat >= HEARTBEAT_SECONDS
                ):
                    if not progress.update(rows_written=written, heartbeat_at=timezone.now()):
                        raise _ClaimLost
                    reported, beat = written, time.monotonic()
            handle.flush()
            os.fsync(handle.fileno())
        now = timezone.now()
        with transaction.atomic():
            if not mine.update(
                status=ExportStatus.DONE,
                rows_written=written,
                file_name=name,
                size_bytes=size,
                sha256=digest.hexdigest(),
                heartbeat_at=now,
                finished_at=now,
                expires_at=now + export_ttl(),
            ):
                raise _ClaimLost
            os.replace(part, root / name)  # atomic on one file system; a failure rolls back
    except _ClaimLost:
        part.unlink(missing_ok=True)
        return None
    except Exception as exc:
        part.unlink(missing_ok=True)
        mine.update(status=ExportStatus.FAILED, error=str(exc)[:500], finished_at=timezone.now())
        raise
    export.refresh_from_db()
    return export


def exports_sweep(*, now: Any = None) -> int:
    """Queue the builds no worker is doing; returns how many were queued.

    Pending exports whose task was never queued (broker down) or was lost are queued again;
    running exports whose builder has been silent for EXPORTS_STALE_SECONDS (its worker died)
    go back to pending and are rebuilt from scratch.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.EXPORTS_STALE_SECONDS)
    Export.objects.filter(status=ExportStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
    ).update(status=ExportStatus.PENDING, queued_at=None, rows_written=0)
    requeue_before = now - timedelta(seconds=settings.SWEEP_DELAY_SECONDS)
    waiting = Q(queued_at__isnull=True) | Q(queued_at__lte=requeue_before)
    from .tasks import export_build as export_build_task

    queued = 0
    pending = Export.objects.filter(waiting, status=ExportStatus.PENDING)
    for export_id in list(pending.values_list("pk", flat=True)[:100]):
        # One sweep queues it, whoever else sweeps at the same moment.
        if Export.objects.filter(waiting, pk=export_id, status=ExportStatus.PENDING).update(
            queued_at=now
        ):
            queued += enqueue(export_build_task, str(export_id))
    return queued


def export_downloaded_record(*, request: HttpRequest, user: User, export: Export) -> None:
    event_record(
        event_type=EventType.EXPORT_DOWNLOADED,
        actor=user,
        organization=export.organization,
        details={"export_id": str(export.pk), "sha256": export.sha256, "delivery": "job"},
        request=request,
    )


def exports_expire(*, now: Any = None) -> int:
    """Delete the files of exports past their expiry and mark them expired; returns how many."""
    now = now or timezone.now()
    expired = 0
    for export in Export.objects.filter(status=ExportStatus.DONE, expires_at__lte=now):
        if export.file_name:
            (export_root() / export.file_name).unlink(missing_ok=True)
        expired += Export.objects.filter(pk=export.pk, status=ExportStatus.DONE).update(
            status=ExportStatus.EXPIRED
        )
    return expired
