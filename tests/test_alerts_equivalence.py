"""The batch evaluator against the per-event reference (tests/alerts_reference.py), on the same
generated events: the same findings per event, and the same alerts, whatever the batch split.

What is compared, exactly:

- Findings: for every event, each rule's findings (rule, subject, window, summary, details,
  subject user, label and address, and the set of event ids that made the match). The batch
  evaluator judges a whole batch at once, and in splits of it; the reference one event at a
  time. Both read the same committed table. One difference is by design and kept out of reach
  here: the reference read at most 1,000 rows per window (5,000 for spraying) in no order, the
  batch form counts every row and names the newest 1,000; the generated windows stay far below.
  Sessions in a concurrent-sessions finding are compared as a set (the reference read them in
  no order).
- Alerts: every alert's rule, subject, window key, count, first and last seen, event ids (the
  newest 200), summary, details, subject and status, with the batches evaluated in event order
  (one batch; one event per batch; random splits): identical to the reference evaluating one
  event at a time. With the batches evaluated out of order (as racing workers may), an alert's
  grouping may differ where findings of one subject chain across windows, so there the
  comparison is per rule and subject: the total count (one per finding) and the union of event
  ids.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import UserSession
from alerts.detectors import findings_for_batch
from alerts.evaluation import evaluate
from alerts.models import Alert, AlertRule, EvaluatedEvent, RuleKind
from audit.context import RequestContext
from audit.geo import GeoLocation
from audit.models import AuditEvent, EventType, TorExitNode
from audit.services import EventSpec, events_record

from . import alerts_reference as reference
from .alerts_support import CHROME_MAC, FIREFOX_LINUX, hooks_paused
from .factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db

PLACES = [  # (ip prefix, country, city, lat, lon); 100.64/10 has no place
    ("198.51.100.", "US", "New York", 40.7128, -74.006),
    ("203.0.113.", "DE", "Berlin", 52.52, 13.405),
    ("192.0.2.", "JP", "Tokyo", 35.6762, 139.6503),
    ("100.64.0.", "", "", None, None),
]
AGENTS = [
    ("Chrome 130.0", "Mac OS X", "desktop", CHROME_MAC),
    ("Chrome 131.0", "Mac OS X", "desktop", CHROME_MAC.replace("130", "131")),
    ("Firefox 132.0", "Linux", "desktop", FIREFOX_LINUX),
    ("Mobile Safari 17", "iOS", "mobile", "Mozilla/5.0 (iPhone)"),
]
TOR_EXIT = "203.0.113.66"


class _Rollback(Exception):
    pass


def _context(rng: random.Random, *, place=None, device: str = "", agent=None) -> RequestContext:
    prefix, country, city, lat, lon = place or rng.choice(PLACES)
    browser, os_name, device_type, user_agent = agent or rng.choice(AGENTS)
    return RequestContext(
        ip_address=TOR_EXIT if rng.random() < 0.05 else f"{prefix}{rng.randint(1, 6)}",
        user_agent=user_agent,
        browser=browser,
        os=os_name,
        device_type=device_type,
        device_id=device,
        geo=GeoLocation(country=country, city=city, latitude=lat, longitude=lon),
        session_hash=f"{rng.getrandbits(64):016x}",
    )


def _generate(seed: int) -> list[int]:
    """An organization's worth of sign-in activity over a few hours (and some history before);
    the ids of the events to evaluate, in id order."""
    rng = random.Random(seed)
    org = OrganizationFactory.create()
    # Low thresholds, so that a few hundred events raise every kind of alert many times.
    params = {
        RuleKind.FAILED_SIGN_INS: {"threshold": 3, "window_minutes": 10},
        RuleKind.PASSWORD_SPRAYING: {"distinct_accounts": 3, "window_minutes": 10},
        RuleKind.MFA_FATIGUE: {"failures": 3, "window_minutes": 10},
        RuleKind.CONCURRENT_SESSIONS: {"limit": 2, "multiple_countries": True},
        RuleKind.SESSION_ANOMALY: {"network_changes": seed % 2 == 0},
        RuleKind.NEW_COUNTRY: {"lookback_days": 1},
        RuleKind.CREDENTIAL_STUFFING: {
            "attempts": 6,
            "distinct_accounts": 4,
            "max_per_account": 2 + seed % 2,
            "window_minutes": 5,
        },
    }
    for kind, values in params.items():
        AlertRule.objects.filter(organization=org, kind=kind).update(parameters=values)
    users = [member(org) for _ in range(8)]
    devices = {user.pk: [f"{rng.getrandbits(64):016x}" for _ in range(2)] for user in users}
    TorExitNode.objects.create(ip_address=TOR_EXIT, loaded_at=timezone.now())
    start = timezone.now() - timedelta(hours=4)
    moments: list[Any] = []

    def moment(spread_minutes: float = 180):
        if moments and rng.random() < 0.1:  # the very same instant as an earlier event: a tie
            return rng.choice(moments)
        at = start + timedelta(seconds=rng.uniform(0, spread_minutes * 60))
        moments.append(at)
        return at

    def record(spec: EventSpec, context: RequestContext) -> AuditEvent:
        return events_record(specs=[spec], context=context)[0]

    with hooks_paused():
        for user in users[:6]:  # history: a week ago, from home
            for day in range(2):
                record(
                    EventSpec(
                        event_type=EventType.LOGIN_SUCCEEDED,
                        actor=user,
                        occurred_at=start - timedelta(days=day + 1),
                    ),
                    _context(rng, place=PLACES[0], device=devices[user.pk][0], agent=AGENTS[0]),
                )
        first_new = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1
        for _ in range(220):  # failures: bursts on a few accounts and addresses, some unknown
            unknown = rng.random() < 0.2
            user = rng.choice(users[:5])
            burst_at = moment(30)
            record(
                EventSpec(
                    event_type=EventType.LOGIN_FAILED,
                    outcome="failure",
                    reason="unknown_user" if unknown else "invalid_credentials",
                    actor=None if unknown else user,
                    actor_label=f"Ghost{rng.randint(1, 9)}@Acme.test" if unknown else "",
                    organization=org,
                    occurred_at=burst_at + timedelta(seconds=rng.uniform(0, 3600)),
                ),
                _context(rng, place=rng.choice(PLACES[:2])),
            )
        # Credential stuffing: one address trying many accounts once each, then a network's
        # addresses trying two each (only the network matches).
        for n, ip in enumerate(["192.0.2.200"] * 8 + [f"192.0.2.{10 + n % 4}" for n in range(8)]):
            unknown = n % 3 == 0
            record(
                EventSpec(
                    event_type=EventType.LOGIN_FAILED,
                    outcome="failure",
                    reason="unknown_user" if unknown else "invalid_credentials",
                    actor=None if unknown else users[n % 8],
                    actor_label=f"stuffed{n}@acme.test" if unknown else "",
                    organization=org,
                    occurred_at=start + timedelta(minutes=60 + 40 * (n // 8), seconds=9 * n),
                ),
                RequestContext(ip_address=ip),
            )
        for _ in range(70):  # successes, each starting a session
            user = rng.choice(users)
            device = rng.choice([*devices[user.pk], f"{rng.getrandbits(64):016x}", ""])
            context = _context(rng, device=device)
            at = moment()
            record(
                EventSpec(event_type=EventType.LOGIN_SUCCEEDED, actor=user, occurred_at=at), context
            )
            record(
                EventSpec(event_type=EventType.SESSION_STARTED, actor=user, occurred_at=at), context
            )
            UserSession.objects.create(
                user=user,
                organization=org,
                session_key=f"{rng.getrandbits(128):032x}",
                session_hash=context.session_hash,
                ip_address=context.ip_address,
                country=context.geo.country,
                browser=context.browser,
                started_at=at,
                last_activity_at=at,
                ended_at=at + timedelta(minutes=rng.randint(5, 120))
                if rng.random() < 0.5
                else None,
            )
        for user in users[:4]:  # worn-down second factors, then (mostly) a success
            at = moment()
            for n in range(rng.randint(1, 6)):
                record(
                    EventSpec(
                        event_type=EventType.MFA_VERIFICATION_FAILED,
                        outcome="failure",
                        reason=rng.choice(["invalid_code", "throttled"]),
                        actor=user,
                        occurred_at=at + timedelta(seconds=20 * n),
                    ),
                    _context(rng),
                )
            if rng.random() < 0.8:
                record(
                    EventSpec(
                        event_type=EventType.MFA_VERIFIED,
                        actor=user,
                        occurred_at=at + timedelta(minutes=2),
                        details={"device_kind": "totp"},
                    ),
                    _context(rng),
                )
        for user in users[:5]:  # sessions used from elsewhere
            started = {"ip": "198.51.100.9", "network": "198.51.100.0/24", "country": "US"}
            for _ in range(2):
                prefix, country, *_ = rng.choice(PLACES)
                new = {"ip": f"{prefix}9", "network": f"{prefix}0/24", "country": country}
                record(
                    EventSpec(
                        event_type=EventType.SESSION_LOCATION_CHANGED,
                        actor=user,
                        occurred_at=moment(),
                        details={
                            "session_started_at": start.isoformat(),
                            "started": started if rng.random() < 0.8 else {},
                            "previous": started,
                            "new": new,
                        },
                        session_hash=f"{user.pk:016x}",
                    ),
                    _context(rng),
                )
        for user in users[:3]:  # "No, secure my account" about a sign-in (twice: a replay)
            reported = AuditEvent.objects.filter(
                actor=user, event_type=EventType.LOGIN_SUCCEEDED
            ).first()
            if reported is None:
                continue
            for _ in range(2):
                record(
                    EventSpec(
                        event_type=EventType.ACTIVITY_REPORTED,
                        actor=user,
                        occurred_at=moment(),
                        details={
                            "event_id": reported.pk,
                            "event_type": reported.event_type,
                            "event_ip": reported.ip_address,
                            "sessions_ended": 1,
                        },
                    ),
                    _context(rng),
                )
    for found in ([{"event_id": 1, "problem": "changed"}], []):  # verification runs (twice)
        record(
            EventSpec(
                event_type=EventType.INTEGRITY_FAILED,
                organization=org,
                occurred_at=moment(),
                details={"problems": len(found) or 1, "found": found}
                if found
                else {"cannot_verify": "INTEGRITY_SIGNING_KEY is not set"},
            ),
            _context(rng),
        )
    return list(
        AuditEvent.objects.filter(pk__gte=first_new).order_by("pk").values_list("pk", flat=True)
    )


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    if "sessions" in details:
        return {**details, "sessions": sorted(details["sessions"], key=lambda s: s["session"])}
    return details


def _finding(event_id: int, finding: Any) -> tuple[Any, ...]:
    return (
        event_id,
        str(finding.kind),
        finding.subject_key,
        finding.window,
        finding.summary,
        repr(_plain(finding.details)),
        finding.subject_user_id,
        finding.subject_label,
        finding.subject_ip,
        tuple(sorted(finding.event_ids)),
    )


def _reference_findings(ids: list[int]) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    for event in AuditEvent.objects.filter(pk__in=ids).order_by("pk"):
        rules = AlertRule.objects.filter(organization=event.organization_id).order_by("id")
        for rule in rules:
            found.extend(_finding(event.pk, f) for f in reference.findings_for(event, rule))
    return found


def _batch_findings(ids: list[int]) -> list[tuple[Any, ...]]:
    events = list(AuditEvent.objects.filter(pk__in=ids).order_by("pk"))
    rules = list(AlertRule.objects.filter(organization=events[0].organization_id).order_by("id"))
    return [_finding(f.event_id, f) for f in findings_for_batch(events, rules)]


def _alerts() -> list[tuple[Any, ...]]:
    return sorted(
        (
            alert.kind,
            alert.subject_key,
            alert.window_key,
            alert.count,
            alert.first_seen_at,
            alert.last_seen_at,
            tuple(alert.event_ids),
            alert.summary,
            repr(_plain(alert.details)),
            alert.subject_user_id,
            alert.subject_label,
            alert.subject_ip,
            alert.status,
            alert.severity,
        )
        for alert in Alert.objects.all()
    )


def _per_subject(
    alerts: list[tuple[Any, ...]],
) -> dict[tuple[Any, ...], tuple[int, frozenset[int]]]:
    """Per rule and subject: the findings counted (every alert's count) and the events named."""
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    ids: dict[tuple[Any, ...], set[int]] = defaultdict(set)
    for kind, subject, _, count, _, _, event_ids, *_ in alerts:
        counts[kind, subject] += count
        ids[kind, subject].update(event_ids)
    return {key: (counts[key], frozenset(ids[key])) for key in counts}


def _rolled_back(run) -> list[tuple[Any, ...]]:
    """The alerts a run leaves, then the database as it was before it."""
    result: list[tuple[Any, ...]] = []
    try:
        with transaction.atomic():
            run()
            result = _alerts()
            raise _Rollback
    except _Rollback:
        pass
    assert not Alert.objects.exists() and not EvaluatedEvent.objects.exists()
    return result


def _splits(rng: random.Random, ids: list[int]) -> list[list[int]]:
    parts, at = [], 0
    while at < len(ids):
        size = rng.randint(1, 60)
        parts.append(ids[at : at + size])
        at += size
    return parts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_evaluator_finds_and_raises_what_the_per_event_reference_does(seed, asn_db):
    ids = _generate(seed)
    rng = random.Random(seed)

    expected_findings = _reference_findings(ids)
    # Every rule matched something: the comparison is not vacuous.
    assert {f[1] for f in expected_findings} == set(RuleKind.values)
    stuffing = [f for f in expected_findings if f[1] == RuleKind.CREDENTIAL_STUFFING]
    assert {f[8] is None for f in stuffing} == {True, False}  # by address, and widened
    assert _batch_findings(ids) == expected_findings
    split_findings = [f for part in _splits(rng, ids) for f in _batch_findings(part)]
    assert split_findings == expected_findings

    expected = _rolled_back(lambda: reference.evaluate_one_at_a_time(ids))
    assert len(expected) > 20

    def in_batches(parts: list[list[int]]):
        return lambda: [evaluate(event_ids=part, gather=False) for part in parts]

    assert _rolled_back(in_batches([ids])) == expected
    assert _rolled_back(in_batches([[pk] for pk in ids])) == expected
    assert _rolled_back(in_batches(_splits(rng, ids))) == expected
    # A task that gathers its organization's pending events does the same.
    assert _rolled_back(lambda: evaluate(event_ids=ids[:1])) == expected

    shuffled = _splits(rng, ids)
    rng.shuffle(shuffled)
    assert _per_subject(_rolled_back(in_batches(shuffled))) == _per_subject(expected)
