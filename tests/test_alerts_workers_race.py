"""Two real Celery worker processes racing on one organization's burst (PostgreSQL, Redis): every
event evaluated once, no alert twice, every finding counted once.

The workers are separate `celery worker --pool=solo` processes on the test database, each taking
small batches (ALERTS_EVALUATION_BATCH=40), so that they claim, gather and write alerts for the
same accounts and addresses at the same time. Each event is queued twice, as a retried sign-in
or a redelivered message would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from activity_monitor.celery import app, enqueue
from alerts import tasks
from alerts.detectors import findings_for_batch
from alerts.models import Alert, AlertRule, EvaluatedEvent, RuleKind
from audit.context import RequestContext
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record

from .alerts_support import hooks_paused
from .factories import OrganizationFactory, member
from .fault_support import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def _worker(name: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process on the test database, stopped (and waited for) at the end."""
    database = settings.DATABASES["default"]["NAME"]
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + database,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "ALERTS_EVALUATION_BATCH": "40",
        "DOTENV_FILE": "",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    if "DATABASE_OWNER_URL" in os.environ:
        env["DATABASE_OWNER_URL"] = (
            os.environ["DATABASE_OWNER_URL"].rsplit("/", 1)[0] + "/" + database
        )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "activity_monitor",
                "worker",
                "--pool=solo",
                "--hostname",
                f"{name}-{os.getpid()}@%h",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(30)


def _not_eager():
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    return previous


def _burst(org, users, *, count: int) -> list[int]:
    """Failed sign-ins over the users from a few addresses within a few minutes (not queued)."""
    now = timezone.now() - timedelta(minutes=5)
    ids = []
    with hooks_paused():
        for n in range(count):
            [event] = events_record(
                specs=[
                    EventSpec(
                        event_type=EventType.LOGIN_FAILED,
                        outcome="failure",
                        reason="invalid_credentials",
                        actor=users[n % len(users)],
                        occurred_at=now + timedelta(milliseconds=250 * n),
                    )
                ],
                context=RequestContext(ip_address=f"198.51.100.{n % 7 + 1}"),
            )
            ids.append(event.pk)
    return ids


def test_two_worker_processes_racing_on_one_tenants_burst_evaluate_each_event_once(tmp_path):
    org = OrganizationFactory.create()
    users = [member(org) for _ in range(30)]
    ids = _burst(org, users, count=600)
    rules = list(AlertRule.objects.filter(organization=org).order_by("id"))
    expected = Counter(
        (f.kind, f.subject_key)
        for f in findings_for_batch(list(AuditEvent.objects.filter(pk__in=ids)), rules)
    )
    assert expected[RuleKind.FAILED_SIGN_INS, f"user:{users[0].pk}"] == 16  # 20 each, from the 5th
    assert expected[RuleKind.PASSWORD_SPRAYING, "ip:198.51.100.1"] > 50

    previous = _not_eager()
    app.control.purge()
    connections.close_all()  # the workers' connections are their own
    try:
        with ExitStack() as stack:
            workers = [
                stack.enter_context(_worker(f"race{n}", tmp_path / f"worker{n}.log"))
                for n in (1, 2)
            ]
            wait_for(lambda: len(app.control.ping(timeout=0.5)) == 2, timeout=60, what="workers")
            for pk in ids + ids:  # every message twice
                enqueue(tasks.events_evaluate, [pk])
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if EvaluatedEvent.objects.filter(evaluated_at__isnull=False).count() == len(ids):
                    break
                assert all(w.poll() is None for w in workers), "a worker died"
                time.sleep(0.2)
            # Both ran to the end of the queue: nothing is still being written.
            wait_for(lambda: not any((app.control.inspect(timeout=0.5).active() or {}).values()))
            stats = app.control.inspect(timeout=1).stats() or {}
            taken = [
                s.get("total", {}).get("alerts.tasks.events_evaluate", 0) for s in stats.values()
            ]
    finally:
        app.conf.task_always_eager = previous
        logs = "\n".join(p.read_text() for p in tmp_path.glob("worker*.log"))

    assert len(taken) == 2 and min(taken) > 0, taken  # both workers took a share
    ledger = EvaluatedEvent.objects.filter(event_id__in=ids)
    assert ledger.count() == len(ids), logs
    assert not ledger.filter(evaluated_at__isnull=True).exists()
    assert not ledger.exclude(claim_token=None).exists()

    alerts = list(Alert.objects.filter(organization=org))
    per_subject = defaultdict(list)
    for alert in alerts:
        per_subject[alert.kind, alert.subject_key].append(alert)
    # The burst lies within one window: one alert per rule and subject, every finding counted.
    assert {key: len(group) for key, group in per_subject.items()} == dict.fromkeys(expected, 1)
    assert {key: group[0].count for key, group in per_subject.items()} == dict(expected)
    raised = AuditEvent.objects.filter(organization=org, event_type=EventType.ALERT_RAISED)
    assert sorted(raised.values_list("details__alert_id", flat=True)) == sorted(
        alert.pk for alert in alerts
    )
    assert "Traceback" not in logs, logs
