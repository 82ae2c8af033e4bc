"""What each alert rule finds in a batch of events, each event judged by what was known when it
happened (the events up to and including it); no writes.

Set-based: a rule reads what it needs for the whole batch in a fixed number of queries, however
many events the batch holds, and judges each event in Python. The failure rules read the window
of failures around the batch for its accounts (or addresses) in one query and slide each window
along it; the sign-in rules ask one query with a correlated subquery per question ("the actor's
latest located sign-in before this event"), which the database answers per event from its
indexes. tests/alerts_reference.py keeps the per-event form they replace, and
tests/test_alerts_equivalence.py holds the two to the same findings.
"""

from __future__ import annotations

import ipaddress
import math
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, Min, OuterRef, Subquery
from django.db.models.functions import Lower

from accounts.models import UserSession
from audit.descriptions import country_name
from audit.geo import autonomous_system_of
from audit.models import AuditEvent, EventType, Reason

from . import selectors
from .anonymising import hosting_asns
from .models import AlertRule, RuleKind
from .rules import effective_parameters

# City-level locations are coarse: two sign-ins closer than this are never "travel".
MIN_TRAVEL_KM = 100
EARTH_RADIUS_KM = 6371.0088
# A finding names at most this many of the events in its window (the newest); an alert keeps
# fewer still (alerts.evaluation.MAX_EVENT_IDS).
MAX_FINDING_IDS = 1000
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
    event_id: int
    at: datetime
    subject_user_id: int | None = None
    subject_label: str = ""
    subject_ip: str | None = None
    # The events that made the match, in id order (impossible travel: from, to).
    event_ids: Sequence[int] = field(default_factory=list)
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
    event_ids: Sequence[int],
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
        event_id=event.pk,
        at=event.occurred_at,
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


def _span(events: Sequence[AuditEvent]) -> tuple[datetime, datetime]:
    times = [event.occurred_at for event in events]
    return min(times), max(times)


