"""The CSV format of the brief: one header, UTC ISO 8601 times, compact JSON, no formulas.

Every CSV of events is written by exports.services.csv_chunks: the streamed downloads, the
background export files, the scheduled exports and the archives. On PostgreSQL the database
writes it (exports/copy.py); elsewhere (SQLite, `make run`) the Python writer below, which is
also the reference the tests hold the database's bytes to.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC
from itertools import islice
from typing import TYPE_CHECKING, Any

from audit.member_view import fields_seen_by

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from audit.models import AuditEvent

# Each column of the CSV: its header, and the AuditEvent field (path) it is written from.
COLUMNS = [
    ("occurred_at", "occurred_at"),
    ("event_type", "event_type"),
    ("outcome", "outcome"),
    ("reason", "reason"),
    ("user", "actor_label"),
    ("target_user", "target_label"),
    ("ip_address", "ip_address"),
    ("country", "country"),
    ("city", "city"),
    ("browser", "agent__browser"),  # the user agents' dictionary (audit.models.UserAgent)
    ("os", "agent__os"),
    ("device_type", "agent__device_type"),
    ("session", "session_hash"),
    ("request_id", "request_id"),
    ("details", "details"),
]
HEADER = [header for header, _ in COLUMNS]
HEADER_LINE = (",".join(HEADER) + "\r\n").encode()
# The fields of AuditEvent a row needs, for .values_list() / .only() on large exports.
EVENT_FIELDS = [field for _, field in COLUMNS]

# Lines joined into one write of a file or one chunk of a response.
LINES_PER_BATCH = 5_000

# A cell starting with one of these is prefixed with an apostrophe, so that a spreadsheet shows
# it as text instead of running it as a formula (OWASP CSV injection).
FORMULA_START = frozenset("=+-@\t\r")
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode


def row_from_values(values: tuple[Any, ...]) -> list[str]:
    """Turn one tuple in EVENT_FIELDS order into the CSV row of HEADER, formulas neutralised."""
    occurred_at, *middle, details = values
    cells = [
        occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        *["" if v is None else str(v) for v in middle],
        _compact_json(details or {}),
    ]
    return ["'" + cell if cell[:1] in FORMULA_START else cell for cell in cells]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """Yield the header and then one CSV line per EVENT_FIELDS tuple; constant memory."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    for values in rows:
        yield writer.writerow(row_from_values(values))


def csv_batches(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[str]]:
    """csv_lines in lists of up to LINES_PER_BATCH lines (the header first); constant memory."""
    lines = csv_lines(rows)
    while batch := list(islice(lines, LINES_PER_BATCH)):
        yield batch


def python_csv_chunks(
    queryset: QuerySet[AuditEvent], *, viewer_id: int | None = None
) -> Iterator[tuple[bytes, int]]:
    """The CSV of the queryset's events in its order, written by Python, as (bytes, rows) of up
    to LINES_PER_BATCH lines, the header first; constant memory.

    `viewer_id`: the person whose own Activity Log this is (what they see of others' actions).
    """
    if viewer_id is None:
        rows: Iterable[tuple[Any, ...]] = queryset.values_list(*EVENT_FIELDS).iterator(
            chunk_size=LINES_PER_BATCH
        )
    else:
        values = queryset.values(*EVENT_FIELDS, "actor_id").iterator(chunk_size=LINES_PER_BATCH)
        seen = (fields_seen_by(row, viewer_id=viewer_id) for row in values)
        rows = (tuple(row[name] for name in EVENT_FIELDS) for row in seen)
    header = 1
    for batch in csv_batches(rows):
        yield "".join(batch).encode(), len(batch) - header
        header = 0
