"""Index a person's events only where the person is set, and drop the organization-led copy.

Every index is paid for again on every event written. audit_org_actor_time repeated
audit_actor_time with the organization in front: a user belongs to one organization, so the
organization narrows a person's rows by nothing an index needs. The two person indexes leave out
rows without the person (a failed sign-in of an unknown name has no actor; most events have no
target); `actor_id = %s` and `actor_id IN (...)` imply the condition, so the planner still uses
them.

On PostgreSQL the indexes are built and dropped CONCURRENTLY, so sign-ins keep writing events
while a large table is migrated: each new index is built under a temporary name, the old one
dropped, the new one renamed. Elsewhere, the plain operations.
"""

from django.conf import settings
from django.db import migrations, models

OLD = [
    models.Index(
        fields=["organization", "actor", "-occurred_at", "-id"], name="audit_org_actor_time"
    ),
    models.Index(fields=["actor", "-occurred_at", "-id"], name="audit_actor_time"),
    models.Index(fields=["target_user", "-occurred_at", "-id"], name="audit_target_time"),
]
NEW = [
    models.Index(
        condition=models.Q(("actor__isnull", False)),
        fields=["actor", "-occurred_at", "-id"],
        name="audit_actor_time",
    ),
    models.Index(
        condition=models.Q(("target_user__isnull", False)),
        fields=["target_user", "-occurred_at", "-id"],
        name="audit_target_time",
    ),
]


def _swap(schema_editor, model, drop, create):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        for index in drop:
            schema_editor.remove_index(model, index)
        for index in create:
            schema_editor.add_index(model, index)
        return
    created = {index.name for index in create}
    for index in create:
        temporary = index.clone()
        temporary.name = f"{index.name}_new"
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{temporary.name}"')
        schema_editor.execute(temporary.create_sql(model, schema_editor, concurrently=True))
    for index in drop:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index.name}"')
    for name in created:
        schema_editor.execute(f'ALTER INDEX "{name}_new" RENAME TO "{name}"')


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _swap(schema_editor, apps.get_model("audit", "AuditEvent"), OLD, NEW)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _swap(schema_editor, apps.get_model("audit", "AuditEvent"), NEW, OLD)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("accounts", "0003_usersession_only_used_indexes"),
        ("audit", "0005_drop_redundant_fk_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *[
                    migrations.RemoveIndex(model_name="auditevent", name=index.name)
                    for index in OLD
                ],
                *[migrations.AddIndex(model_name="auditevent", index=index) for index in NEW],
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
