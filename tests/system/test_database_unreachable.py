"""PostgreSQL out of reach (issue 12, item 11): a plain 503 page at once, not a hang; /health/
says the database is down; sign-ins work again as soon as it is back.

The server reaches PostgreSQL through the suite's TCP proxy. Cutting it closes every open
connection, then either refuses new ones or accepts them and never answers (a blackhole, which
only a connect timeout ends). Before the cut every server thread has used its connections, so
after it most threads hold a connection that is dead without knowing it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from .stack import SYSTEM, Stack
from .web import Browser, Journal, signed_in

pytestmark = SYSTEM

ADMIN = "admin@initech.test"
MEMBER = "carol@initech.test"
UNKNOWN = "nobody@initech.test"  # a failed sign-in is written on the second ("audit") connection
# Well past the connect timeout (DB_CONNECT_TIMEOUT, 3 s) on a busy machine: a server that waits
# on a database that never answers is still waiting when this runs out.
ANSWER_WITHIN = 15.0
PAGES = ["/profile/", "/profile/activity/", "/settings/security/audit-log/"]
MODES = ("blackhole", "refuse")
# Enough sign-ins at once to reach every server thread (4 processes x 2 threads).
AT_ONCE = 24


@dataclass
class Observed:
    # (mode, what) -> the answer, or None when none came within ANSWER_WITHIN
    during: dict[tuple[str, str], requests.Response | None] = field(default_factory=dict)
    after: Journal = field(default_factory=Journal)
    signed_in_after: int = 0


def _sign_ins_at_once(stack: Stack, journal: Journal) -> int:
    """AT_ONCE browsers sign in together, half rightly, half as nobody; returns how many got in."""
    got_in: list[bool] = []

    def one(index: int) -> None:
        browser = Browser(stack.base_url, journal=journal, close_connections=True)
        if index % 2:
            browser.sign_in(UNKNOWN, "not-a-password")
        else:
            got_in.append(signed_in(browser.sign_in(MEMBER)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return sum(got_in)


@pytest.fixture(scope="module")
def observed(stack: Stack) -> Observed:
    stack.ensure_running()
    seen = Observed()
    admin = Browser(stack.base_url, timeout=ANSWER_WITHIN)
    assert signed_in(admin.sign_in(ADMIN))
    api = Browser(stack.base_url, timeout=ANSWER_WITHIN)
    api.session.headers["Authorization"] = f"Bearer {stack.seeded['api_token']}"
    warm_up = Journal()
    assert _sign_ins_at_once(stack, warm_up) == AT_ONCE // 2, warm_up.failures()
    try:
        for mode in MODES:
            stack.proxy.cut(mode)
            for path in PAGES:
                seen.during[mode, path] = admin.get(path)
            seen.during[mode, "api"] = api.get("/api/v1/events")
            seen.during[mode, "sign-in"] = Browser(stack.base_url, timeout=ANSWER_WITHIN).sign_in(
                MEMBER
            )
            seen.during[mode, "health"] = Browser(stack.base_url, timeout=ANSWER_WITHIN).get(
                "/health/"
            )
    finally:
        stack.proxy.restore()
    seen.signed_in_after = _sign_ins_at_once(stack, seen.after)
    for path in PAGES:
        admin.journal = seen.after
        admin.get(path)
    return seen


def _statuses(seen: Observed, mode: str) -> dict[str, Any]:
    return {
        what: response.status_code if response is not None else "no answer"
        for (cut, what), response in seen.during.items()
        if cut == mode and what != "health"
    }


@pytest.mark.parametrize("mode", MODES)
def test_pages_answer_503_at_once_when_the_database_is_out_of_reach(
    observed: Observed, mode: str
) -> None:
    statuses = _statuses(observed, mode)
    assert statuses == dict.fromkeys(statuses, 503)


@pytest.mark.parametrize("mode", MODES)
def test_the_503_page_is_plain_and_says_to_try_again(observed: Observed, mode: str) -> None:
    response = observed.during[mode, "/settings/security/audit-log/"]
    assert response is not None
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Retry-After"]
    assert "Temporarily unavailable" in response.text
    assert ADMIN not in response.text  # nothing of the session, the user or the navigation


@pytest.mark.parametrize("mode", MODES)
def test_health_reports_the_database_down(observed: Observed, mode: str) -> None:
    response = observed.during[mode, "health"]
    assert response is not None
    assert response.status_code == 503
    assert response.json() == {"ok": False, "database": False, "redis": True}


def test_sign_ins_resume_as_soon_as_the_database_is_back(observed: Observed) -> None:
    assert observed.after.failures() == []
    assert observed.signed_in_after == AT_ONCE // 2
