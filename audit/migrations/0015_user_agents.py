"""User agents in a dictionary: events name them by a four-byte id (issue 15, item 3).

An event stored its client's user agent string and its parse (browser, OS, device type) in
four text columns, about 140 of its 387 bytes, while a tenant sees a few hundred distinct
agents. They move to `audit_useragent`, one row per distinct (string, browser, OS, device type)
as events recorded them, and the event keeps `agent_id` (integer, NULL for an event recorded
without a user agent). No database constraint ties the two, like the event's other references:
the app's role may only INSERT and SELECT dictionary rows (audit.roles), so a row, once named,
says forever what it said.

Existing events are moved with set-based SQL: the distinct agents into the dictionary, then
each event's `agent_id` set by an UPDATE, then the four columns dropped. The append-only guard
refuses every UPDATE, so this migration gives it a second gate, `audit.schema_migration`, which
like the purge gate counts only for the table's owner (a session of the app's role may set it
but cannot become the owner) and opens UPDATE only: migrations run as the owner, so this one
opens it for its own transaction (SET LOCAL) around its UPDATE. That is simpler than copying
the table again the way 0013 converts it, and as honest: the owner could always rewrite the
table; the app's role still cannot.

An UPDATE leaves the old row versions behind, and a dropped column's bytes stay in the rows
already written: an existing table shrinks only as retention drops its old months (or a
`VACUUM FULL` of a month's partition rewrites it, under an exclusive lock); every row written
after this migration is the smaller one. The UPDATE takes the table's rows in one transaction,
writes every row once and holds the table's lock until it commits (inserts wait): measured at
82 s per million events on a 2-vCPU machine, so on a large table run it in a quiet hour. SQLite (`make run`), whose
guard has no gate, drops its UPDATE trigger for the moment of the UPDATE, in the same
transaction.
"""

import importlib

from django.db import migrations, models

PARTITIONED = importlib.import_module("audit.migrations.0013_partitioned_events")
APPEND_ONLY = importlib.import_module("audit.migrations.0002_append_only")

# 0013's guard, and UPDATE allowed to the owner with audit.schema_migration on.
GUARD = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    holds_rows boolean;
BEGIN
    -- Both gates count only for the table's owner: the purge functions run as the owner and
    -- open the purge gate around their DELETE; a migration, run as the owner, opens the
    -- migration gate around its UPDATE (audit 0015). A session of the app's role can set
    -- either but not become the owner.
    IF ((TG_OP IN ('DELETE', 'TRUNCATE')
         AND current_setting('audit.retention_purge', true) = 'on')
        OR (TG_OP = 'UPDATE' AND current_setting('audit.schema_migration', true) = 'on'))
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

FILL = """
INSERT INTO audit_useragent (user_agent, browser, os, device_type)
SELECT DISTINCT user_agent, browser, os, device_type FROM audit_auditevent
WHERE (user_agent, browser, os, device_type) <> ('', '', '', '')
ON CONFLICT DO NOTHING;
UPDATE audit_auditevent AS e SET agent_id = a.id
FROM audit_useragent AS a
WHERE (e.user_agent, e.browser, e.os, e.device_type)
    = (a.user_agent, a.browser, a.os, a.device_type);
"""

UNFILL = """
UPDATE audit_auditevent AS e
SET user_agent = a.user_agent, browser = a.browser, os = a.os, device_type = a.device_type
FROM audit_useragent AS a
WHERE a.id = e.agent_id;
"""

# 0002's SQLite triggers. Django rebuilds an SQLite table to add a NOT NULL column (going
# back: the four columns return), which loses its triggers: they are made again where missing.
SQLITE_GUARD = [
    statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1)
    for statement in APPEND_ONLY.SQLITE_FORWARD[1:]
]


def _update(schema_editor, sql):
    """Run UPDATEs of the events through the guard, as the owner, in this transaction."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("SET LOCAL audit.schema_migration = 'on'")
        schema_editor.execute(sql)
        schema_editor.execute("SET LOCAL audit.schema_migration = ''")
    else:
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        for statement in sql.strip().rstrip(";").split(";\n"):
            schema_editor.execute(statement)
        for statement in SQLITE_GUARD:
            schema_editor.execute(statement)


def guard_forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def guard_backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PARTITIONED.GUARD, params=None)


def fill(apps, schema_editor):
    _update(schema_editor, FILL)


def unfill(apps, schema_editor):
    _update(schema_editor, UNFILL)


class Migration(migrations.Migration):
    dependencies = [("audit", "0014_purge_partition")]

    operations = [
        migrations.RunPython(guard_forward, guard_backward, elidable=False),
        migrations.CreateModel(
            name="UserAgent",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("user_agent", models.CharField(blank=True, max_length=512)),
                ("browser", models.CharField(blank=True, max_length=64)),
                ("os", models.CharField(blank=True, max_length=64)),
                ("device_type", models.CharField(blank=True, max_length=16)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user_agent", "browser", "os", "device_type"),
                        name="audit_useragent_key",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="auditevent",
            name="agent",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="audit.useragent",
            ),
        ),
        migrations.RunPython(fill, unfill, elidable=False),
        migrations.RemoveField(model_name="auditevent", name="user_agent"),
        migrations.RemoveField(model_name="auditevent", name="browser"),
        migrations.RemoveField(model_name="auditevent", name="os"),
        migrations.RemoveField(model_name="auditevent", name="device_type"),
    ]
