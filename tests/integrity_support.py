"""Shared pieces of the integrity tests: a signing key, events, and an attacker with the owner's
rights who turns the append-only guard off."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent, EventType
from audit.services import event_record
from integrity.keys import new_key

from .db_support import has_owner_role, owner_connect


@pytest.fixture(name="signing_key", autouse=True)
def signing_key_fixture(settings):
    settings.INTEGRITY_SIGNING_KEY = new_key()
    return settings.INTEGRITY_SIGNING_KEY


def events_made(organization, count: int, **kwargs: Any) -> list[AuditEvent]:
    """`count` events of the organization, each committed in a transaction of its own."""
    made = []
    for index in range(count):
        with transaction.atomic():
            made.append(
                event_record(
                    event_type=EventType.LOGIN_SUCCEEDED,
                    organization=organization,
                    actor_label=f"person{index}@example.com",
                    details={"n": index, "note": "café ✓"},
                    **kwargs,
                )
            )
    horizon_passes(max(event.txid or 0 for event in made))
    return made


def horizon_passes(txid: int, *, seconds: float = 120) -> None:
    """Wait until every transaction up to `txid` has ended: other sessions of the same server
    (other tests, other databases) hold the horizon back for a moment (api.feed)."""
    deadline = time.monotonic() + seconds
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            if cursor.fetchone()[0] > txid:
                return
        assert time.monotonic() < deadline, "a long transaction on the server holds the horizon"
        time.sleep(0.05)


def as_attacker(*statements: tuple[str, list[Any]]) -> None:
    """Run statements as the tables' owner with every append-only trigger turned off, in one
    transaction (the triggers are back on when it commits), as someone with database access
    would."""

    def run(execute: Any) -> None:
        tables = [
            row[0]
            for row in execute(
                "SELECT c.oid::regclass::text FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname IN "
                "('audit_event_append_only', 'integrity_seal_append_only')",
                [],
            )
        ]
        for table in tables:
            execute(f"ALTER TABLE {table} DISABLE TRIGGER USER", None)
        for sql, params in statements:
            execute(sql, params)
        for table in tables:
            execute(f"ALTER TABLE {table} ENABLE TRIGGER USER", None)

    if has_owner_role():
        with owner_connect() as owner:

            def execute(sql: str, params: Any) -> list[Any]:
                found = owner.execute(sql, params)
                return found.fetchall() if found.description else []

            run(execute)
        return
    with transaction.atomic(), connection.cursor() as cursor:

        def execute(sql: str, params: Any) -> list[Any]:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

        run(execute)
