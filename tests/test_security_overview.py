"""Settings → Security's overview (issue 16, item 5): each role sees its panels, with the right
numbers, and the chart's data matches its table."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import LockoutState, MfaPolicy, Organization, Role
from alerts.models import Alert, AlertRule, AlertStatus, RuleKind, Severity
from audit.models import AuditEvent, EventType, Outcome
from exports.models import Export, ExportStatus
from retention.models import PurgeRun, PurgeStatus

from .factories import OrganizationFactory, member
from .helpers import client_as
from .mfa_support import totp_device

pytestmark = pytest.mark.django_db

URL = reverse("accounts:security-settings")

# The panels (data-testid) each role sees.
PANELS = {
    "overview-activity",
    "overview-locked",
    "overview-mfa",
    "overview-alerts",
    "overview-exports",
    "overview-retention",
    "overview-archives",
    "overview-reviews",
    "overview-compliance",
}
SEES = {
    Role.ADMINISTRATOR: PANELS,
    Role.SECURITY_ANALYST: PANELS
    - {"overview-retention", "overview-archives", "overview-compliance"},
    Role.COMPLIANCE_OFFICER: PANELS - {"overview-alerts"},
}


def _panels(html: str) -> set[str]:
    return set(re.findall(r'data-testid="(overview-[a-z]+)"', html))


def _sign_ins(org: Organization, *, day: datetime, succeeded: int, failed: int) -> None:
    rows = [
        AuditEvent(
            organization=org,
            event_type=EventType.LOGIN_FAILED if n < failed else EventType.LOGIN_SUCCEEDED,
            outcome=Outcome.FAILURE if n < failed else Outcome.SUCCESS,
            occurred_at=day + timedelta(minutes=n),
        )
        for n in range(succeeded + failed)
    ]
    AuditEvent.objects.bulk_create(rows)


def _alert(org: Organization, *, severity: str, status: str, key: str) -> Alert:
    rule, _ = AlertRule.objects.get_or_create(organization=org, kind=RuleKind.FAILED_SIGN_INS)
    now = timezone.now()
    return Alert.objects.create(
        organization=org,
        rule=rule,
        kind=rule.kind,
        severity=severity,
        status=status,
        subject_key=key,
        window_key=key,
        summary=f"alert {key}",
        first_seen_at=now,
        last_seen_at=now,
    )


def test_anonymous_people_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_members_may_not_see_the_overview():
    response = client_as(member()).get(URL)
    assert response.status_code == 403


@pytest.mark.parametrize("role", list(SEES))
def test_each_role_sees_its_panels(role):
    response = client_as(member(role=role)).get(URL)
    assert response.status_code == 200
    assert _panels(response.content.decode()) == SEES[role]


def test_the_overview_counts_only_the_viewers_organization():
    org, other = OrganizationFactory.create(), OrganizationFactory.create()
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    _sign_ins(other, day=today, succeeded=7, failed=5)
    _alert(other, severity=Severity.HIGH, status=AlertStatus.OPEN, key="theirs")
    locked = member(other, email="locked@other.test")
    LockoutState.objects.create(user=locked, locked_until=timezone.now() + timedelta(minutes=9))
    Export.objects.create(organization=other, filters={})

    response = client_as(member(org, Role.ADMINISTRATOR)).get(URL)
    assert response.context["panels"]
    data = {panel.name: panel.data for panel in response.context["panels"]}
    # The one sign-in is the viewer's own (client_as signs in through Django's signal).
    assert data["sign_in_activity"]["totals"] == {"succeeded": 1, "failed": 0}
    assert data["alerts"]["by_severity"]["high"] == {"open": 0, "acknowledged": 0}
    assert data["accounts"]["locked"] == []
    assert data["exports"]["exports"] == []
    assert "locked@other.test" not in response.content.decode()


def test_sign_ins_per_day_on_known_data():
    org = OrganizationFactory.create()
    now = timezone.now()
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    _sign_ins(org, day=today, succeeded=3, failed=2)
    _sign_ins(org, day=today - timedelta(days=2), succeeded=1, failed=4)
    _sign_ins(org, day=today - timedelta(days=40), succeeded=9, failed=9)  # before the chart
    AuditEvent.objects.create(organization=org, event_type=EventType.LOGOUT, occurred_at=today)

    # The viewer's own sign-in is today's fourth.
    response = client_as(member(org, Role.SECURITY_ANALYST)).get(URL)

    chart = json.loads(
        re.search(
            r'<script id="sign-in-chart-data" type="application/json">(.*?)</script>',
            response.content.decode(),
        ).group(1)
    )
    assert len(chart["days"]) == 30
    assert chart["days"][-1] == today.date().isoformat()
    assert chart["succeeded"][-1] == 4 and chart["failed"][-1] == 2
    assert chart["succeeded"][-3] == 1 and chart["failed"][-3] == 4
    assert sum(chart["succeeded"]) == 5 and sum(chart["failed"]) == 6
    data = {panel.name: panel.data for panel in response.context["panels"]}
    assert data["sign_in_activity"]["totals"] == {"succeeded": 5, "failed": 6}


def test_the_table_fallback_holds_the_charts_numbers():
    org = OrganizationFactory.create()
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    _sign_ins(org, day=today - timedelta(days=1), succeeded=11, failed=13)

    page = client_as(member(org, Role.ADMINISTRATOR)).get(URL).content.decode()

    table = page.split('data-testid="sign-in-table"')[1].split("</table>")[0]
    rows = re.findall(r'<tr><th scope="row"><time datetime="([\d-]+)">.*?</time></th>'
                      r"<td>(\d+)</td><td>(\d+)</td></tr>", table)  # fmt: skip
    assert len(rows) == 30
    yesterday = (today - timedelta(days=1)).date().isoformat()
    assert (yesterday, "11", "13") in rows
    assert sum(int(s) for _, s, _ in rows) == 12  # and the viewer's own sign-in today


def test_unresolved_alerts_are_counted_by_severity():
    org = OrganizationFactory.create()
    _alert(org, severity=Severity.HIGH, status=AlertStatus.OPEN, key="a")
    _alert(org, severity=Severity.HIGH, status=AlertStatus.OPEN, key="b")
    _alert(org, severity=Severity.HIGH, status=AlertStatus.ACKNOWLEDGED, key="c")
    _alert(org, severity=Severity.LOW, status=AlertStatus.OPEN, key="d")
    _alert(org, severity=Severity.MEDIUM, status=AlertStatus.RESOLVED, key="e")

    response = client_as(member(org, Role.SECURITY_ANALYST)).get(URL)

    data = {panel.name: panel.data for panel in response.context["panels"]}
    assert data["alerts"]["by_severity"] == {
        "critical": {"open": 0, "acknowledged": 0},
        "high": {"open": 2, "acknowledged": 1},
        "medium": {"open": 0, "acknowledged": 0},
        "low": {"open": 1, "acknowledged": 0},
    }
    assert re.search(r'data-testid="open-high">2<', response.content.decode())


def test_locked_accounts_are_those_locked_now_in_either_scope():
    org = OrganizationFactory.create()
    now = timezone.now()
    both = member(org, email="both@x.test")
    unfamiliar = member(org, email="unfamiliar@x.test")
    expired = member(org, email="expired@x.test")
    LockoutState.objects.create(user=both, locked_until=now + timedelta(minutes=20))
    LockoutState.objects.create(user=unfamiliar, unfamiliar_locked_until=now + timedelta(minutes=5))
    LockoutState.objects.create(user=expired, locked_until=now - timedelta(minutes=1))

    response = client_as(member(org, Role.COMPLIANCE_OFFICER)).get(URL)

    data = {panel.name: panel.data for panel in response.context["panels"]}
    locked = {m.user.email: until for m, until in data["accounts"]["locked"]}
    assert set(locked) == {"both@x.test", "unfamiliar@x.test"}
    assert locked["both@x.test"] == LockoutState.objects.get(user=both).locked_until
    # The Members page (unlocking) is for administrators only.
    assert reverse("accounts:members") not in response.content.decode()


def test_mfa_adoption_counts_members_with_an_authenticator_app():
    org = OrganizationFactory.create(mfa_policy=MfaPolicy.ROLES)
    org.mfa_required_roles = [Role.ADMINISTRATOR]
    org.save()
    admin = member(org, Role.ADMINISTRATOR)
    totp_device(admin)
    totp_device(member(org))
    member(org)
    member(org)

    page = client_as(admin).get(URL).content.decode()

    mfa = page.split('data-testid="overview-mfa"')[1].split("</section>")[0]
    assert "<strong>2</strong> of 4 members" in mfa
    assert "(50%)" in mfa
    assert "Required: for Administrator" in mfa


def test_retention_shows_the_tier_days_and_purges():
    org = OrganizationFactory.create()
    PurgeRun.objects.create(
        scope=f"org:{org.pk}",
        organization=org,
        status=PurgeStatus.SUCCEEDED,
        retention_days=org.retention_days,
        cutoff=timezone.now() - timedelta(days=org.retention_days),
        deleted=1234,
        finished_at=timezone.now(),
    )

    response = client_as(member(org, Role.COMPLIANCE_OFFICER)).get(URL)

    data = {panel.name: panel.data for panel in response.context["panels"]}
    status = data["retention"]["status"]
    assert status.retention_days == org.retention_days
    assert status.last_purge.deleted == 1234
    assert status.next_purge_at > timezone.now()
    assert (status.next_purge_at.hour, status.next_purge_at.minute) == (3, 15)
    page = response.content.decode()
    assert "1234 events deleted" in page
    assert f"{org.retention_days} days" in page


def test_recent_exports_are_the_latest_five():
    org = OrganizationFactory.create()
    admin = member(org, Role.ADMINISTRATOR)
    start = timezone.now() - timedelta(hours=10)
    for n in range(7):
        Export.objects.create(
            organization=org,
            requested_by=admin,
            filters={},
            status=ExportStatus.DONE,
            rows_written=100 + n,
            created_at=start + timedelta(hours=n),
        )

    response = client_as(admin).get(URL)

    data = {panel.name: panel.data for panel in response.context["panels"]}
    assert [e.rows_written for e in data["exports"]["exports"]] == [106, 105, 104, 103, 102]


def test_days_are_the_viewers_own_when_a_zone_is_active():
    from zoneinfo import ZoneInfo

    from accounts.selectors import sign_ins_by_day_of

    org = OrganizationFactory.create()
    now = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    # 20:30 UTC on the 10th is already the 11th in Tokyo (UTC+9).
    _sign_ins(org, day=datetime(2026, 3, 10, 20, 30, tzinfo=UTC), succeeded=2, failed=1)

    utc = sign_ins_by_day_of(org, days=2, now=now)
    tokyo = sign_ins_by_day_of(org, days=2, now=now, zone=ZoneInfo("Asia/Tokyo"))

    assert [(d.day.day, d.succeeded, d.failed) for d in utc] == [(10, 2, 1), (11, 0, 0)]
    assert [(d.day.day, d.succeeded, d.failed) for d in tokyo] == [(10, 0, 0), (11, 2, 1)]
