"""Synthetic events in bulk, for benchmarks and demos.

On PostgreSQL the server generates every row (INSERT ... SELECT over generate_series, each row
built from hashes of its number and small lookup tables); elsewhere rows go through
bulk_create. Times rise monotonically with the row number, so ids follow time as they do in
production, and every event type of the brief appears with a plausible share.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, Role, Tier, User
from audit.context import short_hash
from audit.models import AgentKey, AuditEvent, EventType, Outcome, Reason, agent_ids
from audit.partitions import months_ensure
from audit.useragent import ParsedAgent, parse_user_agent

from .activity import ATTACKER, PLACES, USER_AGENTS
from .seed import DEMO_PASSWORD

EXTRA_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0",
]
AGENTS = USER_AGENTS + EXTRA_AGENTS
MORE_PLACES = [
    ("FR", "Paris", 48.86, 2.35, "192.0.3."),
    ("IN", "Bengaluru", 12.97, 77.59, "198.51.102."),
    ("AU", "Sydney", -33.87, 151.21, "203.0.115."),
    ("CA", "Toronto", 43.65, -79.38, "198.51.103."),
]
ALL_PLACES = PLACES + MORE_PLACES
BOT_AGENT = "python-requests/2.32.3"

# (event type, outcome, reason, details, weight): shares close to a real tenant's, where
# sign-ins and sessions dominate and administration is rare.
_MIX: list[tuple[str, str, str, dict[str, object], int]] = [
    (EventType.LOGIN_SUCCEEDED, Outcome.SUCCESS, "", {"method": "password"}, 180),
    (EventType.LOGIN_SUCCEEDED, Outcome.SUCCESS, "", {"method": "password+totp"}, 60),
    (
        EventType.LOGIN_FAILED,
        Outcome.FAILURE,
        Reason.INVALID_CREDENTIALS,
        {"method": "password"},
        45,
    ),
    (EventType.LOGIN_FAILED, Outcome.FAILURE, Reason.MFA_FAILED, {"method": "password+totp"}, 6),
    (EventType.LOGIN_FAILED, Outcome.FAILURE, Reason.ACCOUNT_LOCKED, {"method": "password"}, 3),
    (
        EventType.LOGIN_THROTTLED,
        Outcome.FAILURE,
        Reason.IP_RATE_LIMIT,
        {
            "purpose": "sign_in",
            "throttle": "ip",
            "limit": {"burst": 100, "refill_seconds": 864},
            "window_seconds": 900,
            "previous_window": {"started_at": "2026-01-05T09:00:00+00:00", "count": 412},
        },
        1,
    ),
    (EventType.LOGOUT, Outcome.SUCCESS, "", {}, 150),
    (EventType.SESSION_STARTED, Outcome.SUCCESS, "", {}, 240),
    (EventType.SESSION_ENDED, Outcome.SUCCESS, Reason.LOGOUT, {}, 150),
    (EventType.SESSION_ENDED, Outcome.SUCCESS, Reason.REVOKED_BY_USER, {}, 4),
    (EventType.SESSION_ENDED, Outcome.SUCCESS, Reason.REVOKED_BY_ADMIN, {}, 1),
    (EventType.SESSION_EXPIRED, Outcome.SUCCESS, Reason.EXPIRED, {}, 80),
    (
        EventType.SESSION_LOCATION_CHANGED,
        Outcome.SUCCESS,
        "",
        {
            "started": {"ip": "198.51.100.20", "network": "198.51.100.0/24", "country": "US"},
            "new": {"ip": "198.51.103.40", "network": "198.51.103.0/24", "country": "US"},
        },
        5,
    ),
    (EventType.MFA_VERIFIED, Outcome.SUCCESS, "", {"device": "totp"}, 60),
    (EventType.MFA_VERIFICATION_FAILED, Outcome.FAILURE, Reason.MFA_FAILED, {"device": "totp"}, 6),
    (
        EventType.MFA_DEVICE_ADDED,
        Outcome.SUCCESS,
        "",
        {"device_kind": "totp", "name": "Phone"},
        2,
    ),
    (
        EventType.MFA_DEVICE_REMOVED,
        Outcome.SUCCESS,
        "",
        {"device_kind": "totp", "name": "Old phone"},
        1,
    ),
    (EventType.MFA_BACKUP_CODES_GENERATED, Outcome.SUCCESS, "", {"count": 10}, 1),
    (EventType.MFA_RESET_BY_ADMIN, Outcome.SUCCESS, "", {"device_kind": "totp"}, 1),
    (EventType.PASSWORD_RESET_REQUESTED, Outcome.SUCCESS, "", {}, 3),
    (EventType.PASSWORD_RESET_COMPLETED, Outcome.SUCCESS, "", {}, 2),
    (EventType.PASSWORD_RESET_FAILED, Outcome.FAILURE, Reason.INVALID_TOKEN, {}, 1),
    (EventType.PASSWORD_CHANGED, Outcome.SUCCESS, "", {}, 3),
    (
        EventType.LOCKOUT_TRIGGERED,
        Outcome.SUCCESS,
        "10 failed sign-ins in 15 minutes",
        {"scope": "unfamiliar", "failures": 10, "threshold": 10, "window_minutes": 15},
        1,
    ),
    (EventType.LOCKOUT_RELEASED, Outcome.SUCCESS, Reason.EXPIRED, {"scope": "unfamiliar"}, 1),
    (EventType.ALERT_RAISED, Outcome.SUCCESS, "", {"rule": "failed_sign_ins"}, 1),
    (EventType.ALERT_ACKNOWLEDGED, Outcome.SUCCESS, "", {"rule": "failed_sign_ins"}, 1),
    (EventType.ALERT_RESOLVED, Outcome.SUCCESS, "", {"rule": "failed_sign_ins"}, 1),
    (
        EventType.MEMBER_ROLE_CHANGED,
        Outcome.SUCCESS,
        "",
        {"old": "member", "new": "security_analyst"},
        1,
    ),
    (
        EventType.SETTINGS_CHANGED,
        Outcome.SUCCESS,
        "",
        {"field": "lockout_threshold", "old": 10, "new": 8},
        1,
    ),
    (EventType.AUDIT_LOG_VIEWED, Outcome.SUCCESS, "", {"filters": {"outcome": "failure"}}, 2),
    (EventType.EXPORT_CREATED, Outcome.SUCCESS, "", {"format": "csv", "rows": 1200}, 1),
    (EventType.EXPORT_DOWNLOADED, Outcome.SUCCESS, "", {"format": "csv"}, 1),
    (EventType.RETENTION_PURGED, Outcome.SUCCESS, "", {"count": 5000}, 1),
    (
        EventType.ACTIVITY_CONFIRMED,
        Outcome.SUCCESS,
        "",
        {"event_id": 1, "event_type": "login.succeeded"},
        1,
    ),
    (
        EventType.ACTIVITY_REPORTED,
        Outcome.SUCCESS,
        "",
        {"event_id": 1, "event_type": "login.succeeded", "sessions_ended": 1},
        1,
    ),
    (EventType.MEMBER_REMOVED, Outcome.SUCCESS, "", {"role": "member"}, 1),
    (EventType.ACCESS_REVIEW_STARTED, Outcome.SUCCESS, "", {"access_review_id": 1}, 1),
    (
        EventType.ACCESS_REVIEW_DECIDED,
        Outcome.SUCCESS,
        "",
        {"access_review_id": 1, "decision": "keep", "role": "member"},
        1,
    ),
    (EventType.ACCESS_REVIEW_COMPLETED, Outcome.SUCCESS, "", {"access_review_id": 1}, 1),
    (EventType.REPORT_CREATED, Outcome.SUCCESS, "", {"framework": "soc2"}, 1),
    (EventType.REPORT_DOWNLOADED, Outcome.SUCCESS, "", {"framework": "soc2"}, 1),
    (EventType.INTEGRITY_VERIFIED, Outcome.SUCCESS, "", {"seals": 12, "problems": 0}, 1),
    (EventType.INTEGRITY_FAILED, Outcome.FAILURE, "", {"seals": 12, "problems": 1}, 1),
    (
        EventType.SEARCH_SAVED,
        Outcome.SUCCESS,
        "",
        {"log": "audit", "name": "Failed sign-ins", "query": "q=type%3Alogin.failed"},
        1,
    ),
    (EventType.SEARCH_DELETED, Outcome.SUCCESS, "", {"log": "audit", "name": "Old search"}, 1),
    (
        EventType.REVIEW_COMPLETED,
        Outcome.SUCCESS,
        "",
        {"schedule": "Security analysts' daily review", "items": 4, "followed_up": 1},
        1,
    ),
    (EventType.REVIEW_OVERDUE, Outcome.SUCCESS, "", {"schedule": "Compliance monthly review"}, 1),
]
# Events an administrator does to someone else: they carry a target user.
_TARGETED = {
    EventType.MFA_RESET_BY_ADMIN,
    EventType.LOCKOUT_TRIGGERED,
    EventType.LOCKOUT_RELEASED,
    EventType.MEMBER_ROLE_CHANGED,
}

COLUMNS = [
    "occurred_at",
    "organization_id",
    "event_type",
    "outcome",
    "reason",
    "actor_id",
    "actor_label",
    "target_user_id",
    "target_label",
    "ip_address",
    "user_agent",
    "browser",
    "os",
    "device_type",
    "device_id",
    "country",
    "city",
    "latitude",
    "longitude",
    "session_hash",
    "request_id",
    "details",
]


@dataclass
class _Person:
    organization_id: int
    user_id: int
    email: str
    # Everything about where the person usually signs in from, pre-joined as COPY text.
    home_columns: list[str]
    home_agent_columns: str
    # "user_id<TAB>email", the actor or the target pair of columns.
    actor_columns: str
    travel_agent_columns: str
    # The user agents as the dictionary keys them (audit.models.UserAgent).
    home_agent: AgentKey
    travel_agent: AgentKey


def _copy_text(value: object) -> str:
    if value is None:
        return r"\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


@functools.cache
def _parsed_agent(agent: str) -> ParsedAgent:
    return parse_user_agent(agent)


def _agent_key(agent: str) -> AgentKey:
    parsed = _parsed_agent(agent)
    return (agent, parsed.browser, parsed.os, parsed.device_type)


def _agent_columns(agent: str, user_id: int) -> str:
    parsed = _parsed_agent(agent)
    device = short_hash(f"{user_id}:{agent}", purpose="device")
    return "\t".join(
        _copy_text(v) for v in (agent, parsed.browser, parsed.os, parsed.device_type, device)
    )


def _place_columns(rng: random.Random, place: tuple[str, str, float, float, str]) -> list[str]:
    country, city, lat, lon, prefix = place
    # The IP and the place travel together: ip, then (agent), then country..longitude.
    return [f"{prefix}{rng.randint(2, 250)}", f"{country}\t{city}\t{lat}\t{lon}"]


def organizations_ensure(
    *, count: int, users_per_org: int, seed: int, using: str = DEFAULT_DB_ALIAS
) -> list[tuple[Organization, list[User]]]:
    """Create (or reuse) `count` generated organizations, each with its members."""
    tiers = [Tier.SMALL_BUSINESS, Tier.MEDIUM_BUSINESS, Tier.ENTERPRISE]
    password = ""  # hashed once, and only if a user is new
    result = []
    with transaction.atomic(using=using):
        for number in range(count):
            slug = f"gen{seed}-{number:03d}"
            organization, _ = Organization.objects.using(using).get_or_create(
                slug=slug,
                defaults={"name": f"Generated {seed}-{number:03d}", "tier": tiers[number % 3]},
            )
            emails = [f"user{j:04d}@{slug}.test" for j in range(users_per_org)]
            existing = set(
                User.objects.using(using).filter(email__in=emails).values_list("email", flat=True)
            )
            if len(existing) < len(emails) and not password:
                password = make_password(DEMO_PASSWORD)
            new_users = [
                User(email=email, full_name=f"User {j:04d} of {slug}", password=password)
                for j, email in enumerate(emails)
                if email not in existing
            ]
            User.objects.using(using).bulk_create(new_users, batch_size=1000)
            users = list(User.objects.using(using).filter(email__in=emails).order_by("email"))
            roles = [Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER]
            have = set(
                Membership.objects.using(using)
                .filter(user__in=users)
                .values_list("user_id", flat=True)
            )
            Membership.objects.using(using).bulk_create(
                [
                    Membership(
                        user=user,
                        organization=organization,
                        role=roles[j] if j < len(roles) else Role.MEMBER,
                    )
                    for j, user in enumerate(users)
                    if user.pk not in have
                ],
                batch_size=1000,
            )
            result.append((organization, users))
    return result


def _people(rng: random.Random, tenants: list[tuple[Organization, list[User]]]) -> list[_Person]:
    people = []
    for organization, users in tenants:
        for user in users:
            home = rng.choice(ALL_PLACES)
            ip, place = _place_columns(rng, home)
            travel_agent = rng.choice(AGENTS)
            home_agent = rng.choice(AGENTS)  # drawn after the travel agent, as before
            people.append(
                _Person(
                    organization_id=organization.pk,
                    user_id=user.pk,
                    email=user.email,
                    home_columns=[ip, place],
                    home_agent_columns=_agent_columns(home_agent, user.pk),
                    travel_agent_columns=_agent_columns(travel_agent, user.pk),
                    actor_columns=f"{user.pk}\t{_copy_text(user.email)}",
                    home_agent=_agent_key(home_agent),
                    travel_agent=_agent_key(travel_agent),
                )
            )
    return people


def _lines(
    *, people: list[_Person], total: int, start: datetime, end: datetime, seed: int
) -> Iterator[str]:
    """Yield `total` COPY text lines (tab-separated COLUMNS), in rising time order."""
    rng = random.Random(seed)
    mix = [
        (
            f"{event_type}\t{outcome}\t{_copy_text(reason)}",
            event_type in _TARGETED,
            _copy_text(json.dumps(details, separators=(",", ":"))),
        )
        for event_type, outcome, reason, details, _ in _MIX
    ]
    weights = [weight for *_, weight in _MIX]
    # Draw event kinds and people in blocks: random.choices is much cheaper per item in bulk.
    block = 20_000
    span_us = int((end - start).total_seconds() * 1_000_000)
    step = span_us / max(total, 1)
    attacker_ip_prefix, attacker = ATTACKER[4], f"{ATTACKER[0]}\t{ATTACKER[1]}\t{ATTACKER[2]}"
    attacker += f"\t{ATTACKER[3]}"
    travel = [_place_columns(rng, place) for place in ALL_PLACES]
    bot_agent = _agent_columns(BOT_AGENT, 0)
    rand = rng.random
    start_us = int(start.timestamp() * 1_000_000)
    last_second, second_text = -1, ""
    produced = 0
    while produced < total:
        size = min(block, total - produced)
        kinds = rng.choices(mix, weights=weights, k=size)
        who = rng.choices(people, k=size)
        # One call for the block's random hex (session hash and request id) instead of two per row.
        session_hex = rng.randbytes(8 * size).hex()
        request_hex = rng.randbytes(16 * size).hex()
        for n in range(size):
            index = produced + n
            at_us = start_us + int((index + rand()) * step)
            second, micro = divmod(at_us, 1_000_000)
            if second != last_second:  # times rise, so formatting is needed once a second
                last_second = second
                second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
            kind, targeted, details = kinds[n]
            person = who[n]
            roll = rand()
            if roll < 0.9:
                ip, place = person.home_columns
                agent = person.home_agent_columns
            elif roll < 0.98:
                ip, place = travel[index % len(travel)]
                agent = person.travel_agent_columns
            else:
                ip, place = f"{attacker_ip_prefix}{index % 250 + 2}", attacker
                agent = bot_agent
            if targeted:
                actor = "\\N\t"
                target = person.actor_columns
            else:
                actor = person.actor_columns
                target = "\\N\t"
            yield (
                f"{second_text}.{micro:06d}+00\t{person.organization_id}\t{kind}\t{actor}\t"
                f"{target}\t{ip}\t{agent}\t{place}\t{session_hex[16 * n : 16 * n + 16]}\t"
                f"{request_hex[32 * n : 32 * n + 32]}\t{details}\n"
            )
        produced += size


# --- PostgreSQL: every row generated by the server -------------------------------------------
# Python sends only the small lookup tables (people with their homes and user agents, the event
# kinds expanded to one row per unit of weight, the travel places); one INSERT ... SELECT over
# generate_series then builds each event from pseudo-random hashes of its row number, so no
# event crosses the wire and no Python runs per row.

_SERVER_CHUNK = 1_000_000

_LOOKUPS = """
CREATE TEMP TABLE gen_person (
    idx int PRIMARY KEY, organization_id bigint, user_id bigint, email text, ip inet,
    country text, city text, latitude float8, longitude float8,
    h_agent text, h_browser text, h_os text, h_device text, h_device_id text,
    t_agent text, t_browser text, t_os text, t_device text, t_device_id text,
    h_agent_id int, t_agent_id int
) ON COMMIT DROP;
CREATE TEMP TABLE gen_kind (
    slot int PRIMARY KEY, event_type text, outcome text, reason text, targeted bool,
    details jsonb
) ON COMMIT DROP;
CREATE TEMP TABLE gen_place (
    idx int PRIMARY KEY, ip inet, country text, city text, latitude float8, longitude float8
) ON COMMIT DROP;
"""

# Row n of the load: its time rises with n (a random offset within its own step, so times never
# go back and ids follow time), and independent 64-bit hashes of (n, seed + k) choose the person,
# the kind of event (slot of the weighted kinds), where it came from and its random ids.
# OFFSET 0 keeps the hashes computed once per row, not once per use.
_GENERATE = """
INSERT INTO audit_auditevent (
    occurred_at, organization_id, event_type, outcome, reason, actor_id, actor_label,
    target_user_id, target_label, ip_address, agent_id, device_id,
    country, city, latitude, longitude, session_hash, request_id, details
)
SELECT
    %(start)s::timestamptz
        + floor((r.n + r.jitter) * %(step_us)s::float8)::bigint * interval '1 microsecond',
    p.organization_id, k.event_type, k.outcome, k.reason,
    CASE WHEN k.targeted THEN NULL ELSE p.user_id END,
    CASE WHEN k.targeted THEN '' ELSE p.email END,
    CASE WHEN k.targeted THEN p.user_id END,
    CASE WHEN k.targeted THEN p.email ELSE '' END,
    CASE r.mode WHEN 0 THEN p.ip WHEN 1 THEN g.ip
        ELSE (%(attacker_prefix)s || (r.n %% 250 + 2))::inet END,
    CASE r.mode WHEN 0 THEN p.h_agent_id WHEN 1 THEN p.t_agent_id ELSE %(bot_agent_id)s END,
    CASE r.mode WHEN 0 THEN p.h_device_id WHEN 1 THEN p.t_device_id ELSE %(bot_device_id)s END,
    CASE r.mode WHEN 0 THEN p.country WHEN 1 THEN g.country ELSE %(attacker_country)s END,
    CASE r.mode WHEN 0 THEN p.city WHEN 1 THEN g.city ELSE %(attacker_city)s END,
    CASE r.mode WHEN 0 THEN p.latitude WHEN 1 THEN g.latitude
        ELSE %(attacker_latitude)s::float8 END,
    CASE r.mode WHEN 0 THEN p.longitude WHEN 1 THEN g.longitude
        ELSE %(attacker_longitude)s::float8 END,
    lpad(to_hex(r.session), 16, '0'),
    lpad(to_hex(r.request_high), 16, '0') || lpad(to_hex(r.request_low), 16, '0'),
    k.details
