"""Compliance report generation for a 12-month period, against an existing events database.

    SECRET_KEY=x .venv/bin/python bench/reports.py [--events 10000000] [--framework pci_dss]
        [--months 12] [--runs 3]

On the benchmark database of bench/audit_log.py (BENCH_DATABASE_URL, filled once by
bench/_events_db.py: 100 organizations over two years), generates the report of the
organization holding the most events, for the --months before its newest event, the way the
job does (reports.services.report_build: every section's evidence, then the zip bundle), and
prints the median of --runs runs of the whole job and of each section alone. Target: under one
minute for twelve months at 10M events.

The generator spreads the events over 100 organizations, so one organization holds about a
hundredth of them; --events is the table's size, which is what the sections' index scans and
the partitions they skip depend on. The bundles go to a temporary folder, deleted at the end.

A smoke run on a small database of your own:
    BENCH_DATABASE_URL=postgres://you@127.0.0.1:5432/am_bench_small \\
        .venv/bin/python bench/reports.py --events 3000 --runs 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _events_db  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--framework", default="pci_dss", choices=["soc2", "hipaa", "pci_dss"])
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    _events_db.setup_django()
    total = _events_db.ensure_events(args.events)

    from datetime import timedelta

    from django.db.models import Count, Max
    from django.test.utils import override_settings

    from accounts.models import Organization
    from audit.models import AuditEvent
    from reports.models import ComplianceReport
    from reports.sections import Period, report_sections_for
    from reports.services import report_build

    busiest = (
        AuditEvent.objects.values("organization_id")
        .annotate(n=Count("id"), newest=Max("occurred_at"))
        .order_by("-n")
        .first()
    )
    if busiest is None:
        raise SystemExit("no events")
    organization = Organization.objects.get(pk=busiest["organization_id"])
    end = busiest["newest"].replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=round(args.months * 365 / 12))
    in_period = AuditEvent.objects.filter(
        organization=organization, occurred_at__gte=start, occurred_at__lt=end
    ).count()
    print(f"Machine: {_events_db.machine()}")
    print(
        f"Events table: {total:,}; organization {organization.slug}: {busiest['n']:,} events, "
        f"{in_period:,} in [{start:%Y-%m-%d}, {end:%Y-%m-%d}); framework {args.framework}"
    )

    period = Period(start, end, args.framework)
    sections = report_sections_for(args.framework)
    section_times: dict[str, list[float]] = {s.name: [] for s in sections}
    job_times: list[float] = []
    with tempfile.TemporaryDirectory() as root, override_settings(EXPORT_ROOT=Path(root)):
        for _ in range(args.runs):
            for section in sections:
                started = time.perf_counter()
                section.evidence(organization, period)
                section_times[section.name].append(time.perf_counter() - started)
            report = ComplianceReport.objects.create(
                organization=organization,
                framework=args.framework,
                period_start=start,
                period_end=end,
            )
            started = time.perf_counter()
            built = report_build(report_id=str(report.pk))
            job_times.append(time.perf_counter() - started)
            assert built is not None and built.status == "done", built and built.error
            size = built.size_bytes
            report.delete()

    print(f"\n{'section':<20} {'median s':>10}")
    for name, times in section_times.items():
        print(f"{name:<20} {statistics.median(times):>10.2f}")
    median = statistics.median(job_times)
    print(
        f"\nWhole job (sections + bundle of {size:,} bytes): median {median:.2f} s of {args.runs}"
    )
    print("Target: under 60 s for 12 months at 10M events:", "met" if median < 60 else "NOT met")


if __name__ == "__main__":
    main()
