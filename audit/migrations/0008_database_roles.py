"""Let the events table's guard hold against the app's own database role.

The app connects as a role that may INSERT and SELECT events and nothing more (audit.roles
grants it after every migrate, which runs as the table's owner). What used to need UPDATE,
DELETE or a session variable now lives in the database, owned by the owner:

- The purge gate opens only for a session running with the owner's privileges. Any role can set
  `audit.retention_purge`; only the owner (or the SECURITY DEFINER functions below, which run as
  the owner and open it around their own DELETE, then put it back) can make it count. (A
  function's own SET clause would be neater, but PostgreSQL lets only a superuser attach a
  custom setting to a function.)
- audit_events_purge_batch and audit_events_purge_id_range are the one way to delete events. They
  compute each organization's retention cutoff in the database, from the organization's stored
  tier and override, and refuse a cutoff newer than that: a caller can delete less than is
  expired, never more. Events without an organization are kept the platform retention the caller
  passes (a setting), never less than RETENTION_FLOOR_DAYS.
- txid is set by a BEFORE INSERT trigger to the inserting transaction's id, whatever the INSERT
  says: a backdated txid would hide a row from the API feed (api.feed).

SQLite keeps its triggers and its purge gate table; it has no roles.
"""

from django.db import migrations

# The shortest retention of any tier (accounts.models.TIER_RETENTION_DAYS, Small Business): no
# event younger than this can be purged, whatever the caller or a tampered organization row says.
# The tier values below are copied, not imported, as a migration must be; a test compares the
# database's answer with Organization.retention_days for every tier.
RETENTION_FLOOR_DAYS = 90
TIER_RETENTION_DAYS = {"small_business": 90, "medium_business": 365, "enterprise": 7 * 365}

PURGE_BATCH_SIGNATURE = "audit_events_purge_batch(bigint, timestamptz, bigint, integer, integer)"
PURGE_ID_RANGE_SIGNATURE = (
    "audit_events_purge_id_range(bigint[], timestamptz[], bigint[], bigint, bigint, integer)"
)

GUARD = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF TG_OP = 'TRUNCATE' AND NOT EXISTS (SELECT 1 FROM audit_auditevent) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

OLD_GUARD = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') AND current_setting('audit.retention_purge', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' AND NOT EXISTS (SELECT 1 FROM audit_auditevent) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

TXID = """
CREATE FUNCTION audit_event_txid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.txid := pg_catalog.pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_event_txid BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_txid();
"""

