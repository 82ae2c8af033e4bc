"""Retention by partition: a month whose every row is past retention is dropped whole (issue 15,
item 2).

audit_events_purge_partition(month partition, scopes) is the third way to delete events, and
like the other two (0008, 0009) it runs as the owner and decides in the database what it may
delete. It drops the partition only if every row in it belongs to one of the scopes the caller
is purging (an organization, or NULL for events without one), is older than that scope's
`before`, which itself is no newer than the scope's retention allows (audit_purge_check), and
has an id no larger than the scope's max id (the rows the purge run claimed and, where asked,
archived). Otherwise it drops nothing and says so; the caller deletes in batches instead.

Whether a month stays is asked of the indexes first (the organizations present, one probe
each, and each one's newest row and highest id): a month that stays costs a few probes. Only a
month that goes is read whole, through the organization index, to count what it drops per scope
(the count of each `retention.purged`); then it is detached and dropped, all in one transaction: a purge interrupted anywhere leaves the month
whole, and the next run starts again. The month is read under a SHARE lock, which keeps rows
from arriving in it while pages still read it; detaching needs a moment's exclusive lock on the
table, which waits at most lock_timeout (a second): a purge never holds sign-ins up longer, and
a month it could not detach now is dropped by a later run.

DROP TABLE fires no trigger: the append-only guard is this function's checks. The app's role
may call it (audit.roles) but owns no partition, so it cannot drop one any other way.
"""

from django.db import migrations

SIGNATURE = "audit_events_purge_partition(text, bigint[], timestamptz[], bigint[])"

FUNCTION = """
CREATE FUNCTION audit_events_purge_partition(
    p_partition text, p_organization_ids bigint[], p_befores timestamptz[], p_max_ids bigint[]
) RETURNS TABLE (purged_organization_id bigint, purged bigint, dropped boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path} SET lock_timeout = '1s' AS $$
DECLARE
    home text := {schema};
    part regclass;
    seen record;
    scope record;
    kept boolean;
    present bigint;
    n bigint;
    organization_ids bigint[] := '{{}}';
    counts bigint[] := '{{}}';
BEGIN
    IF cardinality(p_organization_ids) IS DISTINCT FROM cardinality(p_befores)
       OR cardinality(p_organization_ids) IS DISTINCT FROM cardinality(p_max_ids) THEN
        RAISE EXCEPTION 'retention purge refused: scopes of unequal lengths'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audit_purge_check(s.organization_id, s.before)
       FROM unnest(p_organization_ids, p_befores) AS s(organization_id, before);
    -- Only a month partition of the events table: never the default one, never another table.
    SELECT i.inhrelid::regclass INTO part
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE i.inhparent = 'audit_auditevent'::regclass AND n.nspname = home
       AND c.relname = p_partition AND c.relname ~ '^audit_auditevent_p[0-9]{{4}}_[0-9]{{2}}$';
    IF part IS NULL THEN
        RAISE EXCEPTION 'retention purge refused: % is not a month of the events table', p_partition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Its month, from its name (audit_events_partition_ensure names each by its bounds): one
    -- that is not over for every scope is not looked at.
    IF to_date(substr(p_partition, 19), 'YYYY_MM') + interval '1 month'
       > (SELECT max(b) FROM unnest(p_befores) AS b) AT TIME ZONE 'UTC' THEN
        RETURN QUERY SELECT NULL::bigint, 0::bigint, false;
        RETURN;
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
    -- First the questions the indexes answer at once, so that a month that stays (most days,
    -- most months) costs a few index probes, not a scan: which scopes have rows in it (one
    -- probe per organization, walking audit_org_time), and whether each one's newest row is
    -- past its cutoff and its ids within its claim.
    FOR seen IN EXECUTE format(
        'WITH RECURSIVE present(organization_id) AS ('
        '  (SELECT organization_id FROM %1$s WHERE organization_id IS NOT NULL'
        '    ORDER BY organization_id LIMIT 1)'
        '  UNION ALL'
        '  SELECT (SELECT e.organization_id FROM %1$s e'
        '           WHERE e.organization_id > present.organization_id'
        '           ORDER BY e.organization_id LIMIT 1)'
        '    FROM present WHERE present.organization_id IS NOT NULL)'
        'SELECT organization_id FROM present WHERE organization_id IS NOT NULL '
        'UNION ALL SELECT NULL WHERE EXISTS (SELECT 1 FROM %1$s WHERE organization_id IS NULL)',
        part)
    LOOP
        SELECT s.before, s.max_id INTO scope
          FROM unnest(p_organization_ids, p_befores, p_max_ids) AS s(organization_id, before, max_id)
         WHERE s.organization_id IS NOT DISTINCT FROM seen.organization_id;
        IF NOT FOUND THEN
            kept := true;  -- a scope this purge did not claim
        ELSIF seen.organization_id IS NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE organization_id IS NULL '
                           'AND (occurred_at >= $1 OR id > $2))', part)
               INTO kept USING scope.before, scope.max_id;
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE organization_id = $3 '
                           'AND occurred_at >= $1) OR EXISTS (SELECT 1 FROM %s '
                           'WHERE organization_id = $3 AND id > $2)', part, part)
               INTO kept USING scope.before, scope.max_id, seen.organization_id;
        END IF;
        IF kept THEN
            -- A row someone keeps (or that no run of this purge claimed): the month stays.
            RETURN QUERY SELECT NULL::bigint, 0::bigint, false;
            RETURN;
        END IF;
        organization_ids := organization_ids || seen.organization_id;
    END LOOP;
    -- Every row goes: count them per scope (each scope's `retention.purged` says how many),
    -- one scope at a time through audit_org_time's range for it: an index-only scan reads a
    -- fifth of what a scan of the month would (an old month is all-visible by now).
    FOREACH present IN ARRAY organization_ids LOOP
        IF present IS NULL THEN
            EXECUTE format('SELECT count(*) FROM %s WHERE organization_id IS NULL', part)
               INTO n;
        ELSE
            EXECUTE format('SELECT count(*) FROM %s WHERE organization_id = $1', part)
               INTO n USING present;
        END IF;
        counts := counts || n;
    END LOOP;
    EXECUTE format('ALTER TABLE audit_auditevent DETACH PARTITION %s', part);
    EXECUTE format('DROP TABLE %s', part);
    IF cardinality(counts) = 0 THEN  -- an empty month goes too, and says so
        RETURN QUERY SELECT NULL::bigint, 0::bigint, true;
    ELSE
        RETURN QUERY SELECT d.scope_id, d.dropped_rows, true
          FROM unnest(organization_ids, counts) AS d(scope_id, dropped_rows);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema(), quote_literal(current_schema())")
        schema, literal = cursor.fetchone()
    path = f"pg_catalog, {schema_editor.quote_name(schema)}, pg_temp"
    schema_editor.execute(
        FUNCTION.format(path=path, schema=literal, signature=SIGNATURE), params=None
    )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0013_partitioned_events")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
