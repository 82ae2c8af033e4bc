"""CSV export of filtered events: streamed in the request, or built by a job above a threshold."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from audit.forms import EventFilterForm
from audit.models import AuditEvent, EventType
from audit.selectors import events_filter, events_for_organization
from audit.services import event_record

from . import csv as csv_format
from .models import Export, ExportStatus

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

# Rows fetched from the server-side cursor per round trip; memory stays flat in the row count.
FETCH_ROWS = 5_000
PROGRESS_EVERY = 10_000


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


class _DetailsCells:
    """jsonb text -> the finished CSV cell of exports.csv (compact, sorted keys, neutralised,
    quoted). Most rows repeat a few details objects, so the work is done once per distinct one."""

    def __init__(self) -> None:
        self._seen: dict[str | None, str] = {}

    def __call__(self, text: str | None) -> str:
        found = self._seen.get(text)
        if found is None:
            value = json.loads(text) if text is not None else {}
            compact = json.dumps(
                value or {}, separators=(",", ":"), ensure_ascii=False, sort_keys=True
            )
            found = _csv_cell(csv_format.neutralise(compact))
            if len(self._seen) > 20_000:
                self._seen.clear()
            self._seen[text] = found
        return found


# Text PostgreSQL computes for the two cells that are not plain text columns.
_OCCURRED_AT_SQL = (
    'to_char("audit_auditevent"."occurred_at" AT TIME ZONE \'UTC\', '
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')'
)
_IP_SQL = 'COALESCE(host("audit_auditevent"."ip_address"), \'\')'
_CELLS = len(csv_format.HEADER)
# Lines joined into one chunk per yield: a chunk per line costs more than the line itself.
LINES_PER_CHUNK = 5_000
# Marks that make a cell need quoting or neutralising (checked after a comma: a cell's start).
_CARE_MARKS = ('"', "\r", "\n", ",=", ",+", ",-", ",@", ",\t")


def _line(cells: tuple[str, ...], details: str) -> str:
    """One CSV line, every cell neutralised and quoted as exports.csv would."""
    return ",".join(_csv_cell(csv_format.neutralise(cell)) for cell in cells) + f",{details}\r\n"


def _chunk(rows: list[tuple[str, ...]], details_cell: _DetailsCells) -> str:
    """CSV text of fetched rows. Nearly always no cell needs care: that is checked once for the
    whole chunk (C-speed scans of one string), and only a chunk that fails is done cell by cell.
    NUL separates the rows in the check: PostgreSQL text can never contain it."""
    prefixes = [",".join(row[:-1]) for row in rows]
    block = "\x00".join(prefixes)
    if block.count(",") == (_CELLS - 2) * len(rows) and not any(
        mark in block for mark in _CARE_MARKS
    ):
        return "".join(
            [
                f"{prefix},{details_cell(row[-1])}\r\n"
                for prefix, row in zip(prefixes, rows, strict=True)
            ]
        )
    return "".join([_line(row[:-1], details_cell(row[-1])) for row in rows])


def _postgres_lines(queryset: QuerySet[AuditEvent]) -> Iterator[str]:
    """CSV text from a server-side cursor: every value arrives as text (the time and address
    already formatted by PostgreSQL), no model, no datetime, a few string checks per row."""
    from psycopg.types.string import TextLoader

    fields = ["csv_occurred_at", *csv_format.EVENT_FIELDS[1:]]
    fields[fields.index("ip_address")] = "csv_ip"
    sql, params = (
        # Constant SQL of our own; no input reaches it.
        queryset.annotate(
            csv_occurred_at=RawSQL(_OCCURRED_AT_SQL, []),  # noqa: S611
            csv_ip=RawSQL(_IP_SQL, []),  # noqa: S611
        )
        .values_list(*fields)
        .query.sql_with_params()
    )
    details_cell = _DetailsCells()
    yield ",".join(csv_format.HEADER) + "\r\n"
    with transaction.atomic():
        connection.ensure_connection()
        raw = connection.connection
        with raw.cursor(name=f"export_{uuid.uuid4().hex}") as cursor:
            cursor.adapters.register_loader("jsonb", TextLoader)
            cursor.itersize = FETCH_ROWS
            # Plan for all rows, as COPY would, not for the first tenth (the cursor default).
            with raw.cursor() as settings_cursor:
                settings_cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
            cursor.execute(sql, params)
            while True:
                rows = cursor.fetchmany(LINES_PER_CHUNK)
                if not rows:
                    break
                yield _chunk(rows, details_cell)


def csv_stream(queryset: QuerySet[AuditEvent]) -> Iterator[str]:
    """The header and one line per event of the queryset, in its order; constant memory."""
    if connection.vendor == "postgresql":
        return _postgres_lines(queryset)
    rows = queryset.values_list(*csv_format.EVENT_FIELDS).iterator(chunk_size=FETCH_ROWS)
    return csv_format.csv_lines(rows)


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

    export = Export.objects.create(organization=organization, requested_by=user, filters=filters)
    event_record(
        event_type=EventType.EXPORT_CREATED,
        actor=user,
        organization=organization,
        details={"export_id": str(export.pk), "filters": filters, "delivery": "job"},
        request=request,
    )
    transaction.on_commit(lambda: export_build_task.delay(str(export.pk)))
    return export


def _export_queryset(export: Export) -> QuerySet[AuditEvent]:
    form = EventFilterForm(export.filters)
    if not form.is_valid():  # stored from a valid form; a change of rules must not go silent
        raise ValueError(f"stored filters no longer valid: {form.error_text()}")
    return events_filter(
        events_for_organization(organization=export.organization),
        filters=form.filters(),
        organization=export.organization,
    )


def export_build(*, export_id: str) -> Export | None:
    """Write the export's CSV file with its SHA-256; idempotent (claims the row first)."""
    claimed = Export.objects.filter(pk=export_id, status=ExportStatus.PENDING).update(
        status=ExportStatus.RUNNING
    )
    if not claimed:
        return None
    export = Export.objects.select_related("organization").get(pk=export_id)
    root = export_root()
    root.mkdir(parents=True, exist_ok=True)
    name = f"{export.pk}.csv"
    path = root / name
    digest = hashlib.sha256()
    size = written = reported = 0
    try:
        queryset = _export_queryset(export)
        Export.objects.filter(pk=export.pk).update(rows_expected=queryset.order_by().count())
        with path.open("wb") as handle:
            lines = 0
            for chunk in csv_stream(queryset):
                data = chunk.encode()
                handle.write(data)
                digest.update(data)
                size += len(data)
                lines += chunk.count("\n")
                written = max(lines - 1, 0)  # less the header
                if written - reported >= PROGRESS_EVERY:
                    Export.objects.filter(pk=export.pk).update(rows_written=written)
                    reported = written
    except Exception as exc:
        path.unlink(missing_ok=True)
        Export.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED, error=str(exc)[:500], finished_at=timezone.now()
        )
        raise
    now = timezone.now()
    Export.objects.filter(pk=export.pk).update(
        status=ExportStatus.DONE,
        rows_written=written,
        file_name=name,
        size_bytes=size,
        sha256=digest.hexdigest(),
        finished_at=now,
        expires_at=now + export_ttl(),
    )
    export.refresh_from_db()
    return export


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
