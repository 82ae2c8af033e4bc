"""The daily purge deletes exactly what is past each scope's retention, once, and says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction

from accounts.models import Tier
from audit.models import AuditEvent, EventType
from retention.models import PurgeRun, PurgeStatus
from retention.purge import events_purge_expired, events_purge_expired_all

from .factories import OrganizationFactory
from .helpers import events
from .retention_support import archive_dir_fixture, event_at, remaining  # noqa: F401

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 3, 15, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("tier", "override", "days"),
    [
        (Tier.SMALL_BUSINESS, None, 90),
        (Tier.MEDIUM_BUSINESS, None, 365),
        (Tier.ENTERPRISE, None, 7 * 365),
        (Tier.ENTERPRISE, 10 * 365, 10 * 365),
        (Tier.ENTERPRISE, 365, 365),
    ],
)
def test_one_second_inside_retention_stays_and_one_second_past_goes(tier, override, days):
    organization = OrganizationFactory(tier=tier, retention_days_override=override)
    cutoff = NOW - timedelta(days=days)
    inside = event_at(cutoff + SECOND, organization)
    at_cutoff = event_at(cutoff, organization)
    past = event_at(cutoff - SECOND, organization)

    outcome = events_purge_expired(organization=organization, now=NOW)

    assert outcome.status == "succeeded"
    assert outcome.count == 1
    assert remaining(organization) == {inside.pk, at_cutoff.pk}
    assert not AuditEvent.objects.filter(pk=past.pk).exists()


def test_events_without_organization_follow_the_platform_setting(settings):
    settings.PLATFORM_EVENT_RETENTION_DAYS = 120
    cutoff = NOW - timedelta(days=120)
    inside = event_at(cutoff + SECOND, None, EventType.LOGIN_FAILED)
    event_at(cutoff - SECOND, None, EventType.LOGIN_FAILED)

    outcome = events_purge_expired(organization=None, now=NOW)

    assert outcome.count == 1
    assert remaining(None) == {inside.pk}


def test_a_platform_retention_below_the_shortest_tier_keeps_events_that_long(settings):
    """The setting cannot make the purge delete events younger than 90 days (the database
    holds the same floor on PostgreSQL)."""
    settings.PLATFORM_EVENT_RETENTION_DAYS = 30
    young = event_at(NOW - timedelta(days=60), None, EventType.LOGIN_FAILED)
    event_at(NOW - timedelta(days=91), None, EventType.LOGIN_FAILED)

    outcome = events_purge_expired(organization=None, now=NOW)

    assert (outcome.status, outcome.count, outcome.retention_days) == ("succeeded", 1, 90)
    assert outcome.cutoff == NOW - timedelta(days=90)
    assert remaining(None) == {young.pk}


def test_another_organizations_events_are_untouched():
    small = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    other = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    event_at(NOW - timedelta(days=200), small)
    theirs = {event_at(NOW - timedelta(days=200), other).pk, event_at(NOW, other).pk}

    events_purge_expired(organization=small, now=NOW)

    assert remaining(small) == set()
    assert remaining(other) == theirs


def test_purge_records_one_retention_purged_event_with_cutoff_and_count():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    for days in (91, 120, 365):
        event_at(NOW - timedelta(days=days), organization)

    events_purge_expired(organization=organization, now=NOW, batch_size=2)

    [purged] = events(EventType.RETENTION_PURGED)
    assert purged.organization_id == organization.pk
    assert purged.details["count"] == 3
    assert purged.details["cutoff"] == (NOW - timedelta(days=90)).isoformat()
    assert purged.details["retention_days"] == 90
    assert purged.actor_label == "retention purge"


def test_running_twice_deletes_nothing_more_and_records_no_second_event():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    event_at(NOW - timedelta(days=100), organization)
    kept = event_at(NOW - timedelta(days=10), organization)

    first = events_purge_expired(organization=organization, now=NOW)
    second = events_purge_expired(organization=organization, now=NOW)

    assert (first.count, second.status, second.count) == (1, "nothing", 0)
    assert remaining(organization) == {kept.pk}
    assert len(events(EventType.RETENTION_PURGED)) == 1
    assert PurgeRun.objects.get().status == PurgeStatus.SUCCEEDED


def test_a_scope_claimed_by_a_running_purge_is_skipped():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    expired = event_at(NOW - timedelta(days=100), organization)
    PurgeRun.objects.create(
        scope=f"org:{organization.pk}",
        organization=organization,
        retention_days=90,
        cutoff=NOW - timedelta(days=90),
    )

    outcome = events_purge_expired(organization=organization, now=NOW)

    assert outcome.status == "skipped"
    assert remaining(organization) == {expired.pk}


def test_a_run_abandoned_by_a_dead_worker_is_closed_and_the_scope_purged():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    event_at(NOW - timedelta(days=100), organization)
    stale = PurgeRun.objects.create(
        scope=f"org:{organization.pk}",
        organization=organization,
        retention_days=90,
        cutoff=NOW - timedelta(days=90),
        deleted=7,
        heartbeat_at=datetime.now(tz=UTC) - timedelta(hours=2),
    )

    outcome = events_purge_expired(organization=organization, now=NOW)

    stale.refresh_from_db()
    assert stale.status == PurgeStatus.FAILED
    assert outcome.count == 1
    interrupted, finished = events(EventType.RETENTION_PURGED)
    assert interrupted.details["interrupted"] is True and interrupted.details["count"] == 7
    assert finished.details["count"] == 1


def test_purge_all_covers_every_organization_and_the_platform(settings):
    settings.PLATFORM_EVENT_RETENTION_DAYS = 365
    small = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    medium = OrganizationFactory(tier=Tier.MEDIUM_BUSINESS)
    event_at(NOW - timedelta(days=100), small)
    kept_medium = event_at(NOW - timedelta(days=100), medium)
    event_at(NOW - timedelta(days=400), medium)
    event_at(NOW - timedelta(days=400), None)

    outcomes = events_purge_expired_all(now=NOW)

    assert sum(o.count for o in outcomes) == 3
    assert remaining(small) == set()
    assert remaining(medium) == {kept_medium.pk}
    assert remaining(None) == set()
    assert len(events(EventType.RETENTION_PURGED)) == 3


def test_dry_run_command_lists_what_would_go_and_deletes_nothing():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS, name="Tiny Co")
    event_at(datetime.now(tz=UTC) - timedelta(days=100), organization)
    event_at(datetime.now(tz=UTC) - timedelta(days=101), organization)
    out = StringIO()

    call_command("purge_expired_events", "--dry-run", stdout=out)

    assert "Tiny Co: retention 90 days" in out.getvalue()
    assert "2 events would be deleted" in out.getvalue()
    assert len(remaining(organization)) == 2
    assert not PurgeRun.objects.exists()


def test_command_purges_one_organization_by_slug():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS, slug="tiny")
    event_at(datetime.now(tz=UTC) - timedelta(days=100), organization)
    out = StringIO()

    call_command("purge_expired_events", "--organization", "tiny", stdout=out)

    assert "1 events deleted" in out.getvalue()
    assert remaining(organization) == set()


def test_append_only_still_refuses_a_delete_outside_the_purge():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    event = event_at(NOW - timedelta(days=100), organization)
    events_purge_expired(organization=organization, now=NOW)  # the gate opened and closed
    survivor = event_at(NOW - timedelta(days=100), organization)

    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=survivor.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=survivor.pk).update(reason="tampered")
    assert not AuditEvent.objects.filter(pk=event.pk).exists()
    assert AuditEvent.objects.filter(pk=survivor.pk, reason="").exists()


def test_a_sparse_organization_among_many_rows_is_purged_exactly():
    sparse = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    busy = OrganizationFactory(tier=Tier.ENTERPRISE)
    first = event_at(NOW - timedelta(days=300), sparse)
    busy_ids = {event_at(NOW - timedelta(days=300), busy).pk for _ in range(120)}
    last = event_at(NOW - timedelta(days=299), sparse)
    kept = event_at(NOW - timedelta(days=1), sparse)
    assert last.pk - first.pk > 100  # few of the ids between its rows are its own

    outcome = events_purge_expired(organization=sparse, now=NOW, batch_size=10)

    assert outcome.count == 2
    assert remaining(sparse) == {kept.pk}
    assert remaining(busy) == busy_ids


def test_interleaved_organizations_with_different_cutoffs_are_purged_in_one_pass():
    small = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    medium = OrganizationFactory(tier=Tier.MEDIUM_BUSINESS)
    expected_kept = set()
    for days in range(80, 400, 10):
        for organization, retention in ((small, 90), (medium, 365)):
            event = event_at(NOW - timedelta(days=days), organization)
            if days <= retention:  # exactly at the cutoff stays
                expected_kept.add(event.pk)

    outcomes = events_purge_expired_all(now=NOW, batch_size=7)

    assert remaining(small) | remaining(medium) == expected_kept
    counts = {o.organization: o.count for o in outcomes if o.organization}
    assert counts == {small: 30, medium: 3}


def test_a_pause_between_batches_still_purges_everything(settings):
    settings.RETENTION_PURGE_PAUSE_RATIO = 0.5
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    for days in range(91, 101):
        event_at(NOW - timedelta(days=days), organization)

    outcome = events_purge_expired(organization=organization, now=NOW, batch_size=3)

    assert outcome.count == 10
    assert remaining(organization) == set()


@pytest.mark.parametrize("path", ["id_range", "organization"])
def test_a_batch_and_what_the_purge_writes_with_it_commit_or_fail_together(path):
    """The runs' counters are written inside the batch's transaction: a failure there undoes
    the batch's deletes too, so the counters never disagree with what was deleted."""
    from audit.purge import events_purge_batch, events_purge_id_range

    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    expired = {event_at(NOW - timedelta(days=100 + n), organization).pk for n in range(3)}
    seen = []

    def then(counts):
        seen.append(counts)
        raise RuntimeError("bookkeeping failed")

    with pytest.raises(RuntimeError):
        if path == "id_range":
            events_purge_id_range(
                scopes=[(organization.pk, NOW - timedelta(days=90), max(expired))],
                id_from=min(expired),
                id_to=max(expired) + 1,
                then=then,
            )
        else:
            events_purge_batch(
                organization_id=organization.pk, before=NOW - timedelta(days=90), then=then
            )

    assert seen == [{organization.pk: 3} if path == "id_range" else 3]
    assert remaining(organization) == expired


