from django.db import migrations, models


class Migration(migrations.Migration):
    """One alert per rule and window, keyed with its organization first (docs/scaling.md).

    The same guarantee as before: a rule belongs to one organization, and an alert is always
    written with its rule's. The new key is built before the old one goes, so the rule holds
    throughout.
    """

    dependencies = [
        ("accounts", "0008_throttling"),
        ("alerts", "0005_evaluatedevent_claim"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(
                fields=("organization", "rule", "window_key"), name="alert_org_rule_window_key"
            ),
        ),
        migrations.RemoveConstraint(model_name="alert", name="alert_rule_window_key"),
    ]
