"""The sign-in throttle's state, for tests: emptied before each test, as the database is."""

from __future__ import annotations

import redis
from django.conf import settings

from accounts import throttle_fast
from accounts.throttling import KEY_PREFIX


def throttle_reset() -> None:
    """Forget every bucket and window count in the throttle's Redis (the database's rows go with
    each test's transaction or flush)."""
    # A test that stopped its Redis left the fast path standing aside for a few seconds.
    throttle_fast._stand_aside_until = 0.0
    url = settings.THROTTLE_REDIS_URL
    if not url:
        return
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.exceptions.ConnectionError:
        pass  # a test that stopped its Redis; nothing to forget there
    finally:
        client.close()
