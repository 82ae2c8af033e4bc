"""The one way audit events are deleted: through the database's purge functions.

The events table is append-only in the database itself (audit migrations 0002 and 0008). On
PostgreSQL only the SECURITY DEFINER functions `audit_events_purge_batch`,
`audit_events_purge_id_range` and `audit_events_purge_partition` (a whole month, 0014) may
delete from it, and each refuses a cutoff newer than the scope's retention; on SQLite a row in
`audit_purge_gate` opens the guard for one transaction. Only the retention purge
(retention.purge) calls this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .models import AuditEvent

logger = logging.getLogger(__name__)


def _purge_wal_compression(connection: Any, cursor: Any) -> str:
    """RETENTION_PURGE_WAL_COMPRESSION if this server has it and our role may set it, else "".

    Asked once per connection wrapper: without the privilege (a superuser's, or on PostgreSQL
    15+ GRANT SET ON PARAMETER wal_compression) the purge runs as before, uncompressed.
    """
    wanted = settings.RETENTION_PURGE_WAL_COMPRESSION
    known: tuple[str, str] | None = getattr(connection, "_audit_purge_wal_compression", None)
    if known is not None and known[0] == wanted:
        return known[1]
    usable = ""
    if wanted and connection.pg_version >= 150000:
        # Raw: a question to the server's catalog, which has no model.
        cursor.execute(
            "SELECT has_parameter_privilege('wal_compression', 'SET') AND %s = ANY(enumvals) "
            "FROM pg_settings WHERE name = 'wal_compression'",
            [wanted],
        )
        row = cursor.fetchone()
        usable = wanted if row and row[0] else ""
        if not usable:
            logger.info("retention purge: cannot set wal_compression=%s, purging without", wanted)
    connection._audit_purge_wal_compression = (wanted, usable)
    return usable


@contextmanager
def _purge_transaction(using: str) -> Iterator[Any]:
    """One transaction of its own for a purge batch; yields its cursor.

    On PostgreSQL the batch calls a purge function (audit migration 0008), the only thing that
    may delete events; the round trip before it turns off, for this transaction only, the
    commit's wait for its WAL flush (after a crash a purge batch's rows can only come back, with
    the bookkeeping the purge wrote in the same transaction, and the next purge deletes them
    again) and JIT, which costs a batch's cheap plan more than it saves. Where allowed
    (RETENTION_PURGE_WAL_COMPRESSION) it also compresses the full-page images the batch writes,
    most of a purge's WAL. SQLite has no roles: there the batch opens the guard's gate table.
    """
    connection = connections[using]
    # durable: a batch never joins (and never keeps open) a caller's longer transaction.
    with transaction.atomic(using=using, durable=True), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            compression = _purge_wal_compression(connection, cursor)
            # Raw: set_config(..., true) is SET LOCAL with parameters; the ORM sets no settings.
            cursor.execute(
                "SELECT set_config('synchronous_commit', 'off', true), "
                "set_config('jit', 'off', true)"
                + (", set_config('wal_compression', %s, true)" if compression else ""),
                [compression] if compression else [],
            )
            yield cursor
        else:
            # Raw: the gate is a table of the append-only migration (0002), with no model.
            cursor.execute("INSERT INTO audit_purge_gate (opened) VALUES (1)")
            try:
                yield cursor
            finally:
                # Closed explicitly too: inside a test's transaction this one is not the outermost.
                cursor.execute("DELETE FROM audit_purge_gate")


def events_purge_batch(
    *,
    organization_id: int | None,
    before: datetime,
    batch_size: int = 10_000,
    using: str = DEFAULT_DB_ALIAS,
    max_id: int | None = None,
    then: Callable[[int], None] | None = None,
) -> int:
    """Delete up to batch_size of the organization's oldest events older than `before`.

    The one code path allowed to delete audit events; only the retention purge calls it. With
    `max_id`, rows with a larger id are left alone (they were not in the archive written first).
    One statement per batch: the rows are picked and deleted without a round trip, and on
    PostgreSQL by their physical address (ctid), which spares a primary-key lookup per row.
    `then(count)` runs inside the batch's transaction, so what it writes commits with the batch.
    """
    if connections[using].vendor == "postgresql":
        with _purge_transaction(using) as cursor:
            # Raw: a call of a database function. It computes the organization's cutoff
            # itself and refuses a later `before`.
            cursor.execute(
                "SELECT audit_events_purge_batch(%s::bigint, %s::timestamptz, %s::bigint, %s)",
                [organization_id, before, max_id, batch_size],
            )
            deleted: int = cursor.fetchone()[0]
            if then is not None:
                then(deleted)
        return deleted
    # organization: the id, or None for the events without one (IS NULL).
    expired = AuditEvent.objects.using(using).filter(
        organization=organization_id, occurred_at__lt=before
    )
    if max_id is not None:
        expired = expired.filter(id__lte=max_id)
    oldest = expired.order_by("occurred_at", "id").values("id")[:batch_size]
    with _purge_transaction(using):
        deleted, _ = AuditEvent.objects.using(using).filter(id__in=oldest).delete()
        if then is not None:
            then(deleted)
    return deleted


def events_purge_id_range(
    *,
    scopes: Iterable[tuple[int | None, datetime, int]],
    id_from: int,
    id_to: int,
    using: str = DEFAULT_DB_ALIAS,
    then: Callable[[dict[int | None, int]], None] | None = None,
) -> dict[int | None, int]:
    """Delete, for each (organization id, before, max id) scope, its events older than `before`
    with ids in [id_from, id_to) and at most its max id; returns how many went per organization.

    The retention purge's pass over many organizations at once. Tenants' events interleave on
    the table's pages, so one statement over an id range reads each page once, where a purge
    per organization would read it once per organization. None is the events without one.
    `then(counts)` runs inside the batch's transaction, so what it writes commits with the batch.
    """
    scopes = list(scopes)
    counts: dict[int | None, int] = {}
    if not scopes:
        return counts
    with _purge_transaction(using) as cursor:
        if connections[using].vendor == "postgresql":
            # Raw: a call of a set-returning database function, with arrays for parameters.
            # It checks every scope's cutoff against its retention first.
            cursor.execute(
                "SELECT purged_organization_id, purged "
                "FROM audit_events_purge_id_range("
                "%s::bigint[], %s::timestamptz[], %s::bigint[], %s, %s)",
                [
                    [org for org, _, _ in scopes],
                    [before for _, before, _ in scopes],
                    [max_id for _, _, max_id in scopes],
                    id_from,
                    id_to,
                ],
            )
            counts.update(dict(cursor.fetchall()))
        else:
            for organization_id, before, max_id in scopes:
                deleted, _ = (
                    AuditEvent.objects.using(using)
                    .filter(
                        organization=organization_id,
                        occurred_at__lt=before,
                        id__lte=max_id,
                        id__gte=id_from,
                        id__lt=id_to,
                    )
                    .delete()
                )
                if deleted:
                    counts[organization_id] = deleted
        if then is not None:
            then(counts)
    return counts


def month_partitions(*, ending_by: datetime, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The events table's month partitions whose month ended by `ending_by`, oldest first
    (PostgreSQL; none on SQLite, which has one plain table)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        # Raw: the catalog's list of partitions, which has no model. Each is named by its
        # month (audit migration 0013), so the name says when it ends.
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_auditevent'::regclass "
            "AND c.relname ~ '^audit_auditevent_p[0-9]{4}_[0-9]{2}$' "
            "AND to_date(substr(c.relname, 19), 'YYYY_MM') + interval '1 month' "
            "<= (%s::timestamptz AT TIME ZONE 'UTC') ORDER BY c.relname",
            [ending_by],
        )
        return [name for (name,) in cursor.fetchall()]


def events_purge_partition(
    *,
    partition: str,
    scopes: Iterable[tuple[int | None, datetime, int]],
    using: str = DEFAULT_DB_ALIAS,
    then: Callable[[dict[int | None, int]], None] | None = None,
) -> dict[int | None, int] | None:
    """Drop a whole month if every row in it is one of the (organization id, before, max id)
    scopes', older than its `before` and no newer than its max id; how many rows went per
    organization, or None if the month has to stay (the database decides, migration 0014).

    `then(counts)` runs in the drop's transaction, so what it writes commits with the drop.
    """
    scopes = list(scopes)
    if connections[using].vendor != "postgresql" or not scopes:
        return None
    with _purge_transaction(using) as cursor:
        # Raw: a call of a set-returning database function, with arrays for parameters.
        cursor.execute(
            "SELECT purged_organization_id, purged, dropped FROM audit_events_purge_partition("
            "%s, %s::bigint[], %s::timestamptz[], %s::bigint[])",
            [
                partition,
                [org for org, _, _ in scopes],
                [before for _, before, _ in scopes],
                [max_id for _, _, max_id in scopes],
            ],
        )
        rows = cursor.fetchall()
        if not any(dropped for _, _, dropped in rows):
            return None
        counts = {org: count for org, count, _ in rows if count}
        if then is not None:
            then(counts)
    return counts
