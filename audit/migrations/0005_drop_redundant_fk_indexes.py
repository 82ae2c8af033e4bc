"""Drop the foreign keys' own indexes: a composite index leads with each of them already.

The model state changes by AlterField (db_index=False); the database by DROP INDEX alone, because
on SQLite an AlterField remakes the table, and with it would go the append-only triggers.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Django's names for the single-column indexes (the same on PostgreSQL and SQLite).
INDEXES = {
    "organization": "audit_auditevent_organization_id_4b1fe3b9",
    "actor": "audit_auditevent_actor_id_270bb4b7",
    "target_user": "audit_auditevent_target_user_id_d4266e36",
}
TARGETS = {
    "organization": "accounts.organization",
    "actor": settings.AUTH_USER_MODEL,
    "target_user": settings.AUTH_USER_MODEL,
}


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_organization_mfa_policy"),
        ("audit", "0004_country_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name=name,
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=TARGETS[name],
                    ),
                )
                for name in INDEXES
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "audit_auditevent" ("{name}_id")',
                )
                for name, index in INDEXES.items()
            ],
        )
    ]
