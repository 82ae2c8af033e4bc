"""Realistic generated activity for demos: weeks of sign-ins from offices, homes and trips, on
laptops and phones, with typos, second factors, password changes and a few attacks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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

# (country, city, latitude, longitude, address prefix) from documentation ranges (bench/ and the
# generated events use these too; the demo's cities are CITIES below).
PLACES = [
    ("US", "New York", 40.71, -74.01, "198.51.100."),
    ("US", "San Francisco", 37.77, -122.42, "198.51.101."),
    ("GB", "London", 51.51, -0.13, "203.0.113."),
    ("DE", "Berlin", 52.52, 13.40, "192.0.2."),
    ("JP", "Tokyo", 35.68, 139.69, "203.0.114."),
    ("BR", "São Paulo", -23.55, -46.63, "198.18.0."),
]
ATTACKER = ("RU", "Moscow", 55.75, 37.62, "198.19.7.")

Place = tuple[str, str, float, float, str]

# The demo's cities, each a /24 of the documentation (RFC 5737) or benchmarking (RFC 2544,
# 198.18.0.0/15) ranges: addresses that look like an ISP's and belong to no one. The demo's GeoIP
# database (demo.geoip) places each network in its city.
CITIES: dict[str, Place] = {
    "new-york": ("US", "New York", 40.71, -74.01, "198.51.100."),
    "san-francisco": ("US", "San Francisco", 37.77, -122.42, "198.18.10."),
    "toronto": ("CA", "Toronto", 43.65, -79.38, "198.18.12."),
    "london": ("GB", "London", 51.51, -0.13, "203.0.113."),
    "manchester": ("GB", "Manchester", 53.48, -2.24, "198.18.14."),
    "berlin": ("DE", "Berlin", 52.52, 13.40, "192.0.2."),
    "munich": ("DE", "Munich", 48.14, 11.58, "198.18.16."),
    "paris": ("FR", "Paris", 48.86, 2.35, "198.18.18."),
    "tokyo": ("JP", "Tokyo", 35.68, 139.69, "198.18.20."),
    "sao-paulo": ("BR", "São Paulo", -23.55, -46.63, "198.18.22."),
    "bengaluru": ("IN", "Bengaluru", 12.97, 77.59, "198.18.24."),
}
# Each organization's offices (most of its people work from one) and where its people travel.
OFFICES = {
    "acme": ["new-york", "new-york", "london", "toronto"],
    "globex": ["san-francisco", "san-francisco", "sao-paulo"],
    "initech": ["berlin", "munich", "paris", "tokyo"],
}
TRIPS = ["london", "paris", "tokyo", "san-francisco", "berlin", "sao-paulo", "bengaluru"]
# A laptop browser for everyone; a phone for some.
LAPTOPS = USER_AGENTS[:3] + [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
]
PHONES = USER_AGENTS[3:]
BOT = "python-requests/2.32.3"


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


def _person_activity(
    rng: random.Random,
    *,
    organization: Organization,
    user: User,
    with_mfa: bool,
    days: int,
    now: datetime,
) -> list[AuditEvent]:
    """A person's working weeks: a laptop sign-in most workdays, a phone some evenings."""
    slug = organization.slug
    office = CITIES[rng.choice(OFFICES.get(slug, ["new-york"]))]
    laptop, phone = rng.choice(LAPTOPS), rng.choice(PHONES) if rng.random() < 0.6 else None
    trip_start = rng.randint(min(3, days), days) if rng.random() < 0.25 else None
    trip = CITIES[rng.choice(TRIPS)]
    method = "password+totp" if with_mfa else "password"
    events: list[AuditEvent] = []

    def session(when: datetime, place: Place, agent: str) -> None:
        common = _Who(organization=organization, user=user, place=place, agent=agent)
        familiar = "familiar" if place is office else "unfamiliar"
        if rng.random() < 0.08:  # a typo first
            events.append(
                _event(
                    rng,
                    when=when - timedelta(seconds=rng.randint(8, 40)),
                    event_type=EventType.LOGIN_FAILED,
                    outcome=Outcome.FAILURE,
                    reason=Reason.INVALID_CREDENTIALS,
                    details={"method": "password", "source": familiar},
                    **common,
                )
            )
        key = f"{rng.getrandbits(64):016x}"
        if with_mfa:
            events.append(
                _event(
                    rng,
                    when=when,
                    event_type=EventType.MFA_VERIFIED,
                    session=key,
                    details={"device_kind": "totp", "device_name": "Authenticator app"},
                    **common,
                )
            )
        events.append(
            _event(
                rng,
                when=when,
                event_type=EventType.LOGIN_SUCCEEDED,
                session=key,
                details={"method": method},
                **common,
            )
        )
        events.append(
            _event(rng, when=when, event_type=EventType.SESSION_STARTED, session=key, **common)
        )
        end = when + timedelta(hours=rng.randint(1, 9), minutes=rng.randint(0, 59))
        if end >= now:
            return  # still signed in
        if rng.random() < 0.6:
            events.append(_event(rng, when=end, event_type=EventType.LOGOUT, session=key, **common))
            events.append(
                _event(
                    rng,
                    when=end,
                    event_type=EventType.SESSION_ENDED,
                    session=key,
                    reason=Reason.LOGOUT,
                    **common,
                )
            )
        elif when + timedelta(hours=12) < now:
            events.append(
                _event(
                    rng,
                    when=when + timedelta(hours=12),
                    event_type=EventType.SESSION_EXPIRED,
                    session=key,
                    reason=Reason.EXPIRED,
                    **common,
                )
            )

    for day in range(days, -1, -1):
        date = (now - timedelta(days=day)).astimezone(UTC)
        workday = date.weekday() < 5
        if rng.random() > (0.9 if workday else 0.12):
            continue
        away = trip_start is not None and trip_start >= day > trip_start - 4
        place = trip if away else office
        # Office hours in the office's own time, roughly: UTC offset from the longitude.
        local_nine = 9 - round(place[3] / 15)
        start = date.replace(hour=local_nine % 24, minute=0, second=0, microsecond=0)
        start += timedelta(minutes=rng.randint(-50, 70), seconds=rng.randint(0, 59))
        if start < now:
            session(start, place, laptop)
        if phone and rng.random() < 0.35:
            evening = start + timedelta(hours=rng.randint(9, 12), minutes=rng.randint(0, 59))
            if evening < now:
                session(evening, place, phone)
    who = _Who(organization=organization, user=user, place=office, agent=laptop)
    if with_mfa and rng.random() < 0.3:  # set up during the weeks shown
        events.append(
            _event(
                rng,
                when=now - timedelta(days=rng.randint(days // 2, days), hours=rng.randint(0, 6)),
                event_type=EventType.MFA_DEVICE_ADDED,
                details={"device_kind": "totp", "device_name": "Authenticator app"},
                **who,
            )
        )
    if rng.random() < 0.2:
        events.append(
            _event(
                rng,
                when=now - timedelta(days=rng.randint(1, days), hours=rng.randint(0, 8)),
                event_type=EventType.PASSWORD_CHANGED,
                **who,
            )
        )
    return events


def _brute_force(
    rng: random.Random, *, organization: Organization, victim: User, at: datetime
) -> list[AuditEvent]:
    """Someone guessing one member's password from abroad until the account locks."""
    events = [
        _event(
            rng,
            when=at + timedelta(seconds=attempt * 7),
            organization=organization,
            event_type=EventType.LOGIN_FAILED,
            user=victim,
            place=ATTACKER,
            agent=BOT,
            outcome=Outcome.FAILURE,
            reason=Reason.INVALID_CREDENTIALS,
            details={"method": "password", "source": "unfamiliar"},
        )
        for attempt in range(10)
    ]
    locked_at = at + timedelta(seconds=63)
    events.append(
        _event(
            rng,
            when=locked_at,
            organization=organization,
            event_type=EventType.LOCKOUT_TRIGGERED,
            user=None,
            label="",
            place=ATTACKER,
            agent=BOT,
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
    return events


def _spray_night(
    rng: random.Random, *, organization: Organization, users: Sequence[User], at: datetime
) -> list[AuditEvent]:
    """A night of one password tried on every account from one address (the chart's spike)."""
    prefix = f"198.19.{rng.randint(100, 199)}."
    place: Place = (ATTACKER[0], ATTACKER[1], ATTACKER[2], ATTACKER[3], prefix)
    address = f"{prefix}{rng.randint(2, 250)}"
    events = []
    for round_ in range(3):
        for n, user in enumerate(users):
            event = _event(
                rng,
                when=at + timedelta(minutes=40 * round_, seconds=9 * n),
                organization=organization,
                event_type=EventType.LOGIN_FAILED,
                user=user,
                place=place,
                agent=BOT,
                outcome=Outcome.FAILURE,
                reason=Reason.INVALID_CREDENTIALS,
                details={"method": "password", "source": "unfamiliar"},
            )
            event.ip_address = address  # one address for the whole night
            events.append(event)
    return events


def generate_demo_activity(
    *,
    organization: Organization,
    users: Sequence[User],
    days: int,
    with_mfa: frozenset[int] = frozenset(),
    seed: int = 2026,
) -> int:
    """Bulk-insert `days` of plausible activity for the organization's users (those whose ids
    are in `with_mfa` pass a second factor); returns the count."""
    rng = random.Random(f"{seed}:{organization.slug}")
    now = timezone.now()
    events: list[AuditEvent] = []
    for user in users:
        events += _person_activity(
            rng,
            organization=organization,
            user=user,
            with_mfa=user.pk in with_mfa,
            days=days,
            now=now,
        )
    victim = users[-1]
    attack = now - timedelta(days=rng.randint(2, max(2, days - 1)), hours=3)
    events += _brute_force(rng, organization=organization, victim=victim, at=attack)
    spray = now - timedelta(days=rng.randint(4, max(4, days - 2)), hours=rng.randint(0, 5))
    events += _spray_night(rng, organization=organization, users=users, at=spray)
    # Sign-in attempts for addresses that do not exist, at the organization's own domain (seeded
    # verified), so they are the organization's, as accounts.lockout records them.
    for _ in range(3 * days):
        guess = f"{rng.choice(['root', 'test', 'info', 'sales', 'admin', 'hr'])}"
        guess += f"@{organization.slug}.test"
        when = now - timedelta(days=rng.randint(1, days), minutes=rng.randint(0, 1400))
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
