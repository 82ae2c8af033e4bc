"""Throttling before the password hash: token buckets per client IP and per submitted address.

Every sign-in attempt, password reset request and API token check is charged to two token
buckets before anything costly runs: its client IP's (an IPv6 client by its /64, which one
customer holds) and, where an address was submitted, that address's (normalised, known or not).
A bucket holds `burst` attempts and gets one back every `refill_seconds`; an attempt that finds
either bucket empty is refused at once (HTTP 429 with Retry-After) and checks no password, so a
flood costs a Redis round trip per request, not a hash. Both buckets are charged together or not
at all, atomically, so parallel requests cannot overdraw one. A successful sign-in (and a valid
API token) gives its tokens back: only failures use a bucket up, so an office behind one NAT
address pays for its typos, not for its people signing in (Auth0 counts failed attempts too).

The limits are the platform's (settings.THROTTLE_*) unless the organization the attempt is for
set its own: the organization of the known account, or the one that verified the domain of an
unknown address. Networks on the platform's or that organization's allowlist are never throttled.
An account's own familiar device (accounts.familiarity: a device cookie or network it has signed
in from) is not refused by the account's bucket, so a stranger who drains it cannot keep the
owner out; the IP bucket still applies.

Where the buckets live: Redis (a Lua script, one round trip, the clock of Redis so every web node
agrees) when THROTTLE_REDIS_URL (REDIS_URL) is set; the database (ThrottleBucket rows under a row
lock) when it is not, as in `make run`. While Redis cannot be reached, THROTTLE_REDIS_DOWN says
"database" (the same buckets in the database; an outage starts them full) or "allow".

Throttled attempts are recorded without a row per request: the first throttled attempt of a
window (THROTTLE_EVENT_WINDOW_SECONDS, fixed windows of the epoch) for a bucket and organization
records one login.throttled, carrying the count of the window before it (its final count: that
window is closed). The store counts every throttled attempt, atomically with its window.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from audit.ip import IPNetwork, network_parse, parse_ip, resolve_client_ip
from audit.models import EventType, Outcome, Reason
from audit.services import durable_alias, event_record

from .familiarity import Source, source_of
from .lockout import attempted_name_label
from .models import THROTTLE_ALLOWLIST_WIDEST, Organization, ThrottleBucket, User

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=HttpResponse)

KEY_PREFIX = "am:throttle:"
MAX_ADDRESS_LENGTH = 254
IPV6_PREFIX = 64
# A warning per process per this many seconds while Redis is down: an outage must not flood
# the log.
WARN_EVERY_SECONDS = 30.0
# Window counts are kept this long, so the next window's event can report the last one's count.
WINDOW_TTL_SECONDS = 24 * 60 * 60


class Purpose(enum.StrEnum):
    """What was attempted; stored as details.purpose of login.throttled. Each has its own
    buckets: a flood of reset requests does not stop its victim from signing in."""

    SIGN_IN = "sign_in"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose's name
    API_TOKEN = "api_token"  # noqa: S105 - a purpose's name


class Kind(enum.StrEnum):
    IP = "ip"
    ACCOUNT = "account"


REASONS = {Kind.IP: Reason.IP_RATE_LIMIT, Kind.ACCOUNT: Reason.ACCOUNT_RATE_LIMIT}


@dataclass(frozen=True)
class Limits:
    ip_burst: int
    ip_refill_seconds: int
    account_burst: int
    account_refill_seconds: int

    @classmethod
    def of(cls, organization: Organization | None) -> Limits:
        """The organization's limits where it set them, the platform's elsewhere."""

        def pick(field: str, default: int) -> int:
            value = getattr(organization, field, None) if organization is not None else None
            return int(value) if value is not None else default

        return cls(
            ip_burst=pick("throttle_ip_burst", settings.THROTTLE_IP_BURST),
            ip_refill_seconds=pick(
                "throttle_ip_refill_seconds", settings.THROTTLE_IP_REFILL_SECONDS
            ),
            account_burst=pick("throttle_account_burst", settings.THROTTLE_ACCOUNT_BURST),
            account_refill_seconds=pick(
                "throttle_account_refill_seconds", settings.THROTTLE_ACCOUNT_REFILL_SECONDS
            ),
        )


@dataclass(frozen=True)
class Bucket:
    kind: Kind
    key: str
    burst: int
    refill_seconds: int


@dataclass(frozen=True)
class Decision:
    """What the throttle said of one attempt."""

    allowed: bool
    # Refused: seconds until the emptiest bucket has a token again, and which one it was.
    retry_after: int = 0
    refused_by: Kind | None = None
    # Allowed: the buckets charged, for throttle_refund.
    charged: tuple[Bucket, ...] = ()


ALLOWED = Decision(allowed=True)


@dataclass(frozen=True)
class WindowCount:
    started_at: float
    count: int  # throttled attempts in this window so far, this one included
    previous_started_at: float | None
    previous_count: int


class StoreUnavailable(Exception):
    """The store could not be reached (Redis down)."""


# --- Stores ------------------------------------------------------------------------------------

# KEYS: the buckets; ARGV: burst and refill seconds of each, in order. Charges one token to each
# bucket if every one holds a token, else none. Returns {0, 0} when charged, else {i, wait}: the
# bucket with the longest wait and that wait in seconds (as a string: Lua numbers go back to
# Redis as integers).
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local levels = {}
local refused, wait = 0, 0
for i = 1, #KEYS do
  local burst, refill = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or at == nil then tokens, at = burst, now end
  tokens = math.min(burst, tokens + math.max(0, now - at) / refill)
  levels[i] = tokens
  if tokens < 1 and (1 - tokens) * refill > wait then
    refused, wait = i, (1 - tokens) * refill
  end
end
if refused > 0 then return {refused, tostring(wait)} end
for i = 1, #KEYS do
  local burst, refill = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i] - 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[i], math.ceil(burst * refill) + 60)
end
return {0, '0'}
"""

