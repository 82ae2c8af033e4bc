"""One queued evaluation per organization at a time, batched on the worker's side.

A request's committed events join their organization's list of pending ids in Redis, and a task
is queued only when the list was empty: under a burst one message stands for every request
that arrives before a worker takes it, and that worker takes the whole list (up to
ALERTS_EVALUATION_BATCH) as it starts, so nothing lingers on the web side and the batch is as
large as the backlog. The invariant: while the list holds ids, a task that will take them is
queued (a task that leaves ids behind queues the next one).

An accelerator only: the ledger makes every evaluation exactly once whatever the list says, and
the sweep evaluates what a lost list or message left behind. Without Redis (or in eager mode)
every request queues its own task, as before; with Redis unreachable the same, after a
connection attempt bounded by CACHE_REDIS_TIMEOUT_SECONDS. The list lives on the broker's Redis.
"""

from __future__ import annotations

import contextlib
import logging
from functools import cache

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Ids nobody takes are dropped after this long (the sweep evaluates their events).
TTL_SECONDS = 120


@cache
def _connect(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=settings.CACHE_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.CACHE_REDIS_TIMEOUT_SECONDS,
    )


def _client() -> Redis:
    # The broker's Redis: the list and the messages it stands for live and die together.
    from activity_monitor.celery import app

    return _connect(app.conf.broker_url)


def _key(organization_id: int) -> str:
    # The database's name keeps two deployments (or test runs) on one Redis apart.
    return f"alerts:pending:{settings.DATABASES['default']['NAME']}:{organization_id}"


def enabled() -> bool:
    from activity_monitor.celery import app

    broker = str(app.conf.broker_url or "")
    return broker.startswith(("redis://", "rediss://")) and not app.conf.task_always_eager


def add(organization_id: int, event_ids: list[int]) -> bool:
    """Add the ids to the organization's pending list; True if the caller must queue a task
    (the list was empty, or Redis cannot say)."""
    try:
        with _client().pipeline(transaction=True) as pipe:
            pipe.rpush(_key(organization_id), *event_ids)
            pipe.expire(_key(organization_id), TTL_SECONDS)
            length, _ = pipe.execute()
    except RedisError:
        logger.warning("pending evaluations: Redis unreachable; queueing each request's own")
        return True
    return bool(length == len(event_ids))


def take(organization_id: int, limit: int) -> tuple[list[int], bool]:
    """Take up to `limit` ids from the organization's pending list; (ids, whether some remain,
    in which case the caller queues the next task)."""
    try:
        with _client().pipeline(transaction=True) as pipe:
            pipe.lpop(_key(organization_id), limit)
            pipe.llen(_key(organization_id))
            taken, remaining = pipe.execute()
    except RedisError:
        return [], False
    return [int(pk) for pk in taken or []], bool(remaining)


def forget(organization_id: int) -> None:
    """Drop the list (its task could not be queued): the next request queues one again."""
    with contextlib.suppress(RedisError):
        _client().delete(_key(organization_id))


def backlog() -> int:
    """How many event ids wait in every organization's list; RedisError when Redis cannot say."""
    if not enabled():
        return 0
    client = _client()
    keys = list(client.scan_iter(match=_key(0)[: -len("0")] + "*", count=1000))
    if not keys:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        return sum(int(length) for length in pipe.execute())
