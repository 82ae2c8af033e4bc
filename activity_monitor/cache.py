"""A Redis cache that answers as no cache at all while Redis cannot be reached.

Redis is an accelerator here, never a dependency of correctness. Django's RedisCache raises on a
connection error; this subclass of it (a custom backend, as Django's cache documentation allows)
turns the errors of an unreachable Redis into the answers of Django's DummyCache: every read a
miss, every write a no-op, `add` "added". With the short socket timeouts set in settings, a dead
Redis costs each call milliseconds. Errors that are not about reaching Redis (a bad value, a
wrong type) still raise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
# One warning per process per this many seconds: an outage must not flood the log.
WARN_EVERY_SECONDS = 30.0


class FailSoftRedisCache(RedisCache):
    """RedisCache that degrades to no cache (DummyCache's answers) when Redis is unreachable."""

    _last_warning = 0.0

    def _unreachable(self, operation: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - FailSoftRedisCache._last_warning >= WARN_EVERY_SECONDS:
            FailSoftRedisCache._last_warning = now
            logger.warning(
                "cache %s: Redis unreachable (%s); answering as no cache", operation, exc
            )

    def _or(self, fallback: T, method: Callable[..., T], *args: Any) -> T:
        """Call RedisCache's `method`; while Redis is unreachable, answer `fallback` instead."""
        try:
            return method(*args)
        except UNREACHABLE as exc:
            self._unreachable(method.__name__, exc)
            return fallback

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        # As DummyCache: nothing was there, so the caller goes ahead.
        return self._or(True, super().add, key, value, timeout, version)

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._or(default, super().get, key, default, version)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self._or(None, super().set, key, value, timeout, version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._or(False, super().touch, key, timeout, version)

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._or(False, super().delete, key, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return self._or({}, super().get_many, keys, version)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._or(False, super().has_key, key, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except UNREACHABLE as exc:
            self._unreachable("incr", exc)
            raise ValueError(f"Key '{key}' not found") from exc  # as for a missing key

    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        return self._or([], super().set_many, data, timeout, version)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._or(None, super().delete_many, keys, version)

    def clear(self) -> None:
        self._or(None, super().clear)
