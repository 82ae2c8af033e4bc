"""The events table partitioned by month on PostgreSQL (issue 15, item 1).

`audit_auditevent` becomes a table partitioned by RANGE (occurred_at): one partition per
calendar month (UTC), named `audit_auditevent_pYYYY_MM`, and a default partition,
`audit_auditevent_default`, for any event whose month has none (it is kept there, never lost,
and moved into its month when that partition is made). The primary key is (id, occurred_at),
as PostgreSQL requires of a partitioned table's unique constraints; Django still knows `id` as
the key, and the identity sequence keeps ids unique. Retention then drops whole months
(audit_events_purge_partition, migration 0013) instead of deleting row by row.

The conversion copies every row once into the new table and builds each index once, after the
copy. It holds an ACCESS EXCLUSIVE lock on the table throughout: sign-ins wait (and time out)
until it commits. docs/scaling.md says how long it takes per million rows and how to run it on a
live system. It refuses to run on a table that is already partitioned.

Partitions are made ahead by audit_events_partitions_ensure, owned by the owner and executed by
the app's role (a beat task, audit.tasks.events_partitions_ensure, and after every migrate):
the app's role creates nothing and owns nothing, so it can never drop or detach a month. Every
partition carries the append-only guard itself, so a statement naming a partition directly is
refused as one naming the table.

SQLite (make run) keeps its plain table.
"""

import importlib

from django.db import migrations

# Partitions made ahead of the current month, here and by the beat task (settings
# AUDIT_PARTITIONS_AHEAD_MONTHS, at most MAX_MONTHS_AHEAD).
MONTHS_AHEAD = 3
MAX_MONTHS_AHEAD = 24
STATISTICS = importlib.import_module("audit.migrations.0007_person_organization_statistics")

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
    EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC', home, part);
    PERFORM set_config('audit.retention_purge', 'on', true);
    EXECUTE format(
        'WITH moved AS (DELETE FROM audit_auditevent_default '
        'WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
        'INSERT INTO %I.%I SELECT * FROM moved', home, part) USING low, high;
    PERFORM set_config('audit.retention_purge', COALESCE(gate, ''), true);
    EXECUTE format('ALTER TABLE audit_auditevent ATTACH PARTITION %I.%I '
                   'FOR VALUES FROM (%L) TO (%L)', home, part, low, high);
    -- Statement triggers are not inherited: each partition gets the guard itself.
    EXECUTE format('CREATE TRIGGER audit_event_append_only '
                   'BEFORE UPDATE OR DELETE OR TRUNCATE ON %I.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()', home, part);
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

# The purge batch of 0009, deleting by primary key: a row's physical address (ctid), which
# 0009 used, is unique only within one partition.
PURGE_BATCH = """
CREATE OR REPLACE FUNCTION audit_events_purge_batch(
    p_organization_id bigint, p_before timestamptz, p_max_id bigint, p_limit integer
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {path} AS $$
DECLARE
    deleted bigint;
    gate text := current_setting('audit.retention_purge', true);
BEGIN
    PERFORM audit_purge_check(p_organization_id, p_before);
    PERFORM set_config('audit.retention_purge', 'on', true);
    -- Two statements, not one with IS NOT DISTINCT FROM, which no index can answer.
    -- occurred_at < p_before on the deleted side too: the months after it are never read.
    IF p_organization_id IS NULL THEN
        DELETE FROM audit_auditevent e USING (
            SELECT id, occurred_at FROM audit_auditevent
             WHERE organization_id IS NULL AND occurred_at < p_before
               AND id <= COALESCE(p_max_id, 9223372036854775807)
             ORDER BY occurred_at, id LIMIT p_limit) s
         WHERE e.id = s.id AND e.occurred_at = s.occurred_at AND e.occurred_at < p_before;
    ELSE
        DELETE FROM audit_auditevent e USING (
            SELECT id, occurred_at FROM audit_auditevent
             WHERE organization_id = p_organization_id AND occurred_at < p_before
               AND id <= COALESCE(p_max_id, 9223372036854775807)
             ORDER BY occurred_at, id LIMIT p_limit) s
         WHERE e.id = s.id AND e.occurred_at = s.occurred_at AND e.occurred_at < p_before;
    END IF;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('audit.retention_purge', COALESCE(gate, ''), true);
    RETURN deleted;
END
$$;
"""


