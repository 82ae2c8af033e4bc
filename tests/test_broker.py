"""The worker's broker transport (activity_monitor.broker): acknowledging a message after the
broker connection was closed is a connection error, which Celery logs and lives through, never
the AttributeError that stops kombu's stock Redis transport's worker.

Against a real Redis of our own (tests/fault_support.py); no Celery worker needed: this is the
acknowledgement Celery makes when a task finishes after Redis went away.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection
from kombu.message import Message

from activity_monitor.broker import Transport

from .fault_support import REDIS_URL, private_redis


@pytest.fixture(scope="module")
def redis_server() -> Iterator[None]:
    with private_redis():
        yield


def _message_after_the_connection_closed(
    transport: str | type[Transport], name: str
) -> tuple[Message, Any]:
    """A message received on a channel of a connection that was then collected, as Celery's
    consumer collects its connection when Redis goes away: the task that had the message
    finishes later and acknowledges it on that channel."""
    connection = Connection(REDIS_URL, transport=transport)
    queue = connection.SimpleQueue(name)
    queue.put({"n": 1})
    received = queue.get(timeout=5)
    # The consumer's channel: one that has not asked Redis anything itself yet.
    message = Message(
        channel=connection.channel(), delivery_tag=received.delivery_tag, body=received.body
    )
    errors = connection.connection_errors
    connection.collect()
    return message, errors


def test_an_ack_after_the_connection_closed_is_logged_not_raised(redis_server, caplog):
    message, errors = _message_after_the_connection_closed(Transport, "broker-ack")
    logger = logging.getLogger("celery.worker.request")
    with caplog.at_level(logging.CRITICAL):
        message.ack_log_error(logger, errors)
    assert "Couldn't ack" in caplog.text
    assert "connection was closed" in caplog.text


def test_a_reject_after_the_connection_closed_is_logged_not_raised(redis_server, caplog):
    message, errors = _message_after_the_connection_closed(Transport, "broker-reject")
    logger = logging.getLogger("celery.worker.request")
    with caplog.at_level(logging.CRITICAL):
        message.reject_log_error(logger, errors, requeue=True)
    assert "Couldn't reject" in caplog.text


def test_kombus_stock_transport_raises_what_stops_a_worker(redis_server):
    """Why the transport exists: the stock one fails with an error Celery does not expect."""
    message, errors = _message_after_the_connection_closed("redis", "broker-stock")
    with pytest.raises(AttributeError, match="NoneType"):
        message.ack_log_error(logging.getLogger("test"), errors)


def test_an_ack_on_a_live_connection_acknowledges(redis_server):
    connection = Connection(REDIS_URL, transport=Transport)
    queue = connection.SimpleQueue("broker-live")
    queue.put({"n": 2})
    message = queue.get(timeout=5)
    message.ack()  # raises if it could not
    assert message.acknowledged
    connection.close()
