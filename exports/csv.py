"""The CSV format of the brief: one header, UTC ISO 8601 times, compact JSON, no formulas."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC
from typing import Any

HEADER = [
    "occurred_at",
    "event_type",
    "outcome",
    "reason",
    "user",
    "target_user",
    "ip_address",
    "country",
    "city",
    "browser",
    "os",
    "device_type",
    "session",
    "request_id",
    "details",
]

# The fields of AuditEvent a row needs, for .values_list() / .only() on large exports.
EVENT_FIELDS = [
    "occurred_at",
    "event_type",
    "outcome",
    "reason",
    "actor_label",
    "target_label",
    "ip_address",
    "country",
    "city",
    "browser",
    "os",
    "device_type",
    "session_hash",
    "request_id",
    "details",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (OWASP CSV injection)."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def row_from_values(values: tuple[Any, ...]) -> list[str]:
    """Turn one tuple in EVENT_FIELDS order into the CSV row of HEADER."""
    occurred_at, *middle, details = values
    cells = [occurred_at.astimezone(UTC).isoformat(timespec="microseconds")]
    cells += ["" if v is None else str(v) for v in middle]
    cells.append(
        json.dumps(details or {}, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    )
    return [neutralise(cell) for cell in cells]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """Yield the header and then one CSV line per EVENT_FIELDS tuple; constant memory."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    for values in rows:
        yield writer.writerow(row_from_values(values))
