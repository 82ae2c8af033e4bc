"""The formats a stream sends events in: OCSF, ECS JSON, CEF and our own JSON, in one table.

Every payload carries our event id (OCSF metadata.uid, ECS event.id, CEF externalId, our JSON's
id) so a receiver can deduplicate what at-least-once delivery repeats. Details leave cleaned
again (audit.sanitize.clean_details), whatever the stored row holds: no format carries a key
that names a secret.

OCSF (1.6.0; category 3, Identity & Access Management) class per event type, in OCSF below:
- Authentication 3002: sign-in attempts (login.*, and the second step, mfa.verified and
  mfa.verification_failed, with is_mfa), logout (Logoff), and the session events as activity
  99 "Other" named after them: a sign-in already is a Logon and a sign-out a Logoff, and a SIEM
  that counts logons must not count the session that a sign-in starts a second time.
- Account Change 3001: password, MFA enrolment and lockout events (Password Change, Password
  Reset, MFA Factor Enable/Disable, Lock, Unlock).
- User Access Management 3005: member.role_changed, as Assign Privileges of the new role.
- Entity Management 3004 for the other administrative events: each names the entity acted on
  (an alert, the settings, the audit log, an export, a saved search...) and Create, Read,
  Update or Delete. Chosen over API Activity 6003, which describes API calls rather than what
  they changed, and over Detection Finding for alerts, which would need a finding's whole shape.
tests/ocsf/ holds the JSON Schema these classes are validated against.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from audit.descriptions import event_title, event_what
from audit.models import AuditEvent, EventType, Outcome
from audit.sanitize import clean_details
from audit.serialization import event_json

FORMATS: dict[str, str] = {
    "ocsf": "OCSF 1.6 (Amazon Security Lake, Splunk)",
    "ecs": "Elastic Common Schema (ECS) JSON",
    "cef": "CEF (ArcSight Common Event Format)",
    "json": "Activity Monitor JSON (the API's fields)",
}

PRODUCT_NAME = "Activity Monitor"
PRODUCT_VENDOR = "Activity Monitor"
try:
    PRODUCT_VERSION = version("activity-monitor")
except PackageNotFoundError:  # a checkout run without installing the project's metadata
    PRODUCT_VERSION = "0"

OCSF_VERSION = "1.6.0"
ECS_VERSION = "8.11.0"

# --- OCSF ----------------------------------------------------------------------------------------

IAM = 3
AUTHENTICATION = 3002
ACCOUNT_CHANGE = 3001
ENTITY_MANAGEMENT = 3004
USER_ACCESS = 3005
CLASS_NAMES = {
    AUTHENTICATION: "Authentication",
    ACCOUNT_CHANGE: "Account Change",
    ENTITY_MANAGEMENT: "Entity Management",
    USER_ACCESS: "User Access Management",
}
OTHER = 99


@dataclass(frozen=True)
class Ocsf:
    """An event type's OCSF class and activity (with the activity's caption)."""

    class_uid: int
    activity_id: int
    activity_name: str
    entity: str = ""  # Entity Management: the kind of thing acted on


def _auth(activity_id: int, name: str) -> Ocsf:
    return Ocsf(AUTHENTICATION, activity_id, name)


def _account(activity_id: int, name: str) -> Ocsf:
    return Ocsf(ACCOUNT_CHANGE, activity_id, name)


def _entity(activity_id: int, entity: str) -> Ocsf:
    names = {1: "Create", 2: "Read", 3: "Update", 4: "Delete"}
    return Ocsf(ENTITY_MANAGEMENT, activity_id, names[activity_id], entity)


LOGON, LOGOFF = 1, 2

OCSF: dict[str, Ocsf] = {
    EventType.LOGIN_SUCCEEDED: _auth(LOGON, "Logon"),
    EventType.LOGIN_FAILED: _auth(LOGON, "Logon"),
    EventType.LOGIN_THROTTLED: _auth(LOGON, "Logon"),
    EventType.LOGOUT: _auth(LOGOFF, "Logoff"),
    EventType.MFA_VERIFIED: _auth(LOGON, "Logon"),
    EventType.MFA_VERIFICATION_FAILED: _auth(LOGON, "Logon"),
    EventType.SESSION_STARTED: _auth(OTHER, "Session Started"),
    EventType.SESSION_ENDED: _auth(OTHER, "Session Ended"),
    EventType.SESSION_EXPIRED: _auth(OTHER, "Session Expired"),
    EventType.SESSION_LOCATION_CHANGED: _auth(OTHER, "Session Location Changed"),
    EventType.MFA_DEVICE_ADDED: _account(10, "MFA Factor Enable"),
    EventType.MFA_BACKUP_CODES_GENERATED: _account(10, "MFA Factor Enable"),
    EventType.MFA_DEVICE_REMOVED: _account(11, "MFA Factor Disable"),
    EventType.MFA_RESET_BY_ADMIN: _account(11, "MFA Factor Disable"),
    EventType.PASSWORD_CHANGED: _account(3, "Password Change"),
    EventType.PASSWORD_RESET_REQUESTED: _account(OTHER, "Password Reset Requested"),
    EventType.PASSWORD_RESET_COMPLETED: _account(4, "Password Reset"),
    EventType.PASSWORD_RESET_FAILED: _account(4, "Password Reset"),
    EventType.LOCKOUT_TRIGGERED: _account(9, "Lock"),
    EventType.LOCKOUT_RELEASED: _account(12, "Unlock"),
    EventType.MEMBER_ROLE_CHANGED: Ocsf(USER_ACCESS, 1, "Assign Privileges"),
    EventType.ALERT_RAISED: _entity(1, "Alert"),
    EventType.ALERT_ACKNOWLEDGED: _entity(3, "Alert"),
    EventType.ALERT_RESOLVED: _entity(3, "Alert"),
    EventType.SETTINGS_CHANGED: _entity(3, "Settings"),
    EventType.AUDIT_LOG_VIEWED: _entity(2, "Audit Log"),
    EventType.EXPORT_CREATED: _entity(1, "Export"),
    EventType.EXPORT_DOWNLOADED: _entity(2, "Export"),
    EventType.RETENTION_PURGED: _entity(4, "Audit Events"),
    EventType.INTEGRITY_VERIFIED: _entity(2, "Integrity Seals"),
    EventType.INTEGRITY_FAILED: _entity(2, "Integrity Seals"),
    EventType.SEARCH_SAVED: _entity(1, "Saved Search"),
    EventType.SEARCH_DELETED: _entity(4, "Saved Search"),
    EventType.ACTIVITY_CONFIRMED: _entity(1, "Activity Check"),
    EventType.ACTIVITY_REPORTED: _entity(1, "Activity Check"),
    # A log review signed off, or past its due time unsigned: the review's state changed.
    EventType.REVIEW_COMPLETED: _entity(3, "Log Review"),
    EventType.REVIEW_OVERDUE: _entity(3, "Log Review"),
    EventType.MEMBER_REMOVED: _entity(4, "Membership"),
    EventType.ACCESS_REVIEW_STARTED: _entity(1, "Access Review"),
    EventType.ACCESS_REVIEW_DECIDED: _entity(3, "Access Review"),
    EventType.ACCESS_REVIEW_COMPLETED: _entity(3, "Access Review"),
    EventType.REPORT_CREATED: _entity(1, "Compliance Report"),
    EventType.REPORT_DOWNLOADED: _entity(2, "Compliance Report"),
}

# OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High. Failures are Low unless listed.
INFORMATIONAL, LOW, MEDIUM, HIGH = 1, 2, 3, 4
SEVERITY: dict[str, int] = {
    EventType.LOGIN_THROTTLED: MEDIUM,
    EventType.LOCKOUT_TRIGGERED: MEDIUM,
    EventType.MFA_RESET_BY_ADMIN: MEDIUM,
    EventType.ALERT_RAISED: MEDIUM,
    EventType.SESSION_LOCATION_CHANGED: LOW,
    EventType.INTEGRITY_FAILED: HIGH,
    EventType.ACTIVITY_REPORTED: HIGH,
    EventType.RETENTION_PURGED: LOW,
}
CRITICAL = 5
SEVERITY_NAMES = {
    INFORMATIONAL: "Informational",
    LOW: "Low",
    MEDIUM: "Medium",
    HIGH: "High",
    CRITICAL: "Critical",
}
# An alert's own severity (alerts.models.Severity) where alert.raised names it.
ALERT_SEVERITY = {"low": LOW, "medium": MEDIUM, "high": HIGH, "critical": CRITICAL}


def severity_of(event: AuditEvent) -> int:
    """The OCSF severity_id of an event."""
    if event.event_type == EventType.ALERT_RAISED:
        named = ALERT_SEVERITY.get(str(_details(event).get("severity", "")))
        if named:
            return named
    if event.event_type in SEVERITY:
        return SEVERITY[event.event_type]
    return LOW if event.outcome == Outcome.FAILURE else INFORMATIONAL


def _details(event: AuditEvent) -> dict[str, Any]:
    """The event's details, cleaned of secret-looking keys (always an object)."""
    details = clean_details(event.details)
    return details if isinstance(details, dict) else {"value": details}


