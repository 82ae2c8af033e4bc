"""Where the sign-in throttle's token buckets live: Redis, or the database without it.

accounts.throttling decides; this module only keeps the numbers. Both stores answer the same
four operations: `take` (charge one token to every bucket if each holds one, else none, and
say which bucket was empty and for how long), `give` (a token back), `count` (one more
throttled attempt in the current event window of a key, with the previous window's count) and
`mark` (note in an empty bucket until when it stays empty and which window counts its
refusals: the fast path's answer, accounts.throttle_fast; the database store keeps no marks).
Redis alone answers `refusal`: the fast path's one round trip.

Redis: one Lua script per operation (redis-py `register_script`: EVALSHA, one round trip), run
atomically by Redis on its own clock (TIME), so every web node agrees; keys expire when their
bucket is full again. Database: ThrottleBucket rows changed under row locks in a transaction of
their own. While Redis cannot be reached, THROTTLE_REDIS_DOWN says "database" or "allow" (None).
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from audit.services import durable_alias

from .models import ThrottleBucket

logger = logging.getLogger(__name__)

# A warning per process per this many seconds while Redis is down: an outage must not flood
# the log.
WARN_EVERY_SECONDS = 30.0
# Window counts are kept this long, so the next window's event can report the last one's count.
WINDOW_TTL_SECONDS = 24 * 60 * 60


class Kind(enum.StrEnum):
    IP = "ip"
    ACCOUNT = "account"
    # An organization's budget of password checks for unfamiliar attempts (off by default).
    ORGANIZATION = "organization"


@dataclass(frozen=True)
class Bucket:
    kind: Kind
    key: str
    burst: int
    refill_seconds: float


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
  redis.call('HDEL', KEYS[i], 'until', 'window')
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
    redis.call('HDEL', KEYS[i], 'until', 'window')
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


# KEYS[1]: a bucket; ARGV: its burst and refill seconds, and the key of the event window its
# refusal was counted in. If the bucket is empty, notes until when (the moment it has a token
# again at that rate: what `take` would answer) and that window; a charge or a refund clears the
# note. Returns the seconds until then, or '0' (not empty: nothing noted).
_MARK = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local burst, refill = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then return '0' end
tokens = math.min(burst, tokens + math.max(0, now - at) / refill)
if tokens >= 1 then return '0' end
local wait = (1 - tokens) * refill
redis.call('HSET', KEYS[1], 'until', tostring(now + wait), 'window', ARGV[3])
return tostring(wait)
"""

# KEYS[1]: a bucket; ARGV[1]: the event window's length. The fast path's question, without
# charging: while the bucket's mark says it is empty and the marked event window is the current
# one (its event written), counts one more refusal in that window and returns {1, wait}; else
# {0, '0'}: the full path decides (it opens a new window and writes its event). The window key
# is read from the bucket, so it is not in KEYS: one Redis, not a cluster (as every script here).
_REFUSAL = """
local state = redis.call('HMGET', KEYS[1], 'until', 'window')
local until_at, window = tonumber(state[1]), state[2]
if until_at == nil or not window then return {0, '0'} end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if now >= until_at then return {0, '0'} end
local seconds = tonumber(clock[1])
local start = seconds - (seconds % tonumber(ARGV[1]))
if tonumber(redis.call('HGET', window, 'start')) ~= start then return {0, '0'} end
redis.call('HINCRBY', window, 'count', 1)
return {1, tostring(until_at - now)}
"""


def _bucket_args(buckets: tuple[Bucket, ...]) -> list[float]:
    return [value for b in buckets for value in (b.burst, b.refill_seconds)]


@dataclass(frozen=True)
class _Scripts:
    client: redis.Redis
    take: Any
    give: Any
    count: Any
    mark: Any
    refusal: Any


_clients: dict[str, _Scripts] = {}


def _redis(url: str) -> _Scripts:
    """A client of the throttle's Redis with its scripts registered, one per URL."""
    if url not in _clients:
        timeout = settings.THROTTLE_REDIS_TIMEOUT_SECONDS
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        _clients[url] = _Scripts(
            client=client,
            take=client.register_script(_TAKE),
            give=client.register_script(_GIVE),
            count=client.register_script(_COUNT),
            mark=client.register_script(_MARK),
            refusal=client.register_script(_REFUSAL),
        )
    return _clients[url]


class RedisStore:
    def __init__(self, url: str) -> None:
        scripts = _redis(url)
        self.client = scripts.client
        self._take, self._give, self._count = scripts.take, scripts.give, scripts.count
        self._mark, self._refusal = scripts.mark, scripts.refusal

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

    def mark(self, bucket: Bucket, window_key: str) -> None:
        self._run(self._mark, [bucket.key], [bucket.burst, bucket.refill_seconds, window_key])

    def refusal(self, key: str, window_seconds: int) -> float | None:
        """Seconds the bucket stays empty if the fast path may refuse (the refusal counted),
        else None."""
        refused, wait = self._run(self._refusal, [key], [window_seconds])
        return float(wait) if int(refused) else None

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


def utc(seconds: float) -> datetime:
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
            now = utc(time.time())
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
            now = utc(time.time())
            for row in self._locked(alias, sorted(b.key for b in buckets)).values():
                bucket = next(b for b in buckets if b.key == row.key)
                row.tokens = min(float(bucket.burst), self._level(row, bucket, now) + 1)
                row.updated_at = now
                row.save(using=alias, update_fields=["tokens", "updated_at"])

    def mark(self, bucket: Bucket, window_key: str) -> None:
        """No marks in the database: without Redis every attempt takes the full path."""

    def count(self, key: str, window_seconds: int) -> WindowCount:
        alias = durable_alias()
        with transaction.atomic(using=alias):
            now_seconds = time.time()
            start = float(int(now_seconds - now_seconds % window_seconds))
            self._create(alias, [key], utc(now_seconds))
            row = self._locked(alias, [key])[key]
            current = row.window_started_at.timestamp() if row.window_started_at else None
            if current == start:
                row.window_count += 1
            else:
                row.previous_window_started_at = row.window_started_at
                row.previous_window_count = row.window_count
                row.window_started_at, row.window_count = utc(start), 1
            row.updated_at = utc(now_seconds)
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


def store_call(operation: str, *args: Any) -> Any:
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


def throttle_buckets_purge() -> int:
    """Delete the database's buckets and window counts idle for WINDOW_TTL_SECONDS (as Redis
    expires its keys): a bucket idle that long reads as full again. Returns how many."""
    cutoff = utc(time.time() - WINDOW_TTL_SECONDS)
    deleted, _ = ThrottleBucket.objects.filter(updated_at__lt=cutoff).delete()
    return deleted
