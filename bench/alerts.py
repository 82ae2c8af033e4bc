"""Alert evaluation under load: one worker's CPU per event, workers sharing tenants, and the
delay from an event's commit to its evaluation.

Runs on PostgreSQL and Redis (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
am_bench_alerts, whose test database test_<name> is created and dropped; REDIS_URL, default
redis://127.0.0.1:6379/13, whose queue is purged). Real `celery worker --pool=solo` processes are
started against them, with every rule of every organization on. One command per mode:

  burst    100,000 failed sign-ins for one tenant from 1,000 IPs over 5,000 addresses (within a
           few minutes), queued as sign-ins queue them (one message per event, through
           alerts.receivers.queue_evaluation), evaluated by one worker. Figures: events per CPU-
           second of the worker (user + system, /proc/<pid>/stat), from the moment it starts
           consuming until the queue is empty (its notifications included), and events per second
           of wall clock.
  spread   the same volume over 40 tenants (each 1/40 of the addresses and IPs), evaluated by one
           worker, then again (ledger and alerts cleared) by four. Figures: wall-clock throughput
           of each, their ratio, and events per CPU-second (all workers' CPU).
  latency  failed sign-ins for one tenant arriving at a steady rate (default 500/s for 20 s,
           from several producer threads through the real event path, each event committed and
           queued on its own) with one worker running. Figures: from each event's commit to its
           evaluated_at in the ledger, median and 95th percentile.
  mixed    the earlier mode: E events (failures, sign-ins with their sessions, new devices and
           countries) over 200 users with a month of history, and S sign-ins through the real
           sign-in view, each from a new browser: throughput, and commit -> new-device alert.

    SECRET_KEY=x .venv/bin/python bench/alerts.py burst [--events 100000] [--quiet]
    SECRET_KEY=x .venv/bin/python bench/alerts.py spread [--events 100000] [--tenants 40] [--quiet]
    SECRET_KEY=x .venv/bin/python bench/alerts.py latency [--rate 500] [--seconds 20]
    SECRET_KEY=x .venv/bin/python bench/alerts.py mixed [--events 2000] [--sign-ins 50]

--quiet turns the tenants' alert emails and webhooks off, so that the worker's CPU is the
evaluation's alone (with them on, each raised alert is an email task).

In the burst and spread modes the messages are queued before the workers consume: the workers
start on an empty queue of their own and are then told to consume the loaded one
(app.control.add_consumer), so neither their start-up nor the bench's own publishing is timed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ROOT, environ_defaults  # noqa: E402

environ_defaults(database_url="postgres://postgres@127.0.0.1:5432/am_bench_alerts")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402
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


HOLD_QUEUE = "bench-hold"  # a queue nobody sends to: workers wait on it until told otherwise


def _celery(n: int) -> list[str]:
    """The worker's command; BENCH_WORKER_PROFILE=<dir> runs it under cProfile (<dir>/worker<n>)."""
    profile = os.environ.get("BENCH_WORKER_PROFILE")
    if profile:
        return [sys.executable, "-m", "cProfile", "-o", f"{profile}/worker{n}.prof", "-m", "celery"]
    return [str(ROOT / ".venv" / "bin" / "celery")]


def _start_workers(count: int, *, hold: bool = False) -> list[subprocess.Popen[bytes]]:
    """`count` solo worker processes on the bench's test database, answering a ping."""
    name = settings.DATABASES["default"]["NAME"]
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    env.pop("DATABASE_OWNER_URL", None)
    workers = [
        subprocess.Popen(
            [
                *_celery(n),
                "-A",
                "activity_monitor",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--hostname",
                f"bench{n}-{os.getpid()}@%h",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "--loglevel=WARNING",
                *(["--queues", HOLD_QUEUE] if hold else []),
            ],
            cwd=ROOT,
            env=env,
        )
        for n in range(count)
    ]
    from activity_monitor.celery import app

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=0.5) or []) >= count:
            return workers
    _stop_workers(workers)
    raise SystemExit("the workers did not start")


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)


def _start_worker() -> subprocess.Popen[bytes]:
    return _start_workers(1)[0]


def _redis():
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _wait_until_idle(workers: list[subprocess.Popen[bytes]], timeout: float = 3600) -> None:
    """Until the queue is empty and no message is being worked on (acks come after the task)."""
    client = _redis()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.llen("celery") == 0 and client.hlen("unacked") == 0:
            return
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit("a worker died")
        time.sleep(0.1)
    raise SystemExit("the queue did not drain")


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(rng: random.Random, users, total: int) -> tuple[float, float]:
    """Queue `total` events as sign-ins would, and time one worker evaluating them all."""
    from accounts.models import UserSession
    from activity_monitor.celery import enqueue
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
        while _evaluated() < len(flat):
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
            assert response.status_code == 303, response.status_code
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


def mixed(total: int, rounds: int) -> None:
    from activity_monitor.celery import app

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


# --- burst, spread and latency: failed sign-ins --------------------------------------------------