# KEYS: the buckets; ARGV: burst and refill seconds of each. Gives one token back to each.
_GIVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
for i = 1, #KEYS do
  local burst, refill = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens ~= nil and at ~= nil then
    tokens = math.min(burst, tokens + math.max(0, now - at) / refill + 1)
    redis.call('HSET', KEYS[i], 'tokens', tostring(tokens), 'at', tostring(now))
  end
end
return 0
"""

# KEYS[1]: a window counter; ARGV: window seconds, TTL. Counts one throttled attempt in the
# current window; returns {window start, count, previous window start or '', its count}.
_COUNT = """
local now = tonumber(redis.call('TIME')[1])
local length = tonumber(ARGV[1])
local start = now - (now % length)
local state = redis.call('HMGET', KEYS[1], 'start', 'count', 'pstart', 'pcount')
if tonumber(state[1]) == start then
  local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
  return {start, count, state[3] or '', tonumber(state[4]) or 0}
end
local previous, pcount = state[1] or '', tonumber(state[2]) or 0
redis.call('HSET', KEYS[1], 'start', start, 'count', 1, 'pstart', previous, 'pcount', pcount)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {start, 1, previous, pcount}
"""


def _bucket_args(buckets: tuple[Bucket, ...]) -> list[int]:
    return [value for b in buckets for value in (b.burst, b.refill_seconds)]


_clients: dict[str, tuple[redis.Redis, Any, Any, Any]] = {}


def _redis(url: str) -> tuple[redis.Redis, Any, Any, Any]:
    """A client of the throttle's Redis with the three scripts registered, one per URL."""
    if url not in _clients:
        timeout = settings.THROTTLE_REDIS_TIMEOUT_SECONDS
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        _clients[url] = (
            client,
            client.register_script(_TAKE),
            client.register_script(_GIVE),
            client.register_script(_COUNT),
        )
    return _clients[url]


