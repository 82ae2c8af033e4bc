"""The app's database role can add and read events, and nothing else can it do to them.

These tests connect as the app's real role (DATABASE_URL's login, not SET ROLE) to a database
migrated by the owner (DATABASE_OWNER_URL), and try each way an attacker holding the app's
connection would use to change, remove or backdate a committed event.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import Tier
from audit.context import RequestContext
from audit.models import AuditEvent, EventType
from audit.services import event_record
from retention.purge import events_purge_expired

from .factories import OrganizationFactory
from .retention_support import archive_dir_fixture, event_at  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.db_roles, pytest.mark.django_db(transaction=True)]

APP = settings.DATABASES["default"].get("USER", "")
OWNER = settings.DATABASES.get("owner", {}).get("USER", "")


@pytest.fixture
def stored() -> AuditEvent:
    """A committed event of a Small Business organization (90 days' retention), 100 days old."""
    organization = OrganizationFactory.create(tier=Tier.SMALL_BUSINESS)
    return event_at(timezone.now() - timedelta(days=100), organization)


def _refused(sql: str, params: list[int | str | None] | None = None, *, match: str) -> None:
    with (
        pytest.raises(DatabaseError, match=match),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def _both_purges_refused(event: AuditEvent, *, batch_age: str, range_age: str) -> None:
    """Both purge functions refuse `event`'s organization a cutoff of now() minus the ages."""
    _refused(
        "SELECT audit_events_purge_batch(%s, now() - %s::interval, NULL, 1000)",
        [event.organization_id, batch_age],
        match="retention purge refused",
    )
    _refused(
        "SELECT * FROM audit_events_purge_id_range(ARRAY[%s]::bigint[], "
        "ARRAY[now() - %s::interval]::timestamptz[], ARRAY[%s]::bigint[], 0, %s)",
        [event.organization_id, range_age, event.pk, event.pk + 1],
        match="retention purge refused",
    )


def _unchanged(event: AuditEvent) -> None:
    assert AuditEvent.objects.filter(pk=event.pk, reason=event.reason).exists()


def test_the_app_connects_as_a_plain_role_that_owns_nothing():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT session_user, r.rolsuper, pg_has_role(session_user, c.relowner, 'MEMBER'), "
            "pg_get_userbyid(c.relowner) FROM pg_class c, pg_roles r "
            "WHERE c.oid = 'audit_auditevent'::regclass AND r.rolname = session_user"
        )
        assert cursor.fetchone() == (APP, False, False, OWNER)
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = session_user) "
            "AND n.nspname NOT LIKE 'pg_temp%%'"
        )
        assert cursor.fetchone() == (0,)


def test_the_app_role_may_not_update_an_event(stored):
    _refused(
        "UPDATE audit_auditevent SET reason = 'edited' WHERE id = %s",
        [stored.pk],
        match="permission denied",
    )
    _unchanged(stored)


def test_the_app_role_may_not_delete_an_event(stored):
    _refused("DELETE FROM audit_auditevent WHERE id = %s", [stored.pk], match="permission denied")
    _unchanged(stored)


def test_the_app_role_may_not_truncate_the_events(stored):
    _refused("TRUNCATE audit_auditevent", match="permission denied")
    _unchanged(stored)


def test_the_app_role_may_not_disable_the_guard(stored):
    _refused(
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
        match="must be owner",
    )
    _refused("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL", match="must be owner")
    _refused("DROP TRIGGER audit_event_txid ON audit_auditevent", match="must be owner")


def test_the_app_role_may_not_replace_the_guard_function(stored):
    # Refused twice over: no CREATE on the schema, and the function is the owner's.
    _refused(
        "CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        match="permission denied|must be owner",
    )
    _refused(
        "CREATE OR REPLACE FUNCTION audit_retention_cutoff(bigint) "
        "RETURNS timestamptz LANGUAGE sql AS $$ SELECT now() $$",
        match="permission denied|must be owner",
    )
    _refused(
        "ALTER FUNCTION audit_events_purge_batch(bigint, timestamptz, bigint, integer) "
        "SECURITY INVOKER",
        match="must be owner",
    )


