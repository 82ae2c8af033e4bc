"""The test database's owner, for what the app's role may not do (README, "Database roles")."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection, transaction


def has_owner_role() -> bool:
    """DATABASE_OWNER_URL is set: the tests connect as the app's role, not the tables' owner."""
    return "owner" in settings.DATABASES


def owner_connect(*, autocommit: bool = False) -> Any:
    """A connection to the test database as the tables' owner, outside Django's test case.

    Django's test case refuses queries on connections a test did not ask for, and the owner's
    is never one of them; this one is the test harness's, not the app's.
    """
    import psycopg

    owner = settings.DATABASES["owner"]
    return psycopg.connect(
        dbname=owner["NAME"],
        user=owner["USER"],
        password=owner["PASSWORD"] or None,
        host=owner["HOST"] or None,
        port=owner["PORT"] or None,
        autocommit=autocommit,
    )


def events_delete_all() -> None:
    """Delete every committed event through the guard's gate, as the table's owner.

    With two roles that is the owner's own connection; with one (SQLite, or PostgreSQL as the
    owner) the app's connection owns the table and may open the gate itself.
    """
    if has_owner_role():
        with owner_connect() as owner:
            owner.execute("SET LOCAL audit.retention_purge = 'on'")
            owner.execute("DELETE FROM audit_auditevent")
        return
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL audit.retention_purge = 'on'")
            cursor.execute("DELETE FROM audit_auditevent")
        else:
            cursor.execute("INSERT INTO audit_purge_gate (opened) VALUES (1)")
            cursor.execute("DELETE FROM audit_auditevent")
            cursor.execute("DELETE FROM audit_purge_gate")


# Filled by post_migrate when the database is created; never written by tests.
_KEPT_BY_FLUSH = {"django_content_type", "auth_permission"}


def flush_as_owner() -> None:
    """Empty every table as the owner: the app's role may not TRUNCATE (nor delete events)."""
    from django.core.management.color import no_style

    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    statements = connection.ops.sql_flush(no_style(), sorted(set(tables) - _KEPT_BY_FLUSH))
    with owner_connect() as owner:
        # The owner's own session may open the append-only guard's gate; the app's may not.
        owner.execute("SET LOCAL audit.retention_purge = 'on'")
        for statement in statements:
            owner.execute(statement)


def retention_policy_follow_settings(*, setting: str, **kwargs: Any) -> None:
    """setting_changed receiver: a test's retention settings reach the database's policy table.

    In production the owner writes the policy at migrate (audit.roles.retention_policy_write);
    a test that changes the setting would otherwise find the database keeping the old one.
    """
    if setting not in {"PLATFORM_EVENT_RETENTION_DAYS", "RETENTION_DOWNGRADE_GRACE_DAYS"}:
        return
    if connection.vendor != "postgresql":
        return
    if not has_owner_role():
        from audit.roles import retention_policy_write

        retention_policy_write(using="default")
        return
    with owner_connect(autocommit=True) as owner:
        owner.execute(
            "UPDATE audit_retention_policy SET platform_days = %s, downgrade_grace_days = %s",
            [settings.PLATFORM_EVENT_RETENTION_DAYS, settings.RETENTION_DOWNGRADE_GRACE_DAYS],
        )
