"""Recent attacks for the demo, recorded as real requests would be.

Unlike the generated weeks (bulk-inserted history, never evaluated), these events go through the
one event path, audit.services.events_record, so the alerts app evaluates them once the seed
commits (in-process under `make run`) and their alerts are on the Alerts page at once. Acme:
MFA fatigue, session anomaly, anonymising network (a Tor exit, seeded into the exit list),
credential stuffing and a sign-in from a new country; Initech: password spraying. Addresses are
from 198.18.0.0/15 (benchmarking, like the generated attacker's); their location is what the
GeoIP database says (demo.geoip's under `make run`), else the place written here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.familiarity import network_of
from accounts.models import LockoutState, Organization, User
from audit.context import RequestContext, short_hash
from audit.geo import GeoLocation, locate
from audit.models import AuditEvent, EventType, Outcome, Reason, TorExitNode
from audit.services import EventSpec, events_record
from audit.useragent import parse_user_agent

from .activity import PLACES, USER_AGENTS

# The rules whose alerts these scenarios raise.
SCENARIO_RULES = ("mfa_fatigue", "session_anomaly", "anonymising_network", "credential_stuffing")

TOR_EXIT = "198.19.66.12"
TOR_FINGERPRINT = "A0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E6F7A8B9"
TOR_BROWSER = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
BOT_AGENT = "python-requests/2.32.3"

Place = tuple[str, str, float, float, str]
HOME: Place = PLACES[0]  # New York
MFA_ATTACKER: Place = ("NL", "Amsterdam", 52.37, 4.90, "198.19.21.")
SESSION_THIEF: Place = ("SG", "Singapore", 1.35, 103.82, "198.19.33.")
TOR: Place = ("DE", "Frankfurt am Main", 50.11, 8.68, "198.19.66.")
STUFFER: Place = ("VN", "Hanoi", 21.03, 105.85, "198.19.44.")
STUFFER_IP = f"{STUFFER[4]}10"
GUESSER: Place = ("RU", "Saint Petersburg", 59.94, 30.31, "198.19.88.")
SPRAYER: Place = ("NG", "Lagos", 6.52, 3.38, "198.19.55.")
SPRAYER_IP = f"{SPRAYER[4]}31"
TRAVEL: Place = ("AU", "Sydney", -33.87, 151.21, "198.19.77.")
# Every network above, for the demo's GeoIP database.
SCENARIO_PLACES = [MFA_ATTACKER, SESSION_THIEF, TOR, STUFFER, GUESSER, SPRAYER, TRAVEL]

# Names a stuffing list tries at the organization's domain; most are not accounts there.
GUESSED_NAMES = [
    "j.smith", "m.garcia", "sales", "info", "hr", "finance", "it-support", "d.miller",
    "s.johnson", "payroll", "k.lee", "a.brown", "t.wilson", "office", "r.martinez",
]  # fmt: skip


@dataclass(frozen=True)
class _Request:
    """Where one request of a scenario came from."""

    ip: str
    place: Place
    agent: str
    device_id: str

    @classmethod
    def of(cls, ip: str, place: Place, agent: str, device: str) -> _Request:
        return cls(ip, place, agent, short_hash(device, purpose="device"))

    @classmethod
    def usual(cls, user: User) -> _Request:
        """Where and with what the user last signed in (the generated weeks), else at home."""
        last = (
            AuditEvent.objects.filter(event_type=EventType.LOGIN_SUCCEEDED, actor=user)
            .exclude(ip_address=None)
            .order_by("-occurred_at")
            .first()
        )
        if last is None or last.latitude is None or last.longitude is None:
            return cls.of(f"{HOME[4]}23", HOME, USER_AGENTS[1], f"home-{user.pk}")
        place = (last.country, last.city, last.latitude, last.longitude, "")
        return cls(last.ip_address or "", place, last.user_agent, last.device_id)

    def context(self, rng: random.Random) -> RequestContext:
        parsed = parse_user_agent(self.agent)
        country, city, latitude, longitude, _ = self.place
        found = locate(self.ip)  # as a request would be located
        return RequestContext(
            ip_address=self.ip,
            user_agent=self.agent,
            browser=parsed.browser,
            os=parsed.os,
            device_type=parsed.device_type,
            device_id=self.device_id,
            geo=found if found.country else GeoLocation(country, city, latitude, longitude),
            request_id=f"{rng.getrandbits(128):032x}",
        )


def _record(rng: random.Random, where: _Request, *specs: EventSpec) -> None:
    events_record(specs=specs, context=where.context(rng))


def _signed_in(
    rng: random.Random, where: _Request, *, user: User, at: datetime, session: str, method: str
) -> None:
    expires = at + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    _record(
        rng,
        where,
        EventSpec(
            event_type=EventType.LOGIN_SUCCEEDED,
            actor=user,
            details={"method": method},
            occurred_at=at,
            session_hash=session,
        ),
        EventSpec(
            event_type=EventType.SESSION_STARTED,
            actor=user,
            details={"expires_at": expires.isoformat()},
            occurred_at=at,
            session_hash=session,
        ),
    )


def _mfa_fatigue(rng: random.Random, *, user: User, now: datetime) -> None:
    """Someone with the password tries code after code, and one gets through."""
    where = _Request.of(f"{MFA_ATTACKER[4]}57", MFA_ATTACKER, USER_AGENTS[0], "mfa-attacker")
    start = now - timedelta(hours=2, minutes=10)
    for attempt in range(6):
        at = start + timedelta(seconds=40 * attempt)
        _record(
            rng,
            where,
            EventSpec(
                event_type=EventType.LOGIN_FAILED,
                outcome=Outcome.FAILURE,
                reason=Reason.MFA_FAILED,
                actor=user,
                details={"method": "mfa"},
                occurred_at=at,
            ),
            EventSpec(
                event_type=EventType.MFA_VERIFICATION_FAILED,
                outcome=Outcome.FAILURE,
                reason=Reason.MFA_FAILED,
                actor=user,
                details={"device_kind": "totp"},
                occurred_at=at,
            ),
        )
    at = start + timedelta(minutes=5)
    session = f"{rng.getrandbits(64):016x}"
    _record(
        rng,
        where,
        EventSpec(
            event_type=EventType.MFA_VERIFIED,
            actor=user,
            details={"device_kind": "totp", "device_name": "Authenticator app"},
            occurred_at=at,
            session_hash=session,
        ),
    )
    _signed_in(rng, where, user=user, at=at, session=session, method="password+totp")


def _session_anomaly(rng: random.Random, *, user: User, now: datetime) -> None:
    """A session started where the user usually is, used an hour later from far away."""
    home = _Request.usual(user)
    thief = _Request(f"{SESSION_THIEF[4]}140", SESSION_THIEF, home.agent, home.device_id)
    started_at = now - timedelta(hours=4)
    session = f"{rng.getrandbits(64):016x}"
    _signed_in(rng, home, user=user, at=started_at, session=session, method="password")
    started = {"ip": home.ip, "network": network_of(home.ip), "country": home.place[0]}
    new = {"ip": thief.ip, "network": network_of(thief.ip), "country": SESSION_THIEF[0]}
    _record(
        rng,
        thief,
        EventSpec(
            event_type=EventType.SESSION_LOCATION_CHANGED,
            actor=user,
            details={
                "session_started_at": started_at.isoformat(),
                "started": started,
                "previous": started,
                "new": new,
            },
            occurred_at=started_at + timedelta(hours=1, minutes=12),
            session_hash=session,
        ),
    )


def _anonymising_network(rng: random.Random, *, user: User, now: datetime) -> None:
    """A sign-in through Tor (the exit is put on the exit list if it is not there)."""
    TorExitNode.objects.get_or_create(
        ip_address=TOR_EXIT, defaults={"fingerprint": TOR_FINGERPRINT, "loaded_at": now}
    )
    where = _Request.of(TOR_EXIT, TOR, TOR_BROWSER, "tor-browser")
    session = f"{rng.getrandbits(64):016x}"
    _signed_in(
        rng, where, user=user, at=now - timedelta(minutes=75), session=session, method="password"
    )


def _credential_stuffing(
    rng: random.Random, *, organization: Organization, users: list[User], now: datetime
) -> None:
    """A leaked list tried from one address: many accounts, at most two attempts each."""
    domain = f"{organization.slug}.test"
    targets: list[User | str] = [*users, *(f"{name}@{domain}" for name in GUESSED_NAMES)]
    start = now - timedelta(minutes=40)
    attempt = 0
    for round_ in range(2):
        for target in targets[: 15 if round_ else len(targets)]:
            where = _Request.of(STUFFER_IP, STUFFER, BOT_AGENT, "stuffer")
            at = start + timedelta(seconds=15 * attempt)
            attempt += 1
            if isinstance(target, User):
                spec = EventSpec(
                    event_type=EventType.LOGIN_FAILED,
                    outcome=Outcome.FAILURE,
                    reason=Reason.INVALID_CREDENTIALS,
                    actor=target,
                    details={"method": "password"},
                    occurred_at=at,
                )
            else:
                # An unknown address at the organization's own domain is the organization's.
                spec = EventSpec(
                    event_type=EventType.LOGIN_FAILED,
                    outcome=Outcome.FAILURE,
                    reason=Reason.UNKNOWN_USER,
                    actor_label=target,
                    organization=organization,
                    details={"attempted_username": target},
                    occurred_at=at,
                )
            _record(rng, where, spec)


def _password_spraying(
    rng: random.Random, *, organization: Organization, users: list[User], now: datetime
) -> None:
    """One common password tried once on each of the organization's accounts, from one address."""
    where = _Request.of(SPRAYER_IP, SPRAYER, BOT_AGENT, "sprayer")
    start = now - timedelta(hours=6)
    for n, user in enumerate(users):
        spec = EventSpec(
            event_type=EventType.LOGIN_FAILED,
            outcome=Outcome.FAILURE,
            reason=Reason.INVALID_CREDENTIALS,
            actor=user,
            details={"method": "password", "source": "unfamiliar"},
            occurred_at=start + timedelta(seconds=50 * n),
        )
        _record(rng, where, spec)