def test_the_app_role_may_not_become_the_owner(stored):
    _refused(f"SET ROLE {connection.ops.quote_name(OWNER)}", match="permission denied")


def test_the_app_role_may_not_create_objects_beside_ours():
    with connection.cursor() as cursor:
        cursor.execute("SELECT has_schema_privilege(current_schema(), 'CREATE')")
        assert cursor.fetchone() == (False,)


def test_opening_the_old_purge_gate_deletes_nothing(stored):
    _refused(
        "SELECT set_config('audit.retention_purge', 'on', true); "
        "DELETE FROM audit_auditevent WHERE id = %s",
        [stored.pk],
        match="permission denied",
    )
    _unchanged(stored)


def test_the_gate_does_not_open_for_a_role_that_is_not_the_owner(stored, owner_connection):
    """Even granted DELETE, a role other than the owner finds the guard shut: the setting is
    something any session can set, so the guard also asks who is deleting."""
    app = connection.ops.quote_name(APP)
    owner_connection.execute(f"GRANT DELETE ON audit_auditevent TO {app}")
    try:
        _refused(
            "SELECT set_config('audit.retention_purge', 'on', true); "
            "DELETE FROM audit_auditevent WHERE id = %s",
            [stored.pk],
            match="append-only: DELETE refused",
        )
    finally:
        owner_connection.execute(f"REVOKE DELETE ON audit_auditevent FROM {app}")
    _unchanged(stored)


def test_the_migration_gate_does_not_open_for_a_role_that_is_not_the_owner(
    stored, owner_connection
):
    """audit 0015's gate for its UPDATE counts only for the owner, as the purge gate does."""
    app = connection.ops.quote_name(APP)
    owner_connection.execute(f"GRANT UPDATE ON audit_auditevent TO {app}")
    try:
        _refused(
            "SELECT set_config('audit.schema_migration', 'on', true); "
            "UPDATE audit_auditevent SET reason = 'edited' WHERE id = %s",
            [stored.pk],
            match="append-only: UPDATE refused",
        )
    finally:
        owner_connection.execute(f"REVOKE UPDATE ON audit_auditevent FROM {app}")
    _unchanged(stored)


def test_the_owner_updates_events_only_through_the_migration_gate(stored, owner_connection):
    update = "UPDATE audit_auditevent SET reason = 'edited' WHERE id = %s"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="UPDATE refused"):
        owner_connection.execute(update, [stored.pk])
    with owner_connection.transaction(force_rollback=True):
        owner_connection.execute("SET LOCAL audit.schema_migration = 'on'")
        assert owner_connection.execute(update, [stored.pk]).rowcount == 1
    _unchanged(stored)


def test_the_app_role_may_not_change_or_delete_a_user_agent():
    """Events name their user agent's row (audit 0015): changing it would change them all."""
    event = event_record(event_type=EventType.LOGOUT, context=RequestContext(user_agent="ua/1"))
    assert event.agent_id is not None
    _refused(
        "UPDATE audit_useragent SET user_agent = 'forged' WHERE id = %s",
        [event.agent_id],
        match="permission denied",
    )
    _refused(
        "DELETE FROM audit_useragent WHERE id = %s", [event.agent_id], match="permission denied"
    )
    _refused("TRUNCATE audit_useragent", match="permission denied")
    assert AuditEvent.objects.select_related("agent").get(pk=event.pk).user_agent == "ua/1"


def test_the_purge_function_refuses_a_cutoff_newer_than_retention(stored):
    # 89 days: younger than the organization's 90 days; the event is 100 days old.
    _both_purges_refused(stored, batch_age="89 days", range_age="0 days")
    _unchanged(stored)


def test_the_purge_function_refuses_a_platform_retention_below_the_floor(settings):
    settings.PLATFORM_EVENT_RETENTION_DAYS = 1  # written to the policy as the owner would
    orphan = event_at(timezone.now() - timedelta(days=30), None, EventType.LOGIN_FAILED)
    _refused(
        "SELECT audit_events_purge_batch(NULL, now() - interval '20 days', NULL, 1000)",
        match="retention purge refused",
    )
    _unchanged(orphan)