def _tenants(count: int, *, users: int) -> list[tuple[Any, list[Any]]]:
    """`count` organizations with `users` members each (bulk: one password hash for all)."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Membership, Organization, User

    password = make_password(PASSWORD)
    tenants = []
    for t in range(count):
        org = Organization.objects.create(name=f"Tenant {t}", slug=f"tenant-{t}")
        members = User.objects.bulk_create(
            [
                User(email=f"user{u}@tenant{t}.test", password=password, is_active=True)
                for u in range(users)
            ],
            batch_size=5000,
        )
        Membership.objects.bulk_create(
            [Membership(user=user, organization=org) for user in members], batch_size=5000
        )
        tenants.append((org, members))
    return tenants


def _failures(
    rng: random.Random, tenants, *, total: int, ips_per_tenant: int, seconds: float
) -> list[Any]:
    """`total` failed sign-ins spread evenly over the tenants, within the last `seconds`."""
    from audit.models import AuditEvent, EventType

    start = timezone.now() - timedelta(seconds=seconds)
    events = []
    for n in range(total):
        t = n % len(tenants)
        org, members = tenants[t]
        user = rng.choice(members)
        events.append(
            AuditEvent(
                occurred_at=start + timedelta(seconds=seconds * n / total),
                organization=org,
                event_type=EventType.LOGIN_FAILED,
                outcome="failure",
                reason="invalid_credentials",
                actor=user,
                actor_label=user.email,
                ip_address=_address(t, rng.randrange(ips_per_tenant)),
                details={"method": "password"},
            )
        )
    AuditEvent.objects.bulk_create(events, batch_size=5000)
    return events


def _address(tenant: int, n: int) -> str:
    return f"10.{tenant}.{n // 250}.{n % 250 + 1}"


def _queue_as_sign_ins(events) -> None:
    """One message per event, through the hook a sign-in's commit runs."""
    from alerts.receivers import queue_evaluation

    for event in events:
        queue_evaluation([event])


def _evaluated() -> int:
    from alerts.models import EvaluatedEvent

    return EvaluatedEvent.objects.filter(evaluated_at__isnull=False).count()


def _timed_run(workers_count: int, total: int) -> tuple[float, float, float]:
    """Workers consume the loaded queue: (seconds to evaluate every event, seconds until the
    queue is empty, CPU-seconds of all workers until then)."""
    from activity_monitor.celery import app

    workers = _start_workers(workers_count, hold=True)
    try:
        cpu_before = sum(_cpu_seconds(w.pid) for w in workers)
        start = time.perf_counter()
        app.control.add_consumer("celery", reply=True)
        while _evaluated() < total:
            if any(w.poll() is not None for w in workers):
                raise SystemExit("a worker died")
            time.sleep(0.05)
        evaluated_after = time.perf_counter() - start
        _wait_until_idle(workers)
        drained_after = time.perf_counter() - start
        cpu = sum(_cpu_seconds(w.pid) for w in workers) - cpu_before
    finally:
        _stop_workers(workers)
    return evaluated_after, drained_after, cpu


def _quiet(tenants) -> None:
    """No alert emails or webhooks: the worker's CPU is the evaluation's alone."""
    from alerts.models import AlertRule

    AlertRule.objects.filter(organization__in=[org for org, _ in tenants]).update(
        notify_email=False, notify_webhook=False
    )


