from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from accounts.models import Organization, User
from audit.models import AuditEvent

from .factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page

LOGIN_URL = reverse("accounts:login")

T = TypeVar("T")

# The Content-Security-Policy every response carries (issue 12, finding 9), one directive each.
CSP_POLICY = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
}


def client_as(user: User, **environ: Any) -> Client:
    """A test client already signed in as `user` (no sign-in view runs)."""
    client = Client(**environ)
    client.force_login(user)
    return client


def sign_in(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN_URL, {"email": email, "password": password}, **extra)


def submit_sign_in(
    page: Page, email: str, password: str = PASSWORD, path: str = "/sign-in/"
) -> None:
    """In the browser: open `path` (the sign-in page, or a page that sends there), fill, submit."""
    page.goto(path)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def events(event_type: str | None = None, **filters) -> list[AuditEvent]:
    queryset = AuditEvent.objects.order_by("id")
    if event_type:
        queryset = queryset.filter(event_type=event_type)
    return list(queryset.filter(**filters))


def events_made(organization: Organization, user: User, count: int, **fields: Any) -> None:
    """`count` events by `user` a minute apart from 1 March 2026, in Germany unless `fields` say
    otherwise (the browser tests' pages to read, filter and search)."""
    base = datetime(2026, 3, 1, tzinfo=UTC)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                organization=organization,
                actor=user,
                actor_label=user.email,
                occurred_at=base + timedelta(minutes=i),
                **{"country": "DE", **fields},
            )
            for i in range(count)
        ]
    )


def csp_directives(header: str) -> set[str]:
    """A Content-Security-Policy header's directives (django-csp writes them in no fixed order)."""
    return {part.strip() for part in header.split(";")}


def all_at_once(*actions: Callable[[], T]) -> list[T]:
    """Run each action in a thread of its own, all released together; their results, in order.

    Each thread closes its database connections as it ends. An action that raises or hangs
    fails the test here.
    """
    barrier = threading.Barrier(len(actions))
    results: dict[int, T] = {}

    def run(index: int, action: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = action()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == len(actions), "an action raised or hung"
    return [results[index] for index in range(len(actions))]


def wait_for_a_blocked_statement(*, seconds: float = 10) -> None:
    """Return once a statement of this database waits for a lock (PostgreSQL); fail after
    `seconds`. Call it from the transaction that holds the lock."""
    with connection.cursor() as cursor:
        for _ in range(int(seconds / 0.05)):
            # Activity is read once per transaction unless the snapshot is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            threading.Event().wait(0.05)
    raise AssertionError("no statement waited for the lock")
