"""Alert evaluation's backlog, for /metrics (operations.metrics)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, Metric

from operations.metrics import PREFIX

from . import pending
from .selectors import sweep_progress


def alert_metrics() -> list[Metric]:
    """Events waiting for evaluation, and how far behind the sweep's mark is."""
    waiting = GaugeMetricFamily(
        PREFIX + "alert_evaluations_pending",
        "Event ids queued for alert evaluation and not yet taken by a worker (alerts.pending).",
        value=pending.backlog(),
    )
    progress = sweep_progress()
    behind = GaugeMetricFamily(
        PREFIX + "alert_sweep_events_behind",
        "Events recorded after the alert sweep's mark: at most this many are not yet known to be "
        "evaluated.",
        value=progress.events_behind,
    )
    families: list[Metric] = [waiting, behind]
    if progress.swept_at is not None:
        families.append(
            GaugeMetricFamily(
                PREFIX + "alert_sweep_last_moved_timestamp_seconds",
                "When the alert sweep's mark last moved (Unix time).",
                value=progress.swept_at.timestamp(),
            )
        )
    return families
