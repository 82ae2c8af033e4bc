"""Writes for retention: settings, the purge (with its archive), scheduled exports, verification."""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Max, Min, PositiveBigIntegerField, QuerySet, When
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import ENTERPRISE_RETENTION_BOUNDS, TIER_RETENTION_DAYS, Organization, Tier
from accounts.selectors import event_filters_with_members
from audit.models import AuditEvent, EventType, Outcome
from audit.purge import events_purge_batch, events_purge_id_range
from audit.selectors import EventFilters, events_matching, events_retention_days_allowed
from audit.services import event_record
from exports.csv import EVENT_FIELDS

from .files import (
    FileCheckFailed,
    FileFacts,
    FileMissing,
    file_measure,
    file_write_csv,
    manifest_read,
    manifest_write,
)
from .forms import ScheduleFilterForm
from .models import (
    DEFAULT_WINDOW_DAYS,
    MAX_WINDOW_DAYS,
    ExportSchedule,
    FileKind,
    Framework,
    Frequency,
    PurgeRun,
    PurgeStatus,
    RetentionSettings,
    StoredFile,
    VerifyStatus,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import User

logger = logging.getLogger(__name__)

PURGE_ACTOR = "retention purge"
SCHEDULE_ACTOR = "scheduled export"
# A running purge whose heartbeat is older than this is taken to have died with its worker.
PURGE_STALE_AFTER = timedelta(minutes=30)


class RetentionInputError(ValueError):
    """A request the rules do not allow (out of range, wrong tier, bad filter)."""


class ScheduleFiltersInvalid(RetentionInputError):
    """A schedule's stored filters that the filter form refuses today (stored under older,
    looser rules): no run of it can succeed until it is replaced."""


# --- Settings --------------------------------------------------------------------------------


# No event is purged younger than the shortest tier's retention; on PostgreSQL the database's
# purge functions hold the same floor (audit migration 0008), whatever the app asks.
RETENTION_FLOOR_DAYS = min(TIER_RETENTION_DAYS.values())


def retention_days_of(organization: Organization | None) -> int:
    """Days an organization's events are kept; the platform setting for events without one.

    The platform setting is clamped to RETENTION_FLOOR_DAYS, as the database clamps it. On
    PostgreSQL the database may keep them longer, and then its answer wins: a retention
    shortened within the last RETENTION_DOWNGRADE_GRACE_DAYS still counts there, and the
    platform retention is the one written at the last migrate (audit migration 0009).
    """
    if organization is None:
        days = max(settings.PLATFORM_EVENT_RETENTION_DAYS, RETENTION_FLOOR_DAYS)
    else:
        days = organization.retention_days
    allowed = events_retention_days_allowed(
        organization_id=organization.pk if organization else None
    )
    return days if allowed is None else max(days, allowed)


def retention_settings_update(
    *,
    organization: Organization,
    actor: User,
    frameworks: list[str],
    archive_before_purge: bool,
    retention_days: int | None = None,
    request: HttpRequest | None = None,
) -> dict[str, dict[str, Any]]:
    """Save the organization's retention settings; returns what changed (old and new).

    `retention_days` None leaves the retention as it is. Only Enterprise organizations may set
    it, within 1 to 10 years; their tier's default is stored as no override.
    """
    unknown = sorted(set(frameworks) - set(Framework.values))
    if unknown:
        raise RetentionInputError(f"Unknown compliance framework: {', '.join(unknown)}.")
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        RetentionSettings.objects.get_or_create(organization=org)
        current = RetentionSettings.objects.select_for_update().get(organization=org)
        old = {
            "retention_days": org.retention_days,
            "frameworks": sorted(current.frameworks),
            "archive_before_purge": current.archive_before_purge,
        }
        new = {
            "retention_days": old["retention_days"],
            "frameworks": sorted(set(frameworks)),
            "archive_before_purge": bool(archive_before_purge),
        }
        if retention_days is not None and retention_days != org.retention_days:
            if org.tier != Tier.ENTERPRISE:
                raise RetentionInputError(
                    f"The {org.get_tier_display()} tier keeps events {org.retention_days} days; "
                    "only Enterprise organizations can configure retention."
                )
            low, high = ENTERPRISE_RETENTION_BOUNDS
            if not low <= retention_days <= high:
                raise RetentionInputError(
                    f"Retention must be between {low} and {high} days (1 to 10 years)."
                )
            default = TIER_RETENTION_DAYS[Tier.ENTERPRISE]
            org.retention_days_override = None if retention_days == default else retention_days
            org.save(update_fields=["retention_days_override"])
            new["retention_days"] = retention_days
        changes = {key: {"old": old[key], "new": new[key]} for key in old if old[key] != new[key]}
        if not changes:
            return {}
        current.frameworks = new["frameworks"]
        current.archive_before_purge = new["archive_before_purge"]
        current.updated_at = timezone.now()
        current.save()
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=org,
            details={
                "area": "retention",
                "old": {key: change["old"] for key, change in changes.items()},
                "new": {key: change["new"] for key, change in changes.items()},
            },
            request=request,
        )
    organization.retention_days_override = org.retention_days_override
    return changes


