"""Scheduled exports, downloads and verification: files an auditor can check."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import Role
from audit.models import EventType, Outcome
from retention.models import ExportSchedule, FileKind, Frequency, StoredFile, VerifyStatus
from retention.policy import RetentionInputError
from retention.schedules import (
    export_schedule_create,
    export_schedule_run,
    export_schedules_run_due,
    schedule_advance,
)

from .factories import OrganizationFactory, member
from .helpers import events
from .retention_support import (  # noqa: F401 (autouse fixture)
    archive_dir_fixture,
    event_at,
    use_archive_storage,
)

pytestmark = pytest.mark.django_db

ARCHIVES = reverse("retention:archives")
VERIFY = reverse("retention:files-verify")
MIDNIGHT = datetime(2026, 11, 28, tzinfo=UTC)


def _schedule(organization, actor, **kwargs):
    options = {"name": "Daily failures", "frequency": Frequency.DAILY, "filters": {}}
    options.update(kwargs)
    return export_schedule_create(
        organization=organization, actor=actor, now=MIDNIGHT - timedelta(days=1), **options
    )


def _admin(organization=None, role=Role.ADMINISTRATOR):
    return member(organization or OrganizationFactory(), role=role)


def _stored_export(organization=None):
    admin = _admin(organization)
    organization = admin.membership.organization
    event_at(MIDNIGHT - timedelta(hours=3), organization)
    schedule = _schedule(organization, admin)
    return admin, export_schedule_run(schedule=schedule, period_end=MIDNIGHT)


# --- Producing files -------------------------------------------------------------------------


def test_a_due_schedule_produces_a_file_whose_checksum_and_rows_verify(archive_dir):
    admin = _admin()
    organization = admin.membership.organization
    failed = event_at(
        MIDNIGHT - timedelta(hours=2), organization, EventType.LOGIN_FAILED, outcome="failure"
    )
    event_at(MIDNIGHT - timedelta(hours=1), organization, EventType.LOGIN_SUCCEEDED)
    event_at(MIDNIGHT - timedelta(days=2), organization, EventType.LOGIN_FAILED, outcome="failure")
    event_at(MIDNIGHT - timedelta(hours=1), OrganizationFactory(), EventType.LOGIN_FAILED)
    _schedule(
        organization,
        admin,
        filters={"event_type": EventType.LOGIN_FAILED, "outcome": Outcome.FAILURE},
    )

    produced = export_schedules_run_due(now=MIDNIGHT + timedelta(minutes=5))

    assert produced == 1
    stored = StoredFile.objects.get(kind=FileKind.EXPORT)
    data = (archive_dir / stored.name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == stored.sha256
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert len(rows) - 1 == stored.row_count == 1
    assert rows[1][0] == failed.occurred_at.isoformat(timespec="microseconds")
    assert (stored.period_start, stored.period_end) == (MIDNIGHT - timedelta(days=1), MIDNIGHT)
    call_command("verify_archives", stdout=io.StringIO())  # raises on any mismatch


def test_export_created_is_recorded_with_checksum_rows_and_filters():
    admin = _admin()
    organization = admin.membership.organization
    _schedule(organization, admin, filters={"user": "Alice@Example.test"}, window_days=3)

    export_schedules_run_due(now=MIDNIGHT)

    [created] = events(EventType.EXPORT_CREATED)
    stored = StoredFile.objects.get()
    assert created.organization_id == organization.pk
    assert created.actor_label == "scheduled export"
    assert created.details["sha256"] == stored.sha256
    assert created.details["rows"] == 0
    assert created.details["filters"] == {"user": "alice@example.test"}
    assert created.details["window_days"] == 3


def test_a_due_schedule_runs_once_however_often_the_beat_fires():
    admin = _admin()
    schedule = _schedule(admin.membership.organization, admin, frequency=Frequency.WEEKLY)

    assert export_schedules_run_due(now=MIDNIGHT) == 1
    assert export_schedules_run_due(now=MIDNIGHT + timedelta(minutes=10)) == 0

    schedule.refresh_from_db()
    assert schedule.next_run_at == MIDNIGHT + timedelta(days=7)
    assert StoredFile.objects.count() == 1


def test_a_failing_storage_leaves_the_period_due_and_shows_the_error(settings, archive_dir):
    use_archive_storage(settings, archive_dir, "tests.retention_support.StorageDiesMidWrite")
    admin = _admin()
    schedule = _schedule(admin.membership.organization, admin)

    assert export_schedules_run_due(now=MIDNIGHT) == 0

    schedule.refresh_from_db()
    assert schedule.next_run_at == MIDNIGHT
    assert "No space left on device" in schedule.last_error
    assert not StoredFile.objects.exists()
    assert events(EventType.EXPORT_CREATED) == []


def _broken_schedule(organization, admin, filters):
    """A schedule whose filters were stored under looser rules than the form has today."""
    schedule = _schedule(organization, admin, name="Broken")
    ExportSchedule.objects.filter(pk=schedule.pk).update(filters=filters)
    schedule.refresh_from_db()
    return schedule


@pytest.mark.parametrize(
    "filters",
    [{"user": "²"}, {"user": "①"}, {"country": ["DE"]}, {"event_type": "login.hacked"}],
)
def test_a_schedule_whose_filters_no_longer_parse_fails_visibly_and_others_still_run(
    client, filters
):
    admin = _admin()
    organization = admin.membership.organization
    event_at(MIDNIGHT - timedelta(hours=3), organization)
    broken = _broken_schedule(organization, admin, filters)
    _schedule(organization, admin, name="Working")

    assert export_schedules_run_due(now=MIDNIGHT) == 1

    [stored] = StoredFile.objects.all()
    assert stored.schedule.name == "Working"
    broken.refresh_from_db()
    assert broken.next_run_at == MIDNIGHT  # still due: nothing is skipped
    assert "The stored filters can no longer be used" in broken.last_error
    assert next(iter(filters)) + ": " in broken.last_error
    [created] = events(EventType.EXPORT_CREATED)
    assert created.details["schedule"] != broken.pk
    client.force_login(admin)
    page = client.get(ARCHIVES).content.decode()
    assert "The stored filters can no longer be used" in page


def test_running_a_schedule_with_unusable_filters_by_hand_says_why(client):
    admin = _admin()
    broken = _broken_schedule(admin.membership.organization, admin, {"user": "²"})
    client.force_login(admin)

    response = client.post(reverse("retention:schedule-run", args=[broken.pk]), follow=True)

    assert response.status_code == 200
    assert "The stored filters can no longer be used" in response.content.decode()
    assert not StoredFile.objects.exists()
    assert events(EventType.EXPORT_CREATED) == []


@pytest.mark.parametrize(
    ("when", "frequency", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), Frequency.MONTHLY, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 12, 1, tzinfo=UTC), Frequency.MONTHLY, datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2026, 3, 1, tzinfo=UTC), Frequency.WEEKLY, datetime(2026, 3, 8, tzinfo=UTC)),
        (datetime(2026, 3, 1, tzinfo=UTC), Frequency.DAILY, datetime(2026, 3, 2, tzinfo=UTC)),
    ],
)
def test_schedules_advance_by_their_frequency(when, frequency, expected):
    assert schedule_advance(when, frequency) == expected


# --- The archives page: schedules ------------------------------------------------------------


def test_compliance_officer_schedules_an_export_and_it_is_recorded(client):
    officer = _admin(role=Role.COMPLIANCE_OFFICER)
    client.force_login(officer)
    response = client.post(
        ARCHIVES,
        {
            "name": "Weekly sign-in failures",
            "frequency": "weekly",
            "category": "authentication",
            "outcome": "failure",
            "country": "de",
        },
    )

    assert response.status_code == 303
    schedule = ExportSchedule.objects.get()
    assert schedule.organization_id == officer.membership.organization_id
    assert schedule.window_days == 7
    assert schedule.filters == {"category": "authentication", "outcome": "failure", "country": "DE"}
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.details["area"] == "export_schedule"
    assert changed.details["old"] is None
    assert changed.details["new"]["filters"] == schedule.filters


def test_a_schedule_exports_what_the_audit_log_filter_matches(archive_dir):
    admin = _admin()
    organization = admin.membership.organization
    event_at(MIDNIGHT - timedelta(hours=2), organization, EventType.LOGOUT)
    login = event_at(MIDNIGHT - timedelta(hours=2), organization, EventType.LOGIN_SUCCEEDED)
    event_at(MIDNIGHT - timedelta(hours=2), organization, EventType.PASSWORD_CHANGED)
    schedule = _schedule(organization, admin, filters={"category": "authentication"})

    stored = export_schedule_run(schedule=schedule, period_end=MIDNIGHT)

    rows = list(csv.reader(io.StringIO((archive_dir / stored.name).read_text())))
    assert sorted(row[1] for row in rows[1:]) == ["login.succeeded", "logout"]
    assert rows[2][0] == login.occurred_at.isoformat(timespec="microseconds")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_type", "login.maybe"),
        ("outcome", "perhaps"),
        ("category", "vibes"),
        ("ip", "not-an-ip"),
        ("country", "Germany"),
        ("window_days", "0"),
        ("window_days", "367"),
        ("frequency", "hourly"),
        ("name", ""),
    ],
)
def test_an_invalid_schedule_filter_is_a_400_and_nothing_is_scheduled(client, field, value):
    client.force_login(_admin())
    data = {"name": "Bad", "frequency": "daily", field: value}
    response = client.post(ARCHIVES, data)

    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    assert not ExportSchedule.objects.exists()


def test_an_event_type_outside_its_category_is_a_400(client):
    client.force_login(_admin())
    data = {"name": "Bad", "frequency": "daily", "category": "mfa", "event_type": "logout"}
    response = client.post(ARCHIVES, data)

    assert response.status_code == 400
    assert "logout is not in category mfa" in response.content.decode()


def test_the_service_refuses_an_invalid_stored_filter():
    admin = _admin()
    with pytest.raises(RetentionInputError, match="event_type"):
        _schedule(admin.membership.organization, admin, filters={"event_type": "nope"})


def test_run_now_stores_a_file_and_records_who_asked(client):
    admin = _admin()
    schedule = _schedule(admin.membership.organization, admin)
    client.force_login(admin)

    response = client.post(reverse("retention:schedule-run", args=[schedule.pk]), follow=True)

    stored = StoredFile.objects.get(schedule=schedule)
    assert f"Exported {stored.row_count} events" in response.content.decode()
    assert stored.row_count >= 1  # at least the schedule's own settings.changed
    [created] = events(EventType.EXPORT_CREATED)
    assert created.actor_id == admin.pk


def test_stopping_a_schedule_keeps_its_files_and_records_the_change(client):
    admin, stored = _stored_export()
    client.force_login(admin)

    client.post(reverse("retention:schedule-delete", args=[stored.schedule_id]))

    assert not ExportSchedule.objects.exists()
    assert StoredFile.objects.filter(pk=stored.pk).exists()
    assert events(EventType.SETTINGS_CHANGED)[-1].details["new"] is None


def test_another_tenants_administrator_cannot_run_or_stop_a_schedule(client):
    admin = _admin()
    schedule = _schedule(admin.membership.organization, admin)
    client.force_login(_admin())

    assert client.post(reverse("retention:schedule-run", args=[schedule.pk])).status_code == 404
    assert client.post(reverse("retention:schedule-delete", args=[schedule.pk])).status_code == 404
    assert ExportSchedule.objects.filter(pk=schedule.pk).exists()
    assert not StoredFile.objects.exists()


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "retention:archives", []),
        ("post", "retention:files-verify", []),
        ("get", "retention:file-download", [1]),
        ("post", "retention:schedule-run", [1]),
        ("post", "retention:schedule-delete", [1]),
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(client, method, name, args):
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST])
def test_members_and_analysts_may_not_use_archives(client, role):
    admin, stored = _stored_export()
    client.force_login(member(admin.membership.organization, role=role))

    assert client.get(ARCHIVES).status_code == 403
    assert client.post(VERIFY).status_code == 403
    download = reverse("retention:file-download", args=[stored.pk])
    assert client.get(download).status_code == 403
    run = reverse("retention:schedule-run", args=[stored.schedule_id])
    assert client.post(run).status_code == 403
    assert events(EventType.EXPORT_DOWNLOADED) == []


def test_archives_page_lists_only_the_organizations_own_files(client):
    _, theirs = _stored_export()
    officer, mine = _stored_export()
    client.force_login(member(officer.membership.organization, role=Role.COMPLIANCE_OFFICER))

    page = client.get(ARCHIVES).content.decode()

    assert mine.filename in page and mine.sha256[:16] in page
    assert theirs.name.split("/")[0] not in page


def test_htmx_refresh_returns_only_the_files_fragment(client):
    admin, stored = _stored_export()
    client.force_login(admin)

    response = client.get(ARCHIVES, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="stored-files"' in page and "<html" not in page
    assert "HX-Request" in response["Vary"]


# --- Downloads -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER])
def test_administrators_and_compliance_download_and_it_is_recorded(client, archive_dir, role):
    admin, stored = _stored_export()
    user = member(admin.membership.organization, role=role)
    client.force_login(user)

    response = client.get(reverse("retention:file-download", args=[stored.pk]))

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == (archive_dir / stored.name).read_bytes()
    assert hashlib.sha256(body).hexdigest() == response["X-Checksum-SHA256"] == stored.sha256
    assert f'filename="{stored.filename}"' in response["Content-Disposition"]
    [downloaded] = events(EventType.EXPORT_DOWNLOADED)
    assert downloaded.actor_id == user.pk
    assert downloaded.details["sha256"] == stored.sha256


def test_another_tenants_administrator_cannot_download(client):
    _, stored = _stored_export()
    client.force_login(_admin())

    assert client.get(reverse("retention:file-download", args=[stored.pk])).status_code == 404
    assert events(EventType.EXPORT_DOWNLOADED) == []


def test_a_file_gone_from_storage_is_a_404_not_a_500(client, archive_dir):
    admin, stored = _stored_export()
    (archive_dir / stored.name).unlink()
    client.force_login(admin)

    response = client.get(reverse("retention:file-download", args=[stored.pk]))

    assert response.status_code == 404


# --- Verification ----------------------------------------------------------------------------


def test_verify_button_reports_a_tampered_file(client, archive_dir):
    admin, stored = _stored_export()
    path = archive_dir / stored.name
    path.write_bytes(path.read_bytes().replace(b"someone@example.test", b"nobody1@example.test"))
    client.force_login(admin)

    response = client.post(VERIFY, follow=True)

    page = response.content.decode()
    assert "1 of 1 files failed verification" in page
    stored.refresh_from_db()
    assert stored.verify_status == VerifyStatus.MISMATCH
    assert "SHA-256" in stored.verify_detail


def test_verify_button_reports_a_missing_file_over_htmx(client, archive_dir):
    admin, stored = _stored_export()
    (archive_dir / stored.name).unlink()
    client.force_login(admin)

    response = client.post(VERIFY, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page
    assert "Missing" in page
    stored.refresh_from_db()
    assert stored.verify_status == VerifyStatus.MISSING


def test_verify_archives_command_passes_on_intact_files():
    _stored_export()
    out = io.StringIO()

    call_command("verify_archives", stdout=out)

    assert "1 files checked, 0 with problems." in out.getvalue()


def test_verify_archives_command_fails_on_a_row_removed(archive_dir):
    admin = _admin()
    organization = admin.membership.organization
    for hours in (1, 2):
        event_at(MIDNIGHT - timedelta(hours=hours), organization)
    stored = export_schedule_run(schedule=_schedule(organization, admin), period_end=MIDNIGHT)
    path = archive_dir / stored.name
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    out = io.StringIO()

    with pytest.raises(CommandError, match="1 stored files failed verification"):
        call_command("verify_archives", stdout=out)
    assert "1 rows, expected 2" in out.getvalue()
