"""Give every event the id of the transaction that inserted it (the API feed's exactly-once key).

The column is added by hand: Django would rebuild the SQLite table to add a column with a
non-constant default, and the rebuild would drop the append-only triggers with the old table.
"""

from django.db import migrations, models

import audit.models


def add_column(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE audit_auditevent ADD COLUMN txid bigint "
            "DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    else:
        schema_editor.execute("ALTER TABLE audit_auditevent ADD COLUMN txid bigint DEFAULT 0")


def drop_column(apps, schema_editor):
    schema_editor.execute("ALTER TABLE audit_auditevent DROP COLUMN txid")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="auditevent",
                    name="txid",
                    field=models.BigIntegerField(
                        blank=True,
                        db_default=audit.models.CurrentTransactionId(),
                        editable=False,
                        null=True,
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(add_column, drop_column)],
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["organization", "txid", "id"], name="audit_org_txid"),
        ),
    ]