# --- Purge -----------------------------------------------------------------------------------


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


def _scope_slug(organization: Organization | None) -> str:
    return organization.slug if organization is not None else "_platform"


def events_expired(*, organization: Organization | None, cutoff: datetime) -> QuerySet[AuditEvent]:
    """The scope's events older than the cutoff (events without organization for None)."""
    return AuditEvent.objects.filter(
        organization_id=organization.pk if organization else None, occurred_at__lt=cutoff
    )


def _archives_first(organization: Organization | None) -> bool:
    if organization is None:
        return False
    return RetentionSettings.objects.filter(
        organization=organization, archive_before_purge=True
    ).exists()


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


def _release_stale_runs(scope: str) -> None:
    """Close runs whose worker died, recording what they had deleted before dying."""
    limit = timezone.now() - PURGE_STALE_AFTER
    for run in PurgeRun.objects.filter(
        scope=scope, status=PurgeStatus.RUNNING, heartbeat_at__lt=limit
    ):
        with transaction.atomic():
            closed = PurgeRun.objects.filter(
                pk=run.pk, status=PurgeStatus.RUNNING, heartbeat_at=run.heartbeat_at
            ).update(
                status=PurgeStatus.FAILED,
                error="abandoned: no progress for 30 minutes",
                finished_at=timezone.now(),
            )
            if closed:
                run.refresh_from_db()
                if run.deleted:
                    _record_purged(run, interrupted=True)


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


def _beating(rows: Iterable[Any], keepalive: _Keepalive | None) -> Iterator[Any]:
    for number, row in enumerate(rows):
        if keepalive is not None and number % 10_000 == 0:
            keepalive.beat()
        yield row


def _archive_expired(
    run: PurgeRun,
    organization: Organization | None,
    *,
    max_id: int,
    keepalive: _Keepalive | None = None,
) -> StoredFile:
    """Write the run's rows to a verified gzip CSV with a manifest; raise if anything fails."""
    rows = _beating(
        events_expired(organization=organization, cutoff=run.cutoff)
        .filter(id__lte=max_id)
        .order_by("occurred_at", "id")
        .values_list(*EVENT_FIELDS)
        .iterator(chunk_size=5000),
        keepalive,
    )
    stamp = f"{run.cutoff.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    name = f"{_scope_slug(organization)}/archives/events-before-{stamp}-run{run.pk}.csv.gz"
    facts = file_write_csv(name=name, rows=rows, compress=True)
    about = {
        "kind": FileKind.ARCHIVE.value,
        "organization": organization.slug if organization else None,
        "cutoff": run.cutoff.isoformat(),
        "max_event_id": max_id,
        "retention_days": run.retention_days,
        "created_at": timezone.now().isoformat(),
    }
    manifest = manifest_write(name=f"{facts.name}.manifest.json", facts=facts, about=about)
    return _stored_file_create(
        facts,
        kind=FileKind.ARCHIVE,
        organization=organization,
        manifest_name=manifest,
        period_end=run.cutoff,
    )


def _stored_file_create(
    facts: FileFacts,
    *,
    kind: str,
    organization: Organization | None,
    manifest_name: str,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    schedule: ExportSchedule | None = None,
    created_by: User | None = None,
) -> StoredFile:
    now = timezone.now()
    return StoredFile.objects.create(
        organization=organization,
        kind=kind,
        name=facts.name,
        manifest_name=manifest_name,
        sha256=facts.sha256,
        row_count=facts.row_count,
        size=facts.size,
        period_start=period_start,
        period_end=period_end,
        schedule=schedule,
        created_by=created_by,
        created_at=now,
        verified_at=now,  # it was just read back and checked
        verify_status=VerifyStatus.OK,
    )


# A scope whose expired rows make up at least this share of the ids between its oldest and
# newest expired row is purged in the shared pass over id ranges; a sparser one (a small
# tenant among many) through its own organization index.
DENSE_SCOPE_SHARE = 0.02


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


def _heartbeat(run: PurgeRun, deleted: int) -> None:
    PurgeRun.objects.filter(pk=run.pk).update(
        deleted=F("deleted") + deleted, heartbeat_at=timezone.now()
    )


