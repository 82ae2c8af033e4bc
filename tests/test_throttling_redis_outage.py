"""The sign-in throttle while its Redis is down (issue 14, "Bad input"): THROTTLE_REDIS_DOWN.

A private Redis (tests/fault_support.py) holds the buckets, the cache and the broker, and is
stopped under the real sign-in view. "database" goes on throttling with the database's buckets;
"allow" lets every attempt through to the password check. Neither answers 500, and every attempt
leaves its audit event (login.failed when checked, login.throttled once a window when not).
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import EventType

from .fault_support import REDIS_URL, app_on_private_redis, private_redis
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db

ATTACKER_IP = "198.51.100.66"


@pytest.fixture
def small_limits(settings):
    settings.THROTTLE_IP_BURST = 5
    settings.THROTTLE_IP_REFILL_SECONDS = 600
    settings.THROTTLE_ACCOUNT_BURST = 4


def spray(client: Client, times: int, tag: str) -> list[int]:
    return [sign_in(client, f"{tag}{n}@example.test", "wrong").status_code for n in range(times)]


def test_with_redis_down_the_database_takes_over_the_throttling(settings, small_limits):
    settings.THROTTLE_REDIS_DOWN = "database"
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    with private_redis() as redis, app_on_private_redis(settings):
        settings.THROTTLE_REDIS_URL = REDIS_URL
        assert spray(attacker, 3, "up") == [200] * 3  # charged in Redis
        redis.stop()

        # The database's buckets start full: the burst again, then 429; never a 500.
        assert spray(attacker, 8, "down") == [200] * 5 + [429] * 3

    failed = events(EventType.LOGIN_FAILED)
    assert len(failed) == 8  # every checked attempt recorded
    [throttled] = events(EventType.LOGIN_THROTTLED)
    assert throttled.details["attempted_username"] == "down5@example.test"


def test_with_redis_down_allow_lets_every_attempt_through_and_records_it(settings, small_limits):
    settings.THROTTLE_REDIS_DOWN = "allow"
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    with private_redis() as redis, app_on_private_redis(settings):
        settings.THROTTLE_REDIS_URL = REDIS_URL
        assert spray(attacker, 5, "up") == [200] * 5
        assert sign_in(attacker, "up9@example.test", "wrong").status_code == 429
        redis.stop()

        assert spray(attacker, 10, "down") == [200] * 10

    assert len(events(EventType.LOGIN_FAILED)) == 15
    assert len(events(EventType.LOGIN_THROTTLED)) == 1  # the one before the outage


def test_the_api_and_password_reset_answer_while_the_throttles_redis_is_down(
    settings, small_limits
):
    settings.THROTTLE_REDIS_DOWN = "database"
    client = Client(REMOTE_ADDR=ATTACKER_IP)
    with private_redis() as redis, app_on_private_redis(settings):
        settings.THROTTLE_REDIS_URL = REDIS_URL
        redis.stop()
        codes = [
            client.get(reverse("api:events"), HTTP_AUTHORIZATION=f"Bearer am_x{n}").status_code
            for n in range(6)
        ]
        assert codes == [401] * 5 + [429]
        resets = [
            client.post(
                reverse("accounts:password-reset"), {"email": f"r{n}@example.test"}
            ).status_code
            for n in range(3)
        ]
        assert resets == [303] * 3
