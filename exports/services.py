"""CSV export of filtered events: streamed in the request, or built by a job above a threshold."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.selectors import event_filters_with_members
from activity_monitor.celery import enqueue
from audit.forms import EventFilterForm
from audit.member_view import fields_seen_by
from audit.models import AuditEvent, EventType
from audit.selectors import events_matching
from audit.services import DURABLE_ALIAS, event_record

from . import csv as csv_format
from .models import Export, ExportStatus

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

# Rows fetched from the server-side cursor per round trip; memory stays flat in the row count.
FETCH_ROWS = 5_000
PROGRESS_EVERY = 10_000
# A running build says it is alive (and how far it got) at least this often, between chunks.
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


def _csv_cell(value: str) -> str:
    """One cell as Python's csv module (QUOTE_MINIMAL, excel dialect) writes it."""
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


# --- PostgreSQL: COPY (SELECT ...) TO STDOUT, finished into CSV a chunk at a time ---------------
# PostgreSQL formats every cell as text (the time as ISO 8601 UTC, the address without mask) and
# sends each row as one tab-separated line of COPY's text format. Python then does per row only
# what SQL cannot do cheaply and exactly: split off the details and swap in their finished cell
# (compact, sorted keys as Python sorts them, neutralised, quoted), cached per distinct value.
# Everything else is checked a whole chunk at a time with C-speed scans of one bytes string.

_OCCURRED_AT_SQL = (
    'to_char("audit_auditevent"."occurred_at" AT TIME ZONE \'UTC\', '
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')'
)
_IP_SQL = 'COALESCE(host("audit_auditevent"."ip_address"), \'\')'
# Lines per chunk: one yield, one decode and one set of checks per chunk.
LINES_PER_CHUNK = 5_000
# In COPY text format a raw tab only ever separates cells (a tab inside a value is written \t),
# and any value with a backslash, newline, CR, tab or NULL shows a backslash. So a chunk of cells
# (the details split off) whose bytes hold none of these marks is CSV already once its tabs become
# commas: no cell needs quoting, none starts with a formula character (the first cell is the time).
_CARE_MARKS = (b"\\", b'"', b",", b"\r", b"\t=", b"\t+", b"\t-", b"\t@")
_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_COPY_ESCAPE = re.compile(r"\\(.)")
_DETAILS_CACHE_MAX = 20_000


def _copy_text(cell: bytes) -> str:
    """A value as COPY's text format wrote it, back to the string (NULL, \\N, as empty)."""
    text = cell.decode()
    if "\\" not in text:
        return text
    if text == "\\N":
        return ""
    return _COPY_ESCAPE.sub(lambda m: _COPY_ESCAPES.get(m.group(1), m.group(1)), text)


def _needs_care(cells: bytes) -> bool:
    return any(mark in cells for mark in _CARE_MARKS)


def _careful_cells(cells: bytes) -> bytes:
    """The CSV cells of one row's tab-separated COPY cells, neutralised and quoted one by one."""
    return ",".join(
        _csv_cell(csv_format.neutralise(_copy_text(cell))) for cell in cells.split(b"\t")
    ).encode()