def _new_country(rng: random.Random, *, user: User, now: datetime) -> None:
    """The member signs in from a country they were never seen in, on a new phone."""
    where = _Request.of(f"{TRAVEL[4]}88", TRAVEL, USER_AGENTS[3], f"travel-{user.pk}")
    session = f"{rng.getrandbits(64):016x}"
    _signed_in(
        rng, where, user=user, at=now - timedelta(minutes=20), session=session, method="password"
    )


def _locked_out(rng: random.Random, *, user: User, now: datetime) -> None:
    """Ten wrong passwords from abroad a few minutes ago: the account is locked for strangers
    (smart lockout's unfamiliar scope) for the policy's 30 minutes, as the overview shows."""
    where = _Request.of(f"{GUESSER[4]}23", GUESSER, BOT_AGENT, "guesser")
    start = now - timedelta(minutes=6)
    for attempt in range(10):
        _record(
            rng,
            where,
            EventSpec(
                event_type=EventType.LOGIN_FAILED,
                outcome=Outcome.FAILURE,
                reason=Reason.INVALID_CREDENTIALS,
                actor=user,
                details={"method": "password", "source": "unfamiliar"},
                occurred_at=start + timedelta(seconds=6 * attempt),
            ),
        )
    locked_at = start + timedelta(seconds=60)
    minutes = user.membership.organization.lockout_duration_minutes
    _record(
        rng,
        where,
        EventSpec(
            event_type=EventType.LOCKOUT_TRIGGERED,
            reason="10 failed sign-ins in 15 minutes",
            target_user=user,
            organization=user.membership.organization,
            details={"scope": "unfamiliar", "failures": 10, "threshold": 10, "window_minutes": 15},
            occurred_at=locked_at,
        ),
    )
    LockoutState.objects.update_or_create(
        user=user,
        defaults={
            "unfamiliar_locked_at": locked_at,
            "unfamiliar_locked_until": locked_at + timedelta(minutes=minutes),
            "unfamiliar_counter_reset_at": locked_at,
        },
    )


