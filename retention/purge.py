"""The retention purge: delete each scope's events past retention, archiving them first if asked.

A scope is an organization, or the platform's events without one. Each purge of a scope is a
PurgeRun: claimed by a unique "running" row, kept alive by its heartbeat, closed with the count
it deleted and one `retention.purged` event. The deleting itself is audit.purge's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from time import monotonic, sleep
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Case, Count, F, Max, Min, PositiveBigIntegerField, QuerySet, When
from django.utils import timezone

from accounts.models import Organization
from audit.models import AuditEvent, EventType, Outcome
from audit.purge import (
    events_purge_batch,
    events_purge_id_range,
    events_purge_partition,
    month_partitions,
)
from audit.services import event_record
from integrity.services import purge_seal_record

from .archives import archive_expired
from .models import PurgeRun, PurgeStatus, RetentionSettings, StoredFile
from .policy import retention_days_of

logger = logging.getLogger(__name__)

PURGE_ACTOR = "retention purge"
# A running purge whose heartbeat is older than this is taken to have died with its worker.
PURGE_STALE_AFTER = timedelta(minutes=30)
# A scope whose expired rows make up at least this share of the ids between its oldest and
# newest expired row is purged in the shared pass over id ranges; a sparser one (a small
# tenant among many) through its own organization index.
DENSE_SCOPE_SHARE = 0.02


@dataclass(frozen=True)
class PurgeOutcome:
    scope: str
    organization: Organization | None
    retention_days: int
    cutoff: datetime
    status: str  # succeeded, failed, skipped (another run holds the scope), nothing, dry_run
    count: int = 0
    error: str = ""
    archive: StoredFile | None = None

    @property
    def label(self) -> str:
        return self.organization.name if self.organization else "(events without organization)"


def _scope(organization: Organization | None) -> str:
    return f"org:{organization.pk}" if organization is not None else "platform"


def events_expired(*, organization: Organization | None, cutoff: datetime) -> QuerySet[AuditEvent]:
    """The scope's events older than the cutoff (events without organization for None)."""
    return AuditEvent.objects.filter(organization=organization, occurred_at__lt=cutoff)


def _archives_first(organization: Organization | None) -> bool:
    if organization is None:
        return False
    return RetentionSettings.objects.filter(
        organization=organization, archive_before_purge=True
    ).exists()


# --- Runs: claim, keep alive, close ------------------------------------------------------------


def _record_purged(run: PurgeRun, *, interrupted: bool = False) -> None:
    details: dict[str, Any] = {
        "cutoff": run.cutoff.isoformat(),
        "count": run.deleted,
        "retention_days": run.retention_days,
        "purge_run": run.pk,
    }
    if run.archive is not None:
        details.update(archive=run.archive.name, archive_sha256=run.archive.sha256)
    if interrupted:
        details["interrupted"] = True
    event_record(
        event_type=EventType.RETENTION_PURGED,
        outcome=Outcome.FAILURE if interrupted else Outcome.SUCCESS,
        organization=run.organization,
        actor_label=PURGE_ACTOR,
        details=details,
    )


def _run_close(run: PurgeRun, *, error: str = "", only_if_beat_at: datetime | None = None) -> bool:
    """Mark a running run finished (failed when there is an `error`) and record what it deleted.

    With `only_if_beat_at`, only if its heartbeat is still that one (a stale run no one else
    closed meanwhile); returns whether this call closed it.
    """
    runs = PurgeRun.objects.filter(pk=run.pk)
    if only_if_beat_at is not None:
        runs = runs.filter(status=PurgeStatus.RUNNING, heartbeat_at=only_if_beat_at)
    fields: dict[str, Any] = {"status": PurgeStatus.SUCCEEDED, "finished_at": timezone.now()}
    if error:
        fields.update(status=PurgeStatus.FAILED, error=error[:2000])
    with transaction.atomic():
        closed = runs.update(**fields)
        if closed:
            run.refresh_from_db()
            if run.deleted:
                _record_purged(run, interrupted=bool(error))
    return bool(closed)


