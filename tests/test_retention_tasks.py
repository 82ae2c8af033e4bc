"""The beat schedule names real tasks, and the tasks do what the services do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from accounts.models import Tier
from activity_monitor.celery import app
from retention.models import ExportSchedule, Frequency, StoredFile
from retention.schedules import export_schedule_create
from retention.tasks import events_purge_expired_all, export_schedules_run_due

from .factories import OrganizationFactory, member
from .retention_support import archive_dir_fixture, event_at, remaining  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("entry", "task"),
    [
        ("retention-purge-expired", "retention.tasks.events_purge_expired_all"),
        ("retention-export-schedules-run-due", "retention.tasks.export_schedules_run_due"),
    ],
)
def test_beat_schedules_a_registered_task(entry, task):
    app.loader.import_default_modules()
    assert settings.CELERY_BEAT_SCHEDULE[entry]["task"] == task
    assert task in app.tasks


def test_the_daily_purge_task_deletes_expired_events():
    organization = OrganizationFactory(tier=Tier.SMALL_BUSINESS)
    event_at(datetime.now(tz=UTC) - timedelta(days=91), organization)
    kept = event_at(datetime.now(tz=UTC) - timedelta(days=89), organization)

    result = events_purge_expired_all.delay().get()

    assert result == {f"org:{organization.pk}": 1}
    assert remaining(organization) == {kept.pk}


def test_the_schedule_task_produces_due_exports():
    admin = member(OrganizationFactory())
    schedule = export_schedule_create(
        organization=admin.membership.organization,
        actor=admin,
        name="Daily",
        frequency=Frequency.DAILY,
        filters={},
        now=datetime.now(tz=UTC) - timedelta(days=2),
    )

    assert export_schedules_run_due.delay().get() == 2  # yesterday's and today's midnight
    assert StoredFile.objects.filter(schedule=schedule).count() == 2
    schedule.refresh_from_db()
    assert schedule.next_run_at > datetime.now(tz=UTC)
    assert ExportSchedule.objects.count() == 1