@pytest.mark.postgres
@pytest.mark.parametrize("wanted", ["lz4", "no-such-method"])
def test_wal_compression_is_set_in_the_batch_only_where_allowed(settings, wanted):
    """A role that may not set wal_compression (the app's role, unless a superuser granted it
    SET ON PARAMETER), or a method the server lacks, still purges, uncompressed."""
    from django.db import connection

    from audit.purge import events_purge_batch

    settings.RETENTION_PURGE_WAL_COMPRESSION = wanted
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    expired = event_at(NOW - timedelta(days=100), organization)
    seen = []

    def then(count):
        with connection.cursor() as cursor:
            cursor.execute("SHOW wal_compression")
            seen.append((count, cursor.fetchone()[0]))

    with connection.cursor() as cursor:
        cursor.execute("SHOW wal_compression")
        server_default = cursor.fetchone()[0]
        cursor.execute(
            "SELECT has_parameter_privilege('wal_compression', 'SET') AND %s = ANY(enumvals) "
            "FROM pg_settings WHERE name = 'wal_compression'",
            [wanted],
        )
        allowed = cursor.fetchone()[0]
    connection.__dict__.pop("_audit_purge_wal_compression", None)
    try:
        events_purge_batch(
            organization_id=organization.pk, before=NOW - timedelta(days=90), then=then
        )
    finally:
        connection.__dict__.pop("_audit_purge_wal_compression", None)

    assert seen == [(1, wanted if allowed else server_default)]
    assert not AuditEvent.objects.filter(pk=expired.pk).exists()


