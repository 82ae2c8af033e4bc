"""200 sign-ins at once against one account, the right password among them (issue 12, item 1).

Each attempt is a browser of its own: it opens the sign-in page for its CSRF token, then the
wrong passwords go together, a millisecond apart, each on a new connection, and the server takes
them eight at a time. The right password (every tenth attempt from the fiftieth on) goes as soon
as the threshold's worth of wrong ones has been answered, while the rest are still in flight:
by then the account must be locked, so nobody may get in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from .stack import SYSTEM, Stack
from .web import SIGN_IN, Browser, Journal, signed_in

pytestmark = SYSTEM

ACCOUNT = "bob@globex.test"
ATTEMPTS = 200
PASSWORD = "demo-pass-2026"


def _right_password(index: int) -> bool:
    return index >= 50 and index % 10 == 0


@dataclass(frozen=True)
class Burst:
    threshold: int
    journal: Journal = field(repr=False)
    responses: list[requests.Response | None] = field(repr=False)
    # The account's events written during the burst: (id, event_type, reason), in id order.
    events: list[tuple[int, str, str]] = field(repr=False)

    def story(self) -> str:
        """The events in id order, one letter each: wrong password checked (W), refused as
        locked (L), signed in (S), account locked (X); for assertion messages."""
        letters = {
            ("login.failed", "invalid_credentials"): "W",
            ("login.failed", "account_locked"): "L",
            ("login.succeeded", ""): "S",
        }
        return "".join(
            "X" if kind == "lockout.triggered" else letters.get((kind, why), "?")
            for _, kind, why in self.events
        )

    def ids(self, event_type: str, reason: str | None = None) -> list[int]:
        return [
            pk
            for pk, kind, why in self.events
            if kind == event_type and (reason is None or why == reason)
        ]


@pytest.fixture(scope="module")
def burst(stack: Stack) -> Burst:
    stack.ensure_running()
    [(user_id, threshold)] = stack.rows(
        "SELECT u.id, o.lockout_threshold FROM accounts_user u "
        "JOIN accounts_membership m ON m.user_id = u.id "
        "JOIN accounts_organization o ON o.id = m.organization_id WHERE u.email = %s",
        [ACCOUNT],
    )
    before = stack.value("SELECT coalesce(max(id), 0) FROM audit_auditevent")
    journal = Journal()
    responses: list[requests.Response | None] = [None] * ATTEMPTS
    start: list[float] = []
    ready = threading.Barrier(ATTEMPTS, action=lambda: start.append(time.monotonic()))
    refused: list[int] = []
    threshold_refused = threading.Event()

    def attempt(index: int) -> None:
        browser = Browser(stack.base_url, journal=journal, close_connections=True)
        token = browser.csrf_token(SIGN_IN)
        ready.wait()
        right = _right_password(index)
        if right:
            threshold_refused.wait(timeout=60)
        else:
            time.sleep(max(0.0, start[0] + index / 1000 - time.monotonic()))
        password = PASSWORD if right else f"guess-{index}"
        response = browser.post(SIGN_IN, {"email": ACCOUNT, "password": password}, token=token)
        responses[index] = response
        if not right and response is not None and response.status_code == 200:
            refused.append(index)
            if len(refused) >= threshold:
                threshold_refused.set()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(ATTEMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    events = stack.rows(
        "SELECT id, event_type, reason FROM audit_auditevent WHERE id > %s "
        "AND (actor_id = %s OR target_user_id = %s) "
        "AND event_type IN ('login.failed', 'login.succeeded', 'lockout.triggered') ORDER BY id",
        [before, user_id, user_id],
    )
    return Burst(threshold=threshold, journal=journal, responses=responses, events=events)


def test_every_attempt_is_answered_without_a_server_error(burst: Burst) -> None:
    assert burst.journal.failures() == []
    assert all(response is not None for response in burst.responses)


def test_every_attempt_is_recorded_once(burst: Burst) -> None:
    recorded = len(burst.ids("login.failed")) + len(burst.ids("login.succeeded"))
    assert recorded == ATTEMPTS


def test_the_burst_locks_the_account_exactly_once(burst: Burst) -> None:
    assert len(burst.ids("lockout.triggered")) == 1, burst.story()


def test_no_one_is_let_in_after_the_lock(burst: Burst) -> None:
    assert burst.ids("login.succeeded") == [], burst.story()
    assert not any(signed_in(response) for response in burst.responses)


def test_exactly_the_threshold_of_guesses_is_checked(burst: Burst) -> None:
    """Wrong passwords checked: the threshold, all before the lock; every later attempt is
    refused as locked, its password unchecked."""
    [locked] = burst.ids("lockout.triggered")
    checked = burst.ids("login.failed", "invalid_credentials")
    assert len([pk for pk in checked if pk < locked]) == burst.threshold, burst.story()
    assert [pk for pk in checked if pk > locked] == [], burst.story()
