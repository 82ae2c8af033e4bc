"""Each event's canonical serialisation and its SHA-256, as the database computes them.

The serialisation (version 1, docs/integrity.md) is PostgreSQL's text of an anonymous record
(record_out: fields between parentheses, separated by commas; NULL as nothing; a field that is
empty or holds a comma, quote, parenthesis, backslash or space in double quotes, with quotes
and backslashes doubled) of every stored field of the row but its position (id, txid), in this
order:

    (1, organization_id, occurred_at, event_type, outcome, reason, actor_id, actor_label,
     target_user_id, target_label, ip_address, agent_id, user_agent, browser, os, device_type,
     device_id, country, city, latitude, longitude, session_hash, request_id, details)

Each field as its type prints with TimeZone UTC, DateStyle ISO and extra_float_digits 1 (set
for the transaction): occurred_at as `2026-12-07 22:31:05.123456+00`, latitude and longitude
as the shortest text that reads back as the same float, ip_address as the inet prints, details
as jsonb prints (keys in jsonb's order). user_agent to device_type are the user agent row the
event names (what the event shows; NULL when none). The text is hashed as UTF-8. The position is
not in it: a block stores each event's id and txid beside the digest, so a change of position
and a change of content are told apart, and the block's own hash covers both. (A record, not a
jsonb array: jsonb_build_array of 24 fields cost about 100 µs a row, the record a few.)

Computed in SQL so that sealing and verifying read each row once, in the feed's order from the
audit_org_txid index, and hash it where it is: no row crosses the wire, only its 32-byte digest.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

VERSION = 1
# id, txid, occurred_at in µs since 1970 (UTC), SHA-256: 56 bytes per event.
ENTRY = struct.Struct(">qqq32s")

SERIALISATION = """ROW(
    1, e.organization_id, e.occurred_at, e.event_type, e.outcome, e.reason, e.actor_id,
    e.actor_label, e.target_user_id, e.target_label, e.ip_address, e.agent_id, a.user_agent,
    a.browser, a.os, a.device_type, e.device_id, e.country, e.city, e.latitude, e.longitude,
    e.session_hash, e.request_id, e.details
)::text"""

# One organization's events after a position (exclusive) up to a bound, in feed order, each
# as (id, txid, occurred_at µs, SHA-256). Parameters: organization, after txid, after id,
# through txid, through id, below txid (the horizon), limit.
RANGE_SQL = """
SELECT e.id, e.txid,
       (extract(epoch FROM e.occurred_at) * 1000000)::bigint,
       sha256(convert_to({SERIALISATION}, 'UTF8'))
FROM audit_auditevent e LEFT JOIN audit_useragent a ON a.id = e.agent_id
WHERE e.organization_id = %s
  AND (e.txid, e.id) > (%s, %s)
  AND (e.txid, e.id) <= (%s, %s)
  AND e.txid < %s
ORDER BY e.txid, e.id
LIMIT %s
""".replace("{SERIALISATION}", SERIALISATION)

# The same serialisation of named events (tests and the documentation's worked example).
ONE_SQL = """
SELECT {SERIALISATION}
FROM audit_auditevent e LEFT JOIN audit_useragent a ON a.id = e.agent_id
WHERE e.id = %s
""".replace("{SERIALISATION}", SERIALISATION)

# Times, floats print the same on every server whatever the session had set.
PREPARE_SQL = (
    "SELECT set_config('extra_float_digits', '1', true), set_config('TimeZone', 'UTC', true), "
    "set_config('DateStyle', 'ISO, YMD', true)"
)


class Entry(NamedTuple):
    id: int
    txid: int
    occurred_us: int
    digest: bytes


def pack(rows: list[Any]) -> bytes:
    """Rows of RANGE_SQL packed as a block's entries."""
    return b"".join(ENTRY.pack(int(i), int(t), int(o), bytes(d)) for i, t, o, d in rows)


def unpack(data: bytes) -> Iterator[Entry]:
    for fields in ENTRY.iter_unpack(bytes(data)):
        yield Entry(*fields)