class RedisStore:
    def __init__(self, url: str) -> None:
        self.client, self._take, self._give, self._count = _redis(url)

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    def take(self, buckets: tuple[Bucket, ...]) -> tuple[int, float]:
        refused, wait = self._run(self._take, [b.key for b in buckets], _bucket_args(buckets))
        return int(refused), float(wait)

    def give(self, buckets: tuple[Bucket, ...]) -> None:
        self._run(self._give, [b.key for b in buckets], _bucket_args(buckets))

    def count(self, key: str, window_seconds: int) -> WindowCount:
        start, count, previous, previous_count = self._run(
            self._count, [key], [window_seconds, WINDOW_TTL_SECONDS]
        )
        return WindowCount(
            started_at=float(start),
            count=int(count),
            previous_started_at=float(previous) if previous not in (b"", "", None) else None,
            previous_count=int(previous_count),
        )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class DatabaseStore:
    """The same buckets as rows, each changed under its row lock in a transaction of its own
    (on the connection that commits now: a refused attempt's charge survives the request).
    A missing row is a full bucket; rows are created only when charged, so a flood of refused
    attempts at new addresses adds no rows."""

    @staticmethod
    def _locked(alias: str, keys: list[str]) -> dict[str, ThrottleBucket]:
        # In key order, so two requests charging the same pair of buckets cannot deadlock.
        rows = ThrottleBucket.objects.using(alias).select_for_update().filter(key__in=keys)
        return {row.key: row for row in rows.order_by("key")}

    @staticmethod
    def _create(alias: str, keys: list[str], now: datetime) -> None:
        # Full buckets (tokens < 0 reads as full); a row another request created first stays.
        ThrottleBucket.objects.using(alias).bulk_create(
            [ThrottleBucket(key=key, tokens=-1.0, updated_at=now) for key in keys],
            ignore_conflicts=True,
        )

    @staticmethod
    def _level(row: ThrottleBucket | None, bucket: Bucket, now: datetime) -> float:
        if row is None or row.tokens < 0:
            return float(bucket.burst)
        elapsed = max(0.0, (now - row.updated_at).total_seconds())
        return min(float(bucket.burst), row.tokens + elapsed / bucket.refill_seconds)

    def _refusal(
        self, buckets: tuple[Bucket, ...], rows: dict[str, ThrottleBucket], now: datetime
    ) -> tuple[int, float, list[float]]:
        levels = [self._level(rows.get(b.key), b, now) for b in buckets]
        refused, wait = 0, 0.0
        for index, (bucket, level) in enumerate(zip(buckets, levels, strict=True), 1):
            if level < 1 and (1 - level) * bucket.refill_seconds > wait:
                refused, wait = index, (1 - level) * bucket.refill_seconds
        return refused, wait, levels

    def take(self, buckets: tuple[Bucket, ...]) -> tuple[int, float]:
        alias = durable_alias()
        keys = sorted(b.key for b in buckets)
        with transaction.atomic(using=alias):
            now = _utc(time.time())
            rows = self._locked(alias, keys)
            refused, wait, levels = self._refusal(buckets, rows, now)
            if refused:
                return refused, wait
            if len(rows) < len(keys):
                self._create(alias, [key for key in keys if key not in rows], now)
                rows = self._locked(alias, keys)
                refused, wait, levels = self._refusal(buckets, rows, now)
                if refused:
                    return refused, wait
            for bucket, level in zip(buckets, levels, strict=True):
                row = rows[bucket.key]
                row.tokens, row.updated_at = level - 1, now
                row.save(using=alias, update_fields=["tokens", "updated_at"])
        return 0, 0.0

    def give(self, buckets: tuple[Bucket, ...]) -> None:
        alias = durable_alias()
        with transaction.atomic(using=alias):
            now = _utc(time.time())
            for row in self._locked(alias, sorted(b.key for b in buckets)).values():
                bucket = next(b for b in buckets if b.key == row.key)
                row.tokens = min(float(bucket.burst), self._level(row, bucket, now) + 1)
                row.updated_at = now
                row.save(using=alias, update_fields=["tokens", "updated_at"])

    def count(self, key: str, window_seconds: int) -> WindowCount:
        alias = durable_alias()
        with transaction.atomic(using=alias):
            now_seconds = time.time()
            start = float(int(now_seconds - now_seconds % window_seconds))
            self._create(alias, [key], _utc(now_seconds))
            row = self._locked(alias, [key])[key]
            current = row.window_started_at.timestamp() if row.window_started_at else None
            if current == start:
                row.window_count += 1
            else:
                row.previous_window_started_at = row.window_started_at
                row.previous_window_count = row.window_count
                row.window_started_at, row.window_count = _utc(start), 1
            row.updated_at = _utc(now_seconds)
            row.save(using=alias)
        previous = row.previous_window_started_at
        return WindowCount(
            started_at=start,
            count=row.window_count,
            previous_started_at=previous.timestamp() if previous else None,
            previous_count=row.previous_window_count,
        )


