"""Keep each organization's retention where the app's database role cannot lower it.

Migration 0008 computed an organization's purge cutoff from its row in accounts_organization,
which the app's role may UPDATE: setting an Enterprise organization's tier to Small Business,
purging and setting it back deleted events 90 days old that were meant to be kept seven years.
Events without an organization were kept as many days as the caller passed. Now:

- audit_organization_retention records every retention an organization has had, with when. It
  is written only by a trigger on accounts_organization whose function runs as the owner; the
  app's role has no privilege at all on the table, so it can neither read, add, change nor
  erase the record (a tier flip stays on it).
- An organization's purge cutoff uses the LONGEST retention it has had within the grace period
  (the one in force when the period began included): a downgrade takes effect for purging once
  the grace period has passed, and a flip of the tier on the spot lowers nothing.
- audit_retention_policy, one row, holds the platform retention (events without an
  organization) and the grace period. The owner writes it from settings after every migrate
  (audit.roles.retention_policy_write); the app's role has no privilege on it. The purge
  functions no longer take a platform retention from their caller.

The tables are not Django models: audit.roles grants the app's role every model table, and
these must stay out of that. PostgreSQL only, like 0008; SQLite has no roles.
"""

import importlib

from django.db import migrations

# Copied from 0008, as a migration must (a test compares the database with the app).
RETENTION_FLOOR_DAYS = 90
TIER_RETENTION_DAYS = {"small_business": 90, "medium_business": 365, "enterprise": 7 * 365}
# Defaults until the owner's post_migrate step writes the settings (audit.roles).
PLATFORM_DAYS = 365
GRACE_DAYS = 30

OLD_PURGE_SIGNATURES = (
    "audit_events_purge_id_range(bigint[], timestamptz[], bigint[], bigint, bigint, integer)",
    "audit_events_purge_batch(bigint, timestamptz, bigint, integer, integer)",
    "audit_purge_check(bigint, timestamptz, integer)",
    "audit_retention_cutoff(bigint, integer)",
)
PURGE_BATCH_SIGNATURE = "audit_events_purge_batch(bigint, timestamptz, bigint, integer)"
PURGE_ID_RANGE_SIGNATURE = (
    "audit_events_purge_id_range(bigint[], timestamptz[], bigint[], bigint, bigint)"
)

TABLES = """
-- One row (the key can only be true). No privilege for anyone but the owner.
CREATE TABLE audit_retention_policy (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    platform_days integer NOT NULL CHECK (platform_days > 0),
    downgrade_grace_days integer NOT NULL CHECK (downgrade_grace_days >= 0)
);
INSERT INTO audit_retention_policy (platform_days, downgrade_grace_days)
    VALUES ({platform_days}, {grace_days});

-- No foreign key: the record outlives the organization, and a flush of accounts_organization
-- (TRUNCATE) must not need to know of it. No serial key either: audit.roles grants the app's
-- role USAGE on every sequence.
CREATE TABLE audit_organization_retention (
    organization_id bigint NOT NULL,
    retention_days integer,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX audit_organization_retention_org_time
    ON audit_organization_retention (organization_id, recorded_at);
REVOKE ALL ON audit_retention_policy, audit_organization_retention FROM PUBLIC;
"""

