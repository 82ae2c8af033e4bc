from django.db import migrations, models
from django.utils import timezone


class Migration(migrations.Migration):
    """The ledger's claim lease: an event is claimed (committed at once) before it is evaluated."""

    dependencies = [
        ("alerts", "0004_credential_stuffing"),
    ]

    operations = [
        migrations.AlterField(
            model_name="evaluatedevent",
            name="evaluated_at",
            field=models.DateTimeField(blank=True, default=timezone.now, null=True),
        ),
        migrations.AddField(
            model_name="evaluatedevent",
            name="claim_token",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="evaluatedevent",
            name="claimed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
