"""Create the demo organizations and users of the brief, and a few weeks of activity."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from demo.seed import DEMO, DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create the demo organizations, users and weeks of activity (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=28)
        parser.add_argument(
            "--geoip-db",
            type=Path,
            default=None,
            help="Write the demo's GeoIP City database here first (make run points "
            "GEOIP_CITY_DB at it).",
        )

    def handle(self, *args: Any, days: int, geoip_db: Path | None, **options: Any) -> None:
        started = time.perf_counter()
        if geoip_db is not None:
            from audit.geo import reset_readers
            from demo.geoip import demo_geoip_build

            demo_geoip_build(geoip_db)
            reset_readers()
        # The recent attacks are evaluated in-process as they commit (make run): one line per
        # task from Celery would bury the sign-ins printed below.
        trace = logging.getLogger("celery.app.trace")
        level = trace.level
        trace.setLevel(logging.WARNING)
        try:
            seed_demo(days=days)
        finally:
            trace.setLevel(level)
        self.stdout.write(f"Demo data ready in {time.perf_counter() - started:.1f} s.")
        self.stdout.write(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
        for _, _, _, people in DEMO:
            for email, _, role in people:
                self.stdout.write(f"  {email:<24} {role.label}")