FROM (
    SELECT
        s.n,
        (hashint8extended(s.n, %(seed)s) & 4503599627370495)::float8 / 4503599627370496.0
            AS jitter,
        (hashint8extended(s.n, %(seed)s + 1) & 9223372036854775807) %% %(people)s AS person,
        (hashint8extended(s.n, %(seed)s + 2) & 9223372036854775807) %% %(slots)s AS slot,
        CASE WHEN (hashint8extended(s.n, %(seed)s + 3) & 9223372036854775807) %% 100 < 90
            THEN 0
            WHEN (hashint8extended(s.n, %(seed)s + 3) & 9223372036854775807) %% 100 < 98
            THEN 1 ELSE 2 END AS mode,
        hashint8extended(s.n, %(seed)s + 4) AS session,
        hashint8extended(s.n, %(seed)s + 5) AS request_high,
        hashint8extended(s.n, %(seed)s + 6) AS request_low
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS s(n)
    OFFSET 0
) r
JOIN gen_person p ON p.idx = r.person
JOIN gen_kind k ON k.slot = r.slot
JOIN gen_place g ON g.idx = r.n %% %(places)s
"""


def _load_postgres(
    cursor: Any,
    *,
    people: list[_Person],
    total: int,
    start: datetime,
    end: datetime,
    seed: int,
    progress: Callable[[int], None] | None,
) -> int:
    """Fill the lookup tables, then generate the rows on the server a chunk at a time.

    The rows of each INSERT reach the table in generate_series order (one process: the lookups
    are hashed, the series probes them in its own order), so ids follow time as in production.
    """
    rng = random.Random(seed)
    bot_agent = _agent_key(BOT_AGENT)
    agents = agent_ids(
        {bot_agent, *(p.home_agent for p in people), *(p.travel_agent for p in people)},
        using=cursor.db.alias,
    )
    cursor.execute(_LOOKUPS)
    # Parallel plans could interleave rows; one process keeps the insertion order.
    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    with cursor.cursor.copy("COPY gen_person FROM STDIN") as copy:
        for idx, person in enumerate(people):
            ip, place = person.home_columns
            copy.write(
                f"{idx}\t{person.organization_id}\t{person.actor_columns}\t{ip}\t{place}\t"
                f"{person.home_agent_columns}\t{person.travel_agent_columns}\t"
                f"{agents[person.home_agent]}\t{agents[person.travel_agent]}\n"
            )
    slots = 0
    with cursor.cursor.copy("COPY gen_kind FROM STDIN") as copy:
        for event_type, outcome, reason, details, weight in _MIX:
            kind = (
                f"{event_type}\t{outcome}\t{_copy_text(reason)}\t"
                f"{'t' if event_type in _TARGETED else 'f'}\t"
                f"{_copy_text(json.dumps(details, separators=(',', ':')))}"
            )
            for _ in range(weight):
                copy.write(f"{slots}\t{kind}\n")
                slots += 1
    travel = [_place_columns(rng, place) for place in ALL_PLACES]
    with cursor.cursor.copy("COPY gen_place FROM STDIN") as copy:
        for idx, (ip, place) in enumerate(travel):
            copy.write(f"{idx}\t{ip}\t{place}\n")
    cursor.execute("ANALYZE gen_person, gen_kind, gen_place")
    span_us = int((end - start).total_seconds() * 1_000_000)
    params: dict[str, object] = {
        "start": start,
        "step_us": span_us / max(total, 1),
        "seed": seed,
        "people": len(people),
        "slots": slots,
        "places": len(travel),
        "attacker_prefix": ATTACKER[4],
        "attacker_country": ATTACKER[0],
        "attacker_city": ATTACKER[1],
        "attacker_latitude": ATTACKER[2],
        "attacker_longitude": ATTACKER[3],
        "bot_agent_id": agents[bot_agent],
        "bot_device_id": short_hash(f"0:{BOT_AGENT}", purpose="device"),
    }
    done = 0
    while done < total:
        size = min(_SERVER_CHUNK, total - done)
        cursor.execute(_GENERATE, {**params, "first": done, "last": done + size - 1})
        done += size
        if progress:
            progress(done)
    # Dropped now, not only on commit: a caller's outer transaction may run this twice.
    cursor.execute("DROP TABLE gen_person, gen_kind, gen_place")
    return done


def _parse_line(line: str) -> AuditEvent:
    values: list[object] = [None if v == "\\N" else v for v in line.rstrip("\n").split("\t")]
    event = AuditEvent(**dict(zip(COLUMNS, values, strict=True)))
    event.occurred_at = datetime.fromisoformat(str(values[0]))
    event.details = json.loads(str(values[-1]))
    for name in ("reason", "actor_label", "target_label"):
        if getattr(event, name) is None:
            setattr(event, name, "")
    return event


# From this many rows on, dropping the secondary indexes and building them again after the load
# is several times faster than maintaining them row by row (random organizations and users
# scatter every insert across every index).
REBUILD_INDEXES_FROM = 200_000


def _may_rebuild_indexes(cursor: Any) -> bool:
    """Only the table's owner may drop its indexes; the app's role (two roles) maintains them."""
    cursor.execute(
        "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class "
        "WHERE oid = 'audit_auditevent'::regclass"
    )
    return bool(cursor.fetchone()[0])


def _indexes_drop(cursor: Any) -> list[str]:
    """Drop the events table's secondary indexes; return their definitions to build them again."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent' "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint "
        "WHERE conrelid = 'audit_auditevent'::regclass)"
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in found]


