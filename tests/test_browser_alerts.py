"""An analyst finds an alert from the navigation, acknowledges it and resolves it with a note."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from alerts.models import Alert, AlertStatus
from audit.models import AuditEvent, EventType

from .factories import OrganizationFactory, member
from .helpers import sign_in, submit_sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_analyst_acknowledges_and_resolves_an_alert(page):
    org = OrganizationFactory.create()
    analyst = member(org, role=Role.SECURITY_ANALYST)
    victim = member(org)
    attacker = Client()
    for _ in range(5):  # committed at once here: the evaluation runs as it would after a commit
        sign_in(attacker, victim.email, "wrong", REMOTE_ADDR="198.51.100.7")
    alert = Alert.objects.get()

    submit_sign_in(page, analyst.email)
    page.wait_for_url("**/profile/")
    badge = page.get_by_test_id("nav-open-alerts")
    assert badge.inner_text() == "1"

    badge.click()
    page.get_by_role("link", name=alert.summary).click()
    page.wait_for_url(f"**/settings/security/alerts/{alert.pk}/")
    assert page.locator("ol.timeline li").count() == 5

    page.get_by_role("button", name="Acknowledge").click()
    status = page.get_by_test_id("alert-status")
    status.filter(has_text="Acknowledged").wait_for()

    page.fill("#resolve-note", "Victim mistyped after a password change; confirmed by phone.")
    page.get_by_role("button", name="Resolve").click()
    status.filter(has_text="Resolved").wait_for()
    assert page.get_by_text("confirmed by phone").is_visible()

    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.assignee_id == analyst.pk
    assert AuditEvent.objects.filter(
        event_type=EventType.ALERT_ACKNOWLEDGED, actor=analyst
    ).exists()
    assert AuditEvent.objects.filter(event_type=EventType.ALERT_RESOLVED, actor=analyst).exists()