def burst(total: int, quiet: bool) -> None:
    from activity_monitor.celery import app
    from alerts.models import Alert

    app.control.purge()
    rng = random.Random(2026)
    tenants = _tenants(1, users=5000)
    if quiet:
        _quiet(tenants)
    events = _failures(rng, tenants, total=total, ips_per_tenant=1000, seconds=total / 500)
    published = time.perf_counter()
    _queue_as_sign_ins(events)
    published = time.perf_counter() - published
    messages = _redis().llen("celery")
    evaluated_after, drained_after, cpu = _timed_run(1, total)
    print(
        f"burst: {total:,} failed sign-ins for one tenant from 1,000 IPs over 5,000 addresses, "
        f"queued one request at a time in {published:.1f} s ({messages:,} messages: the rest "
        f"joined the tenant's pending list), one worker (--pool=solo), alert notifications "
        f"{'off' if quiet else 'on (an email task per alert)'}"
    )
    print(
        f"  all evaluated after {evaluated_after:.1f} s ({total / evaluated_after:,.0f} events/s "
        f"wall clock); queue empty after {drained_after:.1f} s; {Alert.objects.count():,} alerts"
    )
    print(
        f"  worker CPU {cpu:.1f} s: {total / cpu:,.0f} events per worker CPU-second "
        f"(target >= 2,000; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


def spread(total: int, tenant_count: int, quiet: bool) -> None:
    from activity_monitor.celery import app
    from alerts.models import Alert, EvaluatedEvent

    app.control.purge()
    rng = random.Random(2026)
    tenants = _tenants(tenant_count, users=max(1, 5000 // tenant_count))
    if quiet:
        _quiet(tenants)
    events = _failures(
        rng, tenants, total=total, ips_per_tenant=max(1, 1000 // tenant_count), seconds=total / 500
    )
    results = {}
    for workers_count in (1, 4):
        EvaluatedEvent.objects.all().delete()
        Alert.objects.all().delete()
        app.control.purge()
        _queue_as_sign_ins(events)
        messages = _redis().llen("celery")
        results[workers_count] = _timed_run(workers_count, total)
    print(
        f"spread: {total:,} failed sign-ins over {tenant_count} tenants "
        f"({total // tenant_count:,} each), queued one request at a time ({messages:,} messages)"
    )
    for workers_count, (evaluated_after, drained_after, cpu) in results.items():
        print(
            f"  {workers_count} worker(s): all evaluated after {evaluated_after:.1f} s "
            f"({total / evaluated_after:,.0f} events/s), queue empty after {drained_after:.1f} s, "
            f"CPU {cpu:.1f} s ({total / cpu:,.0f} events per worker CPU-second)"
        )
    ratio = results[1][0] / results[4][0]
    print(
        f"  4 workers / 1 worker: {ratio:.2f}x (target >= 3x); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


def latency_under_load(rate: int, seconds: float, producers: int = 4) -> None:
    """Events committed at `rate` per second by `producers` threads; commit -> evaluated_at."""
    from activity_monitor.celery import app
    from alerts.models import EvaluatedEvent
    from audit import services as audit_services
    from audit.context import RequestContext
    from audit.models import EventType
    from audit.services import EventSpec, events_record

    app.control.purge()
    [(org, members)] = _tenants(1, users=5000)
    committed: dict[int, float] = {}

    def note_commit(events) -> None:  # runs once the events commit, before they are queued
        now = time.time()
        for event in events:
            committed[event.pk] = now

    audit_services._after_commit_hooks.insert(0, note_commit)
    workers = _start_workers(1)
    per_producer = rate / producers
    total = int(rate * seconds)

    def produce(index: int) -> None:
        rng = random.Random(index)
        start = time.perf_counter()
        try:
            for n in range(index, total, producers):
                due = start + (n // producers) / per_producer
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                user = rng.choice(members)
                events_record(  # commits (autocommit), then runs the hooks: note_commit first
                    specs=[
                        EventSpec(
                            event_type=EventType.LOGIN_FAILED,
                            outcome="failure",
                            reason="invalid_credentials",
                            actor=user,
                            organization=org,
                        )
                    ],
                    context=RequestContext(ip_address=_address(99, rng.randrange(1000))),
                )
        finally:
            connections.close_all()

    try:
        began = time.perf_counter()
        threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        produced_in = time.perf_counter() - began
        deadline = time.monotonic() + 120
        while _evaluated() < len(committed) and time.monotonic() < deadline:
            time.sleep(0.1)
        _wait_until_idle(workers)
    finally:
        audit_services._after_commit_hooks.remove(note_commit)
        _stop_workers(workers)
    done = dict(
        EvaluatedEvent.objects.filter(event_id__in=list(committed)).values_list(
            "event_id", "evaluated_at"
        )
    )
    samples = sorted(
        evaluated_at.timestamp() - committed[pk]
        for pk, evaluated_at in done.items()
        if evaluated_at is not None
    )
    p95 = samples[max(0, round(0.95 * len(samples)) - 1)]
    print(
        f"latency: {len(committed):,} failed sign-ins for one tenant committed in "
        f"{produced_in:.1f} s ({len(committed) / produced_in:,.0f}/s, target rate {rate}/s, "
        f"{producers} producer threads), one worker (--pool=solo); {len(samples):,} evaluated"
    )
    print(
        f"  commit -> evaluated: median {statistics.median(samples) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {samples[-1] * 1000:.0f} ms (target p95 <= 1,000 ms; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    burst_args = modes.add_parser("burst")
    burst_args.add_argument("--events", type=int, default=100_000)
    burst_args.add_argument("--quiet", action="store_true", help="no alert emails or webhooks")
    spread_args = modes.add_parser("spread")
    spread_args.add_argument("--events", type=int, default=100_000)
    spread_args.add_argument("--tenants", type=int, default=40)
    spread_args.add_argument("--quiet", action="store_true", help="no alert emails or webhooks")
    latency_args = modes.add_parser("latency")
    latency_args.add_argument("--rate", type=int, default=500)
    latency_args.add_argument("--seconds", type=float, default=20)
    mixed_args = modes.add_parser("mixed")
    mixed_args.add_argument("--events", type=int, default=2000)
    mixed_args.add_argument("--sign-ins", type=int, default=50)
    args = parser.parse_args()

    from activity_monitor.celery import app

    app.conf.task_always_eager = False
    setup_test_environment()
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        old = setup_databases(verbosity=0, interactive=False)
        try:
            if args.mode == "burst":
                burst(args.events, args.quiet)
            elif args.mode == "spread":
                spread(args.events, args.tenants, args.quiet)
            elif args.mode == "latency":
                latency_under_load(args.rate, args.seconds)
            else:
                mixed(args.events, args.sign_ins)
        finally:
            app.control.purge()
            connections.close_all()
            teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