def _ms(event: AuditEvent) -> int:
    moment = event.occurred_at
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _user(uid: int | None, label: str) -> dict[str, Any] | None:
    user: dict[str, Any] = {}
    if uid is not None:
        user["uid"] = str(uid)
    if label:
        user["name"] = label
        if "@" in label:
            user["email_addr"] = label
    return user or None


def _subject(event: AuditEvent) -> dict[str, Any]:
    """Whom the event is about: the target where someone acted on another, else the actor."""
    user = _user(event.target_user_id, event.target_label) or _user(
        event.actor_id, event.actor_label
    )
    # OCSF requires a user on these classes: an attempt that named nobody (a throttled address).
    return user or {"name": "", "type_id": 0, "type": "Unknown"}


def _actor(event: AuditEvent) -> dict[str, Any]:
    actor: dict[str, Any] = {}
    user = _user(event.actor_id, event.actor_label)
    if user:
        actor["user"] = user
    else:  # recorded by the system itself (a worker, a purge): the product is the actor
        actor["app_name"] = PRODUCT_NAME
    if event.session_hash:
        actor["session"] = {"uid": event.session_hash}
    return actor


def _location(event: AuditEvent) -> dict[str, Any] | None:
    location: dict[str, Any] = {}
    if event.city:
        location["city"] = event.city
    if event.country:
        location["country"] = event.country
    if not location:  # OCSF asks for a city or a country in a location
        return None
    if event.latitude is not None and event.longitude is not None:
        location["lat"] = event.latitude
        location["long"] = event.longitude
    return location


