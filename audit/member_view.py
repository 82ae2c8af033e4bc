"""What a person sees, in their own Activity Log, of events someone else did to their account.

Their own actions they see in full. Of another person's action on them (an administrator
revoking a session, an analyst triaging an alert about them) they see what happened, never that
person's client: address, place, browser, device, session or request. Alert triage is the
security team's work: the member learns that an alert about them was acknowledged or resolved,
not by whom, nor the notes written about them. The Audit Log keeps everything for the roles
that read it.
"""

from __future__ import annotations

import copy
from typing import Any

from .models import AGENT_FIELDS, AuditEvent, EventType

# The acting person's client, as the request that recorded the event saw it.
ACTOR_CLIENT_FIELDS = (
    "ip_address",
    "country",
    "city",
    "latitude",
    "longitude",
    "user_agent",
    "browser",
    "os",
    "device_type",
    "device_id",
    "session_hash",
    "request_id",
)
# The same fields as query paths name them (.values(), the CSV): the user agent's fields are
# its dictionary row's (audit.models.UserAgent).
ACTOR_CLIENT_PATHS = tuple(
    f"agent__{name}" if name in AGENT_FIELDS else name for name in ACTOR_CLIENT_FIELDS
)
_EMPTY: dict[str, Any] = {
    "ip_address": None,
    "latitude": None,
    "longitude": None,
}
TRIAGE_EVENT_TYPES = frozenset({EventType.ALERT_ACKNOWLEDGED, EventType.ALERT_RESOLVED})
# Of a triage event's details, what tells the member what happened (not the note, not the
# assignees' addresses).
TRIAGE_DETAILS_SHOWN = ("alert_id", "rule", "action")
SECURITY_TEAM = "Security team"


def _someone_else(actor_id: int | None, viewer_id: int) -> bool:
    return actor_id is not None and actor_id != viewer_id


def _triage_details(details: dict[str, Any] | None) -> dict[str, Any]:
    return {key: (details or {})[key] for key in TRIAGE_DETAILS_SHOWN if key in (details or {})}


def fields_seen_by(fields: dict[str, Any], *, viewer_id: int) -> dict[str, Any]:
    """One event's field values (with actor_id and event_type) as the viewer may see them."""
    if not _someone_else(fields["actor_id"], viewer_id):
        return fields
    seen = dict(fields)
    for name in (*ACTOR_CLIENT_FIELDS, *ACTOR_CLIENT_PATHS):
        if name in seen:
            seen[name] = _EMPTY.get(name, "")
    if seen["event_type"] in TRIAGE_EVENT_TYPES:
        seen["actor_id"] = None
        if "actor_label" in seen:
            seen["actor_label"] = SECURITY_TEAM
        if "details" in seen:
            seen["details"] = _triage_details(seen["details"])
    return seen


def event_seen_by(event: AuditEvent, *, viewer_id: int) -> AuditEvent:
    """The event itself, or a copy (never saved) holding only what the viewer may see of it."""
    if not _someone_else(event.actor_id, viewer_id):
        return event
    shown = copy.copy(event)
    for name in ACTOR_CLIENT_FIELDS:
        setattr(shown, name, _EMPTY.get(name, ""))
    if event.event_type in TRIAGE_EVENT_TYPES:
        shown.actor = None
        shown.actor_label = SECURITY_TEAM
        # A list loads no details: the copy then holds none rather than loading them on use.
        deferred = "details" in event.get_deferred_fields()
        shown.details = {} if deferred else _triage_details(event.details)
    return shown