# {path} is the schema the tables live in, fixed in every function that the app's role may call
# so that its own objects (a temporary table, say) can never stand in for ours; pg_temp last.
PURGE = """
CREATE FUNCTION audit_retention_cutoff(p_organization_id bigint, p_platform_days integer)
RETURNS timestamptz LANGUAGE plpgsql STABLE SET search_path = {path} AS $$
DECLARE
    days integer;
BEGIN
    IF p_organization_id IS NULL THEN
        days := p_platform_days;
    ELSE
        SELECT CASE o.tier
                   WHEN 'small_business' THEN {small_business}
                   WHEN 'medium_business' THEN {medium_business}
                   WHEN 'enterprise' THEN
                       COALESCE(NULLIF(o.retention_days_override, 0), {enterprise})
               END
          INTO days
          FROM accounts_organization o
         WHERE o.id = p_organization_id;
    END IF;
    IF days IS NULL THEN
        RETURN NULL;  -- an unknown organization or tier: nothing is expired
    END IF;
    -- Hours, not days: a day-based interval would follow the session's daylight saving time.
    RETURN now() - make_interval(hours => GREATEST(days, {floor}) * 24);
END
$$;

CREATE FUNCTION audit_purge_check(
    p_organization_id bigint, p_before timestamptz, p_platform_days integer
) RETURNS void LANGUAGE plpgsql STABLE SET search_path = {path} AS $$
DECLARE
    cutoff timestamptz := audit_retention_cutoff(p_organization_id, p_platform_days);
BEGIN
    IF cutoff IS NULL OR p_before IS NULL OR p_before > cutoff THEN
        RAISE EXCEPTION 'retention purge refused: cutoff % for organization % is newer than its retention allows (%)',
            p_before, p_organization_id, cutoff
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

CREATE FUNCTION audit_events_purge_batch(
    p_organization_id bigint, p_before timestamptz, p_max_id bigint, p_limit integer,
    p_platform_days integer
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {path} AS $$
DECLARE
    deleted bigint;
    gate text := current_setting('audit.retention_purge', true);
BEGIN
    PERFORM audit_purge_check(p_organization_id, p_before, p_platform_days);
    PERFORM set_config('audit.retention_purge', 'on', true);
    -- Two statements, not one with IS NOT DISTINCT FROM, which no index can answer. Rows are
    -- picked and deleted by physical address (ctid), sparing a primary-key lookup per row.
    IF p_organization_id IS NULL THEN
        DELETE FROM audit_auditevent WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM audit_auditevent
             WHERE organization_id IS NULL AND occurred_at < p_before
               AND id <= COALESCE(p_max_id, 9223372036854775807)
             ORDER BY occurred_at, id LIMIT p_limit));
    ELSE
        DELETE FROM audit_auditevent WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM audit_auditevent
             WHERE organization_id = p_organization_id AND occurred_at < p_before
               AND id <= COALESCE(p_max_id, 9223372036854775807)
             ORDER BY occurred_at, id LIMIT p_limit));
    END IF;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('audit.retention_purge', COALESCE(gate, ''), true);
    RETURN deleted;
END
$$;

CREATE FUNCTION audit_events_purge_id_range(
    p_organization_ids bigint[], p_befores timestamptz[], p_max_ids bigint[],
    p_id_from bigint, p_id_to bigint, p_platform_days integer
) RETURNS TABLE (purged_organization_id bigint, purged bigint) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {path} AS $$
DECLARE
    gate text := current_setting('audit.retention_purge', true);
BEGIN
    IF cardinality(p_organization_ids) IS DISTINCT FROM cardinality(p_befores)
       OR cardinality(p_organization_ids) IS DISTINCT FROM cardinality(p_max_ids) THEN
        RAISE EXCEPTION 'retention purge refused: scopes of unequal lengths'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audit_purge_check(s.organization_id, s.before, p_platform_days)
       FROM unnest(p_organization_ids, p_befores) AS s(organization_id, before);
    PERFORM set_config('audit.retention_purge', 'on', true);
    -- Organization ids start at 1: 0 stands for "no organization" in the join.
    RETURN QUERY
    WITH gone AS (
        DELETE FROM audit_auditevent e
        USING unnest(p_organization_ids, p_befores, p_max_ids) AS s(organization_id, before, max_id)
        WHERE COALESCE(e.organization_id, 0) = COALESCE(s.organization_id, 0)
          AND e.occurred_at < s.before AND e.id <= s.max_id
          AND e.id >= p_id_from AND e.id < p_id_to
        RETURNING e.organization_id
    )
    SELECT gone.organization_id, count(*) FROM gone GROUP BY gone.organization_id;
    PERFORM set_config('audit.retention_purge', COALESCE(gate, ''), true);
END
$$;

REVOKE ALL ON FUNCTION {batch} FROM PUBLIC;
REVOKE ALL ON FUNCTION {id_range} FROM PUBLIC;
"""

BACKWARD = f"""
DROP FUNCTION IF EXISTS {PURGE_ID_RANGE_SIGNATURE};
DROP FUNCTION IF EXISTS {PURGE_BATCH_SIGNATURE};
DROP FUNCTION IF EXISTS audit_purge_check(bigint, timestamptz, integer);
DROP FUNCTION IF EXISTS audit_retention_cutoff(bigint, integer);
DROP TRIGGER IF EXISTS audit_event_txid ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_txid();
{OLD_GUARD}
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
    path = f"pg_catalog, {schema_editor.quote_name(schema)}, pg_temp"
    purge = PURGE.format(
        path=path,
        floor=RETENTION_FLOOR_DAYS,
        batch=PURGE_BATCH_SIGNATURE,
        id_range=PURGE_ID_RANGE_SIGNATURE,
        **TIER_RETENTION_DAYS,
    )
    for sql in (GUARD, TXID, purge):
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_person_organization_statistics"), ("accounts", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
