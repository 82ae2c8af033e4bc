"""The Enterprise API's event feed: every event exactly once to a client that polls by cursor.

Why not simply "id > cursor"? Ids come from a sequence when a row is *inserted*, not when its
transaction *commits*. Transaction A inserts id 999, transaction B inserts id 1000 and commits
first; a poll between the two commits serves 1000 and moves the cursor past 999, which becomes
visible a moment later and is never served. A time-based safety lag only makes this rarer.

The design here is exact:

1. Every event row carries `txid`, the id of the transaction that inserted it, set by the
   database itself (`pg_current_xact_id()`, a 64-bit xid8 that never wraps; see
   audit.models.CurrentTransactionId). Transaction ids are handed out in increasing order, at
   the transaction's first write, and every row of a transaction becomes visible at once.

2. Each poll first reads the horizon H = pg_snapshot_xmin(pg_current_snapshot()): every
   transaction with an id below H has finished (committed or rolled back), while any
   transaction still running, or starting later, has an id >= H.

3. The feed is ordered by (txid, id) and a poll serves only rows with txid < H. Those rows are
   final: nothing with txid < H can still appear. Every row that appears later belongs to a
   transaction with id >= H, so it sorts after everything already served. Hence nothing is
   skipped; and because the cursor is the last (txid, id) served and the order is total, nothing
   is served twice.

4. When a poll reaches the end, the cursor moves up to (H, 0): the next poll starts at the
   horizon without rescanning rows the client's filters did not match.

A long-running writing transaction holds H back, so the feed pauses (never skips) until it
ends; transaction ids are cluster-wide, so that includes writers in other databases of the same
PostgreSQL server (keep bulk loads and long migrations elsewhere, or expect the pause).

On SQLite one writer at a time holds the database lock from its first insert to its commit, so
ids are committed in order; there txid is 0 and the feed is ordered by id alone.

Proved under real concurrency in tests/test_api.py:
test_a_row_that_commits_after_a_later_row_is_not_skipped and
test_polling_under_concurrent_writes_receives_every_event_exactly_once.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from django.db import connection
from django.db.models import Q, QuerySet

from audit.models import AuditEvent

SALT = "api.feed.cursor"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class FeedCursorError(ValueError):
    pass


@dataclass
class FeedPage:
    events: list[AuditEvent]
    next_cursor: str
    has_more: bool


def _encode(*, organization_id: int, txid: int, event_id: int) -> str:
    return signing.dumps([txid, event_id], salt=f"{SALT}:{organization_id}")


def _decode(token: str, *, organization_id: int) -> tuple[int, int]:
    try:
        txid, event_id = signing.loads(token, salt=f"{SALT}:{organization_id}")
        return int(txid), int(event_id)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise FeedCursorError("The cursor is not valid for this organization.") from exc


def visibility_horizon() -> int | None:
    """The smallest transaction id that may still commit rows (None: no such thing on SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return int(cursor.fetchone()[0])


@dataclass(frozen=True)
class FeedBatch:
    """Events after a position, and the position to continue from (txid, event id)."""

    events: list[AuditEvent]
    txid: int
    event_id: int
    has_more: bool


# The position before every event: no row has a negative txid (SQLite's are all 0).
START = (-1, 0)


def feed_after(
    queryset: QuerySet[AuditEvent], *, txid: int, event_id: int, limit: int
) -> FeedBatch:
    """The next `limit` events after the position (txid, event_id), in (txid, id) order, final
    rows only; the position to continue from. The feed's one reading, for the API's signed
    cursors and for the streams' stored ones alike."""
    horizon = visibility_horizon()
    if horizon is not None:
        queryset = queryset.filter(txid__lt=horizon)
    queryset = queryset.filter(txid__gte=txid).filter(Q(txid__gt=txid) | Q(id__gt=event_id))
    rows = list(queryset.order_by("txid", "id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        txid, event_id = rows[-1].txid or 0, rows[-1].pk
    if not has_more and horizon is not None and horizon > txid:
        # Everything below the horizon has been seen: start the next poll there.
        txid, event_id = horizon, 0
    return FeedBatch(events=rows, txid=txid, event_id=event_id, has_more=has_more)


def feed_page(
    queryset: QuerySet[AuditEvent], *, organization_id: int, cursor: str, limit: int
) -> FeedPage:
    """The next `limit` events after the cursor, in (txid, id) order, final rows only."""
    txid, event_id = _decode(cursor, organization_id=organization_id) if cursor else START
    batch = feed_after(queryset, txid=txid, event_id=event_id, limit=limit)
    next_cursor = _encode(organization_id=organization_id, txid=batch.txid, event_id=batch.event_id)
    return FeedPage(events=batch.events, next_cursor=next_cursor, has_more=batch.has_more)


def feed_end(queryset: QuerySet[AuditEvent]) -> tuple[int, int]:
    """The position after every event there is now: a new reader starts here."""
    horizon = visibility_horizon()
    if horizon is not None:
        # Everything below the horizon is final; what commits later has txid >= horizon.
        return horizon, 0
    last = queryset.order_by("-txid", "-id").values_list("txid", "id").first()
    return (last[0] or 0, last[1]) if last else START


def feed_before_first(queryset: QuerySet[AuditEvent]) -> tuple[int, int]:
    """The position just before the queryset's first event in feed order (its end if empty)."""
    first = queryset.order_by("txid", "id").values_list("txid", "id").first()
    if first is None:
        return feed_end(queryset)
    return first[0] or 0, first[1] - 1
