"""Helpers for the alert tests: sign-ins from places, and running what waits for a commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.test import Client, TestCase

from accounts.models import User
from alerts.models import Alert
from audit.models import EventType
from audit.services import EventSpec, events_record

from .factories import PASSWORD
from .helpers import sign_in

# Addresses the conftest's test GeoIP database places (GEO_PLACES).
NEW_YORK = "198.51.100.7"
BERLIN = "203.0.113.7"
TOKYO = "192.0.2.7"
UNLOCATED = "100.64.0.9"

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"


@contextmanager
def hooks_paused() -> Iterator[None]:
    """Record events without queueing their evaluation (a lost message, a crashed worker)."""
    from audit import services

    saved = list(services._after_commit_hooks)
    services._after_commit_hooks.clear()
    try:
        yield
    finally:
        services._after_commit_hooks.extend(saved)


@contextmanager
def committing() -> Iterator[None]:
    """Run the on-commit callbacks (event evaluation, notifications) the test transaction holds."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        yield


def sign_in_from(
    client: Client,
    email: str,
    ip: str = NEW_YORK,
    password: str = PASSWORD,
    agent: str = CHROME_MAC,
):
    """Sign in through the real view and let what follows its commit run (the evaluation)."""
    with committing():
        return sign_in(client, email, password, REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)


def alerts(kind: str | None = None) -> list[Alert]:
    queryset = Alert.objects.order_by("id")
    return list(queryset.filter(kind=kind) if kind else queryset)


def failures_recorded(user: User, *, count: int, at: datetime) -> None:
    """Record `count` failed sign-ins of `user` that happened at `at` (no sign-in view runs)."""
    events_record(
        specs=[
            EventSpec(
                event_type=EventType.LOGIN_FAILED, outcome="failure", actor=user, occurred_at=at
            )
            for _ in range(count)
        ]
    )