def _src_endpoint(event: AuditEvent) -> dict[str, Any] | None:
    endpoint: dict[str, Any] = {}
    if event.ip_address:
        endpoint["ip"] = event.ip_address
    if event.device_id:  # the long-lived device cookie names the client device
        endpoint["uid"] = event.device_id
    if not endpoint:
        return None
    location = _location(event)
    if location:
        endpoint["location"] = location
    return endpoint


def _ocsf(event: AuditEvent) -> dict[str, Any]:
    mapping = OCSF.get(event.event_type) or _entity(3, event.event_type)
    details = _details(event)
    severity = severity_of(event)
    failed = event.outcome == Outcome.FAILURE
    payload: dict[str, Any] = {
        "class_uid": mapping.class_uid,
        "class_name": CLASS_NAMES[mapping.class_uid],
        "category_uid": IAM,
        "category_name": "Identity & Access Management",
        "activity_id": mapping.activity_id,
        "activity_name": mapping.activity_name,
        "type_uid": mapping.class_uid * 100 + mapping.activity_id,
        "type_name": f"{CLASS_NAMES[mapping.class_uid]}: {mapping.activity_name}",
        "time": _ms(event),
        "severity_id": severity,
        "severity": SEVERITY_NAMES[severity],
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "message": event_what(event),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": str(event.pk),
            "event_code": event.event_type,
            "product": {
                "name": PRODUCT_NAME,
                "vendor_name": PRODUCT_VENDOR,
                "version": PRODUCT_VERSION,
            },
            "logged_time": _ms(event),
        },
        "actor": _actor(event),
        "unmapped": {"details": details},
    }
    if event.organization_id is not None:
        payload["metadata"]["tenant_uid"] = str(event.organization_id)
    if event.request_id:
        payload["metadata"]["correlation_uid"] = event.request_id
    if event.reason:
        payload["status_detail"] = event.reason
    src = _src_endpoint(event)
    if src:
        payload["src_endpoint"] = src
    if event.user_agent or event.request_id:
        request: dict[str, Any] = {}
        if event.user_agent:
            request["user_agent"] = event.user_agent
        if event.request_id:
            request["uid"] = event.request_id
        payload["http_request"] = request
    if mapping.class_uid in (AUTHENTICATION, ACCOUNT_CHANGE, USER_ACCESS):
        payload["user"] = _subject(event)
    if mapping.class_uid == AUTHENTICATION:
        method = str(details.get("method", ""))
        payload["is_mfa"] = event.event_type.startswith("mfa.") or "+" in method
        if event.session_hash:
            payload["session"] = {"uid": event.session_hash}
    elif mapping.class_uid == USER_ACCESS:
        payload["privileges"] = [str(details.get("new", ""))]
    elif mapping.class_uid == ENTITY_MANAGEMENT:
        kind = mapping.entity or event.event_type
        named = (str(details[key]) for key in ("name", "setting", "rule") if details.get(key))
        entity: dict[str, Any] = {"name": next(named, kind), "type": kind}
        for key in ("alert_id", "export_id", "search_id", "event_id"):
            if key in details:
                entity["uid"] = str(details[key])
                break
        payload["entity"] = entity
        # Entity Management has no user: whom an administrator acted on goes unmapped.
        subject = _user(event.target_user_id, event.target_label)
        if subject:
            payload["unmapped"]["target_user"] = subject
    return payload