@pytest.mark.postgres
def test_the_database_computes_the_same_retention_as_the_app(settings):
    """The purge functions hold their own copy of the tiers' retention (audit migrations 0008,
    0009): a tier changed in one place only fails here. The platform's comes from the policy
    the owner writes from settings (audit.roles; the tests' settings follow it, conftest.py)."""
    from django.db import connection

    from accounts.models import ENTERPRISE_RETENTION_BOUNDS, TIER_RETENTION_DAYS

    organizations = [OrganizationFactory(tier=tier) for tier in TIER_RETENTION_DAYS] + [
        OrganizationFactory(tier=Tier.ENTERPRISE, retention_days_override=days)
        for days in ENTERPRISE_RETENTION_BOUNDS
    ]
    scopes = [(org.pk, 365, org.retention_days) for org in organizations]
    scopes += [(None, 365, 365), (None, 30, 90), (max(o.pk for o in organizations) + 1, 365, None)]
    for organization_id, platform_days, expected in scopes:
        settings.PLATFORM_EVENT_RETENTION_DAYS = platform_days
        with connection.cursor() as cursor:
            cursor.execute("SELECT audit_retention_days(%s)", [organization_id])
            kept = cursor.fetchone()[0]
        assert kept == expected, (
            organization_id,
            platform_days,
        )