def _schema(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema(), quote_literal(current_schema())")
        return cursor.fetchone()


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'audit_auditevent'::regclass")
        (kind,) = cursor.fetchone()
    if kind == "p":
        raise RuntimeError(
            "audit_auditevent is already partitioned: the conversion (audit 0012) runs once. "
            "If this database was converted by hand, mark the migration applied with "
            "`manage.py migrate audit 0012 --fake`."
        )
    def run(sql, params=None):
        # params=None: the SQL is sent as written (its format() calls have % of their own).
        schema_editor.execute(sql, params=params)

    schema, schema_literal = _schema(schema_editor)
    path = f"pg_catalog, {schema_editor.quote_name(schema)}, pg_temp"
    # Writers and readers wait from here to the commit; nothing is half-converted after a crash.
    run("LOCK TABLE audit_auditevent IN ACCESS EXCLUSIVE MODE")
    run("ALTER TABLE audit_auditevent RENAME TO audit_auditevent_unpartitioned")
    run(
        "ALTER TABLE audit_auditevent_unpartitioned "
        "RENAME CONSTRAINT audit_auditevent_pkey TO audit_auditevent_unpartitioned_pkey"
    )
    run(
        "CREATE TABLE audit_auditevent (LIKE audit_auditevent_unpartitioned "
        "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS, "
        "CONSTRAINT audit_auditevent_pkey PRIMARY KEY (id, occurred_at)) "
        "PARTITION BY RANGE (occurred_at)"
    )
    run("REVOKE ALL ON TABLE audit_auditevent FROM PUBLIC")
    run("CREATE TABLE audit_auditevent_default PARTITION OF audit_auditevent DEFAULT")
    run("REVOKE ALL ON TABLE audit_auditevent_default FROM PUBLIC")
    run(GUARD)
    run(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_auditevent_default FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
    )
    run(FUNCTIONS.format(path=path, schema=schema_literal, max_ahead=MAX_MONTHS_AHEAD))
    # A month for every month that has events, and the months ahead; then the rows, before
    # any index or trigger: the copy keeps every txid as it was, and indexes are built once.
    run(
        "SELECT audit_events_partition_ensure(month::date) FROM generate_series("
        "  date_trunc('month', COALESCE((SELECT min(occurred_at) FROM "
        "    audit_auditevent_unpartitioned), now()) AT TIME ZONE 'UTC'),"
        "  date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => %s),"
        "  interval '1 month') AS month",
        params=[MONTHS_AHEAD],
    )
    run("INSERT INTO audit_auditevent SELECT * FROM audit_auditevent_unpartitioned")
    run(
        "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), "
        "COALESCE((SELECT max(id) FROM audit_auditevent), 1), "
        "(SELECT max(id) FROM audit_auditevent) IS NOT NULL)"
    )
    run("DROP TABLE audit_auditevent_unpartitioned")
    _finish(apps, schema_editor, run)
    run(PURGE_BATCH.format(path=path))
    run("ANALYZE audit_auditevent")


def _finish(apps, schema_editor, run):
    """What the new table needs once it holds the rows: its sequence's name, its indexes (each
    built once), its statistics (0007) and its triggers. Row triggers on a partitioned table
    are cloned to every partition, present and future."""
    run(
        "DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s RENAME TO audit_auditevent_id_seq', "
        "pg_get_serial_sequence('audit_auditevent', 'id')); END $$"
    )
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
    _finish(apps, schema_editor, run)
    run("ANALYZE audit_auditevent")


class Migration(migrations.Migration):
    # One transaction: a failure anywhere leaves the table as it was.
    atomic = True
    dependencies = [("audit", "0011_login_throttled")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
