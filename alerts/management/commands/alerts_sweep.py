"""Evaluate the alert rules on every event no task evaluated yet (what beat runs each minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from alerts.evaluation import events_sweep, sweep_mark_to_latest
from alerts.notifications import notifications_sweep


class Command(BaseCommand):
    help = (
        "Run the alert sweep now. --horizon-hours reaches further back than the setting (e.g. "
        "720 to raise alerts from the demo's generated weeks); --from-now skips the history."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--horizon-hours", type=int, default=None)
        parser.add_argument("--from-now", action="store_true")

    def handle(self, *args: Any, horizon_hours: int | None, from_now: bool, **options: Any) -> None:
        if from_now:
            mark = sweep_mark_to_latest()
            self.stdout.write(f"Sweeping starts after event {mark}.")
            return
        evaluated = events_sweep(horizon_hours=horizon_hours, max_batches=1_000_000)
        sent = notifications_sweep()
        self.stdout.write(f"Evaluated {evaluated} events; {sent} notifications retried or sent.")
