"""Create the demo organizations and users of the brief, and a few weeks of activity."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from demo.seed import DEMO, DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create the demo organizations, users and a few weeks of activity (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=21)

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        # The recent attacks are evaluated in-process as they commit (make run): one line per
        # task from Celery would bury the sign-ins printed below.
        trace = logging.getLogger("celery.app.trace")
        level = trace.level
        trace.setLevel(logging.WARNING)
        try:
            seed_demo(days=days)
        finally:
            trace.setLevel(level)
        self.stdout.write(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
        for _, _, _, people in DEMO:
            for email, _, role in people:
                self.stdout.write(f"  {email:<24} {role.label}")
