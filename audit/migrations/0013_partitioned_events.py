"""The events table partitioned by month on PostgreSQL (issue 15, item 1).

`audit_auditevent` becomes a table partitioned by RANGE (occurred_at): one partition per
calendar month (UTC), named `audit_auditevent_pYYYY_MM`, and a default partition,
`audit_auditevent_default`, for any event whose month has none (it is kept there, never lost,
and moved into its month when that partition is made). The primary key is (id, occurred_at),
as PostgreSQL requires of a partitioned table's unique constraints; Django still knows `id` as
the key, and the identity sequence keeps ids unique. Retention then drops whole months
(audit_events_purge_partition, migration 0014) instead of deleting row by row.

The conversion runs while the table is in use. It copies every row that was final when it
began into a new partitioned table and builds each index once, after the copy, while sign-ins go
on writing to the old table; then it locks the old table (asking a few seconds at a time, so
writes never queue long behind the request), copies only the rows written meanwhile, drops the
old table and gives the new one its name. Writes wait only for that last step. No purge deletes
meanwhile (the conversion lock of 0012). One transaction: a failure anywhere, or a stop, leaves
the table as it was. It refuses to run on a table that is already partitioned. docs/scaling.md
says how long it takes per million rows.

Partitions are made ahead by audit_events_partitions_ensure, owned by the owner and executed by
the app's role (a beat task, audit.tasks.events_partitions_ensure, and after every migrate):
the app's role creates nothing and owns nothing, so it can never drop or detach a month. Every
partition carries the append-only guard itself, so a statement naming a partition directly is
refused as one naming the table.

SQLite (make run) keeps its plain table.
"""

import importlib
import re
import time

from django.db import OperationalError, migrations, transaction

# Partitions made ahead of the current month, here and by the beat task (settings
# AUDIT_PARTITIONS_AHEAD_MONTHS, at most MAX_MONTHS_AHEAD).
MONTHS_AHEAD = 3
MAX_MONTHS_AHEAD = 24
STATISTICS = importlib.import_module("audit.migrations.0007_person_organization_statistics")
PURGE_BY_KEY = importlib.import_module("audit.migrations.0012_purge_by_key")
# The swap's lock is asked for LOCK_WAIT at a time, at most LOCK_ATTEMPTS times.
LOCK_WAIT = "2s"
LOCK_ATTEMPTS = 100

# The guard of 0008, with TRUNCATE's "is it empty?" asked of the table being truncated (the
# parent or one partition) rather than of the whole table.
GUARD = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    holds_rows boolean;
BEGIN
    -- The gate counts only for the table's owner: the purge functions run as the owner and
    -- open it around their DELETE; a session of the app's role can set it but not become
    -- the owner.
    IF TG_OP IN ('DELETE', 'TRUNCATE')
       AND current_setting('audit.retention_purge', true) = 'on'
       AND pg_catalog.pg_has_role(
           current_user,
           (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID),
           'USAGE'
       ) THEN
        RETURN NULL;
    END IF;
    -- Emptying an empty table loses nothing (test runners flush with TRUNCATE).
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
           INTO holds_rows;
        IF NOT holds_rows THEN
            RETURN NULL;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

