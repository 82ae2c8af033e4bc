"""Tamper evidence at scale: events sealed per second and verified per second.

Runs against a copy of the 10M-event benchmark database (bench/_events_db.py fills
am_bench_logs; never write to it): make the copy once, when nobody is connected to it,

    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE am_bench_integrity TEMPLATE am_bench_logs"
    SECRET_KEY=x .venv/bin/python bench/integrity.py                  # every organization
    SECRET_KEY=x .venv/bin/python bench/integrity.py --organizations 10

BENCH_DATABASE_URL picks another database (default am_bench_integrity). The script migrates
it (the integrity tables), then in one process, one organization after another:

  1. seals every organization's events (integrity.services.events_seal, the beat task's
     service) and prints events sealed per second: the target is to keep up with 5,000 events
     per second of input on one worker;
  2. verifies every organization (integrity.services.integrity_verify) and prints events
     verified per second: the target is 10M events in under 2 minutes (83,000/s).

Seals already made are kept: a second run seals only what is new and verifies everything. The
archive storage is a temporary directory. Prints the machine's CPU count and the data size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import environ_defaults  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/am_bench_integrity"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organizations", type=int, default=0, help="at most this many (0: all)")
    parser.add_argument("--block", type=int, default=50_000, help="events per seal")
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    environ_defaults(database_url=url)
    os.environ.pop("DATABASE_OWNER_URL", None)
    storage = tempfile.mkdtemp(prefix="bench-integrity-")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Organization
    from integrity.keys import new_key
    from integrity.models import Seal
    from integrity.services import events_seal, integrity_verify

    call_command("migrate", verbosity=0)
    key_file = Path(storage).parent / "bench-integrity.key"
    # One key across runs, so seals kept from an earlier run still verify.
    if not key_file.exists():
        key_file.write_text(new_key())
    settings.INTEGRITY_SIGNING_KEY = key_file.read_text()
    settings.STORAGES = {
        **settings.STORAGES,
        "archives": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(Path(storage).parent / "bench-integrity-archives")},
        },
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        total = cursor.fetchone()[0]
    organizations = list(Organization.objects.order_by("pk"))
    if args.organizations:
        organizations = organizations[: args.organizations]
    print(f"{os.cpu_count()} CPUs; {total:,} events in {url.rsplit('/', 1)[1]}", flush=True)

    sealed = 0
    started = time.perf_counter()
    for organization in organizations:
        sealed += sum(
            s.event_count for s in events_seal(organization=organization, block_max=args.block)
        )
    seconds = time.perf_counter() - started
    if sealed:
        print(
            f"sealed {sealed:,} events in {seconds:.1f} s: {sealed / seconds:,.0f} events/s "
            f"(target: keep up with 5,000/s)",
            flush=True,
        )
    seals = Seal.objects.filter(organization__in=organizations).count()
    print(f"{seals:,} seals of at most {args.block:,} events", flush=True)

    verified = problems = 0
    started = time.perf_counter()
    for organization in organizations:
        report = integrity_verify(organization=organization)
        verified += report.events
        problems += len(report.problems) + bool(report.cannot_verify)
    seconds = time.perf_counter() - started
    rate = verified / seconds if seconds else 0
    print(
        f"verified {verified:,} events in {seconds:.1f} s: {rate:,.0f} events/s, "
        f"{problems} problems (target: 10M in under 120 s; at this rate "
        f"{10_000_000 / rate if rate else 0:.0f} s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
