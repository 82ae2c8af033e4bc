"""The one path by which every audit event is written."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from .context import RequestContext, request_context
from .inserts import rows_insert_together
from .models import AuditEvent, EventType, Outcome
from .sanitize import clean_details, clean_text

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

# A second connection to the same database (settings.DATABASES["audit"]).
DURABLE_ALIAS = "audit"

logger = logging.getLogger(__name__)

# EventType.values builds a new list on every access; this is checked on every write.
_EVENT_TYPES = frozenset(EventType.values)

# Called with each batch of events once its transaction has committed. Apps that react to events
# (alerts) register here in AppConfig.ready(), so this app imports none of them.
_after_commit_hooks: list[Callable[[list[AuditEvent]], None]] = []


def after_events_commit(hook: Callable[[list[AuditEvent]], None]) -> None:
    """Register a callable to run with every batch of recorded events after it commits."""
    if hook not in _after_commit_hooks:
        _after_commit_hooks.append(hook)


def _run_after_commit_hooks(events: list[AuditEvent]) -> None:
    for hook in list(_after_commit_hooks):
        try:
            hook(events)
        except Exception:  # a reaction to an event never breaks the request that recorded it
            logger.exception("after-commit hook %r failed", hook)


def durable_alias() -> str:
    """Name the connection on which a write commits now, whatever the caller's transaction does.

    Outside any transaction that is the default connection. Inside one (ATOMIC_REQUESTS, a
    service's atomic block) a rollback would take the event with it, so the write goes through
    the separate "audit" connection instead. Test-case transactions do not count: they stand in
    for the database, not for a caller.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
        return DEFAULT_DB_ALIAS
    return DURABLE_ALIAS


@dataclass
class EventSpec:
    """What a caller knows about one event; event_record fills in the rest."""

    event_type: str
    outcome: str = Outcome.SUCCESS
    reason: str = ""
    actor: User | None = None
    actor_label: str = ""
    target_user: User | None = None
    organization: Organization | None = None
    details: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    # Overrides the request's session, for events about another session (one being revoked).
    session_hash: str | None = None


def _organization_id_of(user: User | None) -> int | None:
    if user is None:
        return None
    membership = getattr(user, "membership", None)  # select_related by callers on hot paths
    return membership.organization_id if membership else None


def _build_event(spec: EventSpec, context: RequestContext, now: datetime) -> AuditEvent:
    if spec.event_type not in _EVENT_TYPES:
        raise ValueError(f"unknown event type {spec.event_type!r}")
    actor, target = spec.actor, spec.target_user
    organization_id = (
        spec.organization.pk
        if spec.organization is not None
        else _organization_id_of(target if target is not None else actor)
    )
    details = clean_details(spec.details) or {}
    details.update(context.notes)
    return AuditEvent(
        occurred_at=spec.occurred_at or now,
        organization_id=organization_id,
        event_type=spec.event_type,
        outcome=spec.outcome,
        reason=clean_text(spec.reason, 128),
        actor_id=actor.pk if actor is not None else None,
        actor_label=clean_text(spec.actor_label or (actor.email if actor else ""), 254),
        target_user_id=target.pk if target is not None else None,
        target_label=clean_text(target.email if target is not None else "", 254),
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        browser=context.browser,
        os=context.os,
        device_type=context.device_type,
        device_id=context.device_id,
        country=context.geo.country,
        city=context.geo.city,
        latitude=context.geo.latitude,
        longitude=context.geo.longitude,
        session_hash=spec.session_hash if spec.session_hash is not None else context.session_hash,
        request_id=context.request_id,
        details=details,
    )


def events_record(
    *,
    specs: Iterable[EventSpec],
    request: HttpRequest | None = None,
    context: RequestContext | None = None,
    using: str = DEFAULT_DB_ALIAS,
    alongside: Sequence[models.Model] = (),
    statements: Sequence[tuple[str, Sequence[object]]] = (),
) -> list[AuditEvent]:
    """Write several events of one request in one statement, in the caller's transaction.

    `alongside`: new rows of one other model that the events describe (the session a sign-in
    starts); `statements`: other writes of the same change (an UPDATE and its parameters). Both
    go in the events' statement (audit.inserts.rows_insert_together), so they happen exactly when
    the events are written.
    """
    ctx = context if context is not None else request_context(request)
    now = timezone.now()
    events = [_build_event(spec, ctx, now) for spec in specs]
    rows_insert_together([alongside, events], using=using, statements=statements)
    if _after_commit_hooks and events:
        transaction.on_commit(lambda: _run_after_commit_hooks(events), using=using)
    return events


def event_record(
    *,
    event_type: str,
    outcome: str = Outcome.SUCCESS,
    reason: str = "",
    actor: User | None = None,
    actor_label: str = "",
    target_user: User | None = None,
    organization: Organization | None = None,
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    context: RequestContext | None = None,
    durable: bool = False,
    using: str | None = None,
) -> AuditEvent:
    """Write one event.

    By default the event joins the caller's transaction, so it exists exactly when the change it
    describes was committed. `durable=True` is for refusals (a failed sign-in): they must be kept
    even when the request's transaction rolls back, so they commit on their own.
    """
    spec = EventSpec(
        event_type=event_type,
        outcome=outcome,
        reason=reason,
        actor=actor,
        actor_label=actor_label,
        target_user=target_user,
        organization=organization,
        details=details or {},
    )
    alias = using or (durable_alias() if durable else DEFAULT_DB_ALIAS)
    # One INSERT: on a connection in autocommit (the durable case) it commits on its own.
    return events_record(specs=[spec], request=request, context=context, using=alias)[0]


def _purge_wal_compression(connection: Any, cursor: Any) -> str:
    """RETENTION_PURGE_WAL_COMPRESSION if this server has it and our role may set it, else "".

    Asked once per connection wrapper: without the privilege (a superuser's, or on PostgreSQL
    15+ GRANT SET ON PARAMETER wal_compression) the purge runs as before, uncompressed.
    """
    wanted = settings.RETENTION_PURGE_WAL_COMPRESSION
    known = getattr(connection, "_audit_purge_wal_compression", None)
    if known is not None and known[0] == wanted:
        return known[1]
    usable = ""
    if wanted and connection.pg_version >= 150000:
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
            cursor.execute(
                "SELECT set_config('synchronous_commit', 'off', true), "
                "set_config('jit', 'off', true)"
                + (", set_config('wal_compression', %s, true)" if compression else ""),
                [compression] if compression else [],
            )
            yield cursor
        else:
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
    connection = connections[using]
    if connection.vendor == "postgresql":
        # The function computes the organization's cutoff itself and refuses a later `before`.
        with _purge_transaction(using) as cursor:
            cursor.execute(
                "SELECT audit_events_purge_batch(%s::bigint, %s::timestamptz, %s::bigint, %s)",
                [organization_id, before, max_id, batch_size],
            )
            (deleted,) = cursor.fetchone()
            if then is not None:
                then(deleted)
        return deleted
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    conditions = ["organization_id IS NULL" if organization_id is None else "organization_id = %s"]
    params: list[Any] = [] if organization_id is None else [organization_id]
    conditions.append("occurred_at < %s")
    params.append(connection.ops.adapt_datetimefield_value(before))
    if max_id is not None:
        conditions.append("id <= %s")
        params.append(max_id)
    params.append(batch_size)
    where = " AND ".join(conditions)
    # Only fixed column names go into the SQL text; every value is a parameter.
    sql = (
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
        f"WHERE {where} ORDER BY occurred_at, id LIMIT %s)"
    )
    with _purge_transaction(using) as cursor:
        cursor.execute(sql, params)
        deleted = cursor.rowcount
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
    connection = connections[using]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    counts: dict[int | None, int] = {}
    if not scopes:
        return counts
    with _purge_transaction(using) as cursor:
        if connection.vendor == "postgresql":
            # The function checks every scope's cutoff against its retention first.
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
                org = (
                    "organization_id IS NULL" if organization_id is None else "organization_id = %s"
                )
                cursor.execute(
                    f"DELETE FROM {table} WHERE {org} AND occurred_at < %s "  # noqa: S608
                    "AND id <= %s AND id >= %s AND id < %s",
                    [
                        *([] if organization_id is None else [organization_id]),
                        connection.ops.adapt_datetimefield_value(before),
                        max_id,
                        id_from,
                        id_to,
                    ],
                )
                if cursor.rowcount:
                    counts[organization_id] = cursor.rowcount
        if then is not None:
            then(counts)
    return counts