def _acme(rng: random.Random, *, organization: Organization, users: dict[str, User]) -> None:
    now = timezone.now()
    slug = organization.slug
    _mfa_fatigue(rng, user=users[f"compliance@{slug}.test"], now=now)
    _session_anomaly(rng, user=users[f"admin@{slug}.test"], now=now)
    _anonymising_network(rng, user=users[f"analyst@{slug}.test"], now=now)
    stuffed = [users[f"{name}@{slug}.test"] for name in ("admin", "analyst", "compliance")]
    _credential_stuffing(rng, organization=organization, users=stuffed, now=now)
    _new_country(rng, user=users[f"alice@{slug}.test"], now=now)
    colleague = (
        User.objects.filter(membership__organization=organization)
        .exclude(email__in=list(users))  # a colleague, not a named demo sign-in
        .order_by("email")
        .first()
    )
    if colleague is not None:
        _locked_out(rng, user=colleague, now=now)


def _initech(rng: random.Random, *, organization: Organization, users: dict[str, User]) -> None:
    members = list(
        User.objects.filter(membership__organization=organization).order_by("email")[:14]
    )
    _password_spraying(rng, organization=organization, users=members, now=timezone.now())


SCENARIOS = {"acme": _acme, "initech": _initech}


def record_alert_scenarios(*, organization: Organization, users: dict[str, User]) -> None:
    """Record the organization's scenarios (if it has any) for its people (by email); they are
    evaluated once the seed commits."""
    scenarios = SCENARIOS.get(organization.slug)
    if scenarios is not None:
        scenarios(
            random.Random(f"scenarios:{organization.slug}"),
            organization=organization,
            users=users,
        )
