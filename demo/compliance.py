"""Reviews and the monitoring checklist for the demo: at Acme a review signed off the day before
yesterday (in the history), the reviews of the periods just ended (due), and a checklist partly
done (alerts on, the log verified, retention acknowledged, a guide only the administrator read)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Organization, User
from alerts.rules import alert_rules_ensure
from compliance.models import Decision, Review, ReviewSchedule
from compliance.services import (
    guide_acknowledge,
    guide_update,
    retention_acknowledge,
    review_open,
    review_prepare,
    review_schedules_ensure,
    review_sign_off,
    reviews_open_due,
)
from retention.models import Framework, RetentionSettings

GUIDE = """Every morning, the security analyst on duty opens Settings → Security → Reviews and works
through the daily review: each alert, lockout, spike of failed sign-ins and sign-in from a new
country of the day before.

Expected: a colleague travelling (check the trip calendar), a typo storm after a password change.
Follow up: many accounts failing from one address (password spraying), a locked account whose
owner did not cause it, a sign-in from a country nobody travels to. Acknowledge the alert, note
what you did, and tell the account's owner through a channel other than email.

Escalate to the administrators within the hour when an administrator's account is involved."""


def seed_compliance(*, organization: Organization, users: dict[str, User]) -> None:
    """Give the organization its schedules and, once, Acme's reviews and checklist evidence."""
    review_schedules_ensure(organization=organization)
    if organization.slug != "acme" or Review.objects.filter(organization=organization).exists():
        return
    now = timezone.now()
    admin, analyst = users["admin@acme.test"], users["analyst@acme.test"]
    alert_rules_ensure(organization_id=organization.pk)

    # The analysts' review of the day before yesterday, marked and signed by the analyst.
    daily = ReviewSchedule.objects.get(organization=organization, frequency="daily")
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    signed = review_open(
        schedule=daily, start=today - timedelta(days=2), end=today - timedelta(days=1), now=now
    )
    review_prepare(review=signed)
    signed.items.update(decision=Decision.EXPECTED, decided_by=analyst, decided_at=now)
    review_sign_off(review=signed, user=analyst, note="Nothing to follow up.")
    # The periods just ended: due (yesterday's, last week's, last month's).
    reviews_open_due(organization=organization, now=now)

    RetentionSettings.objects.update_or_create(
        organization=organization, defaults={"frameworks": [Framework.SOC2]}
    )
    retention_acknowledge(organization=organization, actor=admin)
    guide = guide_update(organization=organization, actor=admin, body=GUIDE)
    if guide is not None:
        guide_acknowledge(organization=organization, user=admin, version=guide.version)