# --- ECS -----------------------------------------------------------------------------------------

# event.category and event.type of each event type, from the types ECS expects in each category
# (its categorization fields' allowed values; tests/test_stream_formats.py holds them).
ECS: dict[str, tuple[list[str], list[str]]] = {
    EventType.LOGIN_SUCCEEDED: (["authentication"], ["start"]),
    EventType.LOGIN_FAILED: (["authentication"], ["start"]),
    EventType.LOGIN_THROTTLED: (["authentication"], ["start"]),
    EventType.LOGOUT: (["authentication"], ["end"]),
    EventType.MFA_VERIFIED: (["authentication"], ["info"]),
    EventType.MFA_VERIFICATION_FAILED: (["authentication"], ["info"]),
    EventType.MFA_DEVICE_ADDED: (["iam"], ["user", "change"]),
    EventType.MFA_DEVICE_REMOVED: (["iam"], ["user", "change"]),
    EventType.MFA_BACKUP_CODES_GENERATED: (["iam"], ["user", "change"]),
    EventType.MFA_RESET_BY_ADMIN: (["iam"], ["user", "change", "admin"]),
    EventType.PASSWORD_RESET_REQUESTED: (["iam"], ["user", "info"]),
    EventType.PASSWORD_RESET_COMPLETED: (["iam"], ["user", "change"]),
    EventType.PASSWORD_RESET_FAILED: (["iam"], ["user", "change"]),
    EventType.PASSWORD_CHANGED: (["iam"], ["user", "change"]),
    EventType.SESSION_STARTED: (["session"], ["start"]),
    EventType.SESSION_ENDED: (["session"], ["end"]),
    EventType.SESSION_EXPIRED: (["session"], ["end"]),
    EventType.SESSION_LOCATION_CHANGED: (["session"], ["info"]),
    EventType.LOCKOUT_TRIGGERED: (["iam"], ["user", "change"]),
    EventType.LOCKOUT_RELEASED: (["iam"], ["user", "change"]),
    EventType.ALERT_RAISED: (["intrusion_detection"], ["info"]),
    EventType.ALERT_ACKNOWLEDGED: (["intrusion_detection"], ["info"]),
    EventType.ALERT_RESOLVED: (["intrusion_detection"], ["info"]),
    EventType.MEMBER_ROLE_CHANGED: (["iam"], ["user", "change", "admin"]),
    EventType.SETTINGS_CHANGED: (["configuration"], ["change"]),
    EventType.AUDIT_LOG_VIEWED: (["database"], ["access"]),
    EventType.EXPORT_CREATED: (["file"], ["creation"]),
    EventType.EXPORT_DOWNLOADED: (["file"], ["access"]),
    EventType.RETENTION_PURGED: (["database"], ["change"]),
    EventType.INTEGRITY_VERIFIED: (["database"], ["info"]),
    EventType.INTEGRITY_FAILED: (["database"], ["info"]),
    EventType.SEARCH_SAVED: (["configuration"], ["creation"]),
    EventType.SEARCH_DELETED: (["configuration"], ["deletion"]),
    EventType.ACTIVITY_CONFIRMED: (["iam"], ["info"]),
    EventType.ACTIVITY_REPORTED: (["iam"], ["info"]),
    EventType.REVIEW_COMPLETED: (["configuration"], ["change"]),
    EventType.REVIEW_OVERDUE: (["configuration"], ["info"]),
    EventType.MEMBER_REMOVED: (["iam"], ["user", "deletion", "admin"]),
    EventType.ACCESS_REVIEW_STARTED: (["configuration"], ["creation"]),
    EventType.ACCESS_REVIEW_DECIDED: (["iam"], ["user", "change", "admin"]),
    EventType.ACCESS_REVIEW_COMPLETED: (["configuration"], ["change"]),
    EventType.REPORT_CREATED: (["file"], ["creation"]),
    EventType.REPORT_DOWNLOADED: (["file"], ["access"]),
}


