"""The retention purge at scale, and what it costs concurrent sign-ins.

Loads --events synthetic events (default 10,000,000) with manage.py generate_events' loader
(audit.generate.events_generate, COPY on PostgreSQL), --expired of them (default 2,500,000)
eight years old, so past every tier's retention, the rest from the last 80 days, so inside every
tier's. Expired rows are loaded first, so they hold the lowest ids and the first pages of the
table, as they would in production. Then:

  1. sign-ins through the test client in a second thread, without a purge: the baseline;
  2. the daily purge (retention.services.events_purge_expired_all) while the same sign-ins run.

Prints rows purged per second and the sign-ins' median and 95th-percentile latency with and
without the purge. Runs on PostgreSQL only, in its own database (created if missing):

    SECRET_KEY=x .venv/bin/python bench/purge.py                     # 10M rows, 2.5M expired
    SECRET_KEY=x .venv/bin/python bench/purge.py --events 2000000 --expired 500000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/am_bench_purge (the default)

A second run reuses the 7.5M kept rows and loads only the expired ones again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activity_monitor.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/am_bench_purge")
# As deployed: a sign-in queues its alert evaluation and notification email for a worker rather
# than running them inline (no worker consumes the in-memory queue here), and sends no mail.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")
os.environ.setdefault("REDIS_URL", "")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

PASSWORD = "bench-pass-2026"  # noqa: S105
EXPIRED_AGE = timedelta(days=8 * 365)  # past Enterprise's 7 years and every other tier
KEPT_DAYS = 80  # inside Small Business's 90 days
AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


def _ensure_database() -> None:
    import psycopg

    name = settings.DATABASES["default"]["NAME"]
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)


def _count(sql: str, params: list[object]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _load(events: int, expired: int, now) -> None:  # type: ignore[no-untyped-def]
    from audit.generate import events_generate

    cutoff = now - EXPIRED_AGE + timedelta(days=1)
    have_expired = _count("SELECT count(*) FROM audit_auditevent WHERE occurred_at < %s", [cutoff])
    have_kept = _count(
        "SELECT count(*) FROM audit_auditevent WHERE occurred_at >= %s",
        [now - timedelta(days=KEPT_DAYS + 5)],
    )
    kept = events - expired
    started = time.perf_counter()
    if have_expired < expired:
        print(f"loading {expired - have_expired:,} expired events ...", flush=True)
        events_generate(
            total=expired - have_expired,
            days=30,
            end=now - EXPIRED_AGE,
            seed=7,
            rebuild_indexes=have_kept == 0,
        )
    if have_kept < kept:
        print(f"loading {kept - have_kept:,} kept events ...", flush=True)
        events_generate(total=kept - have_kept, days=KEPT_DAYS, end=now, seed=7)
    if have_expired < expired or have_kept < kept:
        print(f"loaded in {time.perf_counter() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")


def _bench_user():  # type: ignore[no-untyped-def]
    from accounts.models import Membership, Organization, Tier, User

    organization, _ = Organization.objects.get_or_create(
        slug="bench-purge",
        defaults={"name": "Bench purge", "tier": Tier.ENTERPRISE, "lockout_threshold": 100},
    )
    user = User.objects.filter(email="bench-purge@example.test").first()
    if user is None:
        user = User.objects.create_user("bench-purge@example.test", PASSWORD)
        Membership.objects.create(user=user, organization=organization)
    return user


class SignIns(threading.Thread):
    """Sign in again and again through the real view until stopped or `limit` is reached."""

    def __init__(self, email: str, limit: int | None = None) -> None:
        super().__init__(daemon=True)
        self.email, self.limit = email, limit
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set() and (self.limit is None or len(self.samples) < self.limit):
                client = Client()
                started = time.perf_counter()
                response = client.post(
                    "/sign-in/",
                    {"email": self.email, "password": PASSWORD},
                    REMOTE_ADDR="203.0.113.10",
                    HTTP_USER_AGENT=AGENT,
                )
                self.samples.append(time.perf_counter() - started)
                assert response.status_code == 302, response.status_code
        finally:
            connections.close_all()


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"{len(ordered):5d} sign-ins  median {statistics.median(ordered) * 1000:7.2f} ms  "
        f"p95 {p95 * 1000:7.2f} ms"
    )


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--expired", type=int, default=2_500_000)
    parser.add_argument("--batch-size", type=int, default=settings.RETENTION_PURGE_BATCH_SIZE)
    parser.add_argument("--baseline", type=int, default=400, help="sign-ins without purge")
    parser.add_argument("--archive", action="store_true", help="archive before purge")
    parser.add_argument(
        "--pause-ratio",
        type=float,
        default=settings.RETENTION_PURGE_PAUSE_RATIO,
        help="rest between batches, as a multiple of a batch's duration",
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/purge.py runs on PostgreSQL: set DATABASE_URL=postgres://...")
    _ensure_database()

    from accounts.models import Organization
    from audit.models import AuditEvent
    from retention.models import RetentionSettings
    from retention.services import events_purge_expired_all

    now = timezone.now()
    _load(args.events, args.expired, now)
    total = AuditEvent.objects.count()
    expired = _count(
        "SELECT count(*) FROM audit_auditevent WHERE occurred_at < %s",
        [now - EXPIRED_AGE + timedelta(days=1)],
    )
    for organization in Organization.objects.all():
        RetentionSettings.objects.update_or_create(
            organization=organization, defaults={"archive_before_purge": args.archive}
        )
    user = _bench_user()

    warm = SignIns(user.email, limit=30)
    warm.start()
    warm.join()
    baseline = SignIns(user.email, limit=args.baseline)
    baseline.start()
    baseline.join()

    during = SignIns(user.email)
    during.start()
    started = time.perf_counter()
    with override_settings(RETENTION_PURGE_PAUSE_RATIO=args.pause_ratio):
        outcomes = events_purge_expired_all(now=now, batch_size=args.batch_size)
    elapsed = time.perf_counter() - started
    during.stop.set()
    during.join()
    purged = sum(o.count for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    print()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; PostgreSQL {server}")
    print(
        f"table: {total:,} events, {expired:,} past retention; batch size {args.batch_size:,} ids; "
        f"pause ratio {args.pause_ratio}; archive before purge: {'on' if args.archive else 'off'}"
    )
    print(f"purged {purged:,} rows in {elapsed:.2f} s: {purged / elapsed:,.0f} rows/s")
    if failed:
        print(f"FAILED purges: {[(o.scope, o.error) for o in failed]}")
    print(f"sign-ins without purge: {_summary(baseline.samples)}")
    print(f"sign-ins during purge:  {_summary(during.samples)}")
    ratio = _p95(during.samples) / _p95(baseline.samples)
    print(f"p95 during / without: {ratio:.2f}x (target <= 1.20)")


if __name__ == "__main__":
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        main()
