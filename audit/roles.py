"""What the app's database role may do, granted by the owner after every migrate.

With DATABASE_OWNER_URL set (README, "Database roles") migrations run as the owner, on the
"owner" connection, and the app connects as DATABASE_URL's role. That role gets exactly what the
app needs: read and write on every table but the events table and the user agents it names
(audit migration 0015), INSERT and SELECT on those,
USAGE on sequences, and EXECUTE on the purge functions, audit_retention_days (audit
migrations 0008, 0009, 0014) and audit_events_partitions_ensure (0013). It never owns anything
(not one partition of the events table) and never gets UPDATE, DELETE or TRUNCATE on events,
nor any privilege on the retention policy and history tables (0009), which are not models.
Granting is idempotent, so it runs after every migrate (and after the test runner's flush)
without harm.

After every migrate the owner also writes the retention policy the purge functions read
(retention_policy_write), from settings: the app's role cannot change it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from .models import AuditEvent, UserAgent
from .partitions import partitions_ensure

OWNER_ALIAS = "owner"

# Other apps' tables the app's role may only read and add to, like the events (INSERT and
# SELECT): each app names its own in its AppConfig.ready (integrity: its seals), so audit
# imports none of them.
APPEND_ONLY_TABLES: set[str] = set()

# The owner's functions the app's role may call (each checks what the role may not).
APP_FUNCTIONS = (
    "audit_events_purge_batch(bigint, timestamptz, bigint, integer)",
    "audit_events_purge_id_range(bigint[], timestamptz[], bigint[], bigint, bigint)",
    "audit_retention_days(bigint)",
    "audit_events_partitions_ensure(integer)",
    "audit_events_purge_partition(text, bigint[], timestamptz[], bigint[])",
)


def app_role_name() -> str | None:
    """The app's role when the two roles are configured on PostgreSQL, else None."""
    owner = settings.DATABASES.get(OWNER_ALIAS)
    default = settings.DATABASES["default"]
    if owner is None or not default["ENGINE"].endswith("postgresql"):
        return None
    role = default.get("USER") or None
    return role if role != owner.get("USER") else None


def database_roles_grant(*, using: str = OWNER_ALIAS) -> str | None:
    """Grant the app's role what the app needs on `using` (the owner's connection); its name.

    Does nothing (None) unless `using` is the owner's connection of a two-role configuration.
    Refuses a role that is a superuser or a member of the owner: it could do anything the
    owner can, so the guard would protect nothing.
    """
    role = app_role_name()
    if using != OWNER_ALIAS or role is None:
        return None
    connection = connections[using]
    quote = connection.ops.quote_name
    # Append-only for the app: the events, and the user agents they name (a changed row would
    # change what every event naming it shows).
    append_only = [AuditEvent._meta.db_table, UserAgent._meta.db_table, *sorted(APPEND_ONLY_TABLES)]
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    others = ", ".join(quote(table) for table in sorted(tables) if table not in append_only)
    existing = [table for table in append_only if table in tables]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper OR pg_has_role(r.oid, current_user, 'MEMBER') "
            "FROM pg_roles r WHERE r.rolname = %s",
            [role],
        )
        row: Any = cursor.fetchone()
        if row is None:
            raise ImproperlyConfigured(
                f"The app's database role {role!r} (DATABASE_URL) does not exist: create it "
                "(README, 'Database roles') and migrate again."
            )
        if row[0]:
            raise ImproperlyConfigured(
                f"The app's database role {role!r} is a superuser or a member of the owner: "
                "it could change or delete events. Use a plain LOGIN role."
            )
        # Identifiers cannot be parameters; every name is quoted by the backend.
        app = quote(role)
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
        # Before audit migration 0009 (a partial migrate) the functions do not exist yet.
        cursor.execute(
            "SELECT f FROM unnest(%s::text[]) AS f WHERE to_regprocedure(f) IS NOT NULL",
            [list(APP_FUNCTIONS)],
        )
        functions = [f for (f,) in cursor.fetchall()]
        statements = [
            f"GRANT USAGE ON SCHEMA {quote(schema)} TO {app}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {others} TO {app}",
            *(f"REVOKE ALL ON TABLE {quote(table)} FROM {app}" for table in existing),
            *(f"GRANT SELECT, INSERT ON TABLE {quote(table)} TO {app}" for table in existing),
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {quote(schema)} TO {app}",
            # What is applied, for `showmigrations` and deployment checks; never written.
            f"GRANT SELECT ON TABLE django_migrations TO {app}",
            *(f"GRANT EXECUTE ON FUNCTION {function} TO {app}" for function in functions),
        ]
        # One transaction: between a REVOKE and its GRANT the app could not record an event,
        # and every migrate of a running deployment passes here.
        with transaction.atomic(using=using):
            for statement in statements:
                cursor.execute(statement)
    return role


def retention_policy_write(*, using: str) -> bool:
    """Write the platform retention and the downgrade grace period from settings into the
    purge functions' policy table (audit migration 0009), on `using`; whether it did.

    Only the table's owner may: `using` must be the owner's connection, or the one connection
    of a PostgreSQL configuration without a separate app role. Does nothing before 0009.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or (using != OWNER_ALIAS and app_role_name()):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('audit_retention_policy') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(
            "UPDATE audit_retention_policy SET platform_days = %s, downgrade_grace_days = %s",
            [settings.PLATFORM_EVENT_RETENTION_DAYS, settings.RETENTION_DOWNGRADE_GRACE_DAYS],
        )
    return True


def grant_after_migrate(*, using: str, **kwargs: Any) -> None:
    """post_migrate receiver: grant the app's role, write the retention policy and make the
    events table's partitions ahead after the owner migrated."""
    database_roles_grant(using=using)
    retention_policy_write(using=using)
    if using == OWNER_ALIAS or not app_role_name():
        partitions_ensure(using=using)
