"""The reference: the per-event alert detectors that alerts.detectors replaced, kept to hold the
batch form to the same findings (tests/test_alerts_equivalence.py).

Moved from alerts/detectors.py as it stood before set-based evaluation, with the queries it
made through alerts.selectors copied in (`_Selectors`), and the per-event evaluation that used
them (`evaluate_one_at_a_time`: each event in id order, each rule in id order, each finding
upserted into its alert as alerts.evaluation did). It writes Alert rows and nothing else (no
ledger, no alert.raised, no notifications): the caller compares the alerts and rolls back.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from accounts.models import UserSession
from alerts.anonymising import hosting_asns
from alerts.models import Alert, AlertRule, AlertStatus, RuleKind
from alerts.rules import EVALUATED_EVENT_TYPES, STUFFING_MAX_ROWS, effective_parameters
from audit.descriptions import country_name
from audit.geo import autonomous_system_of
from audit.models import AuditEvent, EventType, Reason, TorExitNode


class _Selectors:
    """The reads the per-event detectors made (alerts.selectors before set-based evaluation)."""

    @staticmethod
    def _organization_events(organization_id: int | None) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.filter(organization=organization_id)

    @classmethod
    def failed_sign_ins_within(cls, event: AuditEvent, window: timedelta) -> QuerySet[AuditEvent]:
        return cls._organization_events(event.organization_id).filter(
            event_type=EventType.LOGIN_FAILED,
            occurred_at__gt=event.occurred_at - window,
            occurred_at__lte=event.occurred_at,
        )

    @classmethod
    def failed_sign_ins_from_network(
        cls,
        event: AuditEvent,
        window: timedelta,
        network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    ) -> QuerySet[AuditEvent]:
        return cls.failed_sign_ins_within(event, window).filter(
            ip_address__in_network=network.with_prefixlen
        )

    @classmethod
    def mfa_failures_within(cls, event: AuditEvent, window: timedelta) -> QuerySet[AuditEvent]:
        return cls._organization_events(event.organization_id).filter(
            event_type=EventType.MFA_VERIFICATION_FAILED,
            actor_id=event.actor_id,
            occurred_at__gt=event.occurred_at - window,
            occurred_at__lte=event.occurred_at,
        )

    @staticmethod
    def tor_exit_node(ip: str) -> TorExitNode | None:
        return TorExitNode.objects.filter(ip_address=ip).first()

    @classmethod
    def sign_ins_before(cls, event: AuditEvent) -> QuerySet[AuditEvent]:
        return (
            cls._organization_events(event.organization_id)
            .filter(event_type=EventType.LOGIN_SUCCEEDED, actor_id=event.actor_id)
            .filter(
                Q(occurred_at__lt=event.occurred_at)
                | Q(occurred_at=event.occurred_at, id__lt=event.pk)
            )
            .order_by("-occurred_at", "-id")
        )

    @staticmethod
    def sessions_open_at(
        *, organization_id: int | None, user_id: int, at: datetime, max_age: timedelta
    ) -> QuerySet[UserSession]:
        return UserSession.objects.filter(
            organization=organization_id,
            user_id=user_id,
            started_at__lte=at,
            started_at__gt=at - max_age,
        ).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))


selectors = _Selectors

# City-level locations are coarse: two sign-ins closer than this are never "travel".
MIN_TRAVEL_KM = 100
EARTH_RADIUS_KM = 6371.0088


# Credential stuffing's network: an IPv4 /24, and an IPv6 /48 (a site's allocation: an attacker
# rotating through the addresses of its /64s or /56s is still one source).
STUFFING_IPV4_PREFIX = 24
STUFFING_IPV6_PREFIX = 48
# The failures Elastic's rule counts: wrong credentials (INVALID_CREDENTIALS, which ours split
# into a wrong password and an unknown name) and attempts at a locked account (LOCKED_OUT). A
# failed second factor means the password was right: the MFA fatigue rule's business.
STUFFING_REASONS = (Reason.INVALID_CREDENTIALS, Reason.UNKNOWN_USER, Reason.ACCOUNT_LOCKED)


@dataclass
class Finding:
    """A rule matched an event: about whom, in which window, and why."""

    kind: str
    subject_key: str
    summary: str
    window: timedelta | None
    subject_user_id: int | None = None
    subject_label: str = ""
    subject_ip: str | None = None
    event_ids: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # The subject grew (an address's alert became its network's): the alert takes the new label.
    subject_widened: bool = False


def _about_actor(
    event: AuditEvent,
    *,
    kind: RuleKind,
    topic: str,
    window: timedelta | None,
    summary: str,
    event_ids: list[int],
    details: dict[str, Any],
) -> Finding:
    """A finding about the account that signed in, keyed by the user and what was found."""
    return Finding(
        kind=kind,
        subject_key=f"user:{event.actor_id}{topic}"[:160],
        subject_user_id=event.actor_id,
        subject_label=event.actor_label,
        subject_ip=event.ip_address,
        window=window,
        summary=summary,
        event_ids=event_ids,
        details=details,
    )


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two points on the Earth's surface."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _place(event: AuditEvent) -> dict[str, Any]:
    return {
        "event_id": event.pk,
        "at": event.occurred_at.isoformat(),
        "ip": event.ip_address,
        "country": event.country,
        "city": event.city,
    }


def _browser_family(browser: str) -> str:
    return re.sub(r"\s+[\d.]+$", "", browser)


# --- The rules -------------------------------------------------------------------------------


def _failed_sign_ins(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.LOGIN_FAILED or event.actor_id is None:
        return []
    window = timedelta(minutes=params["window_minutes"])
    failures = selectors.failed_sign_ins_within(event, window).filter(actor_id=event.actor_id)
    ids = list(failures.values_list("id", flat=True)[:1000])
    if len(ids) < params["threshold"]:
        return []
    return [
        _about_actor(
            event,
            kind=RuleKind.FAILED_SIGN_INS,
            topic="",
            window=window,
            summary=(
                f"{len(ids)} failed sign-ins for {event.actor_label} "
                f"within {params['window_minutes']} minutes"
            ),
            event_ids=sorted(ids),
            details={
                "failures": len(ids),
                "threshold": params["threshold"],
                "window_minutes": params["window_minutes"],
            },
        )
    ]


def _password_spraying(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.LOGIN_FAILED or not event.ip_address:
        return []
    window = timedelta(minutes=params["window_minutes"])
    failures = selectors.failed_sign_ins_within(event, window).filter(ip_address=event.ip_address)
    # An account is the actor's id or, for an address that matches none (unknown_user, at one
    # of the organization's verified domains), the attempted name in lower case.
    rows = list(failures.values_list("id", "actor_id", Lower("actor_label"))[:5000])  # bounded
    accounts = len({actor if actor is not None else label for _, actor, label in rows})
    if accounts < params["distinct_accounts"]:
        return []
    ids = sorted(pk for pk, _, _ in rows)[-1000:]
    return [
        Finding(
            kind=RuleKind.PASSWORD_SPRAYING,
            subject_key=f"ip:{event.ip_address}",
            subject_ip=event.ip_address,
            subject_label=event.ip_address,
            window=window,
            summary=(
                f"Failed sign-ins for {accounts} accounts from {event.ip_address} "
                f"within {params['window_minutes']} minutes"
            ),
            event_ids=ids,
            details={
                "distinct_accounts": accounts,
                "threshold": params["distinct_accounts"],
                "window_minutes": params["window_minutes"],
            },
        )
    ]


def _new_device(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.LOGIN_SUCCEEDED or event.actor_id is None:
        return []
    earlier = selectors.sign_ins_before(event)
    if not earlier.exists():  # the first sign-in ever: every device is new
        return []
    if event.device_id:
        device_key = f"cookie:{event.device_id}"
        seen = earlier.filter(device_id=event.device_id).exists()
        described = "a new browser (no device cookie seen before)"
    else:
        if not (event.browser or event.os or event.device_type):
            return []  # nothing to tell one device from another
        family = _browser_family(event.browser)
        device_key = f"agent:{family}|{event.os}|{event.device_type}"
        seen = earlier.filter(
            agent__browser__startswith=family,
            agent__os=event.os,
            agent__device_type=event.device_type,
        ).exists()
        described = "a new browser, operating system or device type"
    if seen:
        return []
    what = " on ".join(part for part in (event.browser, event.os) if part) or "an unknown browser"
    return [
        _about_actor(
            event,
            kind=RuleKind.NEW_DEVICE,
            topic=f":device:{device_key}",
            window=None,
            summary=f"{event.actor_label} signed in from a new device: {what}",
            event_ids=[event.pk],
            details={
                "device": described,
                "browser": event.browser,
                "os": event.os,
                "device_type": event.device_type,
                **_place(event),
            },
        )
    ]


def _new_country(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.LOGIN_SUCCEEDED or event.actor_id is None:
        return []
    if not event.country:
        return []
    located = selectors.sign_ins_before(event).exclude(country="")
    previous = located.only("country", "occurred_at").first()
    if previous is None:  # nothing to compare with (the first located sign-in)
        return []
    lookback = timedelta(days=params["lookback_days"])
    if previous.country == event.country and previous.occurred_at >= event.occurred_at - lookback:
        return []
    if located.filter(
        occurred_at__gte=event.occurred_at - lookback, country=event.country
    ).exists():
        return []
    return [
        _about_actor(
            event,
            kind=RuleKind.NEW_COUNTRY,
            topic=f":country:{event.country}",
            window=lookback,
            summary=(
                f"{event.actor_label} signed in from {country_name(event.country)}, "
                "not seen in the last "
                f"{params['lookback_days']} days"
            ),
            event_ids=[event.pk],
            details={
                "country": event.country,
                "lookback_days": params["lookback_days"],
                "previous_country": previous.country if previous else "",
                **_place(event),
            },
        )
    ]


def _impossible_travel(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.LOGIN_SUCCEEDED or event.actor_id is None:
        return []
    if event.latitude is None or event.longitude is None:
        return []
    previous = (
        selectors.sign_ins_before(event).exclude(latitude=None).exclude(longitude=None).first()
    )
    if previous is None or previous.latitude is None or previous.longitude is None:
        return []
    distance = great_circle_km(
        previous.latitude, previous.longitude, event.latitude, event.longitude
    )
    if distance < MIN_TRAVEL_KM:
        return []
    hours = (event.occurred_at - previous.occurred_at).total_seconds() / 3600
    speed = distance / hours if hours > 0 else math.inf
    if speed <= params["max_speed_kmh"]:
        return []
    speed_text = "instantly" if math.isinf(speed) else f"at {speed:,.0f} km/h"
    return [
        _about_actor(
            event,
            kind=RuleKind.IMPOSSIBLE_TRAVEL,
            topic=":travel",
            window=timedelta(days=1),
            summary=(
                f"{event.actor_label} signed in from {event.city or country_name(event.country)} "
                f"{distance:,.0f} km from the previous sign-in "
                f"({previous.city or country_name(previous.country)}), {speed_text}"
            ),
            event_ids=[previous.pk, event.pk],
            details={
                "distance_km": round(distance, 1),
                "hours": round(hours, 4),
                "speed_kmh": None if math.isinf(speed) else round(speed, 1),
                "max_speed_kmh": params["max_speed_kmh"],
                "from": _place(previous),
                "to": _place(event),
            },
        )
    ]


def _concurrent_sessions(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.SESSION_STARTED or event.actor_id is None:
        return []
    window = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    sessions = list(
        selectors.sessions_open_at(
            organization_id=event.organization_id,
            user_id=event.actor_id,
            at=event.occurred_at,
            max_age=window,
        )
    )
    listed = [
        {
            "session": s.session_hash,
            "started_at": s.started_at.isoformat(),
            "ip": s.ip_address,
            "country": s.country,
            "browser": s.browser,
        }
        for s in sessions
    ]
    findings = []
    if len(sessions) > params["limit"]:
        findings.append(
            _about_actor(
                event,
                kind=RuleKind.CONCURRENT_SESSIONS,
                topic=":sessions",
                window=window,
                summary=(
                    f"{event.actor_label} has {len(sessions)} active sessions "
                    f"(limit {params['limit']})"
                ),
                event_ids=[event.pk],
                details={
                    "active_sessions": len(sessions),
                    "limit": params["limit"],
                    "sessions": listed,
                },
            )
        )
    countries = sorted({s.country for s in sessions if s.country})
    if params["multiple_countries"] and len(countries) > 1:
        findings.append(
            _about_actor(
                event,
                kind=RuleKind.CONCURRENT_SESSIONS,
                topic=":countries",
                window=window,
                summary=(
                    f"{event.actor_label} has active sessions from {len(countries)} countries "
                    f"at once: {', '.join(map(country_name, countries))}"
                ),
                event_ids=[event.pk],
                details={"countries": countries, "sessions": listed},
            )
        )
    return findings


def _mfa_fatigue(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.MFA_VERIFIED or event.actor_id is None:
        return []
    window = timedelta(minutes=params["window_minutes"])
    rows = list(selectors.mfa_failures_within(event, window).values_list("id", "reason")[:1000])
    if len(rows) < params["failures"]:
        return []
    throttled = sum(1 for _, reason in rows if reason == "throttled")
    return [
        _about_actor(
            event,
            kind=RuleKind.MFA_FATIGUE,
            topic=":mfa",
            window=window,
            summary=(
                f"{event.actor_label} passed the second factor after {len(rows)} failed checks "
                f"within {params['window_minutes']} minutes"
            ),
            event_ids=sorted([pk for pk, _ in rows] + [event.pk]),
            details={
                "failures": len(rows),
                "throttled": throttled,
                "threshold": params["failures"],
                "window_minutes": params["window_minutes"],
                "device_kind": event.details.get("device_kind", ""),
                **_place(event),
            },
        )
    ]


def _location(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _session_anomaly(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    """Judged from the event's own details: where its session started and where it is now."""
    if event.event_type != EventType.SESSION_LOCATION_CHANGED or event.actor_id is None:
        return []
    started = _location(event.details.get("started"))
    previous = _location(event.details.get("previous"))
    new = _location(event.details.get("new"))
    # A session that started without a usable address is judged from its first known place.
    origin = started if started.get("network") else previous
    origin_country, new_country = origin.get("country") or "", new.get("country") or ""
    if origin_country and new_country and origin_country != new_country:
        change = "country"
        what = (
            f"from {country_name(new_country)}, not {country_name(origin_country)} where it started"
        )
    elif params["network_changes"] and new.get("network") != origin.get("network"):
        change = "network"
        what = f"from the network {new.get('network')}, not {origin.get('network')}"
    else:
        return []
    return [
        _about_actor(
            event,
            kind=RuleKind.SESSION_ANOMALY,
            topic=f":session:{event.session_hash}",
            window=None,
            summary=f"A session of {event.actor_label} was used {what}",
            event_ids=[event.pk],
            details={
                "change": change,
                "session": event.session_hash,
                "session_started_at": event.details.get("session_started_at", ""),
                "started": started,
                "previous": previous,
                "new": new,
                **_place(event),
            },
        )
    ]