_last_warning = 0.0


def _warn_unreachable(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning(
            "throttle: Redis unreachable (%s); THROTTLE_REDIS_DOWN=%s",
            exc,
            settings.THROTTLE_REDIS_DOWN,
        )


def _call(operation: str, *args: Any) -> Any:
    """Run a store operation on Redis, or the database without it; while Redis is down, on the
    database or not at all (None), as THROTTLE_REDIS_DOWN says."""
    url = settings.THROTTLE_REDIS_URL
    if not url:
        return getattr(DatabaseStore(), operation)(*args)
    try:
        return getattr(RedisStore(url), operation)(*args)
    except StoreUnavailable as exc:
        _warn_unreachable(exc)
        if settings.THROTTLE_REDIS_DOWN == "allow":
            return None
        return getattr(DatabaseStore(), operation)(*args)


# --- Keys and allowlists -----------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str | None:
    """The client address as audit events record it (trusted proxies honoured)."""
    meta = request.META
    return resolve_client_ip(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES
    ).ip


def ip_key(ip: str | None) -> str:
    """An IPv4 address as itself, an IPv6 one by its /64; every unparsable one shares a key (a
    forged header that no address can be read from gets no bucket of its own)."""
    address = parse_ip(ip or "")
    if address is None:
        return "unparsable"
    if address.version == 6:
        return ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False).with_prefixlen
    return str(address)


def normalised_address(value: str) -> str:
    return str(value).strip().lower()


def _account_key(address: str) -> str:
    # Hashed: the key is bounded whatever was typed, and Redis holds no addresses.
    return hashlib.sha256(normalised_address(address).encode()).hexdigest()[:32]


def organization_allowlist(organization: Organization | None) -> list[IPNetwork]:
    """The organization's allowlist as networks (entries were checked when saved)."""
    networks: list[IPNetwork] = []
    for entry in (organization.throttle_allowlist if organization is not None else None) or []:
        try:
            networks.append(network_parse(str(entry), widest_v4=0, widest_v6=0))
        except ValueError:
            continue
    return networks


def allowlist_parse(text: str) -> list[str]:
    """An organization's allowlist from a form (one entry a line, or commas): normalised CIDRs.

    Raises ValueError with a sentence naming the first bad entry.
    """
    widest_v4, widest_v6 = THROTTLE_ALLOWLIST_WIDEST
    entries: list[str] = []
    for number, item in enumerate(text.replace(",", "\n").splitlines(), 1):
        if not item.strip():
            continue
        try:
            network = network_parse(item, widest_v4=widest_v4, widest_v6=widest_v6)
        except ValueError as refusal:
            raise ValueError(f"Line {number}: {refusal}") from None
        if network.with_prefixlen not in entries:
            entries.append(network.with_prefixlen)
    return entries


def is_allowlisted(ip: str | None, organization: Organization | None) -> bool:
    address = parse_ip(ip or "")
    if address is None:
        return False
    networks = [*settings.THROTTLE_ALLOWLIST, *organization_allowlist(organization)]
    return any(address.version == net.version and address in net for net in networks)


# --- The throttle ------------------------------------------------------------------------------


def _buckets(
    purpose: Purpose, ip: str | None, account: str | None, limits: Limits
) -> tuple[Bucket, ...]:
    buckets = [
        Bucket(
            Kind.IP,
            f"{KEY_PREFIX}{purpose}:ip:{ip_key(ip)}",
            limits.ip_burst,
            limits.ip_refill_seconds,
        )
    ]
    if account:
        buckets.append(
            Bucket(
                Kind.ACCOUNT,
                f"{KEY_PREFIX}{purpose}:account:{_account_key(account)}",
                limits.account_burst,
                limits.account_refill_seconds,
            )
        )
    return tuple(buckets)