def _ecs_user(uid: int | None, label: str) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if uid is not None:
        user["id"] = str(uid)
    if label:
        user["name"] = label
        if "@" in label:
            user["email"] = label
    return user


def _ecs(event: AuditEvent) -> dict[str, Any]:
    categories, types = ECS.get(event.event_type, (["configuration"], ["info"]))
    details = _details(event)
    payload: dict[str, Any] = {
        "@timestamp": event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "ecs": {"version": ECS_VERSION},
        "message": event_what(event),
        "event": {
            "id": str(event.pk),
            "kind": "alert" if event.event_type == EventType.ALERT_RAISED else "event",
            "category": categories,
            "type": types,
            "action": event.event_type,
            "outcome": event.outcome,
            "severity": severity_of(event),
            "provider": "activity-monitor",
            "dataset": "activity_monitor.audit",
            "module": "activity_monitor",
        },
        "activity_monitor": {
            "category": event.category.value,
            "title": event_title(event.event_type),
            "details": details,
        },
    }
    if event.reason:
        payload["event"]["reason"] = event.reason
    user = _ecs_user(event.actor_id, event.actor_label)
    target = _ecs_user(event.target_user_id, event.target_label)
    if target:
        user["target"] = target
    if user:
        payload["user"] = user
    if event.organization_id is not None:
        payload["organization"] = {"id": str(event.organization_id)}
    if event.ip_address:
        source: dict[str, Any] = {"ip": event.ip_address}
        geo: dict[str, Any] = {}
        if event.country:
            geo["country_iso_code"] = event.country
        if event.city:
            geo["city_name"] = event.city
        if event.latitude is not None and event.longitude is not None:
            geo["location"] = {"lat": event.latitude, "lon": event.longitude}
        if geo:
            source["geo"] = geo
        payload["source"] = source
    if event.user_agent or event.browser:
        agent: dict[str, Any] = {}
        if event.user_agent:
            agent["original"] = event.user_agent
        if event.browser:
            agent["name"] = event.browser
        if event.os:
            agent["os"] = {"name": event.os}
        if event.device_type:
            agent["device"] = {"name": event.device_type}
        payload["user_agent"] = agent
    if event.request_id:
        payload["http"] = {"request": {"id": event.request_id}}
    if event.session_hash:
        payload["activity_monitor"]["session"] = event.session_hash
    if event.device_id:
        payload["activity_monitor"]["device_id"] = event.device_id
    return payload