def _release_stale_runs(scope: str) -> None:
    """Close runs whose worker died, recording what they had deleted before dying."""
    limit = timezone.now() - PURGE_STALE_AFTER
    for run in PurgeRun.objects.filter(
        scope=scope, status=PurgeStatus.RUNNING, heartbeat_at__lt=limit
    ):
        _run_close(
            run, error="abandoned: no progress for 30 minutes", only_if_beat_at=run.heartbeat_at
        )


def _claim_run(
    organization: Organization | None, *, retention_days: int, cutoff: datetime
) -> PurgeRun | None:
    """Start a run for the scope, or None if another run holds it (the unique claim)."""
    scope = _scope(organization)
    _release_stale_runs(scope)
    try:
        with transaction.atomic():
            return PurgeRun.objects.create(
                scope=scope,
                organization=organization,
                retention_days=retention_days,
                cutoff=cutoff,
            )
    except IntegrityError:
        return None


class _Keepalive:
    """Refresh the heartbeat of every run this purge holds, at most once a minute.

    Runs wait for one another (archives are written one by one, the shared pass runs before
    the sparse scopes), and a run whose heartbeat stops for PURGE_STALE_AFTER is taken over.
    """

    def __init__(self) -> None:
        self.run_ids: list[int] = []
        self.last = monotonic()

    def beat(self) -> None:
        if monotonic() - self.last < 60 or not self.run_ids:
            return
        PurgeRun.objects.filter(pk__in=self.run_ids, status=PurgeStatus.RUNNING).update(
            heartbeat_at=timezone.now()
        )
        self.last = monotonic()


@dataclass
class _Claimed:
    run: PurgeRun
    organization: Organization | None
    min_id: int
    max_id: int
    expected: int

    @property
    def organization_id(self) -> int | None:
        return self.organization.pk if self.organization is not None else None

    @property
    def dense(self) -> bool:
        return self.expected >= DENSE_SCOPE_SHARE * (self.max_id - self.min_id + 1)


def _outcome_fields(
    organization: Organization | None, retention_days: int, cutoff: datetime
) -> dict[str, Any]:
    """What every PurgeOutcome of a scope says, however it ended."""
    return {
        "scope": _scope(organization),
        "organization": organization,
        "retention_days": retention_days,
        "cutoff": cutoff,
    }


def _outcome(
    run: PurgeRun, organization: Organization | None, status: str, error: str = ""
) -> PurgeOutcome:
    return PurgeOutcome(
        **_outcome_fields(organization, run.retention_days, run.cutoff),
        status=status,
        count=run.deleted,
        error=error,
        archive=run.archive,
    )


def _purge_finish(claimed: _Claimed) -> PurgeOutcome:
    _run_close(claimed.run)
    return _outcome(claimed.run, claimed.organization, "succeeded")


def _purge_fail(run: PurgeRun, organization: Organization | None, exc: Exception) -> PurgeOutcome:
    logger.error("retention purge of %s failed: %s", run.scope, exc, exc_info=exc)
    error = str(exc) or exc.__class__.__name__
    _run_close(run, error=error)
    return _outcome(run, organization, "failed", error=error)


# --- The purge -------------------------------------------------------------------------------


