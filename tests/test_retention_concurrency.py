"""Concurrent purges on PostgreSQL: one claims the scope, rows go once, one event is recorded."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from accounts.models import Tier
from audit.models import AuditEvent, EventType
from audit.purge import events_purge_batch
from audit.services import event_record
from retention.models import PurgeRun, PurgeStatus
from retention.purge import events_purge_expired

from .factories import OrganizationFactory
from .helpers import all_at_once, events
from .retention_support import archive_dir_fixture, remaining  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 11, 28, 3, 15, tzinfo=UTC)


def _bulk_expired(organization, count: int) -> None:
    """Insert many old events at once (a bulk generator, as generate_events does)."""
    base = NOW - timedelta(days=200)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            organization=organization,
            event_type=EventType.LOGIN_SUCCEEDED,
            occurred_at=base + timedelta(seconds=i),
            actor_label="bulk@example.test",
        )
        for i in range(count)
    )


def test_two_concurrent_purges_of_one_organization_delete_each_row_once():
    assert connection.vendor == "postgresql"
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    _bulk_expired(organization, 3000)

    outcomes = all_at_once(
        lambda: events_purge_expired(organization=organization, now=NOW, batch_size=50),
        lambda: events_purge_expired(organization=organization, now=NOW, batch_size=50),
    )

    assert sorted(o.status for o in outcomes) in (
        ["skipped", "succeeded"],
        ["nothing", "succeeded"],
    )
    assert sum(o.count for o in outcomes) == 3000
    assert remaining(organization) == set()
    [purged] = events(EventType.RETENTION_PURGED)
    assert purged.details["count"] == 3000
    assert list(PurgeRun.objects.values_list("status", flat=True)) == [PurgeStatus.SUCCEEDED]


def test_concurrent_purges_of_different_organizations_do_not_wait_for_each_other():
    first = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    second = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    _bulk_expired(first, 1000)
    _bulk_expired(second, 1000)

    outcomes = all_at_once(
        lambda: events_purge_expired(organization=first, now=NOW, batch_size=50),
        lambda: events_purge_expired(organization=second, now=NOW, batch_size=50),
    )

    assert [(o.status, o.count) for o in outcomes] == [("succeeded", 1000), ("succeeded", 1000)]
    assert len(events(EventType.RETENTION_PURGED)) == 2


def test_sign_in_events_are_written_while_a_purge_batch_is_open():
    """A purge batch holds row locks on old rows only: a new event inserts without waiting."""
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    _bulk_expired(organization, 100)
    inserted = threading.Event()

    def insert_now() -> None:
        try:
            event_record(event_type=EventType.LOGOUT, organization=organization)
            inserted.set()
        finally:
            connections.close_all()

    writer = threading.Thread(target=insert_now)

    def while_the_batch_is_open(deleted: int) -> None:
        assert deleted == 100
        writer.start()
        assert inserted.wait(timeout=10), "an insert waited behind an open purge batch"

    events_purge_batch(
        organization_id=organization.pk,
        before=NOW - timedelta(days=90),
        then=while_the_batch_is_open,
    )
    writer.join()
    assert AuditEvent.objects.filter(event_type=EventType.LOGOUT).count() == 1