def _in_order(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    return sorted(events, key=lambda event: (event.occurred_at, event.pk))


@dataclass
class _Series:
    """One subject's events of a kind, in time order: the windows slide along it."""

    times: list[datetime] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def bounds(self, at: datetime, window: timedelta) -> tuple[int, int]:
        """Where the window that ends at `at` lies: after at - window, up to and including at."""
        return bisect_right(self.times, at - window), bisect_right(self.times, at)


def _series(rows: Iterable[tuple[Hashable, datetime, int, Any]]) -> dict[Hashable, _Series]:
    """Rows of (subject, occurred_at, id, value) as each subject's series in (time, id) order."""
    by_subject: dict[Hashable, _Series] = defaultdict(_Series)
    for key, at, pk, value in sorted(rows, key=lambda row: (row[1], row[2])):
        series = by_subject[key]
        series.times.append(at)
        series.ids.append(pk)
        series.values.append(value)
    return by_subject


# --- The rules -------------------------------------------------------------------------------


def _failed_sign_ins(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    events = [event for event in events if event.actor_id is not None]
    if not events:
        return []
    window = timedelta(minutes=params["window_minutes"])
    first, last = _span(events)
    rows = (
        selectors.failed_sign_ins_between(
            organization_id=events[0].organization_id, after=first - window, until=last
        )
        .filter(actor_id__in={event.actor_id for event in events})
        .values_list("actor_id", "occurred_at", "id", "id")
    )
    by_actor = _series(rows)
    findings = []
    for event in events:
        series = by_actor[event.actor_id]
        lo, hi = series.bounds(event.occurred_at, window)
        failures = min(hi - lo, MAX_FINDING_IDS)
        if failures < params["threshold"]:
            continue
        findings.append(
            _about_actor(
                event,
                kind=RuleKind.FAILED_SIGN_INS,
                topic="",
                window=window,
                summary=(
                    f"{failures} failed sign-ins for {event.actor_label} "
                    f"within {params['window_minutes']} minutes"
                ),
                event_ids=sorted(series.ids[hi - failures : hi]),
                details={
                    "failures": failures,
                    "threshold": params["threshold"],
                    "window_minutes": params["window_minutes"],
                },
            )
        )
    return findings


def _password_spraying(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    events = [event for event in events if event.ip_address]
    if not events:
        return []
    window = timedelta(minutes=params["window_minutes"])
    first, last = _span(events)
    # An account is the actor's id or, for an address that matches none (unknown_user, at one
    # of the organization's verified domains), the attempted name in lower case.
    rows = (
        selectors.failed_sign_ins_between(
            organization_id=events[0].organization_id, after=first - window, until=last
        )
        .filter(ip_address__in={event.ip_address for event in events})
        .values_list("ip_address", "occurred_at", "id", "actor_id", Lower("actor_label"))
    )
    by_ip = _series(
        (ip, at, pk, actor if actor is not None else label) for ip, at, pk, actor, label in rows
    )
    by_event_ip: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in events:
        by_event_ip[event.ip_address].append(event)  # type: ignore[index]
    findings = []
    for ip, ip_events in by_event_ip.items():
        series = by_ip[ip]
        accounts: Counter[Any] = Counter()
        lo = hi = 0
        for event in _in_order(ip_events):  # the window only moves forward: count as it moves
            new_lo, new_hi = series.bounds(event.occurred_at, window)
            for account in series.values[hi:new_hi]:
                accounts[account] += 1
            for account in series.values[lo:new_lo]:
                accounts[account] -= 1
                if not accounts[account]:
                    del accounts[account]
            lo, hi = new_lo, new_hi
            if len(accounts) < params["distinct_accounts"]:
                continue
            findings.append(
                Finding(
                    kind=RuleKind.PASSWORD_SPRAYING,
                    subject_key=f"ip:{ip}",
                    subject_ip=ip,
                    subject_label=ip,
                    window=window,
                    summary=(
                        f"Failed sign-ins for {len(accounts)} accounts from {ip} "
                        f"within {params['window_minutes']} minutes"
                    ),
                    event_id=event.pk,
                    at=event.occurred_at,
                    event_ids=sorted(series.ids[max(lo, hi - MAX_FINDING_IDS) : hi]),
                    details={
                        "distinct_accounts": len(accounts),
                        "threshold": params["distinct_accounts"],
                        "window_minutes": params["window_minutes"],
                    },
                )
            )
    return findings


def _agent_key(event: AuditEvent) -> tuple[str, str, str]:
    return _browser_family(event.browser), event.os, event.device_type


def _new_device(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    by_cookie = [event for event in events if event.actor_id is not None and event.device_id]
    # Without a cookie only the user agent tells one device from another, if it says anything.
    by_agent = [
        event
        for event in events
        if event.actor_id is not None
        and not event.device_id
        and (event.browser or event.os or event.device_type)
    ]
    if not by_cookie and not by_agent:
        return []
    earlier = selectors.sign_ins_before_outer()
    known = {
        pk: (has_earlier, seen)
        for pk, has_earlier, seen in selectors.events_with_earlier_sign_ins(
            [event.pk for event in by_cookie + by_agent],
            has_earlier=Exists(earlier),
            seen=Exists(earlier.filter(device_id=OuterRef("device_id"))),
        ).values_list("pk", "has_earlier", "seen")
    }
    agent_seen = _agents_seen(by_agent) if by_agent else {}
    findings = []
    for event in sorted(by_cookie + by_agent, key=lambda e: e.pk):
        has_earlier, seen = known[event.pk]
        if not has_earlier:  # the first sign-in ever: every device is new
            continue
        if event.device_id:
            device_key = f"cookie:{event.device_id}"
            described = "a new browser (no device cookie seen before)"
        else:
            family, os_name, device_type = _agent_key(event)
            device_key = f"agent:{family}|{os_name}|{device_type}"
            described = "a new browser, operating system or device type"
            seen = agent_seen[event.pk]
        if seen:
            continue
        what = " on ".join(part for part in (event.browser, event.os) if part)
        findings.append(
            _about_actor(
                event,
                kind=RuleKind.NEW_DEVICE,
                topic=f":device:{device_key}",
                window=None,
                summary=f"{event.actor_label} signed in from a new device: "
                f"{what or 'an unknown browser'}",
                event_ids=[event.pk],
                details={
                    "device": described,
                    "browser": event.browser,
                    "os": event.os,
                    "device_type": event.device_type,
                    **_place(event),
                },
            )
        )
    return findings


def _agents_seen(events: list[AuditEvent]) -> dict[int, bool]:
    """For sign-ins without a device cookie: did the actor sign in before with the same browser
    family (a prefix of the recorded browser), operating system and device type?

    One grouped query gives each actor's first sign-in per browser, system and device type; a
    first sign-in in the very instant of the event (a tie, which only the ids order) is asked
    about on its own.
    """
    first_seen: dict[tuple[int, str, str], list[tuple[str, datetime]]] = defaultdict(list)
    groups = (
        selectors.sign_ins_of(
            organization_id=events[0].organization_id,
            actor_ids={event.actor_id for event in events},  # type: ignore[misc]
        )
        .filter(
            agent__os__in={event.os for event in events},
            agent__device_type__in={event.device_type for event in events},
        )
        # The user agents' dictionary (audit.models.UserAgent) holds the parsed fields.
        .values("actor_id", "agent__os", "agent__device_type", "agent__browser")
        .annotate(first_at=Min("occurred_at"))
        .values_list("actor_id", "agent__os", "agent__device_type", "agent__browser", "first_at")
    )
    for actor_id, os_name, device_type, browser, first_at in groups:
        first_seen[actor_id, os_name, device_type].append((browser, first_at))
    seen: dict[int, bool] = {}
    for event in events:
        family = _browser_family(event.browser)
        firsts = [
            first_at
            for browser, first_at in first_seen[event.actor_id, event.os, event.device_type]  # type: ignore[index]
            if browser.startswith(family)
        ]
        if any(first_at < event.occurred_at for first_at in firsts):
            seen[event.pk] = True
        elif any(first_at == event.occurred_at for first_at in firsts):
            seen[event.pk] = (
                selectors.sign_ins_before_event(event)
                .filter(
                    agent__browser__startswith=family,
                    agent__os=event.os,
                    agent__device_type=event.device_type,
                )
                .exists()
            )
        else:
            seen[event.pk] = False
    return seen


def _new_country(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    events = [event for event in events if event.actor_id is not None and event.country]
    if not events:
        return []
    earlier = selectors.sign_ins_before_outer()
    located = earlier.exclude(country="")
    rows = selectors.events_with_earlier_sign_ins(
        [event.pk for event in events],
        previous_country=Subquery(located.values("country")[:1]),
        previous_at=Subquery(located.values("occurred_at")[:1]),
        last_here_at=Subquery(
            earlier.filter(country=OuterRef("country")).values("occurred_at")[:1]
        ),
    ).values_list("pk", "previous_country", "previous_at", "last_here_at")
    known = {pk: rest for pk, *rest in rows}
    lookback = timedelta(days=params["lookback_days"])
    findings = []
    for event in events:
        previous_country, previous_at, last_here_at = known[event.pk]
        if previous_country is None:  # nothing to compare with (the first located sign-in)
            continue
        since = event.occurred_at - lookback
        if previous_country == event.country and previous_at >= since:
            continue
        if last_here_at is not None and last_here_at >= since:
            continue
        findings.append(
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
                    "previous_country": previous_country,
                    **_place(event),
                },
            )
        )
    return findings


def _impossible_travel(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    events = [
        event
        for event in events
        if event.actor_id is not None and event.latitude is not None and event.longitude is not None
    ]
    if not events:
        return []
    located = selectors.sign_ins_before_outer().exclude(latitude=None).exclude(longitude=None)
    previous_ids = dict(
        selectors.events_with_earlier_sign_ins(
            [event.pk for event in events], previous_id=Subquery(located.values("id")[:1])
        ).values_list("pk", "previous_id")
    )
    previous_events = AuditEvent.objects.in_bulk(
        [pk for pk in previous_ids.values() if pk is not None]
    )
    findings = []
    for event in events:
        previous = previous_events.get(previous_ids[event.pk])
        if previous is None or previous.latitude is None or previous.longitude is None:
            continue
        assert event.latitude is not None and event.longitude is not None  # filtered above
        distance = great_circle_km(
            previous.latitude, previous.longitude, event.latitude, event.longitude
        )
        if distance < MIN_TRAVEL_KM:
            continue
        hours = (event.occurred_at - previous.occurred_at).total_seconds() / 3600
        speed = distance / hours if hours > 0 else math.inf
        if speed <= params["max_speed_kmh"]:
            continue
        speed_text = "instantly" if math.isinf(speed) else f"at {speed:,.0f} km/h"
        findings.append(
            _about_actor(
                event,
                kind=RuleKind.IMPOSSIBLE_TRAVEL,
                topic=":travel",
                window=timedelta(days=1),
                summary=(
                    f"{event.actor_label} signed in from "
                    f"{event.city or country_name(event.country)} "
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
        )
    return findings


def _concurrent_sessions(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    events = [event for event in events if event.actor_id is not None]
    if not events:
        return []
    window = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    first, last = _span(events)
    by_user: dict[int | None, list[UserSession]] = defaultdict(list)
    for session in selectors.sessions_open_during(
        organization_id=events[0].organization_id,
        user_ids={event.actor_id for event in events},  # type: ignore[misc]
        first=first,
        last=last,
        max_age=window,
    ).order_by("id"):
        by_user[session.user_id].append(session)
    findings = []
    for event in events:
        at = event.occurred_at
        sessions = [
            s
            for s in by_user[event.actor_id]
            if at - window < s.started_at <= at and (s.ended_at is None or s.ended_at > at)
        ]
        countries = sorted({s.country for s in sessions if s.country})
        too_many = len(sessions) > params["limit"]
        far_apart = params["multiple_countries"] and len(countries) > 1
        if not (too_many or far_apart):
            continue
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
        if too_many:
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
        if far_apart:
            findings.append(
                _about_actor(
                    event,
                    kind=RuleKind.CONCURRENT_SESSIONS,
                    topic=":countries",
                    window=window,
                    summary=(
                        f"{event.actor_label} has active sessions from {len(countries)} "
                        f"countries at once: {', '.join(map(country_name, countries))}"
                    ),
                    event_ids=[event.pk],
                    details={"countries": countries, "sessions": listed},
                )
            )
    return findings


def _mfa_fatigue(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    events = [event for event in events if event.actor_id is not None]
    if not events:
        return []
    window = timedelta(minutes=params["window_minutes"])
    first, last = _span(events)
    rows = (
        selectors.mfa_failures_between(
            organization_id=events[0].organization_id,
            after=first - window,
            until=last,
        )
        .filter(actor_id__in={event.actor_id for event in events})
        .values_list("actor_id", "occurred_at", "id", "reason")
    )
    by_actor = _series(rows)
    findings = []
    for event in events:
        series = by_actor[event.actor_id]
        lo, hi = series.bounds(event.occurred_at, window)
        failures = min(hi - lo, MAX_FINDING_IDS)
        if failures < params["failures"]:
            continue
        throttled = sum(1 for reason in series.values[hi - failures : hi] if reason == "throttled")
        findings.append(
            _about_actor(
                event,
                kind=RuleKind.MFA_FATIGUE,
                topic=":mfa",
                window=window,
                summary=(
                    f"{event.actor_label} passed the second factor after {failures} failed "
                    f"checks within {params['window_minutes']} minutes"
                ),
                event_ids=sorted([*series.ids[hi - failures : hi], event.pk]),
                details={
                    "failures": failures,
                    "throttled": throttled,
                    "threshold": params["failures"],
                    "window_minutes": params["window_minutes"],
                    "device_kind": event.details.get("device_kind", ""),
                    **_place(event),
                },
            )
        )
    return findings


def _location(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _session_anomaly(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    """Judged from each event's own details: where its session started and where it is now."""
    findings = []
    for event in events:
        if event.actor_id is None:
            continue
        started = _location(event.details.get("started"))
        previous = _location(event.details.get("previous"))
        new = _location(event.details.get("new"))
        # A session that started without a usable address is judged from its first known place.
        origin = started if started.get("network") else previous
        origin_country, new_country = origin.get("country") or "", new.get("country") or ""
        if origin_country and new_country and origin_country != new_country:
            change = "country"
            what = (
                f"from {country_name(new_country)}, not {country_name(origin_country)} "
                "where it started"
            )
        elif params["network_changes"] and new.get("network") != origin.get("network"):
            change = "network"
            what = f"from the network {new.get('network')}, not {origin.get('network')}"
        else:
            continue
        findings.append(
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
        )
    return findings


def _anonymising_network(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    # Successes only: a failure from Tor is already counted by the failure rules, and looking
    # every failure up would cost the most exactly during a flood of them.
    events = [event for event in events if event.actor_id is not None and event.ip_address]
    if not events:
        return []
    exits = (
        selectors.tor_exit_nodes({event.ip_address for event in events})  # type: ignore[misc]
        if params["tor"]
        else {}
    )
    hosting = hosting_asns() if params["hosting"] else frozenset()
    findings = []
    for event in events:
        ip: str = event.ip_address  # type: ignore[assignment]
        found: dict[str, Any] = {}
        means: list[str] = []
        node = exits.get(ip)
        if node is not None:
            found["tor_exit"] = {
                "ip": node.ip_address,
                "fingerprint": node.fingerprint,
                "list_loaded_at": node.loaded_at.isoformat(),
            }
            means.append(f"through Tor (exit node {node.ip_address})")
        system = autonomous_system_of(ip) if params["hosting"] or found else None
        if system is not None:
            found["asn"] = {"number": system.number, "organization": system.organization}
            if params["hosting"] and system.number in hosting:
                found["hosting_provider"] = True
                means.append(f"from a hosting provider (AS{system.number} {system.organization})")
        if not means:
            continue
        findings.append(
            _about_actor(
                event,
                kind=RuleKind.ANONYMISING_NETWORK,
                topic=":anonymising",
                window=timedelta(days=1),
                summary=f"{event.actor_label} signed in {' and '.join(means)}",
                event_ids=[event.pk],
                details={**found, **_place(event)},
            )
        )
    return findings


def _integrity_failure(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    # One alert per organization and day however often verification runs: repeats add to it.
    findings = []
    for event in events:
        details = event.details or {}
        problems = details.get("problems", 0)
        summary = (
            f"Audit log integrity could not be verified: {details['cannot_verify']}"
            if details.get("cannot_verify")
            else f"Audit log tampering found: {problems} problem(s) in the sealed events"
        )
        findings.append(
            Finding(
                kind=RuleKind.INTEGRITY_FAILURE,
                subject_key="integrity",
                subject_label="Audit log",
                summary=summary[:300],
                window=timedelta(days=1),
                event_id=event.pk,
                at=event.occurred_at,
                event_ids=[event.pk],
                details={"found": details.get("found", [])[:20], "problems": problems},
            )
        )
    return findings


class _Tally:
    """A sliding window of failed sign-ins from one source: attempts per account (and the most
    of any account), the names and addresses tried, kept as rows enter and leave."""

    def __init__(self) -> None:
        self.attempts = 0
        self.per_account: Counter[tuple[str, int | str]] = Counter()
        self.with_count: Counter[int] = Counter()  # how many accounts have each attempt count
        self.most = 0
        self.names: Counter[str] = Counter()
        self.addresses: Counter[str] = Counter()

    def add(self, row: tuple[tuple[str, int | str], str, str]) -> None:
        account, name, address = row
        count = self.per_account[account] + 1
        self.per_account[account] = count
        self.with_count[count - 1] -= 1
        self.with_count[count] += 1
        self.most = max(self.most, count)
        self.names[name] += 1
        self.addresses[address] += 1
        self.attempts += 1

    def remove(self, row: tuple[tuple[str, int | str], str, str]) -> None:
        account, name, address = row
        count = self.per_account[account]
        if count == 1:
            del self.per_account[account]
        else:
            self.per_account[account] = count - 1
        self.with_count[count] -= 1
        self.with_count[count - 1] += 1
        if count == self.most and self.with_count[count] == 0:
            self.most = count - 1
        for seen, key in ((self.names, name), (self.addresses, address)):
            seen[key] -= 1
            if not seen[key]:
                del seen[key]
        self.attempts -= 1

    def matches(self, params: dict[str, Any]) -> bool:
        """Elastic's test: enough attempts, over enough accounts, and no account tried more."""
        return bool(
            self.attempts >= params["attempts"]
            and len(self.per_account) >= params["distinct_accounts"]
            and self.most <= params["max_per_account"]
        )


@dataclass
class _Stuffing:
    """One source's (an address's or a network's) failures in time order, and its tally."""

    keys: list[tuple[datetime, int]] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    rows: list[tuple[tuple[str, int | str], str, str]] = field(default_factory=list)
    tally: _Tally = field(default_factory=_Tally)
    lo: int = 0
    hi: int = 0

    def slide(self, event: AuditEvent, window: timedelta) -> _Tally:
        """The tally of the window that ends with the event (events taken in time order): after
        at - window, up to the event itself (a failure recorded in the same instant after it is
        not yet known)."""
        lo = bisect_right(self.times, event.occurred_at - window, lo=self.lo)
        hi = bisect_right(self.keys, (event.occurred_at, event.pk), lo=self.hi)
        for row in self.rows[self.hi : hi]:
            self.tally.add(row)
        for row in self.rows[self.lo : lo]:
            self.tally.remove(row)
        self.lo, self.hi = lo, hi
        return self.tally


def _network(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Any:
    prefix = STUFFING_IPV4_PREFIX if address.version == 4 else STUFFING_IPV6_PREFIX
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


def _credential_stuffing(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    """One alert per network and window: labelled with the address while one address does it
    all, widened to the network once attempts from several of its addresses are needed.

    One query reads the window of failures around the batch from the batch's networks; each
    address's and each network's window then slides along it, event by event.
    """
    sources: dict[int, tuple[Any, Any]] = {}
    for event in events:
        if event.reason not in STUFFING_REASONS:
            continue
        try:
            address = ipaddress.ip_address(event.ip_address or "")
        except ValueError:
            continue
        sources[event.pk] = (address, _network(address))
    events = [event for event in events if event.pk in sources]
    if not events:
        return []
    window = timedelta(minutes=params["window_minutes"])
    first, last = _span(events)
    rows = (
        selectors.failed_sign_ins_from_networks(
            organization_id=events[0].organization_id,
            after=first - window,
            until=last,
            networks={network for _, network in sources.values()},
        )
        .filter(reason__in=STUFFING_REASONS)
        .values_list("occurred_at", "id", "actor_id", Lower("actor_label"), "ip_address")
    )
    networks: dict[str, Any] = {}
    by_address: dict[Any, _Stuffing] = defaultdict(_Stuffing)
    by_network: dict[Any, _Stuffing] = defaultdict(_Stuffing)
    for at, pk, actor_id, label, ip in sorted(rows, key=lambda row: (row[0], row[1])):
        if ip not in networks:
            networks[ip] = _network(ipaddress.ip_address(ip))
        # An account is the actor's id or, for an address that matches none (unknown_user, at
        # one of the organization's verified domains), the attempted name in lower case.
        account = ("user", actor_id) if actor_id is not None else ("name", label)
        for source in (by_address[ip], by_network[networks[ip]]):
            source.keys.append((at, pk))
            source.times.append(at)
            source.ids.append(pk)
            source.rows.append((account, label, ip))
    in_order = _in_order(events)
    found: dict[int, Finding] = {}
    for event in in_order:
        source = by_address[event.ip_address]
        if source.slide(event, window).matches(params):
            found[event.pk] = _stuffing_finding(event, source, params, widened=False)
    for event in in_order:
        address, network = sources[event.pk]
        source = by_network[network]
        tally = source.slide(event, window)
        if event.pk not in found and len(tally.addresses) >= 2 and tally.matches(params):
            found[event.pk] = _stuffing_finding(event, source, params, widened=True)
    return [found[event.pk] for event in events if event.pk in found]


def _stuffing_finding(
    event: AuditEvent, source: _Stuffing, params: dict[str, Any], *, widened: bool
) -> Finding:
    tally = source.tally
    address = ipaddress.ip_address(event.ip_address or "")
    network = _network(address)
    where = (
        f"{len(tally.addresses)} addresses of {network.with_prefixlen}" if widened else str(address)
    )
    return Finding(
        kind=RuleKind.CREDENTIAL_STUFFING,
        subject_key=f"net:{network.with_prefixlen}",
        subject_ip=None if widened else str(address),
        subject_label=network.with_prefixlen if widened else str(address),
        subject_widened=widened,
        window=_window_of(params),
        summary=(
            f"{tally.attempts} failed sign-ins for {len(tally.per_account)} accounts "
            f"(at most {tally.most} each) from {where} "
            f"within {params['window_minutes']} minutes"
        ),
        event_id=event.pk,
        at=event.occurred_at,
        event_ids=sorted(source.ids[source.lo : source.hi])[-MAX_FINDING_IDS:],
        details={
            "attempts": tally.attempts,
            "distinct_accounts": len(tally.per_account),
            "most_per_account": tally.most,
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


def _reported_by_member(events: list[AuditEvent], params: dict[str, Any]) -> list[Finding]:
    """A member said one of their events was not them: one alert per reported event."""
    findings = []
    for event in events:
        details = event.details if isinstance(event.details, dict) else {}
        reported = details.get("event_id")
        if event.actor_id is None or not isinstance(reported, int):
            continue
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
        # The address of the event reported, not of the member's own session that reported it.
        event_ip = details.get("event_ip")
        finding.subject_ip = event_ip if isinstance(event_ip, str) and event_ip else None
        findings.append(finding)
    return findings


def _window_of(params: dict[str, Any]) -> timedelta:
    return timedelta(minutes=params["window_minutes"])


Detector = Callable[[list[AuditEvent], dict[str, Any]], list[Finding]]

# Each rule's batch form and the event types it looks at.
_DETECTORS: dict[RuleKind, tuple[Detector, frozenset[str]]] = {
    RuleKind.FAILED_SIGN_INS: (_failed_sign_ins, frozenset({EventType.LOGIN_FAILED})),
    RuleKind.PASSWORD_SPRAYING: (_password_spraying, frozenset({EventType.LOGIN_FAILED})),
    RuleKind.NEW_DEVICE: (_new_device, frozenset({EventType.LOGIN_SUCCEEDED})),
    RuleKind.NEW_COUNTRY: (_new_country, frozenset({EventType.LOGIN_SUCCEEDED})),
    RuleKind.IMPOSSIBLE_TRAVEL: (_impossible_travel, frozenset({EventType.LOGIN_SUCCEEDED})),
    RuleKind.CONCURRENT_SESSIONS: (_concurrent_sessions, frozenset({EventType.SESSION_STARTED})),
    RuleKind.MFA_FATIGUE: (_mfa_fatigue, frozenset({EventType.MFA_VERIFIED})),
    RuleKind.SESSION_ANOMALY: (
        _session_anomaly,
        frozenset({EventType.SESSION_LOCATION_CHANGED}),
    ),
    RuleKind.ANONYMISING_NETWORK: (_anonymising_network, frozenset({EventType.LOGIN_SUCCEEDED})),
    RuleKind.CREDENTIAL_STUFFING: (_credential_stuffing, frozenset({EventType.LOGIN_FAILED})),
    RuleKind.INTEGRITY_FAILURE: (_integrity_failure, frozenset({EventType.INTEGRITY_FAILED})),
    RuleKind.REPORTED_BY_MEMBER: (
        _reported_by_member,
        frozenset({EventType.ACTIVITY_REPORTED}),
    ),
}


def findings_for_batch(events: Sequence[AuditEvent], rules: Sequence[AlertRule]) -> list[Finding]:
    """What the enabled rules find in a batch of one organization's events, each event judged by
    what was known when it happened; in event order (id), then the rules' order."""
    found: list[tuple[int, int, int, Finding]] = []
    for order, rule in enumerate(rules):
        if not rule.enabled:
            continue
        detector, types = _DETECTORS[RuleKind(rule.kind)]
        candidates = [event for event in events if event.event_type in types]
        if not candidates:
            continue
        for index, finding in enumerate(detector(candidates, effective_parameters(rule))):
            found.append((finding.event_id, order, index, finding))
    found.sort(key=lambda entry: entry[:3])
    return [finding for *_, finding in found]
