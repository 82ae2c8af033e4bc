"""Bulk-load synthetic events for benchmarks and demos (COPY on PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.generate import events_generate


class Command(BaseCommand):
    help = (
        "Insert N realistic synthetic events across generated organizations and users, spread "
        "over the last D days. Organizations and users are reused on a second run (same --seed)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--events", type=int, default=100_000, help="rows to insert")
        parser.add_argument("--days", type=int, default=730, help="spread over this many days")
        parser.add_argument("--orgs", type=int, default=10, help="generated organizations")
        parser.add_argument("--users", type=int, default=50, help="users per organization")
        parser.add_argument("--seed", type=int, default=2026, help="names and randomness")
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        total, days = options["events"], options["days"]
        if total < 0 or days < 1 or options["orgs"] < 1 or options["users"] < 1:
            raise CommandError("--events must be >= 0; --days, --orgs and --users >= 1.")
        started = time.perf_counter()

        def progress(done: int) -> None:
            if done % 1_000_000 == 0:
                elapsed = time.perf_counter() - started
                self.stdout.write(f"  {done:,} rows, {done / elapsed:,.0f} rows/s")

        inserted = events_generate(
            total=total,
            days=days,
            organizations=options["orgs"],
            users_per_org=options["users"],
            seed=options["seed"],
            using=options["database"],
            progress=progress,
        )
        elapsed = time.perf_counter() - started
        rate = inserted / elapsed if elapsed else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Inserted {inserted:,} events over {days} days across {options['orgs']} "
                f"organizations in {elapsed:.1f} s ({rate:,.0f} rows/s)."
            )
        )
