"""Background export jobs by state, for /metrics (operations.metrics)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, Metric

from operations.metrics import PREFIX

from .models import ExportStatus
from .selectors import export_counts_by_status


def export_metrics() -> list[Metric]:
    jobs = GaugeMetricFamily(
        PREFIX + "export_jobs",
        "Background CSV export jobs of every organization, by state.",
        labels=["state"],
    )
    counts = export_counts_by_status()
    for state in ExportStatus.values:
        jobs.add_metric([state], counts.get(state, 0))
    return [jobs]
