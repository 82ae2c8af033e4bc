"""Shared set-up of bench/audit_log.py and bench/export.py: a PostgreSQL database of events.

The database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/am_bench_logs) is
created if missing, migrated, and filled by demo.generate (the engine of manage.py
generate_events) up to the requested number of events: 100 organizations, 100 people each,
spread over two years. A second run reuses the rows.
"""

from __future__ import annotations

import os
import time

from bench._support import environ_defaults

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/am_bench_logs"
ORGANIZATIONS = 100
USERS_PER_ORG = 100
DAYS = 730
SEED = 2026


def setup_django() -> None:
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    environ_defaults(database_url=url)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    _create_database(url)
    import django

    django.setup()


def _create_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def ensure_events(total: int) -> int:
    """Migrate and generate events until the table holds about `total`; return the row count."""
    from django.core.management import call_command
    from django.db import connection

    from demo.generate import events_generate

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        have: int = cursor.fetchone()[0]
    if have < total * 0.99:
        missing = total - have
        print(f"Generating {missing:,} events (have {have:,}) ...", flush=True)
        started = time.perf_counter()
        events_generate(
            total=missing,
            days=DAYS,
            organizations=ORGANIZATIONS,
            users_per_org=USERS_PER_ORG,
            seed=SEED,
        )
        elapsed = time.perf_counter() - started
        print(f"  {missing:,} rows in {elapsed:.0f} s ({missing / elapsed:,.0f} rows/s)")
        have += missing
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    return have


def machine() -> str:
    import platform

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    cpus = os.cpu_count()
    with open("/proc/meminfo") as handle:
        memory_kb = int(handle.readline().split()[1])
    return (
        f"{platform.processor() or platform.machine()}, {cpus} CPUs, "
        f"{memory_kb / 1024 / 1024:.0f} GB RAM, PostgreSQL {version}, "
        f"Python {platform.python_version()}"
    )