def _purge_finish(claimed: _Claimed) -> PurgeOutcome:
    run = claimed.run
    with transaction.atomic():
        PurgeRun.objects.filter(pk=run.pk).update(
            status=PurgeStatus.SUCCEEDED, finished_at=timezone.now()
        )
        run.refresh_from_db()
        if run.deleted:
            _record_purged(run)
    return _outcome(run, claimed.organization, "succeeded")


def _purge_fail(run: PurgeRun, organization: Organization | None, exc: Exception) -> PurgeOutcome:
    logger.error("retention purge of %s failed: %s", run.scope, exc, exc_info=exc)
    error = str(exc) or exc.__class__.__name__
    with transaction.atomic():
        PurgeRun.objects.filter(pk=run.pk).update(
            status=PurgeStatus.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        run.refresh_from_db()
        if run.deleted:
            _record_purged(run, interrupted=True)
    return _outcome(run, organization, "failed", error=error)


def _outcome(
    run: PurgeRun, organization: Organization | None, status: str, error: str = ""
) -> PurgeOutcome:
    return PurgeOutcome(
        scope=run.scope,
        organization=organization,
        retention_days=run.retention_days,
        cutoff=run.cutoff,
        status=status,
        count=run.deleted,
        error=error,
        archive=run.archive,
    )


def _purge_prepare(
    organization: Organization | None, *, now: datetime, dry_run: bool, keepalive: _Keepalive
) -> PurgeOutcome | _Claimed:
    """Claim the scope and write its archive if asked; an outcome when there is nothing to do."""
    retention_days = retention_days_of(organization)
    cutoff = now - timedelta(days=retention_days)
    expired = events_expired(organization=organization, cutoff=cutoff)
    outcome = {
        "scope": _scope(organization),
        "organization": organization,
        "retention_days": retention_days,
        "cutoff": cutoff,
    }
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
        PurgeRun.objects.filter(pk=run.pk).update(max_id=bounds["high"])
        if _archives_first(organization):
            run.archive = _archive_expired(
                run, organization, max_id=bounds["high"], keepalive=keepalive
            )
            PurgeRun.objects.filter(pk=run.pk).update(archive=run.archive)
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
            then=lambda count: _heartbeat(claimed.run, count),
        )
        if deleted < batch_size:
            return
        _yield_to_sign_ins(started)


def _count_in_runs(batch: list[_Claimed], counts: dict[int | None, int]) -> None:
    """Add a batch's counts to its runs' counters, in one statement."""
    PurgeRun.objects.filter(pk__in=[c.run.pk for c in batch]).update(
        deleted=F("deleted")
        + Case(
            *(When(pk=c.run.pk, then=counts.get(c.organization_id, 0)) for c in batch),
            default=0,
            output_field=PositiveBigIntegerField(),
        ),
        heartbeat_at=timezone.now(),
    )


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
            then=lambda counts, batch=batch: _count_in_runs(batch, counts),
        )
        pending = [c for c in pending if c.max_id >= high]
        low = high
        if pending:
            _yield_to_sign_ins(started)


def _database_now() -> datetime:
    """The database's clock: its purge functions check every cutoff against it, not ours.

    An app host whose clock ran ahead of the database's would otherwise ask for a cutoff a
    moment newer than retention allows and see the batch refused.
    """
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        # The transaction's start, as the functions use: never later than theirs.
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def _purge(
    scopes: list[Organization | None], *, now: datetime, batch_size: int, dry_run: bool
) -> list[PurgeOutcome]:
    outcomes: dict[str, PurgeOutcome] = {}
    claimed: list[_Claimed] = []
    keepalive = _Keepalive()
    for organization in scopes:
        prepared = _purge_prepare(organization, now=now, dry_run=dry_run, keepalive=keepalive)
        if isinstance(prepared, PurgeOutcome):
            outcomes[_scope(organization)] = prepared
        else:
            claimed.append(prepared)
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
    [outcome] = _purge(
        [organization],
        now=now or _database_now(),
        batch_size=batch_size or settings.RETENTION_PURGE_BATCH_SIZE,
        dry_run=dry_run,
    )
    return outcome


def events_purge_expired_all(
    *, now: datetime | None = None, batch_size: int | None = None, dry_run: bool = False
) -> list[PurgeOutcome]:
    """Purge every organization, then the events without one; one failure stops no other.

    Scopes are claimed and archived one by one, then deleted together in one pass over the ids
    (see events_purge_id_range), which reads each table page once.
    """
    scopes: list[Organization | None] = list(Organization.objects.order_by("pk"))
    return _purge(
        [*scopes, None],
        now=now or _database_now(),
        batch_size=batch_size or settings.RETENTION_PURGE_BATCH_SIZE,
        dry_run=dry_run,
    )


