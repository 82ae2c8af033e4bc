"""The broker transport: kombu's Redis transport, with an acknowledgement that cannot crash the
worker once its connection is gone.

When Redis goes away while a task runs, the worker's consumer closes its connection and starts
a new one; the old connection's transport loses its client. A task that finishes after that
acknowledges its message on the old channel (task_acks_late), and kombu's Redis channel then
fails with AttributeError ('NoneType' object has no attribute 'hostname') instead of a
connection error. Celery logs a connection error on acknowledgement and carries on, but an
AttributeError escapes its event loop and stops the whole worker (seen in our system suite,
tests/system/test_redis_outage.py; celery/celery#7185, #9250).

Here the channel says what happened: its connection is closed. Celery logs "Couldn't ack" and
the worker lives on. The message itself is not lost: Redis redelivers an unacknowledged message
after its visibility timeout (and a restarted Redis that kept nothing has nothing to redeliver:
the database's sweeps find that work). Every task is safe to run twice (exactly-once lives in
the database, not in the broker).

Selected by settings.CELERY_BROKER_TRANSPORT; the broker URL stays a plain redis:// URL.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connection_gone(self) -> bool:
        return self.connection is None or self.connection.client is None

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> Any:
        if self._connection_gone():
            raise RedisConnectionError("the broker connection was closed before the ack")
        return super().basic_ack(delivery_tag, multiple=multiple)

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> Any:
        if self._connection_gone():
            raise RedisConnectionError("the broker connection was closed before the reject")
        return super().basic_reject(delivery_tag, requeue=requeue)


class Transport(redis.Transport):
    Channel = Channel
