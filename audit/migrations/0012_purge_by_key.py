"""Make the purge ready for a partitioned events table, and let a conversion hold it off.

- audit_events_purge_batch deletes by primary key: 0009 picked rows by their physical address
  (ctid), which is unique only within one table, not across the partitions of 0013.
- audit_purge_check, which every purge function calls first, takes the conversion lock
  (CONVERSION_LOCK) shared: the conversion of 0013 takes it exclusively, so no purge deletes a
  row from the old table while its rows are being copied into the new one (a row deleted after
  it was copied would come back). Purges wait for the conversion, and the conversion for the
  purge batches already running.

Both work on the plain table too, so going back past this migration keeps them.
"""

from django.db import migrations

# Advisory lock key of the events table's conversion (0013); any constant no one else uses.
CONVERSION_LOCK = 7_240_115_013

CHECK = """
CREATE OR REPLACE FUNCTION audit_purge_check(p_organization_id bigint, p_before timestamptz)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = {path} AS $$
DECLARE
    cutoff timestamptz := audit_retention_cutoff(p_organization_id);
BEGIN
    PERFORM pg_advisory_xact_lock_shared({lock});
    IF cutoff IS NULL OR p_before IS NULL OR p_before > cutoff THEN
        RAISE EXCEPTION 'retention purge refused: cutoff % for organization % is newer than its retention allows (%)',
            p_before, p_organization_id, cutoff
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
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


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
    path = f"pg_catalog, {schema_editor.quote_name(schema)}, pg_temp"
    schema_editor.execute(CHECK.format(path=path, lock=CONVERSION_LOCK), params=None)
    schema_editor.execute(PURGE_BATCH.format(path=path), params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0011_login_throttled")]
    # Going back keeps these: they serve the plain table as well.
    operations = [migrations.RunPython(forward, migrations.RunPython.noop, elidable=False)]