# {path}: the schema fixed in every SECURITY DEFINER function, as in 0008.
FUNCTIONS = """
-- What every partition has of its own, not inherited from the table: the append-only guard
-- (statement triggers are not cloned to partitions) and the planner's statistics on a person's
-- organization (0007: a query that is not pruned to one month is planned month by month, with
-- each month's statistics).
CREATE FUNCTION audit_events_partition_finish(p_home text, p_part text)
RETURNS void LANGUAGE plpgsql SET search_path = {path} AS $$
BEGIN
    EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC', p_home, p_part);
    EXECUTE format('CREATE TRIGGER audit_event_append_only '
                   'BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()', p_home, p_part);
    EXECUTE format('CREATE STATISTICS %I.%I (dependencies) ON actor_id, organization_id '
                   'FROM %I.%I', p_home, p_part || '_actor_org', p_home, p_part);
    EXECUTE format('CREATE STATISTICS %I.%I (dependencies) ON target_user_id, organization_id '
                   'FROM %I.%I', p_home, p_part || '_target_org', p_home, p_part);
END
$$;
REVOKE ALL ON FUNCTION audit_events_partition_finish(text, text) FROM PUBLIC;

-- One month's partition (the month of p_month, UTC); true if it was made now. Rows that
-- waited in the default partition for it move in before it is attached, in this transaction.
-- Made as a table of its own and then attached: ATTACH takes a lock on the parent that lets
-- sign-ins insert and pages read meanwhile (CREATE TABLE ... PARTITION OF would not).
CREATE FUNCTION audit_events_partition_ensure(p_month date)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}
SET lock_timeout = '5s' AS $$
DECLARE
    low timestamptz := date_trunc('month', p_month::timestamp) AT TIME ZONE 'UTC';
    high timestamptz := (date_trunc('month', p_month::timestamp) + interval '1 month')
        AT TIME ZONE 'UTC';
    part text := 'audit_auditevent_p' || to_char(p_month, 'YYYY_MM');
    -- The tables' schema: a new table goes to the first schema of the search path otherwise,
    -- which is pg_catalog here.
    home text := {schema};
    gate text := current_setting('audit.retention_purge', true);
BEGIN
    IF to_regclass(format('%I.%I', home, part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I.%I '
                   '(LIKE audit_auditevent INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', home, part);
    PERFORM set_config('audit.retention_purge', 'on', true);
    EXECUTE format(
        'WITH moved AS (DELETE FROM audit_auditevent_default '
        'WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
        'INSERT INTO %I.%I SELECT * FROM moved', home, part) USING low, high;
    PERFORM set_config('audit.retention_purge', COALESCE(gate, ''), true);
    EXECUTE format('ALTER TABLE audit_auditevent ATTACH PARTITION %I.%I '
                   'FOR VALUES FROM (%L) TO (%L)', home, part, low, high);
    PERFORM audit_events_partition_finish(home, part);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION audit_events_partition_ensure(date) FROM PUBLIC;

-- The partitions of this month (UTC) and the p_months_ahead after it; how many were made.
CREATE FUNCTION audit_events_partitions_ensure(p_months_ahead integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path} AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    made integer := 0;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > {max_ahead} THEN
        RAISE EXCEPTION 'partitions ahead must be between 0 and {max_ahead}, not %',
            p_months_ahead USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR step IN 0..p_months_ahead LOOP
        IF audit_events_partition_ensure((this_month + make_interval(months => step))::date) THEN
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;
REVOKE ALL ON FUNCTION audit_events_partitions_ensure(integer) FROM PUBLIC;
"""