# --- Scheduled exports -----------------------------------------------------------------------


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)


def schedule_advance(when: datetime, frequency: str) -> datetime:
    """The run after `when`: a day, a week, or the same day next month (clamped)."""
    if frequency == Frequency.DAILY:
        return when + timedelta(days=1)
    if frequency == Frequency.WEEKLY:
        return when + timedelta(days=7)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def _parsed_filters(filters: dict[str, Any]) -> ScheduleFilterForm:
    form = ScheduleFilterForm(data=filters)
    if not form.is_valid():
        raise RetentionInputError(f"Invalid filter: {form.error_text()}")
    return form


def export_schedule_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    frequency: str,
    filters: dict[str, Any],
    window_days: int | None = None,
    now: datetime | None = None,
    request: HttpRequest | None = None,
) -> ExportSchedule:
    """Schedule a recurring export of the Audit Log's `filters`; first run at midnight UTC."""
    if frequency not in Frequency.values:
        raise RetentionInputError(f"Unknown frequency {frequency!r}.")
    window_days = window_days or DEFAULT_WINDOW_DAYS[Frequency(frequency)]
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise RetentionInputError(f"The window must be 1 to {MAX_WINDOW_DAYS} days.")
    canonical = _parsed_filters(filters).canonical()
    with transaction.atomic():
        schedule = ExportSchedule.objects.create(
            organization=organization,
            name=name.strip()[:100],
            frequency=frequency,
            filters=canonical,
            window_days=window_days,
            next_run_at=_next_midnight(now or timezone.now()),
            created_by=actor,
        )
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=organization,
            details={
                "area": "export_schedule",
                "schedule": schedule.pk,
                "old": None,
                "new": {"name": schedule.name, "frequency": frequency, **schedule.describe()},
            },
            request=request,
        )
    return schedule


def export_schedule_delete(
    *, schedule: ExportSchedule, actor: User, request: HttpRequest | None = None
) -> None:
    """Stop a schedule; the files it produced are kept."""
    with transaction.atomic():
        old = {"name": schedule.name, "frequency": schedule.frequency, **schedule.describe()}
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            organization=schedule.organization,
            details={"area": "export_schedule", "schedule": schedule.pk, "old": old, "new": None},
            request=request,
        )
        schedule.delete()


def _schedule_filters(schedule: ExportSchedule) -> EventFilters:
    """The schedule's stored filters, parsed as the Audit Log parses them, or
    ScheduleFiltersInvalid (recorded on the schedule, where its page shows it)."""
    form = ScheduleFilterForm(data=schedule.filters)
    if form.is_valid():
        return form.filters()
    error = ScheduleFiltersInvalid(
        f"The stored filters can no longer be used ({form.error_text()}); "
        "delete this schedule and create it again."
    )
    ExportSchedule.objects.filter(pk=schedule.pk).update(last_error=str(error)[:500])
    raise error


def _schedule_rows(
    schedule: ExportSchedule, filters: EventFilters, start: datetime, end: datetime
) -> QuerySet[Any]:
    """The schedule's rows for one window: what the Audit Log shows with its filters."""
    window = replace(filters, since=start, until=end)
    events = events_matching(
        filters=event_filters_with_members(window, organization=schedule.organization),
        organization=schedule.organization,
    )
    return events.order_by("occurred_at", "id").values_list(*EVENT_FIELDS)