def _details_tail(copied: bytes) -> bytes:
    """The line's end for a details value as COPY wrote it (jsonb text and newline): a comma,
    the finished details cell and CRLF."""
    text = _copy_text(copied[:-1])
    value = json.loads(text) if text else {}
    compact = json.dumps(value or {}, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return b"," + _csv_cell(csv_format.neutralise(compact)).encode() + b"\r\n"


def _chunk(rows: list[bytes], details: dict[bytes, bytes]) -> str:
    """CSV text of COPY rows (one tab-separated line each, the details last)."""
    cells, tails = [], []
    for row in rows:
        head, _, tail = row.rpartition(b"\t")
        cells.append(head)
        found = details.get(tail)
        if found is None:
            if len(details) >= _DETAILS_CACHE_MAX:
                details.clear()
            found = details[tail] = _details_tail(tail)
        tails.append(found)
    if _needs_care(b"\n".join(cells)):
        cells = [_careful_cells(c) if _needs_care(c) else c.replace(b"\t", b",") for c in cells]
        return b"".join([x for pair in zip(cells, tails, strict=True) for x in pair]).decode()
    # No cell holds a tab, the details cells hold none either (JSON escapes it): every tab left
    # separates two cells.
    joined = b"".join([x for pair in zip(cells, tails, strict=True) for x in pair])
    return joined.replace(b"\t", b",").decode()


def _copy_statement(queryset: QuerySet[AuditEvent]) -> str | None:
    """The queryset's SELECT with its parameters bound, for COPY; None when it can match no row.

    Django says "no row" by raising EmptyResultSet while it writes the SQL (a filter such as
    `actor_id IN ()` or .none()): a list page reads that as an empty page, so the export must
    too, and must find out before the response starts.
    """
    from psycopg import ClientCursor

    fields = ["csv_occurred_at", *csv_format.EVENT_FIELDS[1:]]
    fields[fields.index("ip_address")] = "csv_ip"
    try:
        sql, params = (
            # Constant SQL of our own; no input reaches it.
            queryset.annotate(
                csv_occurred_at=RawSQL(_OCCURRED_AT_SQL, []),  # noqa: S611
                csv_ip=RawSQL(_IP_SQL, []),  # noqa: S611
            )
            .values_list(*fields)
            .query.sql_with_params()
        )
    except EmptyResultSet:
        return None
    connection.ensure_connection()
    # COPY takes no bind parameters: the filters are bound client-side, by psycopg's own quoting.
    with ClientCursor(connection.connection) as quoting:
        return quoting.mogrify(sql, params)


def _postgres_lines(statement: str | None) -> Iterator[str]:
    """CSV text from COPY (the statement) TO STDOUT; constant memory. Only the header for
    a statement that can match nothing."""
    yield ",".join(csv_format.HEADER) + "\r\n"
    if statement is None:
        return
    connection.ensure_connection()
    raw = connection.connection
    details: dict[bytes, bytes] = {}
    with raw.cursor() as cursor, cursor.copy(f"COPY ({statement}) TO STDOUT") as copy:
        rows: list[bytes] = []
        for row in copy:
            rows.append(bytes(row))
            if len(rows) == LINES_PER_CHUNK:
                yield _chunk(rows, details)
                rows = []
        if rows:
            yield _chunk(rows, details)


def csv_stream(queryset: QuerySet[AuditEvent]) -> Iterator[str]:
    """The header and one line per event of the queryset, in its order; constant memory."""
    if connection.vendor == "postgresql":
        return _postgres_lines(_copy_statement(queryset))
    rows = queryset.values_list(*csv_format.EVENT_FIELDS).iterator(chunk_size=FETCH_ROWS)
    return csv_format.csv_lines(rows)


def csv_stream_seen_by(queryset: QuerySet[AuditEvent], *, viewer_id: int) -> Iterator[str]:
    """The person's own rows as csv_stream writes them, each as they may see it.

    Rows pass through Python (not COPY) to drop what someone else's action on the person
    must not show them; one person's events are few enough for that.
    """
    names = csv_format.EVENT_FIELDS
    rows = queryset.values(*names, "actor_id").iterator(chunk_size=FETCH_ROWS)
    seen = (fields_seen_by(row, viewer_id=viewer_id) for row in rows)
    return csv_format.csv_lines(tuple(row[name] for name in names) for row in seen)


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
    # While COPY streams, its connection can run nothing else (a query there would wait for the
    # COPY for ever): progress goes through the second connection to the same database.
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
        if not mine.update(rows_expected=queryset.order_by().count(), heartbeat_at=timezone.now()):
            raise _ClaimLost
        beat = time.monotonic()
        stream = csv_stream(queryset)
        with part.open("wb") as handle, closing(stream):  # closing ends an unfinished COPY
            lines = 0
            for chunk in stream:
                data = chunk.encode()
                handle.write(data)
                digest.update(data)
                size += len(data)
                lines += chunk.count("\n")
                written = max(lines - 1, 0)  # less the header
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