def _purge_prepare(
    organization: Organization | None, *, now: datetime, dry_run: bool, keepalive: _Keepalive
) -> PurgeOutcome | _Claimed:
    """Claim the scope and write its archive if asked; an outcome when there is nothing to do."""
    retention_days = retention_days_of(organization)
    cutoff = now - timedelta(days=retention_days)
    expired = events_expired(organization=organization, cutoff=cutoff)
    outcome = _outcome_fields(organization, retention_days, cutoff)
    if dry_run:
        return PurgeOutcome(**outcome, status="dry_run", count=expired.count())
    if not expired.exists():
        return PurgeOutcome(**outcome, status="nothing")
    run = _claim_run(organization, retention_days=retention_days, cutoff=cutoff)
    if run is None:
        return PurgeOutcome(**outcome, status="skipped")
    keepalive.run_ids.append(run.pk)
    try:
        # Rows inserted after this point wait for the next run, so the archive holds exactly
        # what is deleted.
        bounds = expired.aggregate(low=Min("id"), high=Max("id"), rows=Count("id"))
        if bounds["high"] is None:
            return _purge_finish(_Claimed(run, organization, 0, 0, 0))
        run.max_id = bounds["high"]
        run.save(update_fields=["max_id"])
        if organization is not None:
            # Sealed before anything is deleted, so verification agrees with the log at every
            # moment of the purge (docs/integrity.md); a failure here deletes nothing.
            purge_seal_record(
                organization=organization, cutoff=cutoff, max_id=run.max_id, purge_run=run.pk
            )
        if _archives_first(organization):
            run.archive = archive_expired(
                run=run,
                organization=organization,
                events=expired.filter(id__lte=run.max_id),
                beat=keepalive.beat,
            )
            run.save(update_fields=["archive"])
    except Exception as exc:
        return _purge_fail(run, organization, exc)
    return _Claimed(run, organization, bounds["low"], bounds["high"], bounds["rows"])


def _yield_to_sign_ins(batch_started: float) -> None:
    """Rest between batches for RETENTION_PURGE_PAUSE_RATIO times the batch's own duration.

    Batches never lock a row a sign-in needs, but on a small machine they compete for CPU and
    disk; a ratio of 1 halves the purge's share of both (0, the default, does not rest).
    """
    ratio = settings.RETENTION_PURGE_PAUSE_RATIO
    if ratio > 0:
        sleep((monotonic() - batch_started) * ratio)


def _count_in_runs(batch: list[_Claimed], counts: dict[int | None, int]) -> None:
    """Add a batch's counts to its runs' counters and beat their hearts, in one statement."""
    PurgeRun.objects.filter(pk__in=[c.run.pk for c in batch]).update(
        deleted=F("deleted")
        + Case(
            *(When(pk=c.run.pk, then=counts.get(c.organization_id, 0)) for c in batch),
            default=0,
            output_field=PositiveBigIntegerField(),
        ),
        heartbeat_at=timezone.now(),
    )


def _purge_by_organization(claimed: _Claimed, *, batch_size: int, keepalive: _Keepalive) -> None:
    """Delete one scope's expired rows, oldest first, through its organization index."""
    while True:
        keepalive.beat()
        started = monotonic()
        deleted = events_purge_batch(
            organization_id=claimed.organization_id,
            before=claimed.run.cutoff,
            batch_size=batch_size,
            max_id=claimed.max_id,
            then=lambda count: _count_in_runs([claimed], {claimed.organization_id: count}),
        )
        if deleted < batch_size:
            return
        _yield_to_sign_ins(started)


def _purge_by_id_range(scopes: list[_Claimed], *, batch_size: int, keepalive: _Keepalive) -> None:
    """Delete many scopes' expired rows in one pass over their id ranges, batch_size ids a time.

    Each batch commits on its own (the purge gate is a durable transaction), and the runs'
    counters are written in that same transaction: they always agree with what was deleted.
    """
    pending = sorted(scopes, key=lambda c: c.min_id)
    low = pending[0].min_id if pending else 0
    while pending:
        low = max(low, min(c.min_id for c in pending))
        high = low + batch_size
        batch = [c for c in pending if c.min_id < high]
        keepalive.beat()
        started = monotonic()
        events_purge_id_range(
            scopes=[(c.organization_id, c.run.cutoff, c.max_id) for c in batch],
            id_from=low,
            id_to=high,
            then=partial(_count_in_runs, batch),
        )
        pending = [c for c in pending if c.max_id >= high]
        low = high
        if pending:
            _yield_to_sign_ins(started)


