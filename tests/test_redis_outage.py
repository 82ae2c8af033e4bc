"""Redis is an accelerator, never a dependency of correctness (issue 12, finding 10).

A private Redis (tests/fault_support.py, port 6391 by default) is stopped under the real views
and under real `celery worker` processes; a worker is killed with SIGKILL in the middle of an
export and inside an SMTP send. Nothing answers 500, nothing is lost, nothing is done twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Organization, Role, SecurityNotice, Tier
from accounts.tasks import security_notices_sweep
from alerts.models import Alert, EvaluatedEvent, RuleKind
from alerts.rules import EVALUATED_EVENT_TYPES
from alerts.tasks import events_sweep, notifications_sweep
from api.services import api_token_create
from audit.models import AuditEvent, EventType
from exports.models import Export, ExportStatus
from exports.tasks import exports_sweep

from .factories import PASSWORD, OrganizationFactory, member
from .fault_support import (
    SmtpRecorder,
    app_on_private_redis,
    private_redis,
    smtp_server,
    sweep_until,
    wait_for,
    workers,
)
from .helpers import sign_in
from .integrity_support import horizon_passes

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a different horse, battery and staple"


def _relevant_events() -> set[int]:
    return set(
        AuditEvent.objects.filter(event_type__in=EVALUATED_EVENT_TYPES)
        .exclude(organization=None)
        .values_list("pk", flat=True)
    )


def _all_evaluated() -> bool:
    ledger = set(
        EvaluatedEvent.objects.filter(evaluated_at__isnull=False).values_list("event_id", flat=True)
    )
    return _relevant_events() <= ledger


def _worker_environment(tmp_path: Path, smtp_port: int, **extra: str) -> dict[str, str]:
    return {
        "EXPORT_ROOT": str(tmp_path / "exports"),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        # Short sweep delays, as settings, so a test takes seconds rather than minutes.
        "ALERTS_SWEEP_DELAY_SECONDS": "1",
        "SWEEP_DELAY_SECONDS": "1",
        "SWEEP_CLAIM_LEASE_SECONDS": "3",
        "EXPORTS_STALE_SECONDS": "3",
        **extra,
    }


@pytest.fixture
def enterprise_admin():
    return member(OrganizationFactory.create(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR)


def _change_password(client: Client):
    return client.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )


def test_pages_and_actions_answer_while_redis_is_down(client, settings, enterprise_admin):
    settings.EXPORT_STREAM_MAX_ROWS = 1  # any export of two rows or more becomes a job
    admin = enterprise_admin
    organization = admin.membership.organization
    _, api_secret = api_token_create(organization=organization, user=admin, name="SIEM")
    with private_redis() as redis, app_on_private_redis(settings):
        assert sign_in(client, admin.email).status_code == 303
        assert client.get(reverse("accounts:audit-log")).status_code == 200  # pools now hold a
        redis.stop()  # connection that Redis is about to close

        client.logout()
        assert sign_in(client, admin.email).status_code == 303
        assert client.get(reverse("accounts:audit-log"), {"outcome": "success"}).status_code == 200
        event = AuditEvent.objects.filter(organization=organization).latest("pk")
        assert client.get(reverse("accounts:audit-log-event", args=[event.pk])).status_code == 200
        horizon_passes(event.txid or 0)  # other sessions of the server may hold the feed back
        api = client.get(reverse("api:events"), HTTP_AUTHORIZATION=f"Bearer {api_secret}")
        assert api.status_code == 200
        assert api.json()["events"]
        export = client.get(reverse("exports:audit-log-csv"))
        assert export.status_code == 302
        assert client.get(export["Location"]).status_code == 200
        assert _change_password(client).status_code == 303

    admin.refresh_from_db()
    assert admin.check_password(NEW_PASSWORD)
    # Without its cache the dedupe records every view: never one view left unrecorded.
    viewed = AuditEvent.objects.filter(event_type=EventType.AUDIT_LOG_VIEWED)
    assert viewed.filter(details__via="api").count() == 1
    assert viewed.filter(details__event_id=event.pk).count() == 1
    assert viewed.filter(details__filters__outcome="success").count() == 1
    # The work the broker could not take is owed in the database, for the sweeps.
    assert Export.objects.get().status == ExportStatus.PENDING
    changed_event = AuditEvent.objects.get(event_type=EventType.PASSWORD_CHANGED)
    assert SecurityNotice.objects.get(pk=changed_event.pk).sent_at is None


def test_after_a_redis_outage_the_worker_lives_and_the_sweeps_finish_the_work(
    client, settings, tmp_path
):
    settings.EXPORT_STREAM_MAX_ROWS = 1
    settings.EXPORT_ROOT = tmp_path / "exports"
    organization = OrganizationFactory.create()
    analyst = member(organization, Role.SECURITY_ANALYST)
    admin = member(organization, Role.ADMINISTRATOR)
    person = member(organization)
    mail = SmtpRecorder()
    with (
        smtp_server(mail) as smtp_port,
        private_redis() as redis,
        app_on_private_redis(settings),
        workers(tmp_path, _worker_environment(tmp_path, smtp_port)) as start_worker,
    ):
        worker = start_worker()
        # Before the outage: recent events, evaluated by their own tasks. (The old sweep stopped
        # at the first of these for five minutes.)
        for _ in range(2):
            assert sign_in(client, person.email, REMOTE_ADDR="198.51.100.7").status_code == 303
            client.logout()
        wait_for(_all_evaluated, 30, "evaluation of the events before the outage")
        before = _relevant_events()

        redis.stop()
        for _ in range(5):
            refused = sign_in(client, person.email, "wrong", REMOTE_ADDR="198.51.100.7")
            assert refused.status_code == 200
        assert sign_in(client, admin.email).status_code == 303
        assert client.get(reverse("exports:audit-log-csv")).status_code == 302
        assert _change_password(client).status_code == 303
        during = _relevant_events() - before
        assert len(during) >= 6  # five failures, the admin's sign-in
        redis.start()

        assert worker.alive, worker.output()
        sweep_until(events_sweep, _all_evaluated, 60)
        export = sweep_until(
            exports_sweep, lambda: Export.objects.filter(status=ExportStatus.DONE).first(), 60
        )
        sweep_until(
            security_notices_sweep,
            lambda: SecurityNotice.objects.filter(sent_at__isnull=False).exists(),
            60,
        )
        sweep_until(notifications_sweep, lambda: len(mail.messages) >= 2, 60)
        assert worker.alive, worker.output()

    # Exactly once: one alert for the five failures, raised once, each event in the ledger once.
    [alert] = Alert.objects.filter(kind=RuleKind.FAILED_SIGN_INS)
    assert alert.count == 1
    assert not alert.email_pending
    raised = AuditEvent.objects.filter(event_type=EventType.ALERT_RAISED)
    assert raised.filter(reason=RuleKind.FAILED_SIGN_INS).count() == 1
    assert EvaluatedEvent.objects.filter(event_id__in=during).count() == len(during)
    path = settings.EXPORT_ROOT / export.file_name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == export.sha256
    assert list(settings.EXPORT_ROOT.glob("*.part")) == []
    [notice] = [m for m in mail.messages if "Your password was changed" in m]
    assert admin.email in notice
    [alerted] = [m for m in mail.messages if "Triage it:" in m]
    assert analyst.email in alerted
    assert SecurityNotice.objects.get().sent_at is not None


def test_an_export_whose_worker_is_killed_is_rebuilt_with_no_partial_file(
    client, settings, tmp_path
):
    from demo.generate import events_generate

    settings.EXPORT_ROOT = root = tmp_path / "exports"
    settings.EXPORT_STREAM_MAX_ROWS = 1
    # Enough rows that the build reports progress several times before it is done.
    events_generate(total=80_000, days=1, organizations=1, users_per_org=2)
    organization = Organization.objects.get()
    officer = member(organization, Role.COMPLIANCE_OFFICER)
    with (
        private_redis(),
        app_on_private_redis(settings),
        workers(tmp_path, _worker_environment(tmp_path, 1)) as start_worker,
    ):
        first = start_worker()
        assert sign_in(client, officer.email).status_code == 303
        assert client.get(reverse("exports:audit-log-csv")).status_code == 302
        export = Export.objects.get()
        # Killed (SIGKILL) once it has written part of the file and said so.
        wait_for(
            lambda: Export.objects.filter(
                pk=export.pk, status=ExportStatus.RUNNING, rows_written__gt=0
            ).exists(),
            60,
            "a build under way",
        )
        first.kill()
        export.refresh_from_db()
        assert export.status == ExportStatus.RUNNING, "the build finished before the kill"
        [partial] = root.iterdir()
        assert partial.name == f"{export.pk}.csv.1.part"  # never under the export's own name

        start_worker()
        sweep_until(exports_sweep, lambda: _done(export), 60)

    assert export.attempts == 2
    assert export.rows_written == export.rows_expected >= 80_000
    assert [p.name for p in root.iterdir()] == [f"{export.pk}.csv"]
    data = (root / export.file_name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == export.sha256
    assert data.count(b"\r\n") == export.rows_written + 1  # the header and every row


def _done(export: Export) -> bool:
    export.refresh_from_db()
    return export.status == ExportStatus.DONE


def test_an_alert_email_whose_worker_dies_in_the_smtp_send_is_sent_by_the_sweep(
    client, settings, tmp_path
):
    organization = OrganizationFactory.create()
    analyst = member(organization, Role.SECURITY_ANALYST)
    person = member(organization)
    mail = SmtpRecorder(hang_first=True)
    with (
        smtp_server(mail) as smtp_port,
        private_redis(),
        app_on_private_redis(settings),
        workers(
            tmp_path, _worker_environment(tmp_path, smtp_port, SWEEP_EMAIL_TIMEOUT_SECONDS="60")
        ) as start_worker,
    ):
        first = start_worker()
        for _ in range(5):
            sign_in(client, person.email, "wrong", REMOTE_ADDR="198.51.100.7")
        assert mail.hanging.wait(30), first.output()  # the worker is inside the SMTP send
        first.kill()
        alert = Alert.objects.get(kind=RuleKind.FAILED_SIGN_INS)
        assert alert.email_pending  # not marked sent: it was not sent
        assert mail.messages == []

        start_worker()
        sweep_until(notifications_sweep, lambda: mail.messages, 30)

    [message] = mail.messages
    assert analyst.email in message
    alert.refresh_from_db()
    assert not alert.email_pending
    assert alert.email_claimed_until is None
