"""The product page's three reviews for every organization that exists already (new ones get
them from compliance.services.review_schedules_ensure, on first visit or the beat's sweep)."""

from django.db import migrations

DEFAULTS = (
    ("Administrators' weekly review", "all_activity", "weekly", "administrator"),
    ("Security analysts' daily review", "security_operations", "daily", "security_analyst"),
    ("Compliance monthly review", "audit_trail", "monthly", "compliance_officer"),
)


def add_defaults(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    ReviewSchedule = apps.get_model("compliance", "ReviewSchedule")
    for organization in Organization.objects.using(schema_editor.connection.alias).all():
        if ReviewSchedule.objects.filter(organization=organization).exists():
            continue
        for name, focus, frequency, role in DEFAULTS:
            ReviewSchedule.objects.create(
                organization=organization,
                name=name,
                focus=focus,
                frequency=frequency,
                assigned_role=role,
            )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