def throttle_attempt(
    *,
    request: HttpRequest,
    purpose: Purpose,
    account: str | None = None,
    organization: Organization | None = None,
    user: User | None = None,
) -> Decision:
    """Charge an attempt to its client IP's and account's buckets, before anything costly.

    Refused: records login.throttled once per bucket, organization and window (durable), and
    says when to try again. Never raises for an unreachable Redis (THROTTLE_REDIS_DOWN).
    """
    if not settings.THROTTLE_ENABLED:
        return ALLOWED
    ip = client_ip(request)
    if is_allowlisted(ip, organization):
        return ALLOWED
    buckets = _buckets(purpose, ip, account, Limits.of(organization))
    taken = _call("take", buckets)
    if taken is None:  # Redis down and THROTTLE_REDIS_DOWN=allow
        return ALLOWED
    refused, wait = taken
    # The account's own familiar device or network is not kept out by strangers who drained the
    # account's bucket: charge its IP alone.
    if (
        refused
        and buckets[refused - 1].kind is Kind.ACCOUNT
        and user is not None
        and source_of(user=user, request=request) is Source.FAMILIAR
    ):
        buckets = buckets[:1]
        taken = _call("take", buckets)
        if taken is None:
            return ALLOWED
        refused, wait = taken
    if not refused:
        return Decision(allowed=True, charged=buckets)
    bucket = buckets[refused - 1]
    decision = Decision(allowed=False, retry_after=max(1, math.ceil(wait)), refused_by=bucket.kind)
    _throttled_record(
        request=request,
        purpose=purpose,
        bucket=bucket,
        decision=decision,
        account=account,
        organization=organization,
        user=user,
    )
    return decision


def throttle_refund(*, decision: Decision) -> None:
    """Give a successful attempt's tokens back (a right password, a valid API token)."""
    if decision.charged:
        _call("give", decision.charged)


def _throttled_record(
    *,
    request: HttpRequest,
    purpose: Purpose,
    bucket: Bucket,
    decision: Decision,
    account: str | None,
    organization: Organization | None,
    user: User | None,
) -> None:
    """Count the throttled attempt in its window; the window's first records login.throttled."""
    window_seconds = settings.THROTTLE_EVENT_WINDOW_SECONDS
    org_part = str(organization.pk) if organization is not None else "-"
    window = _call("count", f"{bucket.key}:window:{org_part}", window_seconds)
    if window is not None and window.count > 1:
        return  # this window's event is written
    details: dict[str, Any] = {
        "purpose": str(purpose),
        "throttle": str(bucket.kind),
        "retry_after_seconds": decision.retry_after,
        "limit": {"burst": bucket.burst, "refill_seconds": bucket.refill_seconds},
        "window_seconds": window_seconds,
    }
    if bucket.kind is Kind.IP:
        details["client_network"] = ip_key(client_ip(request))
    if account:
        details["attempted_username"] = attempted_name_label(normalised_address(account))
    if window is not None:
        details["window_started_at"] = _utc(window.started_at).isoformat()
        # The window before this one (of this bucket and organization) is over: its count is
        # final. None when this bucket was not throttled in it.
        if window.previous_started_at is not None:
            details["previous_window"] = {
                "started_at": _utc(window.previous_started_at).isoformat(),
                "count": window.previous_count,
            }
    else:
        details["window_unavailable"] = True  # Redis down: every throttled attempt recorded
    event_record(
        event_type=EventType.LOGIN_THROTTLED,
        outcome=Outcome.FAILURE,
        reason=REASONS[bucket.kind],
        actor=user,
        actor_label="" if user is not None else details.get("attempted_username", ""),
        organization=organization,
        details=details,
        request=request,
        durable=True,
    )


def throttle_buckets_purge() -> int:
    """Delete the database's buckets and window counts idle for WINDOW_TTL_SECONDS (as Redis
    expires its keys): a bucket idle that long reads as full again. Returns how many."""
    cutoff = _utc(time.time() - WINDOW_TTL_SECONDS)
    deleted, _ = ThrottleBucket.objects.filter(updated_at__lt=cutoff).delete()
    return deleted


def throttled_response(response: R, decision: Decision) -> R:
    """The page or answer of a throttled attempt, as HTTP 429 with Retry-After (RFC 6585)."""
    response.status_code = 429
    response["Retry-After"] = str(decision.retry_after)
    return response


def retry_after_text(seconds: int) -> str:
    """'a minute', '15 minutes', '2 hours': when to try again, for people."""
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return "a minute"
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"
