"""The retention purge at scale, and what it costs concurrent sign-ins.

Loads --events synthetic events (default 10,000,000) with manage.py generate_events' loader
(demo.generate.events_generate, COPY on PostgreSQL), --expired of them (default 2,500,000)
eight years old, so past every tier's retention, the rest from the last 80 days, so inside every
tier's. Expired rows are loaded first, so they hold the lowest ids and the first pages of the
table, as they would in production.

In production a row is 90 days to 10 years old when the purge deletes it, and autovacuum has long
since visited its page: hint bits set, page marked all-visible. So after loading, and before
anything is timed, the table is brought to that state: `VACUUM (ANALYZE)` on the events table (as
autovacuum would have done in the months before the rows expired), then a CHECKPOINT, so that
neither the sign-ins nor the purge are measured while a checkpoint writes out what loading and
vacuuming dirtied. The output says how many of the table's pages the VACUUM left all-visible.
Then:

  1. sign-ins through the test client in a second process, without a purge: half of the
     baseline;
  2. the daily purge (retention.purge.events_purge_expired_all) while the same sign-ins run;
  3. the other half of the baseline, so drift of a shared host weighs on both sides alike.

Each sign-in process's first WARM_UP sign-ins (connecting, preparing statements) are not counted.

Prints rows purged per second and the sign-ins' median and 95th-percentile latency with and
without the purge. Runs on PostgreSQL only, in its own database (created if missing):

    SECRET_KEY=x .venv/bin/python bench/purge.py                     # 10M rows, 2.5M expired
    SECRET_KEY=x .venv/bin/python bench/purge.py --events 2000000 --expired 500000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/am_bench_purge (the default)

A second run reuses the 7.5M kept rows and loads only the expired ones again, so these then have
ids above the kept rows'; it vacuums (which also reclaims the previous purge's dead rows) and
checkpoints again before timing.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import environ_defaults  # noqa: E402

environ_defaults(database_url="postgres://postgres@127.0.0.1:5432/am_bench_purge")
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


def _count(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def _load(events: int, expired: int, now: datetime) -> str:
    """Load what is missing, then VACUUM (ANALYZE) and CHECKPOINT; says what they did."""
    from demo.generate import events_generate

    cutoff = now - EXPIRED_AGE + timedelta(days=1)
    have_expired = _count("SELECT count(*) FROM audit_auditevent WHERE occurred_at < %s", [cutoff])
    have_kept = _count(
        "SELECT count(*) FROM audit_auditevent WHERE occurred_at >= %s",
        [now - timedelta(days=KEPT_DAYS + 5)],
    )
    kept = events - expired
    started = time.perf_counter()
    # Each month its partition (as the owner; the table is partitioned by month), so that the
    # expired months can be dropped whole: loaded history does not wait in the default one.
    from audit.partitions import months_ensure

    months_ensure(first=now - EXPIRED_AGE - timedelta(days=31), last=now - EXPIRED_AGE)
    months_ensure(first=now - timedelta(days=KEPT_DAYS + 1), last=now)
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
        # What autovacuum has done to a row long before it expires: hint bits set, its page
        # all-visible. A purge must not be measured as the first visitor of freshly loaded rows.
        started = time.perf_counter()
        cursor.execute("VACUUM (ANALYZE) audit_auditevent")
        vacuumed = time.perf_counter() - started
        # Write out what loading and vacuuming dirtied now, so that neither the sign-ins nor
        # the purge are measured while a checkpoint writes gigabytes of it in the background.
        started = time.perf_counter()
        cursor.execute("CHECKPOINT")
        checkpointed = time.perf_counter() - started
        # Summed over the partitions: the partitioned table itself holds no pages.
        cursor.execute(
            "SELECT sum(c.relpages)::bigint, sum(c.relallvisible)::bigint "
            "FROM pg_partition_tree('audit_auditevent') t JOIN pg_class c ON c.oid = t.relid"
        )
        pages, visible = cursor.fetchone()
    return (
        f"before timing: VACUUM (ANALYZE) of the events table ({vacuumed:.0f} s; "
        f"{visible:,} of {pages:,} pages all-visible), then CHECKPOINT ({checkpointed:.0f} s)"
    )


def _bench_user():
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


class SignIns:
    """Sign in again and again through the real view until stopped or `limit` is reached.

    In a process of its own, as a web worker is in production: the purge runs in a Celery
    worker, so the sign-ins must not share this process's interpreter lock with it.
    """

    # A new process's first sign-ins open its connection and prepare its statements.
    WARM_UP = 10

    def __init__(self, email: str, limit: int | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self.email, self.limit = email, limit
        self.stop = context.Event()
        self.samples: list[float] = []
        self._results = context.SimpleQueue()
        self._process = context.Process(target=self._run, daemon=True)

    def start(self) -> None:
        connections.close_all()  # the child must open its own connection, not share ours
        self._process.start()

    def join(self) -> None:
        outcome = self._results.get()
        self._process.join()
        if isinstance(outcome, str):
            raise RuntimeError(f"sign-ins failed: {outcome}")
        self.samples = outcome[self.WARM_UP :]

    def _run(self) -> None:
        samples: list[float] = []
        try:
            limit = None if self.limit is None else self.limit + self.WARM_UP
            while not self.stop.is_set() and (limit is None or len(samples) < limit):
                client = Client()
                started = time.perf_counter()
                response = client.post(
                    "/sign-in/",
                    {"email": self.email, "password": PASSWORD},
                    REMOTE_ADDR="203.0.113.10",
                    HTTP_USER_AGENT=AGENT,
                )
                samples.append(time.perf_counter() - started)
                if response.status_code != 303:
                    raise RuntimeError(f"sign-in answered {response.status_code}")
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            self._results.put(repr(exc))
        else:
            self._results.put(samples)
        finally:
            connections.close_all()


class BatchClock:
    """Times the purge's delete statements (each batch's transaction) as the service calls them,
    so the report can tell the batches' own time from the work around them."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.first: float | None = None
        self.last: float | None = None

    def _timed(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            self.first = self.first or started
            try:
                return function(*args, **kwargs)
            finally:
                self.last = time.perf_counter()
                self.durations.append(self.last - started)

        return timed

    @contextlib.contextmanager
    def installed(self):
        """Wrap the batch functions under the names the purge calls them by, then restore them."""
        import retention.purge

        saved = {
            name: getattr(retention.purge, name)
            for name in ("events_purge_id_range", "events_purge_batch", "events_purge_partition")
        }
        for name, function in saved.items():
            setattr(retention.purge, name, self._timed(function))
        try:
            yield self
        finally:
            for name, function in saved.items():
                setattr(retention.purge, name, function)

    def report(self, started: float, ended: float) -> str:
        if not self.durations or self.first is None or self.last is None:
            return "no batches"
        inside = sum(self.durations)
        return (
            f"{len(self.durations)} batches: {inside:.2f} s in their statements "
            f"(median {statistics.median(self.durations) * 1000:.0f} ms, "
            f"max {max(self.durations) * 1000:.0f} ms), "
            f"{self.last - self.first - inside:.2f} s between them, "
            f"{self.first - started:.2f} s before the first, "
            f"{ended - self.last:.2f} s after the last"
        )


def _checkpoints() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
        return int(cursor.fetchone()[0])


def _wal_position() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def _summary(samples: list[float]) -> str:
    if not samples:
        return "    0 sign-ins (the purge ended before any past the warm-up)"
    return (
        f"{len(samples):5d} sign-ins  median {statistics.median(samples) * 1000:7.2f} ms  "
        f"p95 {_p95(samples) * 1000:7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--expired", type=int, default=2_500_000)
    parser.add_argument("--batch-size", type=int, default=settings.RETENTION_PURGE_BATCH_SIZE)
    parser.add_argument(
        "--baseline", type=int, default=1000, help="sign-ins without purge: half before, half after"
    )
    parser.add_argument("--archive", action="store_true", help="archive before purge")
    parser.add_argument(
        "--pause-ratio",
        type=float,
        default=settings.RETENTION_PURGE_PAUSE_RATIO,
        help="rest between batches, as a multiple of a batch's duration",
    )
    parser.add_argument(
        "--wal-compression",
        default=settings.RETENTION_PURGE_WAL_COMPRESSION,
        help="RETENTION_PURGE_WAL_COMPRESSION for the purge's transactions (lz4, zstd, pglz)",
    )
    parser.add_argument(
        "--by",
        choices=["partition", "delete"],
        default="partition",
        help="drop whole expired months (the default) or delete every row in batches",
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/purge.py runs on PostgreSQL: set DATABASE_URL=postgres://...")
    _ensure_database()

    from accounts.models import Organization
    from audit.models import AuditEvent
    from retention.models import RetentionSettings
    from retention.purge import events_purge_expired_all

    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = timezone.now()
    prepared = _load(args.events, args.expired, now)
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
    # The baseline in two halves, before and after the purge, so that the host's drift over the
    # run weighs on both sides alike.
    before = SignIns(user.email, limit=args.baseline // 2)
    before.start()
    before.join()

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    during = SignIns(user.email)
    during.start()
    clock = BatchClock()
    wal_before = _wal_position()
    checkpoints_before = _checkpoints()
    started = time.perf_counter()
    with (
        override_settings(
            RETENTION_PURGE_PAUSE_RATIO=args.pause_ratio,
            RETENTION_PURGE_WAL_COMPRESSION=args.wal_compression,
            RETENTION_PURGE_BY_PARTITION=args.by == "partition",
        ),
        clock.installed(),
    ):
        outcomes = events_purge_expired_all(now=now, batch_size=args.batch_size)
    ended = time.perf_counter()
    elapsed = ended - started
    wal_written = _wal_position() - wal_before
    during.stop.set()
    during.join()
    checkpoints = _checkpoints() - checkpoints_before
    after = SignIns(user.email, limit=args.baseline - args.baseline // 2)
    after.start()
    after.join()
    baseline_samples = before.samples + after.samples
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
        cursor.execute("SHOW max_wal_size")
        max_wal_size = cursor.fetchone()[0]
    print()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs; PostgreSQL {server}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(pg_total_relation_size(relid))::bigint "
            "FROM pg_partition_tree('audit_auditevent')"
        )
        size = cursor.fetchone()[0]
    print(f"load average (1, 5, 15 min) at the start: {load_at_start}; before the purge: {load}")
    print(
        f"table: {total:,} events ({size / 1e9:.1f} GB with indexes), {expired:,} past retention; "
        f"batch size {args.batch_size:,} ids; pause ratio {args.pause_ratio}; "
        f"WAL compression {args.wal_compression or 'as the server'}; "
        f"archive before purge: {'on' if args.archive else 'off'}; "
        f"expired months {'dropped whole' if args.by == 'partition' else 'deleted row by row'}"
    )
    print(prepared)
    print(
        f"purged {purged:,} rows in {elapsed:.2f} s: {purged / elapsed:,.0f} rows/s "
        f"(--by {args.by})"
    )
    print(f"  {clock.report(started, ended)}; {wal_written / 1e6:,.0f} MB of WAL")
    print(
        f"  checkpoints begun during the purge: {checkpoints} (max_wal_size {max_wal_size}; "
        "a checkpoint starts once about half of it is written)"
    )
    if failed:
        print(f"FAILED purges: {[(o.scope, o.error) for o in failed]}")
    print(f"sign-ins without purge: {_summary(baseline_samples)} (half before, half after)")
    print(f"sign-ins during purge:  {_summary(during.samples)}")
    if during.samples:
        ratio = _p95(during.samples) / _p95(baseline_samples)
        print(f"p95 during / without: {ratio:.2f}x (target <= 1.20)")


if __name__ == "__main__":
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        main()
