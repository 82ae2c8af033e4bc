"""The one registry of metrics collectors: each app registers what it knows, /metrics serves all.

An app calls ``register_collector("alerts", fn)`` in its AppConfig.ready(); ``fn`` returns the
metric families (prometheus_client.core) it measures now, read when Prometheus scrapes, never
kept in this process: every worker and web process answers the same numbers because they come
from the database and Redis. A collector that fails is logged and reported as
``activity_monitor_collector_up{collector="..."} 0``; the others are still served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

PREFIX = "activity_monitor_"

CollectorFunction = Callable[[], Iterable[Metric]]
_COLLECTORS: dict[str, CollectorFunction] = {}


def register_collector(name: str, collect: CollectorFunction) -> None:
    """Serve what `collect` returns on /metrics from now on (again under one name: replaced)."""
    _COLLECTORS[name] = collect


def collector_names() -> list[str]:
    return sorted(_COLLECTORS)


class _Registered(Collector):
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            PREFIX + "collector_up",
            "Whether the collector answered on this scrape (1) or failed (0, see the log).",
            labels=["collector"],
        )
        for name in collector_names():
            try:
                families = list(_COLLECTORS[name]())
            except Exception:
                logger.exception("metrics collector %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up

    def describe(self) -> list[Metric]:
        # Nothing to check up front: the families are known only when collected (and
        # registering must not run every collector once more).
        return []


def metrics_text() -> bytes:
    """Every registered collector's metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Registered())
    return generate_latest(registry)
