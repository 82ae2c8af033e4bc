"""Archive before purge: rows are deleted only after their archive was written and read back."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import Role, Tier
from audit.models import EventType
from exports.csv import HEADER
from retention.models import FileKind, PurgeRun, PurgeStatus, RetentionSettings, StoredFile
from retention.purge import events_purge_expired

from .factories import OrganizationFactory, member
from .helpers import events
from .retention_support import (  # noqa: F401 (autouse fixture)
    archive_dir_fixture,
    event_at,
    remaining,
    use_archive_storage,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 3, 15, tzinfo=UTC)


def _archiving_organization(**kwargs):
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS, **kwargs)
    RetentionSettings.objects.create(organization=organization, archive_before_purge=True)
    return organization


def _expired_and_kept(organization):
    expired = [
        event_at(NOW - timedelta(days=days), organization, actor_label=f"u{days}@example.test")
        for days in (91, 95, 200)
    ]
    kept = event_at(NOW - timedelta(days=10), organization)
    return expired, kept


def test_purged_rows_are_in_a_gzip_csv_archive_with_a_matching_manifest(archive_dir):
    organization = _archiving_organization()
    expired, kept = _expired_and_kept(organization)

    outcome = events_purge_expired(organization=organization, now=NOW)

    assert outcome.status == "succeeded" and outcome.count == 3
    assert remaining(organization) == {kept.pk}
    archive = StoredFile.objects.get(kind=FileKind.ARCHIVE)
    data = (archive_dir / archive.name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == archive.sha256
    rows = list(csv.reader(io.StringIO(gzip.decompress(data).decode())))
    assert rows[0] == HEADER
    assert [row[4] for row in rows[1:]] == [
        "u200@example.test",
        "u95@example.test",
        "u91@example.test",
    ]
    assert archive.row_count == 3
    manifest = json.loads((archive_dir / archive.manifest_name).read_text())
    assert manifest["sha256"] == archive.sha256
    assert manifest["rows"] == 3
    assert manifest["cutoff"] == (NOW - timedelta(days=90)).isoformat()


def test_the_purge_event_names_the_archive_and_its_checksum():
    organization = _archiving_organization()
    _expired_and_kept(organization)

    events_purge_expired(organization=organization, now=NOW)

    [purged] = events(EventType.RETENTION_PURGED)
    archive = StoredFile.objects.get()
    assert purged.details["archive"] == archive.name
    assert purged.details["archive_sha256"] == archive.sha256
    assert purged.details["count"] == 3


def test_a_storage_failing_mid_write_stops_the_purge_and_loses_nothing(settings, archive_dir):
    use_archive_storage(settings, archive_dir, "tests.retention_support.StorageDiesMidWrite")
    organization = _archiving_organization()
    expired, kept = _expired_and_kept(organization)

    outcome = events_purge_expired(organization=organization, now=NOW)

    assert outcome.status == "failed"
    assert "No space left on device" in outcome.error
    assert remaining(organization) == {kept.pk, *(e.pk for e in expired)}
    assert not StoredFile.objects.exists()
    assert not list(archive_dir.rglob("*.gz"))  # the partial file was removed
    run = PurgeRun.objects.get()
    assert run.status == PurgeStatus.FAILED and run.deleted == 0
    assert events(EventType.RETENTION_PURGED) == []


def test_a_storage_that_silently_truncates_fails_verification_and_nothing_is_deleted(
    settings, archive_dir
):
    use_archive_storage(settings, archive_dir, "tests.retention_support.StorageLosesTheTail")
    organization = _archiving_organization()
    expired, kept = _expired_and_kept(organization)

    outcome = events_purge_expired(organization=organization, now=NOW)

    assert outcome.status == "failed"
    assert "could not be read back" in outcome.error or "read back differently" in outcome.error
    assert len(remaining(organization)) == 4
    assert not StoredFile.objects.exists()


def test_after_a_failed_archive_the_next_run_archives_and_purges(settings, archive_dir):
    use_archive_storage(settings, archive_dir, "tests.retention_support.StorageDiesMidWrite")
    organization = _archiving_organization()
    _expired_and_kept(organization)
    events_purge_expired(organization=organization, now=NOW)
    use_archive_storage(settings, archive_dir)

    outcome = events_purge_expired(organization=organization, now=NOW)

    assert (outcome.status, outcome.count) == ("succeeded", 3)
    assert StoredFile.objects.get().row_count == 3


def test_the_failed_purge_and_its_error_are_shown_on_the_retention_page(
    client, settings, archive_dir
):
    use_archive_storage(settings, archive_dir, "tests.retention_support.StorageDiesMidWrite")
    organization = _archiving_organization()
    _expired_and_kept(organization)
    events_purge_expired(organization=organization, now=NOW)

    client.force_login(member(organization, role=Role.ADMINISTRATOR))
    page = client.get(reverse("retention:retention")).content.decode()

    assert "failed" in page
    assert "No space left on device" in page


def test_the_purge_command_fails_loudly_when_the_archive_cannot_be_written(settings, archive_dir):
    use_archive_storage(settings, archive_dir, "tests.retention_support.StorageDiesMidWrite")
    organization = _archiving_organization(slug="archiving")
    event_at(datetime.now(tz=UTC) - timedelta(days=100), organization)

    with pytest.raises(CommandError, match="nothing of it was lost"):
        call_command("purge_expired_events", "--organization", "archiving", stdout=io.StringIO())
    assert len(remaining(organization)) == 1


def test_without_the_setting_no_archive_is_written():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    _expired_and_kept(organization)

    events_purge_expired(organization=organization, now=NOW)

    assert not StoredFile.objects.exists()
    assert len(remaining(organization)) == 1
