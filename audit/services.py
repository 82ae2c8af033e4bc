"""The one path by which every audit event is written."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from .context import RequestContext, request_context
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

# The one registry of reactions to recorded events. Each hook is called with every batch of
# events once the transaction that wrote them has committed (transaction.on_commit; at once on a
# connection in autocommit), in the order registered, and never for a batch that rolled back.
# Apps that react to events register in their AppConfig.ready() (alerts queues its evaluation
# task, alerts.receivers.queue_evaluation), so this app imports none of them. A hook must be
# quick and must not rely on running: the request waits for it, and whatever it hands off has to
# be recoverable from the committed events (alerts' sweep evaluates what no task did). A hook
# that raises is logged and the rest still run; the request never sees the error.
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


def _after_commit(events: list[AuditEvent], using: str) -> None:
    if _after_commit_hooks and events:
        transaction.on_commit(lambda: _run_after_commit_hooks(events), using=using)


def durable_alias() -> str:
    """Name the connection on which a write commits now, whatever the caller's transaction does.

    With the default connection in autocommit (no transaction open: a view under
    non_atomic_requests, a task) that is the default connection. Inside a transaction
    (ATOMIC_REQUESTS, a service's atomic block) a rollback would take the write with it, so it
    goes through the separate "audit" connection instead.
    """
    if transaction.get_autocommit(using=DEFAULT_DB_ALIAS):
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
        **context.client_fields(),
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
) -> list[AuditEvent]:
    """Write several events of one request (one INSERT), in the caller's transaction."""
    ctx = context if context is not None else request_context(request)
    now = timezone.now()
    events = [_build_event(spec, ctx, now) for spec in specs]
    AuditEvent.objects.using(using).bulk_create(events)
    _after_commit(events, using)
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
    event = _build_event(
        spec, request_context(request) if context is None else context, timezone.now()
    )
    # save(), not bulk_create(): one INSERT, which on a connection in autocommit (the durable
    # case) commits on its own; bulk_create would wrap it in a transaction, two round trips more.
    event.save(using=alias, force_insert=True)
    _after_commit([event], alias)
    return event
