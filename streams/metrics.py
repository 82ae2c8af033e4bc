"""Streams' lag, deliveries and failures per destination, for /metrics (operations.metrics)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from operations.metrics import PREFIX

from .models import StreamDestination
from .selectors import lag_of

LABELS = ["organization", "destination", "transport"]


def stream_metrics() -> list[Metric]:
    """Per destination: events delivered, failures in a row, paused, and its lag."""
    delivered = CounterMetricFamily(
        PREFIX + "stream_deliveries", "Events delivered to the destination.", labels=LABELS
    )
    failing = GaugeMetricFamily(
        PREFIX + "stream_failures_in_a_row",
        "Failed batches since the destination's last delivery.",
        labels=LABELS,
    )
    paused = GaugeMetricFamily(
        PREFIX + "stream_paused", "1 if the destination is paused.", labels=LABELS
    )
    lag_events = GaugeMetricFamily(
        PREFIX + "stream_lag_events",
        "Events recorded and not yet delivered (counted up to 10,001).",
        labels=LABELS,
    )
    lag_seconds = GaugeMetricFamily(
        PREFIX + "stream_lag_seconds",
        "Age of the oldest event not yet delivered (0 when caught up).",
        labels=LABELS,
    )
    for destination in StreamDestination.objects.select_related("organization").order_by("id"):
        labels = [
            str(destination.organization_id),
            str(destination.pk),
            destination.transport,
        ]
        lag = lag_of(destination)
        delivered.add_metric(labels, destination.delivered_count)
        failing.add_metric(labels, destination.failures)
        paused.add_metric(labels, 1 if destination.is_paused else 0)
        lag_events.add_metric(labels, lag.events)
        lag_seconds.add_metric(labels, lag.seconds or 0.0)
    return [delivered, failing, paused, lag_events, lag_seconds]