def _purge_by_partition(claimed: list[_Claimed], *, keepalive: _Keepalive) -> None:
    """Drop, oldest first, each month whose every row belongs to a claimed scope, is past its
    cutoff and within its claimed (and archived) ids; stop at the first month that has to stay,
    since the months after it hold the same scopes' newer rows. What is left, the batches
    delete. A month that could not be detached now (a reader held the table past the lock
    timeout) is left to them as well.
    """
    if not claimed or not settings.RETENTION_PURGE_BY_PARTITION:
        return
    scopes = [(c.organization_id, c.run.cutoff, c.max_id) for c in claimed]
    for partition in month_partitions(ending_by=max(c.run.cutoff for c in claimed)):
        keepalive.beat()
        started = monotonic()
        try:
            dropped = events_purge_partition(
                partition=partition, scopes=scopes, then=partial(_count_in_runs, claimed)
            )
        except OperationalError as exc:
            logger.warning("retention purge: %s stays for now (%s)", partition, exc)
            return
        if dropped is None:
            return
        logger.info(
            "retention purge: dropped %s (%d rows) in %.0f ms",
            partition,
            sum(dropped.values()),
            (monotonic() - started) * 1000,
        )


def _database_now() -> datetime:
    """The database's clock: its purge functions check every cutoff against it, not ours.

    An app host whose clock ran ahead of the database's would otherwise ask for a cutoff a
    moment newer than retention allows and see the batch refused.
    """
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        # Raw: a FROM-less SELECT, which the ORM cannot say. The transaction's start, as the
        # functions use: never later than theirs.
        cursor.execute("SELECT now()")
        now: datetime = cursor.fetchone()[0]
    return now


def _purge(
    scopes: list[Organization | None],
    *,
    now: datetime | None,
    batch_size: int | None,
    dry_run: bool,
) -> list[PurgeOutcome]:
    """Purge the scopes: claim and archive each, then the dense ones in one shared pass over
    the ids, then each sparse one through its organization index; one failure stops no other."""
    now = now or _database_now()
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH_SIZE
    outcomes: dict[str, PurgeOutcome] = {}
    claimed: list[_Claimed] = []
    keepalive = _Keepalive()
    for organization in scopes:
        prepared = _purge_prepare(organization, now=now, dry_run=dry_run, keepalive=keepalive)
        if isinstance(prepared, PurgeOutcome):
            outcomes[_scope(organization)] = prepared
        else:
            claimed.append(prepared)
    try:
        _purge_by_partition(claimed, keepalive=keepalive)
    except Exception as exc:
        # The months dropped so far are counted in their runs; the batches below do the rest.
        logger.error("retention purge by partition failed: %s", exc, exc_info=exc)
    dense = [c for c in claimed if c.dense]
    if dense:
        try:
            _purge_by_id_range(dense, batch_size=batch_size, keepalive=keepalive)
        except Exception as exc:
            for c in dense:
                outcomes[c.run.scope] = _purge_fail(c.run, c.organization, exc)
        else:
            for c in dense:
                outcomes[c.run.scope] = _purge_finish(c)
    for c in claimed:
        if c.dense:
            continue
        try:
            _purge_by_organization(c, batch_size=batch_size, keepalive=keepalive)
        except Exception as exc:
            outcomes[c.run.scope] = _purge_fail(c.run, c.organization, exc)
        else:
            outcomes[c.run.scope] = _purge_finish(c)
    return [outcomes[_scope(organization)] for organization in scopes]


def events_purge_expired(
    *,
    organization: Organization | None,
    now: datetime | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
) -> PurgeOutcome:
    """Delete the scope's events past retention at `now`, archiving them first if asked.

    Safe to run twice or concurrently: a run claims its scope, and a second one skips it.
    Each batch is its own short transaction, so sign-ins never wait behind the purge. When the
    archive cannot be written and read back intact, nothing is deleted.
    """
    [outcome] = _purge([organization], now=now, batch_size=batch_size, dry_run=dry_run)
    return outcome


def events_purge_expired_all(
    *, now: datetime | None = None, batch_size: int | None = None, dry_run: bool = False
) -> list[PurgeOutcome]:
    """Purge every organization, then the events without one; one failure stops no other.

    Scopes are claimed and archived one by one, then deleted together in one pass over the ids
    (see audit.purge.events_purge_id_range), which reads each table page once.
    """
    scopes: list[Organization | None] = list(Organization.objects.order_by("pk"))
    return _purge([*scopes, None], now=now, batch_size=batch_size, dry_run=dry_run)
