"""Alert evaluation: throughput of one worker process, and latency from commit to alert.

Runs on PostgreSQL and Redis (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
am_bench_alerts, whose test database test_<name> is created and dropped; REDIS_URL, default
redis://127.0.0.1:6379/13, whose queue is purged). A real `celery worker --pool=solo` process is
started against them, with every rule of every organization on.

1. Throughput: E new events (failed sign-ins, successful sign-ins with their session.started, from
   known and new devices and countries) over U users with a month of history each are queued the
   way sign-ins queue them (one task per request, as alerts.receivers.queue_evaluation sends
   it); the figure is E divided by the time from the first message to the last event in the
   evaluation ledger.
2. Latency: S sign-ins through the real sign-in view, one at a time, each from a new browser (so
   each raises a new-device alert); the figure is the time from the sign-in's commit (an
   after-commit hook) to the alert row's created_at, median and 95th percentile.

    SECRET_KEY=x .venv/bin/python bench/alerts.py [E] [S]
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, environ_defaults  # noqa: E402

environ_defaults(database_url="postgres://postgres@127.0.0.1:5432/am_bench_alerts")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

PASSWORD = "bench-pass-2026"  # noqa: S105
ORGANIZATIONS = 5
USERS_PER_ORG = 40
HISTORY_DAYS = 30
PLACES = [  # (country, city, lat, lon, address prefix)
    ("US", "New York", 40.71, -74.01, "198.51.100."),
    ("GB", "London", 51.51, -0.13, "203.0.113."),
    ("DE", "Berlin", 52.52, 13.40, "192.0.2."),
    ("JP", "Tokyo", 35.68, 139.69, "203.0.114."),
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
]


def _event(rng, user, org, event_type, when, place, device, outcome="success", reason=""):
    from audit.models import AuditEvent
    from audit.useragent import parse_user_agent

    agent = AGENTS[hash(device) % len(AGENTS)]
    parsed = parse_user_agent(agent)
    country, city, lat, lon, prefix = place
    return AuditEvent(
        occurred_at=when,
        organization=org,
        event_type=event_type,
        outcome=outcome,
        reason=reason,
        actor=user,
        actor_label=user.email,
        ip_address=f"{prefix}{rng.randint(2, 250)}",
        user_agent=agent,
        browser=parsed.browser,
        os=parsed.os,
        device_type=parsed.device_type,
        device_id=device,
        country=country,
        city=city,
        latitude=lat,
        longitude=lon,
        details={"method": "password"},
    )


def seed(rng: random.Random):
    """Organizations, users and a month of sign-in history (bulk, marked as already evaluated)."""
    from accounts.models import Membership, Organization, User
    from alerts.evaluation import sweep_mark_to_latest
    from audit.models import AuditEvent, EventType

    users = []
    history = []
    now = timezone.now()
    for o in range(ORGANIZATIONS):
        org = Organization.objects.create(name=f"Bench {o}", slug=f"bench-{o}")
        for u in range(USERS_PER_ORG):
            user = User.objects.create_user(f"user{u}@bench{o}.test", PASSWORD)
            Membership.objects.create(user=user, organization=org)
            user = User.objects.select_related("membership__organization").get(pk=user.pk)
            home = PLACES[(o + u) % 2]
            device = f"{user.pk:016x}"[-16:]
            for day in range(HISTORY_DAYS, 0, -1):
                when = now - timedelta(days=day, hours=rng.randint(0, 8))
                history.append(
                    _event(rng, user, org, EventType.LOGIN_SUCCEEDED, when, home, device)
                )
            users.append((user, org, home, device))
    AuditEvent.objects.bulk_create(history, batch_size=2000)
    sweep_mark_to_latest()
    return users


def _start_worker() -> subprocess.Popen[bytes]:
    name = settings.DATABASES["default"]["NAME"]
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    worker = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "activity_monitor",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    from activity_monitor.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return worker
    worker.terminate()
    raise SystemExit("the worker did not start")


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(rng: random.Random, users, total: int) -> tuple[float, float]:
    """Queue `total` events as sign-ins would, and time one worker evaluating them all."""
    from accounts.models import UserSession
    from activity_monitor.celery import enqueue
    from alerts.models import EvaluatedEvent
    from alerts.tasks import events_evaluate as events_evaluate_task
    from audit.models import AuditEvent, EventType

    now = timezone.now()
    requests: list[list[AuditEvent]] = []
    sessions = []
    count = 0
    while count < total:
        user, org, home, device = rng.choice(users)
        when = now - timedelta(seconds=rng.randint(0, 600))
        roll = rng.random()
        if roll < 0.4:  # a wrong password (some bursts reach the failed sign-ins threshold)
            requests.append(
                [
                    _event(
                        rng,
                        user,
                        org,
                        EventType.LOGIN_FAILED,
                        when,
                        home,
                        device,
                        "failure",
                        "invalid_credentials",
                    )
                ]
            )
            count += 1
            continue
        place = home if roll < 0.85 else rng.choice(PLACES)  # sometimes abroad
        new_device = rng.random() < 0.1
        dev = f"{rng.getrandbits(64):016x}" if new_device else device
        pair = [
            _event(rng, user, org, EventType.LOGIN_SUCCEEDED, when, place, dev),
            _event(rng, user, org, EventType.SESSION_STARTED, when, place, dev),
        ]
        requests.append(pair)
        sessions.append(
            UserSession(
                user=user,
                organization=org,
                session_key=f"{rng.getrandbits(128):032x}",
                session_hash=f"{rng.getrandbits(64):016x}",
                country=place[0],
                started_at=when,
                last_activity_at=when,
            )
        )
        count += 2
    flat = [event for request in requests for event in request]
    AuditEvent.objects.bulk_create(flat, batch_size=2000)
    UserSession.objects.bulk_create(sessions, batch_size=2000)
    worker = _start_worker()
    try:
        cpu_before = _cpu_seconds(worker.pid)
        start = time.perf_counter()
        for request in requests:
            enqueue(events_evaluate_task, [event.pk for event in request])
        while EvaluatedEvent.objects.count() < len(flat):
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        cpu = _cpu_seconds(worker.pid) - cpu_before
    finally:
        worker.terminate()
        worker.wait(30)
    return len(flat) / elapsed, len(flat) / cpu


def latency(users, rounds: int) -> list[float]:
    """Seconds from each sign-in's commit to its new-device alert's insert."""
    from alerts.models import Alert, RuleKind
    from audit import services as audit_services
    from audit.models import EventType

    committed: dict[int, float] = {}

    def note_commit(events) -> None:
        for event in events:
            if event.event_type == EventType.LOGIN_SUCCEEDED:
                committed[event.pk] = time.time()

    audit_services._after_commit_hooks.insert(0, note_commit)
    samples = []
    from activity_monitor.celery import app

    app.control.purge()  # notifications the throughput run left queued would delay the first
    worker = _start_worker()
    try:
        for i in range(rounds):
            user, _, home, _ = users[i % len(users)]
            client = Client()  # a browser never seen before: a new device
            response = client.post(
                "/sign-in/",
                {"email": user.email, "password": PASSWORD},
                REMOTE_ADDR=f"{home[4]}9",
                HTTP_USER_AGENT=AGENTS[1],
            )
            assert response.status_code == 302, response.status_code
            deadline = time.monotonic() + 30
            alert = None
            while alert is None and time.monotonic() < deadline:
                alert = (
                    Alert.objects.filter(kind=RuleKind.NEW_DEVICE, subject_user=user)
                    .order_by("-id")
                    .first()
                )
                if alert is None or alert.event_ids[-1] not in committed:
                    alert = None
                    time.sleep(0.002)
            assert alert is not None, "no alert within 30 s"
            samples.append(alert.created_at.timestamp() - committed[alert.event_ids[-1]])
            client.post("/sign-out/")
    finally:
        audit_services._after_commit_hooks.remove(note_commit)
        worker.terminate()
        worker.wait(30)
    return samples


def main(total: int, rounds: int) -> None:
    from activity_monitor.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    rng = random.Random(2026)
    users = seed(rng)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        history = cursor.fetchone()[0]
    per_second, per_cpu_second = throughput(rng, users, total)
    samples = latency(users, rounds)
    samples.sort()
    p95 = samples[max(0, round(0.95 * len(samples)) - 1)]
    print(
        f"alert evaluation on PostgreSQL + Redis, one worker (--pool=solo), all rules on, "
        f"{len(users)} users in {ORGANIZATIONS} organizations, {history} history events"
    )
    print(
        f"  throughput: {total} events evaluated at {per_second:,.0f} events/s wall clock, "
        f"{per_cpu_second:,.0f} events per CPU-second of the worker process; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"  commit -> alert stored, {len(samples)} new-device sign-ins: "
        f"median {statistics.median(samples) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
    )


if __name__ == "__main__":
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    setup_test_environment()
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        old = setup_databases(verbosity=0, interactive=False)
        try:
            main(total, rounds)
        finally:
            connection.close()
            teardown_databases(old, verbosity=0)
