"""An event as JSON under the brief's field names: the API's feed and the streams' own format."""

from __future__ import annotations

from typing import Any

from .models import AuditEvent
from .sanitize import clean_details


def event_json(event: AuditEvent) -> dict[str, Any]:
    """One event under the brief's field names (those of the CSV header), plus its id."""
    return {
        "id": event.pk,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "event_type": event.event_type,
        "category": event.category.value,
        "outcome": event.outcome,
        "reason": event.reason,
        "user": event.actor_label,
        "user_id": event.actor_id,
        "target_user": event.target_label,
        "target_user_id": event.target_user_id,
        "ip_address": event.ip_address,
        "country": event.country,
        "city": event.city,
        "latitude": event.latitude,
        "longitude": event.longitude,
        "user_agent": event.user_agent,
        "browser": event.browser,
        "os": event.os,
        "device_type": event.device_type,
        "device_id": event.device_id,
        "session": event.session_hash,
        "request_id": event.request_id,
        # Cleaned again on the way out: a row written around the recording service (a bulk
        # load, an old version) must not carry a secret-looking key to anyone.
        "details": clean_details(event.details),
    }
