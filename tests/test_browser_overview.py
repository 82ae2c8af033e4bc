"""In Chromium: Settings → Security draws its chart (uPlot's canvas) under the Content-Security-
Policy, with no console error, and its table fallback opens with the same numbers."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent, EventType, Outcome

from .factories import OrganizationFactory, member
from .helpers import submit_sign_in
from .test_browser_csp import RECORD_VIOLATIONS

pytestmark = [
    pytest.mark.browser,
    # The throttle keeps its database buckets (no Redis here) on the "audit" connection.
    pytest.mark.django_db(transaction=True, databases=["default", "audit"]),
]


@pytest.mark.parametrize("width", [390, 1280])
def test_the_overview_chart_renders_without_errors(page, width):
    org = OrganizationFactory.create()
    admin = member(org, Role.ADMINISTRATOR)
    yesterday = timezone.now().astimezone(UTC) - timedelta(days=1)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            organization=org,
            event_type=EventType.LOGIN_FAILED,
            outcome=Outcome.FAILURE,
            occurred_at=yesterday + timedelta(seconds=n),
        )
        for n in range(17)
    )
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.location.get("url", "").endswith("/favicon.ico")  # none yet (item 9's)
            and problems.append(f"{m.text} {m.location.get('url')}")
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": width, "height": 900})

    submit_sign_in(page, admin.email)
    page.wait_for_url("**/profile/")
    page.goto("/settings/security/")

    page.locator("#sign-in-chart canvas").wait_for()
    box = page.locator("#sign-in-chart canvas").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    # The overview itself fits the screen (the navigation's own layout is another test's).
    assert (
        page.evaluate(
            "Math.max(...[...document.querySelectorAll('main *')]"
            ".map(e => e.getBoundingClientRect().right))"
        )
        <= width
    )
    page.get_by_text("Show the numbers as a table").click()
    table = page.get_by_test_id("sign-in-table")
    assert table.is_visible()
    assert table.locator("tbody tr").count() == 30
    assert table.get_by_role("cell", name="17", exact=True).count() == 1
    assert page.evaluate("window.__cspViolations") == []
    assert problems == []
