"""The monitoring checklist's evidence that the log reaches a SIEM ("Correlate with security
events"): registered for the item by StreamsConfig.ready (accounts.checklist)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from accounts.checklist import Evidence, Status

from .models import StreamDestination

if TYPE_CHECKING:
    from accounts.models import Organization


def stream_evidence(organization: Organization, now: datetime) -> Evidence:
    """Done when a destination is delivering; failing while one fails (paused for it or not)."""
    destinations = list(StreamDestination.objects.filter(organization=organization))
    if not destinations:
        return Evidence(Status.TO_DO, "No stream sends the log to a SIEM.")
    failing = [d for d in destinations if d.failing_since is not None]
    if failing:
        first = min(failing, key=lambda d: d.failing_since or now)
        return Evidence(
            Status.FAILING, f"The stream “{first.name}” has been failing", first.failing_since
        )
    delivering = [d for d in destinations if d.paused_at is None and d.last_delivery_at is not None]
    if not delivering:
        return Evidence(Status.TO_DO, "A stream is set up but is paused or has delivered nothing.")
    last = max(delivering, key=lambda d: d.last_delivery_at or now)
    return Evidence(
        Status.DONE,
        f"Streaming to {len(delivering)} destination(s); last delivery",
        last.last_delivery_at,
    )