def _schema(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema(), quote_literal(current_schema())")
        return cursor.fetchone()


def _refuse_if_partitioned(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'audit_auditevent'::regclass")
        (kind,) = cursor.fetchone()
    if kind == "p":
        raise RuntimeError(
            "audit_auditevent is already partitioned: the conversion (audit 0013) runs once. "
            "If this database was converted by hand, mark the migration applied with "
            "`manage.py migrate audit 0013 --fake`."
        )


def _lock_the_table(schema_editor, run):
    """Take the old table for the swap, asking a few seconds at a time: while a lock request
    waits, every write queued behind it waits too, so it never waits long for a reader (an
    export, say) to finish; it tries again a moment later instead."""
    alias = schema_editor.connection.alias
    for _ in range(LOCK_ATTEMPTS):
        try:
            with transaction.atomic(using=alias):
                run(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                run("LOCK TABLE audit_auditevent IN ACCESS EXCLUSIVE MODE")
                run("SET LOCAL lock_timeout TO DEFAULT")
            return
        except OperationalError:
            time.sleep(1)
    raise RuntimeError(
        f"could not lock audit_auditevent for the swap in {LOCK_ATTEMPTS} tries: something held "
        "it all along (a long export or report?); nothing was changed, try again."
    )


def _indexes_of_old_table(schema_editor):
    """Each secondary index of the plain table as (name, its definition on the new table)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'audit_auditevent'::regclass AND NOT i.indisprimary ORDER BY 1"
        )
        found = cursor.fetchall()
    indexes = []
    for name, definition in found:
        head = re.match(r"CREATE INDEX (\S+) ON (\S+\.)?audit_auditevent USING ", definition)
        if head is None:
            raise RuntimeError(f"unexpected index on audit_auditevent: {definition}")
        body = definition[head.end() :]
        indexes.append(
            (name, f"CREATE INDEX {name}_next ON {head.group(2) or ''}audit_auditevent_next USING {body}")
        )
    return indexes


def forward(apps, schema_editor):
    """Converted while the table stays in use: every row final when the conversion began is
    copied and indexed with the table open; then, locked for the swap, only the rows written
    meanwhile are copied, and the new table takes the old one's name."""
    if schema_editor.connection.vendor != "postgresql":
        return
    _refuse_if_partitioned(schema_editor)

    def run(sql, params=None):
        # params=None: the SQL is sent as written (its format() calls have % of their own).
        schema_editor.execute(sql, params=params)

    def value(sql, params=None):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    schema, schema_literal = _schema(schema_editor)
    path = f"pg_catalog, {schema_editor.quote_name(schema)}, pg_temp"
    # No purge deletes from the old table while it is copied (audit 0012): a row deleted after
    # its copy would come back.
    run("SELECT pg_advisory_xact_lock(%s)", [PURGE_BY_KEY.CONVERSION_LOCK])
    # Every transaction older than this has ended: its rows are in the table, final. Rows of
    # the others (txid at or above it) are copied again under the lock, at the swap.
    horizon = value("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    run(
        "CREATE TABLE audit_auditevent_next (LIKE audit_auditevent "
        "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS, "
        "CONSTRAINT audit_auditevent_next_pkey PRIMARY KEY (id, occurred_at)) "
        "PARTITION BY RANGE (occurred_at)"
    )
    run("REVOKE ALL ON TABLE audit_auditevent_next FROM PUBLIC")
    run(GUARD)
    # A month for every month that has events, and the months ahead.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_char(month, 'YYYY_MM'), month AT TIME ZONE 'UTC', "
            "(month + interval '1 month') AT TIME ZONE 'UTC' FROM generate_series("
            "  date_trunc('month', COALESCE((SELECT min(occurred_at) FROM audit_auditevent), "
            "    now()) AT TIME ZONE 'UTC'),"
            "  date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => %s),"
            "  interval '1 month') AS month",
            [MONTHS_AHEAD],
        )
        months = cursor.fetchall()
    partitions = ["audit_auditevent_default"]
    run("CREATE TABLE audit_auditevent_default PARTITION OF audit_auditevent_next DEFAULT")
    for month, low, high in months:
        partitions.append(f"audit_auditevent_p{month}")
        run(
            f"CREATE TABLE audit_auditevent_p{month} PARTITION OF audit_auditevent_next "
            "FOR VALUES FROM (%s) TO (%s)",
            [low, high],
        )
    run(FUNCTIONS.format(path=path, schema=schema_literal, max_ahead=MAX_MONTHS_AHEAD))
    for partition in partitions:
        run("SELECT audit_events_partition_finish(%s, %s)", [schema, partition])
    # The rows, before any index or trigger: the copy keeps every txid as it was, and each
    # index is built once, after it.
    run(
        "INSERT INTO audit_auditevent_next SELECT * FROM audit_auditevent "
        "WHERE txid < %s OR txid IS NULL",
        [horizon],
    )
    indexes = _indexes_of_old_table(schema_editor)
    for _, definition in indexes:
        run(definition)
    run("ANALYZE audit_auditevent_next")

    _lock_the_table(schema_editor, run)
    run("INSERT INTO audit_auditevent_next SELECT * FROM audit_auditevent WHERE txid >= %s", [horizon])
    run(
        "SELECT setval(pg_get_serial_sequence('audit_auditevent_next', 'id'), "
        "COALESCE((SELECT max(id) FROM audit_auditevent), 1), "
        "(SELECT max(id) FROM audit_auditevent) IS NOT NULL)"
    )
    # The app's role may write the new table the moment the swap commits, as it could the old:
    # its grants are copied now, not left to the grants made after migrate.
    run(
        "DO $$ DECLARE g record; BEGIN "
        "FOR g IN SELECT grantee, string_agg(privilege_type, ', ') AS privileges "
        "FROM information_schema.role_table_grants WHERE table_schema = current_schema() "
        "AND table_name = 'audit_auditevent' AND grantee <> current_user GROUP BY grantee "
        "LOOP EXECUTE format('GRANT %s ON TABLE audit_auditevent_next TO %I', "
        "g.privileges, g.grantee); END LOOP; END $$"
    )
    run("DROP TABLE audit_auditevent")
    run("ALTER TABLE audit_auditevent_next RENAME TO audit_auditevent")
    run("ALTER TABLE audit_auditevent RENAME CONSTRAINT audit_auditevent_next_pkey TO audit_auditevent_pkey")
    for name, _ in indexes:
        run(f"ALTER INDEX {name}_next RENAME TO {name}")
    _finish(apps, schema_editor, run, indexes_built=True)


def _finish(apps, schema_editor, run, *, indexes_built=False):
    """What the new table needs once it holds the rows and its name: its sequence's name, its
    indexes (each built once), its statistics (0007) and its triggers. Row triggers on a
    partitioned table are cloned to every partition, present and future."""
    run(
        "DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s RENAME TO audit_auditevent_id_seq', "
        "pg_get_serial_sequence('audit_auditevent', 'id')); END $$"
    )
    if not indexes_built:
        model = apps.get_model("audit", "AuditEvent")
        for index in model._meta.indexes:
            schema_editor.add_index(model, index)
    for name, column in STATISTICS.STATISTICS.items():
        run(
            f'CREATE STATISTICS "{name}" (dependencies) '
            f'ON "{column}", "organization_id" FROM "audit_auditevent"'
        )
    run(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_auditevent FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
    )
    run(
        "CREATE TRIGGER audit_event_txid BEFORE INSERT ON audit_auditevent "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_txid()"
    )


def backward(apps, schema_editor):
    """Back to one plain table with every row (ids and txids as they were)."""
    if schema_editor.connection.vendor != "postgresql":
        return

    def run(sql, params=None):
        schema_editor.execute(sql, params=params)

    run("LOCK TABLE audit_auditevent IN ACCESS EXCLUSIVE MODE")
    run("ALTER TABLE audit_auditevent RENAME TO audit_auditevent_partitioned")
    run(
        "ALTER TABLE audit_auditevent_partitioned "
        "RENAME CONSTRAINT audit_auditevent_pkey TO audit_auditevent_partitioned_pkey"
    )
    run(
        "CREATE TABLE audit_auditevent (LIKE audit_auditevent_partitioned "
        "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS, "
        "CONSTRAINT audit_auditevent_pkey PRIMARY KEY (id))"
    )
    run("INSERT INTO audit_auditevent SELECT * FROM audit_auditevent_partitioned")
    run(
        "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), "
        "COALESCE((SELECT max(id) FROM audit_auditevent), 1), "
        "(SELECT max(id) FROM audit_auditevent) IS NOT NULL)"
    )
    run("DROP TABLE audit_auditevent_partitioned")  # and its partitions
    run("DROP FUNCTION audit_events_partitions_ensure(integer)")
    run("DROP FUNCTION audit_events_partition_ensure(date)")
    run("DROP FUNCTION audit_events_partition_finish(text, text)")
    _finish(apps, schema_editor, run)
    run("ANALYZE audit_auditevent")


class Migration(migrations.Migration):
    # One transaction: a failure anywhere leaves the table as it was.
    atomic = True
    dependencies = [("audit", "0012_purge_by_key")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
