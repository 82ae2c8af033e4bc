"""Index a person's events only where the person is set, and drop the organization-led copy.

Every index is paid for again on every event written. audit_org_actor_time repeated
audit_actor_time with the organization in front: a user belongs to one organization, so the
organization narrows a person's rows by nothing an index needs. The two person indexes leave out
rows without the person (a failed sign-in of an unknown name has no actor; most events have no
target); `actor_id = %s` and `actor_id IN (...)` imply the condition, so the planner still uses
them.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_usersession_only_used_indexes"),
        ("audit", "0005_drop_redundant_fk_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="auditevent", name="audit_org_actor_time"),
        migrations.RemoveIndex(model_name="auditevent", name="audit_actor_time"),
        migrations.RemoveIndex(model_name="auditevent", name="audit_target_time"),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)),
                fields=["actor", "-occurred_at", "-id"],
                name="audit_actor_time",
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("target_user__isnull", False)),
                fields=["target_user", "-occurred_at", "-id"],
                name="audit_target_time",
            ),
        ),
    ]
