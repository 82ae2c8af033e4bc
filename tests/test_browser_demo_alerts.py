"""After seed_demo (what `make run` runs), Acme's analyst finds an alert of each new rule."""

from __future__ import annotations

import pytest

from alerts.models import RuleKind
from demo.scenarios import SCENARIO_RULES, STUFFER_IP, TOR_EXIT
from demo.seed import DEMO_PASSWORD, seed_demo

from .helpers import submit_sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

OURS = {
    RuleKind.MFA_FATIGUE,
    RuleKind.SESSION_ANOMALY,
    RuleKind.ANONYMISING_NETWORK,
    RuleKind.CREDENTIAL_STUFFING,
}


def test_the_alerts_page_shows_each_demo_attacks_alert(page):
    seed_demo(days=2)
    expected = [RuleKind(kind) for kind in SCENARIO_RULES]
    assert set(expected) == OURS

    submit_sign_in(page, "analyst@acme.test", DEMO_PASSWORD)
    page.wait_for_url("**/profile/")
    page.goto("/settings/security/alerts/")
    rows = page.locator("table.alerts tbody tr")
    rows.first.wait_for()
    for kind in expected:
        assert rows.filter(has_text=kind.label).count() == 1, kind.label

    rows.filter(has_text=RuleKind.ANONYMISING_NETWORK.label).get_by_role("link").click()
    page.wait_for_url("**/settings/security/alerts/*/")
    assert page.get_by_role("heading", level=1).inner_text() == (
        f"analyst@acme.test signed in through Tor (exit node {TOR_EXIT})"
    )
    assert page.locator("ol.timeline li").count() == 1

    page.goto("/settings/security/alerts/")
    rows.filter(has_text=RuleKind.MFA_FATIGUE.label).get_by_role("link").click()
    page.wait_for_url("**/settings/security/alerts/*/")
    # Six refused codes and the one that got through.
    assert page.locator("ol.timeline li").count() == 7

    page.goto("/settings/security/alerts/")
    rows.filter(has_text=RuleKind.CREDENTIAL_STUFFING.label).get_by_role("link").click()
    page.wait_for_url("**/settings/security/alerts/*/")
    assert page.get_by_role("heading", level=1).inner_text() == (
        f"33 failed sign-ins for 18 accounts (at most 2 each) from {STUFFER_IP} within 15 minutes"
    )
    # Every attempt of the run: 18 accounts, 15 of them tried twice.
    assert page.locator("ol.timeline li").count() == 33