# --- CEF -----------------------------------------------------------------------------------------

# CEF's 0-10 severity for OCSF's severity_id.
CEF_SEVERITY = {INFORMATIONAL: 2, LOW: 4, MEDIUM: 6, HIGH: 8, CRITICAL: 10}


def cef_header_escape(value: str) -> str:
    """A CEF header field: backslash and pipe escaped; a header holds one line."""
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    return value.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def cef_extension_escape(value: str) -> str:
    """A CEF extension value: backslash and equals escaped, line breaks written as \\n and \\r."""
    value = value.replace("\\", "\\\\").replace("=", "\\=")
    return value.replace("\r", "\\r").replace("\n", "\\n")


def _cef(event: AuditEvent) -> str:
    details = _details(event)
    ext: list[tuple[str, str]] = [
        ("rt", str(_ms(event))),
        ("externalId", str(event.pk)),
        ("act", event.event_type),
        ("cat", event.category.value),
        ("outcome", event.outcome),
    ]
    if event.reason:
        ext.append(("reason", event.reason))
    if event.ip_address:
        is_v6 = ipaddress.ip_address(event.ip_address).version == 6
        if is_v6:  # src is IPv4 only; CEF names IPv6 sources in a custom address field
            ext += [("c6a2", event.ip_address), ("c6a2Label", "Source IPv6 Address")]
        else:
            ext.append(("src", event.ip_address))
    if event.latitude is not None and event.longitude is not None:
        ext += [("slat", str(event.latitude)), ("slong", str(event.longitude))]
    if event.actor_label:
        ext.append(("suser", event.actor_label))
    if event.actor_id is not None:
        ext.append(("suid", str(event.actor_id)))
    if event.target_label:
        ext.append(("duser", event.target_label))
    if event.target_user_id is not None:
        ext.append(("duid", str(event.target_user_id)))
    if event.user_agent:
        ext.append(("requestClientApplication", event.user_agent))
    custom = [
        ("organizationId", "" if event.organization_id is None else str(event.organization_id)),
        ("location", ", ".join(part for part in (event.city, event.country) if part)),
        ("session", event.session_hash),
        ("requestId", event.request_id),
        ("deviceId", event.device_id),
        ("details", json.dumps(details, separators=(",", ":"), sort_keys=True) if details else ""),
    ]
    for number, (label, value) in enumerate(custom, start=1):
        if value:
            ext += [(f"cs{number}", value), (f"cs{number}Label", label)]
    header = [
        PRODUCT_VENDOR,
        PRODUCT_NAME,
        PRODUCT_VERSION,
        event.event_type,
        event_what(event),
        str(CEF_SEVERITY[severity_of(event)]),
    ]
    extension = " ".join(f"{key}={cef_extension_escape(value)}" for key, value in ext)
    return "|".join(["CEF:0", *(cef_header_escape(part) for part in header), extension])


# --- The one entry point -------------------------------------------------------------------------


def render(event: AuditEvent, fmt: str) -> dict[str, Any] | str:
    """The event in the format `fmt` (a key of FORMATS): a dict for the JSON ones, a CEF line.

    Reads the event's user agent row: load batches with select_related("agent").
    """
    if fmt == "ocsf":
        return _ocsf(event)
    if fmt == "ecs":
        return _ecs(event)
    if fmt == "cef":
        return _cef(event)
    if fmt == "json":
        return event_json(event)
    raise ValueError(f"Unknown stream format {fmt!r}; choose one of {', '.join(FORMATS)}.")
