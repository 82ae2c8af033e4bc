"""Retention by partition (issue 15, item 2): a month whose every row is past retention, claimed
and archived where asked, is dropped whole; everything else expired is deleted in batches; the
two ways leave exactly the same rows and record the same counts.
"""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from accounts.models import Tier
from audit.models import AuditEvent, EventType
from audit.purge import events_purge_partition, month_partitions
from retention.models import PurgeRun, RetentionSettings
from retention.purge import events_purge_expired_all

from .factories import OrganizationFactory
from .retention_support import archive_dir_fixture, event_at  # noqa: F401
from .test_partitions import _as_owner, _partitions

pytestmark = [
    pytest.mark.postgres(reason="table partitioning is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]

DAY = timedelta(days=1)


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _months_back(count: int) -> datetime:
    """The first instant of the month `count` months before this one (UTC)."""
    month = _month_start(timezone.now())
    for _ in range(count):
        month = _month_start(month - DAY)
    return month


def _name(month: datetime) -> str:
    return f"audit_auditevent_p{month:%Y_%m}"


def _months_made(first: int, last: int) -> None:
    """The partitions of the months `first` to `last` months back, made as the owner would."""
    for back in range(last, first - 1, -1):
        _as_owner("SELECT audit_events_partition_ensure(%s::date)", [_months_back(back).date()])


class History:
    """Three tenants and the platform over two years, laid out so that the oldest months hold
    only rows everyone has let go of, the middle months hold rows some keep, and the months
    of this year hold rows everyone keeps.

    - months 20 to 14 back: Small Business (90 days), Medium Business (365), the platform (365),
      all past retention: these months go whole;
    - months 9 to 5 back: Small Business (past) and Medium Business (kept): these stay, and
      their Small Business rows are deleted in batches;
    - 10 days ago: everyone, Enterprise too: kept.
    """

    def __init__(self, settings) -> None:
        settings.PLATFORM_EVENT_RETENTION_DAYS = 365
        _months_made(0, 21)
        self.small = OrganizationFactory.create(tier=Tier.SMALL_BUSINESS)
        self.medium = OrganizationFactory.create(tier=Tier.MEDIUM_BUSINESS)
        self.enterprise = OrganizationFactory.create(tier=Tier.ENTERPRISE)
        self.kept: set[int] = set()
        self.expired: dict[int | None, int] = {}
        now = timezone.now()
        for back in range(14, 21):
            at = _months_back(back) + 3 * DAY
            for organization in (self.small, self.medium, None):
                for hour in range(3):
                    self._add(at + timedelta(hours=hour), organization, expired=True)
        for back in range(5, 10):
            at = _months_back(back) + 3 * DAY
            self._add(at, self.small, expired=True)
            self._add(at, self.medium, expired=now - at > 365 * DAY)
        for organization in (self.small, self.medium, self.enterprise, None):
            self._add(now - 10 * DAY, organization, expired=False)
        self.dropped_months = [_name(_months_back(back)) for back in range(20, 13, -1)]

    def _add(self, at: datetime, organization, *, expired: bool) -> None:
        event = event_at(at, organization)
        if expired:
            key = organization.pk if organization else None
            self.expired[key] = self.expired.get(key, 0) + 1
        else:
            self.kept.add(event.pk)

    def remaining(self) -> set[int]:
        return set(
            AuditEvent.objects.exclude(event_type=EventType.RETENTION_PURGED).values_list(
                "pk", flat=True
            )
        )

    def purged_counts(self) -> dict[int | None, int]:
        return {
            event.organization_id: event.details["count"]
            for event in AuditEvent.objects.filter(event_type=EventType.RETENTION_PURGED)
        }


@pytest.mark.parametrize("by_partition", [True, False], ids=["drop", "delete"])
def test_dropping_months_and_deleting_rows_leave_the_same_rows_and_counts(settings, by_partition):
    settings.RETENTION_PURGE_BY_PARTITION = by_partition
    history = History(settings)

    outcomes = events_purge_expired_all()

    assert history.remaining() == history.kept
    assert history.purged_counts() == history.expired
    assert {o.status for o in outcomes if o.count} == {"succeeded"}
    left = set(_partitions())
    if by_partition:
        assert left.isdisjoint(history.dropped_months)
    else:
        assert set(history.dropped_months) <= left
    # The months some tenant keeps are still there either way.
    assert _name(_months_back(7)) in left


def test_an_archive_holds_every_row_of_a_dropped_month(settings, archive_dir):
    history = History(settings)
    RetentionSettings.objects.create(organization=history.small, archive_before_purge=True)

    events_purge_expired_all()

    run = PurgeRun.objects.get(organization=history.small)
    assert run.deleted == history.expired[history.small.pk]
    content = gzip.decompress((archive_dir / run.archive.name).read_bytes()).decode()
    rows = list(csv.reader(io.StringIO(content)))
    assert len(rows) - 1 == run.deleted
    assert set(_partitions()).isdisjoint(history.dropped_months)


def test_a_month_with_a_row_of_a_scope_not_being_purged_stays(settings):
    history = History(settings)
    month = history.dropped_months[0]
    before = timezone.now() - 400 * DAY
    scopes = [(history.small.pk, before, 2**62), (None, before, 2**62)]  # not Medium Business

    assert events_purge_partition(partition=month, scopes=scopes) is None

    assert month in _partitions()


def test_a_month_with_a_row_past_the_claim_stays(settings):
    history = History(settings)
    month = history.dropped_months[0]
    before = timezone.now() - 400 * DAY
    scopes = [(org, before, 0) for org in (history.small.pk, history.medium.pk, None)]

    assert events_purge_partition(partition=month, scopes=scopes) is None
    assert month in _partitions()


@pytest.mark.parametrize(
    "partition",
    ["audit_auditevent_default", "accounts_user", "audit_auditevent", "audit_auditevent_p1999_1"],
)
def test_only_a_month_of_the_events_table_can_be_dropped(partition):
    scopes = [(None, timezone.now() - 400 * DAY, 2**62)]
    with pytest.raises(DatabaseError, match="not a month of the events table"):
        events_purge_partition(partition=partition, scopes=scopes)


def test_a_cutoff_newer_than_retention_is_refused_and_the_month_stays(settings):
    history = History(settings)
    month = history.dropped_months[0]
    too_new = timezone.now() - 30 * DAY  # Small Business keeps 90 days
    scopes = [(org, too_new, 2**62) for org in (history.small.pk, history.medium.pk, None)]
    with pytest.raises(DatabaseError, match="retention purge refused"):
        events_purge_partition(partition=month, scopes=scopes)
    assert month in _partitions()


def test_a_month_not_yet_over_for_everyone_is_not_looked_at(settings):
    history = History(settings)
    this_month = _name(_months_back(0))
    before = timezone.now() - 400 * DAY
    scopes = [(org, before, 2**62) for org in (history.small.pk, history.medium.pk, None)]

    assert events_purge_partition(partition=this_month, scopes=scopes) is None
    assert this_month in _partitions()
    assert this_month not in month_partitions(ending_by=before)