def test_the_purge_function_refuses_an_organization_it_does_not_know(stored):
    _refused(
        "SELECT audit_events_purge_batch(%s, now() - interval '3650 days', NULL, 1000)",
        [stored.organization_id + 1000],
        match="retention purge refused",
    )


def test_the_purge_function_deletes_from_our_table_not_a_lookalike(stored):
    """A temporary table of the same name cannot stand in for ours: the path is fixed."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE audit_auditevent (LIKE public.audit_auditevent)")
        cursor.execute(
            "SELECT audit_events_purge_batch(%s, now() - interval '90 days', NULL, 1000)",
            [stored.organization_id],
        )
        assert cursor.fetchone() == (1,)
        cursor.execute("DROP TABLE pg_temp.audit_auditevent")
    assert not AuditEvent.objects.filter(pk=stored.pk).exists()


def test_the_retention_purge_deletes_what_is_expired_as_the_app_role(stored):
    kept = event_at(timezone.now() - timedelta(days=80), stored.organization)

    outcome = events_purge_expired(organization=stored.organization)

    assert (outcome.status, outcome.count) == ("succeeded", 1)
    assert not AuditEvent.objects.filter(pk=stored.pk).exists()
    assert AuditEvent.objects.filter(pk=kept.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user")
        assert cursor.fetchone() == (APP,)


def test_an_insert_with_a_chosen_txid_stores_the_inserting_transaction():
    """A backdated txid would hide the row from API pollers (api.feed); the database sets it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        (current,) = cursor.fetchone()
        event = AuditEvent.objects.create(event_type=EventType.LOGOUT, txid=1)
        cursor.execute(
            "INSERT INTO audit_auditevent (occurred_at, event_type, outcome, reason, "
            "actor_label, target_label, agent_id, device_id, "
            "country, city, session_hash, request_id, details, txid) "
            "SELECT occurred_at, event_type, outcome, reason, actor_label, target_label, "
            "agent_id, device_id, country, city, session_hash, "
            "request_id, details, 2 FROM audit_auditevent WHERE id = %s RETURNING id",
            [event.pk],
        )
        (raw,) = cursor.fetchone()

    stored = dict(AuditEvent.objects.filter(pk__in=[event.pk, raw]).values_list("pk", "txid"))
    assert stored == {event.pk: current, raw: current}
    later = event_record(event_type=EventType.LOGOUT)
    assert AuditEvent.objects.get(pk=later.pk).txid > current


# Only the settings are changed, never the open connections: the grant reads the role's name.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_granting_refuses_an_app_role_that_could_do_what_the_owner_can(settings):
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    from audit.roles import database_roles_grant

    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY rolname LIMIT 1")
        (superuser,) = cursor.fetchone()
    settings.DATABASES = {
        **settings.DATABASES,
        "default": {**settings.DATABASES["default"], "USER": superuser},
    }

    with pytest.raises(ImproperlyConfigured, match="superuser or a member of the owner"):
        database_roles_grant(using="owner")


# --- Retention the app's role cannot lower (audit migration 0009) ------------------------------


@pytest.fixture
def enterprise_event() -> AuditEvent:
    """A committed event of an Enterprise organization (seven years' retention), 200 days old."""
    organization = OrganizationFactory.create(tier=Tier.ENTERPRISE)
    return event_at(timezone.now() - timedelta(days=200), organization)


def _retention_history(owner_connection, organization_id: int) -> list[int]:
    rows = owner_connection.execute(
        "SELECT retention_days FROM audit_organization_retention "
        "WHERE organization_id = %s ORDER BY recorded_at",
        [organization_id],
    ).fetchall()
    return [days for (days,) in rows]


def test_flipping_the_tier_to_purge_deletes_nothing_and_is_recorded(
    enterprise_event, owner_connection
):
    organization_id = enterprise_event.organization_id
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_organization SET tier = 'small_business' WHERE id = %s",
            [organization_id],
        )
    _both_purges_refused(enterprise_event, batch_age="91 days", range_age="91 days")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_organization SET tier = 'enterprise' WHERE id = %s",
            [organization_id],
        )

    _unchanged(enterprise_event)
    assert _retention_history(owner_connection, organization_id) == [2555, 90, 2555]