# {path}: the schema fixed in every SECURITY DEFINER function, as in 0008.
FUNCTIONS = """
-- The days an organization's row says it keeps events: the computation 0008 made in
-- audit_retention_cutoff, now shared by the trigger below and the purge.
CREATE FUNCTION audit_tier_retention_days(p_tier text, p_override bigint)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_tier
               WHEN 'small_business' THEN {small_business}
               WHEN 'medium_business' THEN {medium_business}
               WHEN 'enterprise' THEN COALESCE(NULLIF(p_override, 0), {enterprise})::integer
           END
$$;

-- Runs as the owner, so it can write the table the app's role (which updates organizations)
-- has no privilege on. clock_timestamp, not now(): two changes in one transaction keep their
-- order.
CREATE FUNCTION audit_organization_retention_record() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = {path} AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.id IS DISTINCT FROM OLD.id
       OR NEW.tier IS DISTINCT FROM OLD.tier
       OR NEW.retention_days_override IS DISTINCT FROM OLD.retention_days_override THEN
        INSERT INTO audit_organization_retention (organization_id, retention_days, recorded_at)
        VALUES (NEW.id, audit_tier_retention_days(NEW.tier, NEW.retention_days_override),
                clock_timestamp());
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION audit_organization_retention_record() FROM PUBLIC;
CREATE TRIGGER audit_organization_retention AFTER INSERT OR UPDATE ON accounts_organization
    FOR EACH ROW EXECUTE FUNCTION audit_organization_retention_record();

-- The organizations there are today keep, from now on, the retention they have today.
INSERT INTO audit_organization_retention (organization_id, retention_days, recorded_at)
SELECT id, audit_tier_retention_days(tier, retention_days_override), clock_timestamp()
  FROM accounts_organization;

-- The days an event is kept: for an organization the longest retention it has had within the
-- grace period (the one in force when the period began and every one recorded since), for
-- events without one the platform's; never under the floor. NULL (an unknown organization or
-- tier) means nothing is expired. SECURITY DEFINER, and granted to the app's role, so that the
-- retention purge asks the database what it will allow instead of guessing (retention.policy);
-- it reads the policy and history tables without letting the caller read them.
CREATE FUNCTION audit_retention_days(p_organization_id bigint)
RETURNS integer LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {path} AS $$
DECLARE
    policy audit_retention_policy;
    since timestamptz;
    days integer;
BEGIN
    SELECT * INTO STRICT policy FROM audit_retention_policy;
    IF p_organization_id IS NULL THEN
        days := policy.platform_days;
    ELSE
        -- Hours, not days: a day-based interval would follow the session's daylight saving time.
        since := now() - make_interval(hours => policy.downgrade_grace_days * 24);
        SELECT GREATEST(
                   (SELECT max(h.retention_days) FROM audit_organization_retention h
                     WHERE h.organization_id = o.id AND h.recorded_at > since),
                   (SELECT h.retention_days FROM audit_organization_retention h
                     WHERE h.organization_id = o.id AND h.recorded_at <= since
                     ORDER BY h.recorded_at DESC LIMIT 1)
               )
          INTO days
          FROM accounts_organization o
         WHERE o.id = p_organization_id
           AND audit_tier_retention_days(o.tier, o.retention_days_override) IS NOT NULL;
    END IF;
    IF days IS NULL THEN
        RETURN NULL;  -- GREATEST would ignore it
    END IF;
    RETURN GREATEST(days, {floor});
END
$$;
REVOKE ALL ON FUNCTION audit_retention_days(bigint) FROM PUBLIC;

CREATE FUNCTION audit_retention_cutoff(p_organization_id bigint)
RETURNS timestamptz LANGUAGE sql STABLE SET search_path = {path} AS $$
    SELECT now() - make_interval(hours => audit_retention_days(p_organization_id) * 24)
$$;

CREATE FUNCTION audit_purge_check(p_organization_id bigint, p_before timestamptz)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = {path} AS $$
DECLARE
    cutoff timestamptz := audit_retention_cutoff(p_organization_id);
BEGIN
    IF cutoff IS NULL OR p_before IS NULL OR p_before > cutoff THEN
        RAISE EXCEPTION 'retention purge refused: cutoff % for organization % is newer than its retention allows (%)',
            p_before, p_organization_id, cutoff
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- The bodies are 0008's; only the platform retention is no longer the caller's to say.
CREATE FUNCTION audit_events_purge_batch(
    p_organization_id bigint, p_before timestamptz, p_max_id bigint, p_limit integer
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {path} AS $$
DECLARE
    deleted bigint;
    gate text := current_setting('audit.retention_purge', true);
BEGIN
    PERFORM audit_purge_check(p_organization_id, p_before);
    PERFORM set_config('audit.retention_purge', 'on', true);
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
    p_id_from bigint, p_id_to bigint
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
    PERFORM audit_purge_check(s.organization_id, s.before)
       FROM unnest(p_organization_ids, p_befores) AS s(organization_id, before);
    PERFORM set_config('audit.retention_purge', 'on', true);
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

DROP_NEW = f"""
DROP FUNCTION IF EXISTS {PURGE_ID_RANGE_SIGNATURE};
DROP FUNCTION IF EXISTS {PURGE_BATCH_SIGNATURE};
DROP FUNCTION IF EXISTS audit_purge_check(bigint, timestamptz);
DROP FUNCTION IF EXISTS audit_retention_cutoff(bigint);
DROP FUNCTION IF EXISTS audit_retention_days(bigint);
DROP TRIGGER IF EXISTS audit_organization_retention ON accounts_organization;
DROP FUNCTION IF EXISTS audit_organization_retention_record();
DROP FUNCTION IF EXISTS audit_tier_retention_days(text, bigint);
DROP TABLE IF EXISTS audit_organization_retention;
DROP TABLE IF EXISTS audit_retention_policy;
"""


def _path(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
    return f"pg_catalog, {schema_editor.quote_name(schema)}, pg_temp"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    drop_old = "".join(f"DROP FUNCTION {signature};\n" for signature in OLD_PURGE_SIGNATURES)
    tables = TABLES.format(platform_days=PLATFORM_DAYS, grace_days=GRACE_DAYS)
    functions = FUNCTIONS.format(
        path=_path(schema_editor),
        floor=RETENTION_FLOOR_DAYS,
        batch=PURGE_BATCH_SIGNATURE,
        id_range=PURGE_ID_RANGE_SIGNATURE,
        **TIER_RETENTION_DAYS,
    )
    for sql in (drop_old, tables, functions):
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Back to 0008's purge functions, exactly as 0008 created them.
    previous = importlib.import_module("audit.migrations.0008_database_roles")
    purge = previous.PURGE.format(
        path=_path(schema_editor),
        floor=previous.RETENTION_FLOOR_DAYS,
        batch=previous.PURGE_BATCH_SIGNATURE,
        id_range=previous.PURGE_ID_RANGE_SIGNATURE,
        **previous.TIER_RETENTION_DAYS,
    )
    for sql in (DROP_NEW, purge):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_database_roles"), ("accounts", "0004_security_notice")]
    operations = [migrations.RunPython(forward, backward)]