def _anonymising_network(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    # Successes only: a failure from Tor is already counted by the failure rules, and looking
    # every failure up one by one would cost the most exactly during a flood of them.
    if event.event_type != EventType.LOGIN_SUCCEEDED or event.actor_id is None:
        return []
    if not event.ip_address:
        return []
    found: dict[str, Any] = {}
    means: list[str] = []
    if params["tor"]:
        node = selectors.tor_exit_node(event.ip_address)
        if node is not None:
            found["tor_exit"] = {
                "ip": node.ip_address,
                "fingerprint": node.fingerprint,
                "list_loaded_at": node.loaded_at.isoformat(),
            }
            means.append(f"through Tor (exit node {node.ip_address})")
    system = autonomous_system_of(event.ip_address) if params["hosting"] or found else None
    if system is not None:
        found["asn"] = {"number": system.number, "organization": system.organization}
        if params["hosting"] and system.number in hosting_asns():
            found["hosting_provider"] = True
            means.append(f"from a hosting provider (AS{system.number} {system.organization})")
    if not means:
        return []
    return [
        _about_actor(
            event,
            kind=RuleKind.ANONYMISING_NETWORK,
            topic=":anonymising",
            window=timedelta(days=1),
            summary=f"{event.actor_label} signed in {' and '.join(means)}",
            event_ids=[event.pk],
            details={**found, **_place(event)},
        )
    ]


@dataclass
class _Tally:
    """A window's failed sign-ins from one source: attempts per account, addresses, event ids."""

    per_account: Counter[tuple[str, int | str]] = field(default_factory=Counter)
    names: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    ids: list[int] = field(default_factory=list)

    def add(self, pk: int, actor_id: int | None, label: str, ip: str) -> None:
        # An account is the actor's id or, for an address that matches none (unknown_user, at
        # one of the organization's verified domains), the attempted name in lower case.
        self.per_account["user" if actor_id is not None else "name", actor_id or label] += 1
        self.names.add(label)
        self.addresses.add(ip)
        self.ids.append(pk)

    @property
    def attempts(self) -> int:
        return len(self.ids)

    def matches(self, params: dict[str, Any]) -> bool:
        """Elastic's test: enough attempts, over enough accounts, and no account tried more."""
        return bool(
            self.attempts >= params["attempts"]
            and len(self.per_account) >= params["distinct_accounts"]
            and max(self.per_account.values()) <= params["max_per_account"]
        )


def stuffing_attempts(
    failures: QuerySet[AuditEvent], event: AuditEvent
) -> QuerySet[AuditEvent, Any]:
    """The rows credential stuffing reads of the failures: (id, actor, name, address), capped."""
    # Events up to this one: a failure recorded in the same instant after it is not yet known.
    counted = failures.filter(reason__in=STUFFING_REASONS).exclude(
        occurred_at=event.occurred_at, id__gt=event.pk
    )
    return counted.values_list("id", "actor_id", Lower("actor_label"), "ip_address")[
        :STUFFING_MAX_ROWS
    ]


def _stuffing_rows(
    failures: QuerySet[AuditEvent], event: AuditEvent
) -> list[tuple[int, int | None, str, str]]:
    return list(stuffing_attempts(failures, event))


def _credential_stuffing(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    """One alert per network and window: labelled with the address while one address does it
    all, widened to the network once attempts from several of its addresses are needed."""
    if event.event_type != EventType.LOGIN_FAILED or event.reason not in STUFFING_REASONS:
        return []
    try:
        address = ipaddress.ip_address(event.ip_address or "")
    except ValueError:
        return []
    prefix = STUFFING_IPV4_PREFIX if address.version == 4 else STUFFING_IPV6_PREFIX
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    window = timedelta(minutes=params["window_minutes"])

    tally = _Tally()
    failures = selectors.failed_sign_ins_within(event, window).filter(ip_address=event.ip_address)
    for row in _stuffing_rows(failures, event):
        tally.add(*row)
    widened = False
    if not tally.matches(params):
        # Attempts spread over the network's addresses, each too few to match on its own.
        tally = _Tally()
        for row in _stuffing_rows(
            selectors.failed_sign_ins_from_network(event, window, network), event
        ):
            tally.add(*row)
        if len(tally.addresses) < 2 or not tally.matches(params):
            return []
        widened = True

    source = (
        f"{len(tally.addresses)} addresses of {network.with_prefixlen}" if widened else str(address)
    )
    return [
        Finding(
            kind=RuleKind.CREDENTIAL_STUFFING,
            subject_key=f"net:{network.with_prefixlen}",
            subject_ip=None if widened else str(address),
            subject_label=network.with_prefixlen if widened else str(address),
            subject_widened=widened,
            window=window,
            summary=(
                f"{tally.attempts} failed sign-ins for {len(tally.per_account)} accounts "
                f"(at most {max(tally.per_account.values())} each) from {source} "
                f"within {params['window_minutes']} minutes"
            ),
            event_ids=sorted(tally.ids)[-1000:],
            details={
                "attempts": tally.attempts,
                "distinct_accounts": len(tally.per_account),
                "most_per_account": max(tally.per_account.values()),
                "network": network.with_prefixlen,
                "addresses": sorted(tally.addresses)[:50],
                "address_count": len(tally.addresses),
                "accounts": sorted(tally.names)[:50],
                "threshold_attempts": params["attempts"],
                "threshold_accounts": params["distinct_accounts"],
                "max_per_account": params["max_per_account"],
                "window_minutes": params["window_minutes"],
            },
        )
    ]


def _reported_by_member(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    details = event.details if isinstance(event.details, dict) else {}
    reported = details.get("event_id")
    if (
        event.event_type != EventType.ACTIVITY_REPORTED
        or event.actor_id is None
        or not isinstance(reported, int)
    ):
        return []
    what = details.get("event_title") or details.get("event_type") or "an event"
    finding = _about_actor(
        event,
        kind=RuleKind.REPORTED_BY_MEMBER,
        topic=f":reported:{reported}",
        window=None,
        summary=f"{event.actor_label} says {what} was not them",
        event_ids=sorted({reported, event.pk}),
        details={
            "answer": "not_me",
            "reported_event_id": reported,
            "reported_event_type": details.get("event_type", ""),
            "sessions_ended": details.get("sessions_ended", 0),
            "credential_change_required": bool(details.get("credential_change_required")),
            "credential_disabled": bool(details.get("credential_disabled")),
        },
    )
    event_ip = details.get("event_ip")
    finding.subject_ip = event_ip if isinstance(event_ip, str) and event_ip else None
    return [finding]


def _integrity_failure(event: AuditEvent, params: dict[str, Any]) -> list[Finding]:
    if event.event_type != EventType.INTEGRITY_FAILED:
        return []
    details = event.details or {}
    problems = details.get("problems", 0)
    summary = (
        f"Audit log integrity could not be verified: {details['cannot_verify']}"
        if details.get("cannot_verify")
        else f"Audit log tampering found: {problems} problem(s) in the sealed events"
    )
    return [
        Finding(
            kind=RuleKind.INTEGRITY_FAILURE,
            subject_key="integrity",
            subject_label="Audit log",
            summary=summary[:300],
            window=timedelta(days=1),
            event_ids=[event.pk],
            details={"found": details.get("found", [])[:20], "problems": problems},
        )
    ]


_DETECTORS = {
    RuleKind.FAILED_SIGN_INS: _failed_sign_ins,
    RuleKind.INTEGRITY_FAILURE: _integrity_failure,
    RuleKind.PASSWORD_SPRAYING: _password_spraying,
    RuleKind.NEW_DEVICE: _new_device,
    RuleKind.NEW_COUNTRY: _new_country,
    RuleKind.IMPOSSIBLE_TRAVEL: _impossible_travel,
    RuleKind.CONCURRENT_SESSIONS: _concurrent_sessions,
    RuleKind.MFA_FATIGUE: _mfa_fatigue,
    RuleKind.SESSION_ANOMALY: _session_anomaly,
    RuleKind.ANONYMISING_NETWORK: _anonymising_network,
    RuleKind.CREDENTIAL_STUFFING: _credential_stuffing,
    RuleKind.REPORTED_BY_MEMBER: _reported_by_member,
}


def findings_for(event: AuditEvent, rule: AlertRule) -> list[Finding]:
    """What the (enabled) rule finds in the event, judged by what was known when it happened."""
    if not rule.enabled or event.event_type not in EVALUATED_EVENT_TYPES:
        return []
    return _DETECTORS[RuleKind(rule.kind)](event, effective_parameters(rule))


# --- The per-event evaluation (alerts.evaluation before set-based evaluation) -----------------

MAX_EVENT_IDS = 200


def _window_start(moment: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def evaluate_one_at_a_time(event_ids: list[int]) -> None:
    """Run every rule on each event in id order and upsert each finding, as the old code did."""
    for event in AuditEvent.objects.filter(pk__in=event_ids).order_by("pk"):
        if event.event_type not in EVALUATED_EVENT_TYPES or event.organization_id is None:
            continue
        rules = AlertRule.objects.filter(organization_id=event.organization_id).order_by("id")
        for rule in rules:
            for finding in findings_for(event, rule):
                _alert_upsert(rule=rule, finding=finding, event=event)


def _alert_upsert(*, rule: AlertRule, finding: Finding, event: AuditEvent) -> None:
    at = event.occurred_at
    same_subject = Alert.objects.filter(rule=rule, subject_key=finding.subject_key)
    if finding.window is None:
        existing = same_subject.first()
        window_key = f"{finding.subject_key}@always"
    else:
        existing = (
            same_subject.filter(
                first_seen_at__lte=at + finding.window, last_seen_at__gte=at - finding.window
            )
            .order_by("-last_seen_at")
            .first()
        )
        window_key = f"{finding.subject_key}@{_window_start(at, finding.window).isoformat()}"
    if existing is None:
        alert = Alert(
            organization_id=rule.organization_id,
            rule=rule,
            kind=rule.kind,
            severity=rule.severity,
            subject_user_id=finding.subject_user_id,
            subject_label=finding.subject_label[:254],
            subject_ip=finding.subject_ip,
            subject_key=finding.subject_key[:160],
            window_key=window_key[:200],
            summary=finding.summary[:300],
            first_seen_at=at,
            last_seen_at=at,
            event_ids=finding.event_ids[-MAX_EVENT_IDS:],
            details=finding.details,
            email_pending=rule.notify_email,
        )
        try:
            with transaction.atomic():
                alert.save()
        except IntegrityError:
            existing = same_subject.get(window_key=window_key[:200])
        else:
            return
    existing.count += 1
    existing.first_seen_at = min(existing.first_seen_at, at)
    existing.last_seen_at = max(existing.last_seen_at, at)
    existing.event_ids = sorted(set(existing.event_ids) | set(finding.event_ids))[-MAX_EVENT_IDS:]
    existing.summary = finding.summary[:300]
    existing.details = finding.details
    if finding.subject_widened:
        existing.subject_ip, existing.subject_label = (
            finding.subject_ip,
            finding.subject_label[:254],
        )
    if existing.status == AlertStatus.RESOLVED:
        existing.status = AlertStatus.OPEN
        existing.resolved_at = None
    existing.save()
