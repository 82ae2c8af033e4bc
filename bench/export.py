"""CSV export speed and memory against PostgreSQL's own COPY ... TO STDOUT WITH CSV.

    SECRET_KEY=x .venv/bin/python bench/export.py [--events 10000000] [--orgs 1,3,10] [--runs 3]

On the benchmark database of bench/audit_log.py (filled once), exports the same rows four
ways in one run and prints the median rows per second of --runs runs, and peak memory:

- "view": GET of the Audit Log's CSV export through the test client (one organization),
- "csv_stream": exports.services.csv_stream, what every export writes: on PostgreSQL the
  database writes the brief's CSV (exports/copy.py, COPY with the rules in SQL), over the first
  1, 3 and 10 organizations (memory vs. size),
- "Python writer": exports.csv.python_csv_chunks, the ORM's rows through Python's csv module
  (what SQLite's `make run` uses, and what every export wrote before issue 15),
- "COPY": PostgreSQL's plain COPY (SELECT the same columns, same order) TO STDOUT WITH CSV, read
  by psycopg, for the same row sets: what the database alone can do, not our format (no
  neutralisation, jsonb's own spacing, its own time format), so the ratio says what our format
  costs.

The runs of the three take turns, so a busy machine slows each alike. Peak memory is Python's
tracemalloc peak during one more, traced run (the timing runs are not traced); flat means the
peak does not grow with the row count.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _events_db  # noqa: E402


def _timed(run: Callable[[], int]) -> tuple[int, float]:
    gc.collect()
    started = time.perf_counter()
    rows = run()
    return rows, time.perf_counter() - started


def _peak(run: Callable[[], int]) -> int:
    gc.collect()
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _count_lines(chunks: Iterable[str | bytes]) -> int:
    lines = 0
    for chunk in chunks:
        lines += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
    return lines - 1  # the header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--orgs", default="1,3,10", help="organization counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    _events_db.setup_django()
    total = _events_db.ensure_events(args.events)

    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse
    from psycopg import ClientCursor

    from accounts.models import Organization, User
    from audit.models import AuditEvent
    from exports.csv import EVENT_FIELDS, python_csv_chunks
    from exports.services import csv_stream

    seed = _events_db.SEED
    counts = [int(n) for n in args.orgs.split(",")]
    organizations = list(
        Organization.objects.filter(slug__startswith=f"gen{seed}-").order_by("slug")[: max(counts)]
    )
    first = organizations[0]
    admin = User.objects.get(email=f"user0000@{first.slug}.test")

    def queryset(count: int):
        ids = [o.pk for o in organizations[:count]]
        return AuditEvent.objects.filter(organization_id__in=ids).order_by("-occurred_at", "-id")

    def copy_rows(count: int) -> int:
        sql, params = queryset(count).values_list(*EVENT_FIELDS).query.sql_with_params()
        connection.ensure_connection()
        raw = connection.connection
        with ClientCursor(raw) as mogrifier:
            statement = mogrifier.mogrify(sql, params)
        lines = 0
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy,
        ):
            for block in copy:
                lines += bytes(block).count(b"\n")
        return lines - 1

    def stream_rows(count: int) -> int:
        return _count_lines(csv_stream(queryset(count)))

    def python_rows(count: int) -> int:
        return _count_lines(data for data, _ in python_csv_chunks(queryset(count)))

    client = Client()
    client.force_login(admin)
    url = reverse("exports:audit-log-csv")

    def view_rows() -> int:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return _count_lines(response.streaming_content)  # type: ignore[attr-defined]

    def median_seconds(runs: dict[str, Callable[[], int]]) -> dict[str, tuple[int, float]]:
        """Each run's rows and median seconds, the runs taking turns."""
        timings: dict[str, list[tuple[int, float]]] = {name: [] for name in runs}
        for _ in range(args.runs):
            for name, run in runs.items():
                timings[name].append(_timed(run))
        return {
            name: (found[-1][0], statistics.median(seconds for _, seconds in found))
            for name, found in timings.items()
        }

    print(f"\n{total:,} events; {_events_db.machine()}; median of {args.runs} runs")
    print(
        f"{'export':<34} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'vs COPY':>8} {'peak MB':>8}"
    )
    with override_settings(EXPORT_STREAM_MAX_ROWS=10**9, DEBUG=False):
        view_rows()  # warm the OS cache for the first organization
        for count in counts:
            label = f"{count} org{'s' if count > 1 else ''}"
            runs: dict[str, Callable[[], int]] = {
                "COPY TO STDOUT CSV, " + label: partial(copy_rows, count),
                "csv_stream, " + label: partial(stream_rows, count),
                "Python writer, " + label: partial(python_rows, count),
            }
            if count == 1:
                runs["GET audit-log/export.csv, " + label] = view_rows
            results = median_seconds(runs)
            copied, copy_seconds = results.pop("COPY TO STDOUT CSV, " + label)
            copy_rate = copied / copy_seconds
            copy_peak = _peak(partial(copy_rows, count))
            print(
                f"{'COPY TO STDOUT CSV, ' + label:<34} {copied:>10,} {copy_seconds:>8.2f} "
                f"{copy_rate:>10,.0f} {'1.00':>8} {copy_peak / 1e6:>8.1f}"
            )
            for name, (rows, seconds) in results.items():
                peak = _peak(runs[name])
                # The view's own export.created/downloaded events commit before it streams.
                assert 0 <= rows - copied <= 4 * args.runs + 4, (name, rows, copied)
                print(
                    f"{name:<34} {rows:>10,} {seconds:>8.2f} {rows / seconds:>10,.0f} "
                    f"{rows / seconds / copy_rate:>8.2f} {peak / 1e6:>8.1f}"
                )
    print("Target (issue 15): csv_stream at least 0.90 of COPY's rows/s; peak memory flat.")


if __name__ == "__main__":
    main()
