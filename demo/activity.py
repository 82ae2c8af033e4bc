"""Realistic generated activity for demos: sign-ins from home and abroad, typos, lockouts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypedDict

from django.utils import timezone

from accounts.models import Organization, User
from audit.context import short_hash
from audit.models import AuditEvent, EventType, Outcome, Reason
from audit.useragent import parse_user_agent

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
]

# (country, city, latitude, longitude, address prefix) from documentation ranges.
PLACES = [
    ("US", "New York", 40.71, -74.01, "198.51.100."),
    ("US", "San Francisco", 37.77, -122.42, "198.51.101."),
    ("GB", "London", 51.51, -0.13, "203.0.113."),
    ("DE", "Berlin", 52.52, 13.40, "192.0.2."),
    ("JP", "Tokyo", 35.68, 139.69, "203.0.114."),
    ("BR", "São Paulo", -23.55, -46.63, "198.18.0."),
]
ATTACKER = ("RU", "Moscow", 55.75, 37.62, "198.19.7.")


class _Who(TypedDict):
    """Who signs in, from where and with what: what one session's events share."""

    organization: Organization | None
    user: User | None
    place: tuple[str, str, float, float, str]
    agent: str


def _event(
    rng: random.Random,
    *,
    when: datetime,
    organization: Organization | None,
    event_type: str,
    user: User | None,
    place: tuple[str, str, float, float, str],
    agent: str,
    session: str = "",
    outcome: str = Outcome.SUCCESS,
    reason: str = "",
    label: str = "",
    details: dict[str, object] | None = None,
) -> AuditEvent:
    parsed = parse_user_agent(agent)
    country, city, lat, lon, prefix = place
    event = AuditEvent(
        occurred_at=when,
        organization=organization,
        event_type=event_type,
        outcome=outcome,
        reason=reason,
        actor=user,
        actor_label=label or (user.email if user else ""),
        ip_address=f"{prefix}{rng.randint(2, 250)}",
        device_id=short_hash(f"{user.pk if user else 0}:{agent}", purpose="device"),
        country=country,
        city=city,
        latitude=lat,
        longitude=lon,
        session_hash=session,
        request_id=f"{rng.getrandbits(128):032x}",
        details=details or {},
    )
    # Stored as a row of the user agents' dictionary when the events are written.
    event.agent_pending = (agent, parsed.browser, parsed.os, parsed.device_type)
    return event


def generate_demo_activity(
    *, organization: Organization, users: Sequence[User], days: int, seed: int = 2026
) -> int:
    """Bulk-insert `days` of plausible activity for the organization's users; returns the count."""
    rng = random.Random(f"{seed}:{organization.slug}")
    now = timezone.now()
    events: list[AuditEvent] = []
    for user in users:
        home = rng.choice(PLACES[:4])
        agent = rng.choice(USER_AGENTS)
        for day in range(days, 0, -1):
            if rng.random() < 0.25:  # not every day
                continue
            start = (now - timedelta(days=day)).replace(hour=rng.randint(7, 10), minute=0)
            start += timedelta(minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
            place = home if rng.random() > 0.05 else rng.choice(PLACES)
            if rng.random() < 0.15:  # a typo first
                events.append(
                    _event(
                        rng,
                        when=start - timedelta(seconds=20),
                        organization=organization,
                        event_type=EventType.LOGIN_FAILED,
                        user=user,
                        place=place,
                        agent=agent,
                        outcome=Outcome.FAILURE,
                        reason=Reason.INVALID_CREDENTIALS,
                        details={
                            "method": "password",
                            "source": "familiar" if place is home else "unfamiliar",
                        },
                    )
                )
            session = f"{rng.getrandbits(64):016x}"
            common = _Who(organization=organization, user=user, place=place, agent=agent)
            events += [
                _event(
                    rng,
                    when=start,
                    event_type=EventType.LOGIN_SUCCEEDED,
                    session=session,
                    details={"method": "password"},
                    **common,
                ),
                _event(
                    rng, when=start, event_type=EventType.SESSION_STARTED, session=session, **common
                ),
            ]
            end = start + timedelta(hours=rng.randint(1, 9))
            if rng.random() < 0.7:
                events += [
                    _event(rng, when=end, event_type=EventType.LOGOUT, session=session, **common),
                    _event(
                        rng,
                        when=end,
                        event_type=EventType.SESSION_ENDED,
                        session=session,
                        reason=Reason.LOGOUT,
                        **common,
                    ),
                ]
            else:
                events.append(
                    _event(
                        rng,
                        when=start + timedelta(hours=12),
                        session=session,
                        event_type=EventType.SESSION_EXPIRED,
                        reason=Reason.EXPIRED,
                        **common,
                    )
                )
        if rng.random() < 0.5:
            when = now - timedelta(days=rng.randint(1, days), hours=rng.randint(0, 8))
            events.append(
                _event(
                    rng,
                    when=when,
                    organization=organization,
                    user=user,
                    place=home,
                    agent=agent,
                    event_type=EventType.PASSWORD_CHANGED,
                )
            )
    # Someone guessing one member's password from abroad until the account locks.
    victim = users[-1]
    attack = now - timedelta(days=rng.randint(2, max(2, days - 1)), hours=3)
    for attempt in range(10):
        events.append(
            _event(
                rng,
                when=attack + timedelta(seconds=attempt * 7),
                organization=organization,
                event_type=EventType.LOGIN_FAILED,
                user=victim,
                place=ATTACKER,
                agent="python-requests/2.32.3",
                outcome=Outcome.FAILURE,
                reason=Reason.INVALID_CREDENTIALS,
                details={"method": "password", "source": "unfamiliar"},
            )
        )
    locked_at = attack + timedelta(seconds=63)
    events.append(
        _event(
            rng,
            when=locked_at,
            organization=organization,
            event_type=EventType.LOCKOUT_TRIGGERED,
            user=None,
            label="",
            place=ATTACKER,
            agent="python-requests/2.32.3",
            reason="10 failed sign-ins in 15 minutes",
            details={"scope": "unfamiliar", "failures": 10, "threshold": 10, "window_minutes": 15},
        )
    )
    events[-1].target_user, events[-1].target_label = victim, victim.email
    released = _event(
        rng,
        when=locked_at + timedelta(minutes=30),
        organization=organization,
        event_type=EventType.LOCKOUT_RELEASED,
        user=None,
        place=ATTACKER,
        agent="",
        reason=Reason.EXPIRED,
        details={"scope": "unfamiliar"},
    )
    released.target_user, released.target_label, released.ip_address = victim, victim.email, None
    released.country = released.city = released.browser = released.os = released.device_type = ""
    released.latitude = released.longitude = None
    events.append(released)
    # Sign-in attempts for addresses that do not exist, at the organization's own domain (seeded
    # verified), so they are the organization's, as accounts.lockout records them.
    for _ in range(5):
        guess = f"{rng.choice(['root', 'test', 'info', 'sales'])}@{organization.slug}.test"
        when = now - timedelta(days=rng.randint(1, days), minutes=rng.randint(0, 600))
        events.append(
            _event(
                rng,
                when=when,
                organization=organization,
                event_type=EventType.LOGIN_FAILED,
                user=None,
                label=guess,
                place=ATTACKER,
                agent="curl/8.5.0",
                outcome=Outcome.FAILURE,
                reason=Reason.UNKNOWN_USER,
                details={"attempted_username": guess},
            )
        )
    events.sort(key=lambda e: e.occurred_at)
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    return len(events)