def test_the_caller_cannot_choose_the_platform_retention():
    orphan = event_at(timezone.now() - timedelta(days=200), None, EventType.LOGIN_FAILED)
    # The platform retention is the owner's policy (365 days by default), not an argument.
    _refused(
        "SELECT audit_events_purge_batch(NULL, now() - interval '91 days', NULL, 1000)",
        match="retention purge refused",
    )
    _refused(
        "SELECT audit_events_purge_batch(NULL, now() - interval '91 days', NULL, 1000, 90)",
        match="does not exist",
    )
    _unchanged(orphan)


def test_a_downgrade_takes_effect_for_the_purge_after_the_grace_period(
    enterprise_event, owner_connection
):
    organization = enterprise_event.organization
    organization.tier = Tier.SMALL_BUSINESS
    organization.save(update_fields=["tier"])

    # Within the grace period the database keeps the seven years, and the purge asks it.
    outcome = events_purge_expired(organization=organization)
    assert (outcome.status, outcome.retention_days) == ("nothing", 2555)
    _unchanged(enterprise_event)

    # The history made older by its owner, as if the downgrade were 31 days old.
    owner_connection.execute(
        "UPDATE audit_organization_retention SET recorded_at = recorded_at - interval '31 days' "
        "WHERE organization_id = %s",
        [organization.pk],
    )
    outcome = events_purge_expired(organization=organization)
    assert (outcome.status, outcome.retention_days, outcome.count) == ("succeeded", 90, 1)
    assert not AuditEvent.objects.filter(pk=enterprise_event.pk).exists()


def test_without_a_grace_period_a_downgrade_takes_effect_at_once(enterprise_event, settings):
    settings.RETENTION_DOWNGRADE_GRACE_DAYS = 0  # written to the policy as the owner would
    organization = enterprise_event.organization
    organization.tier = Tier.SMALL_BUSINESS
    organization.save(update_fields=["tier"])

    outcome = events_purge_expired(organization=organization)

    assert (outcome.status, outcome.retention_days, outcome.count) == ("succeeded", 90, 1)


@pytest.mark.parametrize("table", ["audit_organization_retention", "audit_retention_policy"])
def test_the_app_role_has_no_privilege_on_the_retention_record(table, enterprise_event):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(%s, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, "
            "REFERENCES, TRIGGER')",
            [table],
        )
        assert cursor.fetchone() == (False,)
    for sql in (
        f"SELECT * FROM {table}",  # noqa: S608 (a fixed name)
        f"DELETE FROM {table}",  # noqa: S608
        f"UPDATE {table} SET recorded_at = now()"  # noqa: S608
        if table == "audit_organization_retention"
        else f"UPDATE {table} SET platform_days = 90",  # noqa: S608
        f"TRUNCATE {table}",
        f"ALTER TABLE {table} OWNER TO {connection.ops.quote_name(APP)}",
    ):
        _refused(sql, match="permission denied|must be owner")
    _refused(
        "INSERT INTO audit_organization_retention (organization_id, retention_days, recorded_at) "
        "VALUES (%s, 90, now() - interval '1 year')"
        if table == "audit_organization_retention"
        else "INSERT INTO audit_retention_policy VALUES (true, 1, 0)",
        [enterprise_event.organization_id] if table == "audit_organization_retention" else None,
        match="permission denied",
    )


def test_the_app_role_may_not_silence_the_retention_record():
    _refused(
        "CREATE OR REPLACE FUNCTION audit_organization_retention_record() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        match="permission denied|must be owner",
    )
    _refused(
        "CREATE OR REPLACE FUNCTION audit_retention_days(bigint) RETURNS integer "
        "LANGUAGE sql AS $$ SELECT 90 $$",
        match="permission denied|must be owner",
    )
    _refused(
        "ALTER TABLE accounts_organization DISABLE TRIGGER audit_organization_retention",
        match="must be owner",
    )
    _refused("DROP TRIGGER audit_organization_retention ON accounts_organization", match="owner")