def _indexes_create(cursor: Any, definitions: list[str]) -> None:
    """Build the dropped indexes again. On the partitioned table the catalog gives each as
    `CREATE INDEX ... ON ONLY audit_auditevent`, which would make an invalid index on the table
    alone, with none on its partitions: without ONLY it is built on every partition."""
    if not definitions:
        return
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for definition in definitions:
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))


def events_generate(
    *,
    total: int,
    days: int,
    organizations: int = 10,
    users_per_org: int = 50,
    seed: int = 2026,
    end: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
    progress: Callable[[int], None] | None = None,
    rebuild_indexes: bool | None = None,
) -> int:
    """Insert `total` synthetic events spread over the `days` before `end`; returns the count.

    On PostgreSQL each month of the span gets its partition first, where the role may make it.
    A large load (see REBUILD_INDEXES_FROM) drops and rebuilds the table's
    secondary indexes inside its transaction: readers of the table wait until it commits, which
    suits benchmark and demo databases, the only places this runs.
    """
    tenants = organizations_ensure(
        count=organizations, users_per_org=users_per_org, seed=seed, using=using
    )
    rng = random.Random(seed)
    people = _people(rng, tenants)
    end = end or timezone.now()
    start = end - timedelta(days=days)
    lines = _lines(people=people, total=total, start=start.astimezone(UTC), end=end, seed=seed)
    connection = connections[using]
    chunk = 50_000
    done = 0
    if connection.vendor == "postgresql":
        # History goes into its months, not the default partition, where the loading role may
        # make them (the owner; the app's role may not, and its rows wait in the default).
        months_ensure(first=start, last=end, using=using)
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if rebuild_indexes is None:
                rebuild_indexes = total >= REBUILD_INDEXES_FROM and _may_rebuild_indexes(cursor)
            dropped = _indexes_drop(cursor) if rebuild_indexes else []
            done = _load_postgres(
                cursor,
                people=people,
                total=total,
                start=start.astimezone(UTC),
                end=end,
                seed=seed,
                progress=progress,
            )
            _indexes_create(cursor, dropped)
        return done
    batch: list[AuditEvent] = []
    for line in lines:
        batch.append(_parse_line(line))
        if len(batch) == 2000:
            AuditEvent.objects.using(using).bulk_create(batch)
            done += len(batch)
            batch.clear()
            if progress and done % chunk == 0:
                progress(done)
    AuditEvent.objects.using(using).bulk_create(batch)
    return done + len(batch)