def export_schedule_run(
    *,
    schedule: ExportSchedule,
    period_end: datetime,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> StoredFile:
    """Produce the schedule's CSV for the window ending at `period_end`, stored and checked."""
    filters = _schedule_filters(schedule)
    start = period_end - timedelta(days=schedule.window_days)
    organization = schedule.organization
    stamp = f"{period_end.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    name = f"{organization.slug}/exports/{slugify(schedule.name) or 'export'}-{stamp}.csv"
    rows = _schedule_rows(schedule, filters, start, period_end).iterator(chunk_size=5000)
    facts = file_write_csv(name=name, rows=rows, compress=False)
    about = {
        "kind": FileKind.EXPORT.value,
        "organization": organization.slug,
        "schedule": schedule.name,
        **schedule.describe(),
        "period_start": start.isoformat(),
        "period_end": period_end.isoformat(),
        "created_at": timezone.now().isoformat(),
    }
    manifest = manifest_write(name=f"{facts.name}.manifest.json", facts=facts, about=about)
    with transaction.atomic():
        stored = _stored_file_create(
            facts,
            kind=FileKind.EXPORT,
            organization=organization,
            manifest_name=manifest,
            period_start=start,
            period_end=period_end,
            schedule=schedule,
            created_by=actor,
        )
        ExportSchedule.objects.filter(pk=schedule.pk).update(
            last_run_at=timezone.now(), last_error=""
        )
        event_record(
            event_type=EventType.EXPORT_CREATED,
            actor=actor,
            actor_label="" if actor else SCHEDULE_ACTOR,
            organization=organization,
            details={
                "schedule": schedule.pk,
                "schedule_name": schedule.name,
                "file": stored.name,
                "sha256": stored.sha256,
                "rows": stored.row_count,
                **schedule.describe(),
                "period_start": start.isoformat(),
                "period_end": period_end.isoformat(),
            },
            request=request,
        )
    return stored


def export_schedules_run_due(*, now: datetime | None = None) -> int:
    """Produce every due export once (claimed by a conditional update); returns how many.

    A schedule that missed runs (workers down) catches up one period at a time, oldest first;
    one whose export fails keeps its period due and is retried at the next beat.
    """
    now = now or timezone.now()
    produced = 0
    failed: set[int] = set()
    while True:
        due = list(
            ExportSchedule.objects.filter(next_run_at__lte=now)
            .exclude(pk__in=failed)
            .select_related("organization")
            .order_by("next_run_at", "pk")[:100]
        )
        if not due:
            return produced
        for schedule in due:
            period_end = schedule.next_run_at
            following = schedule_advance(period_end, schedule.frequency)
            claimed = ExportSchedule.objects.filter(pk=schedule.pk, next_run_at=period_end).update(
                next_run_at=following
            )
            if not claimed:
                failed.add(schedule.pk)  # another worker has it: leave it to that one
                continue
            try:
                export_schedule_run(schedule=schedule, period_end=period_end)
            except Exception as exc:
                if isinstance(exc, ScheduleFiltersInvalid):  # known and shown: no traceback
                    logger.warning("scheduled export %s failed: %s", schedule.pk, exc)
                else:
                    logger.exception("scheduled export %s failed", schedule.pk)
                # Give the period back so the next beat retries it: no export is skipped.
                ExportSchedule.objects.filter(pk=schedule.pk, next_run_at=following).update(
                    next_run_at=period_end, last_error=(str(exc) or exc.__class__.__name__)[:500]
                )
                failed.add(schedule.pk)
                continue
            produced += 1


# --- Verification and downloads --------------------------------------------------------------


def stored_file_verify(*, stored_file: StoredFile) -> StoredFile:
    """Read the file back, recompute its SHA-256 and row count, and record the verdict."""
    problems: list[str] = []
    status = VerifyStatus.OK
    try:
        facts = file_measure(name=stored_file.name)
        if facts.sha256 != stored_file.sha256:
            problems.append(f"SHA-256 is {facts.sha256[:16]}…, expected {stored_file.sha256[:16]}…")
        if facts.row_count != stored_file.row_count:
            problems.append(f"{facts.row_count} rows, expected {stored_file.row_count}")
        if stored_file.manifest_name:
            manifest = manifest_read(name=stored_file.manifest_name)
            if (manifest.get("sha256"), manifest.get("rows")) != (
                stored_file.sha256,
                stored_file.row_count,
            ):
                problems.append("the manifest disagrees with the recorded checksum or rows")
        if problems:
            status = VerifyStatus.MISMATCH
    except FileMissing as exc:
        status, problems = VerifyStatus.MISSING, [str(exc)]
    except FileCheckFailed as exc:
        status, problems = VerifyStatus.ERROR, [str(exc)]
    stored_file.verify_status = status
    stored_file.verify_detail = "; ".join(problems)[:500]
    stored_file.verified_at = timezone.now()
    stored_file.save(update_fields=["verify_status", "verify_detail", "verified_at"])
    return stored_file


def stored_files_verify(*, files: QuerySet[StoredFile]) -> list[StoredFile]:
    """Verify each of the given files (a selector's result); returns them with verdicts."""
    return [stored_file_verify(stored_file=f) for f in files.order_by("created_at", "pk")]


def stored_file_download_record(
    *, stored_file: StoredFile, actor: User, request: HttpRequest | None = None
) -> None:
    event_record(
        event_type=EventType.EXPORT_DOWNLOADED,
        actor=actor,
        organization=stored_file.organization,
        details={
            "file": stored_file.name,
            "kind": stored_file.kind,
            "sha256": stored_file.sha256,
            "rows": stored_file.row_count,
        },
        request=request,
    )
