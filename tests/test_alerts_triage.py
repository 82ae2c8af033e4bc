"""Alert triage: the list's order, filters and pages, counts that agree, and the actions on the
account an alert is about (unlock, sign out everywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import LockoutState, Organization, Role, User, UserSession
from alerts import views
from alerts.models import Alert, AlertRule, RuleKind, Severity
from alerts.rules import alert_rules_ensure
from audit.models import EventType, Reason

from .alerts_support import committing, failures_recorded
from .factories import OrganizationFactory, member
from .helpers import client_as, events, sign_in

pytestmark = pytest.mark.django_db

LIST_URL = reverse("alerts:alert-list")


@dataclass
class Org:
    organization: Organization
    admin: User
    analyst: User
    compliance: User
    victim: User


@pytest.fixture
def acme() -> Org:
    org = OrganizationFactory.create()
    return Org(
        organization=org,
        admin=member(org, role=Role.ADMINISTRATOR),
        analyst=member(org, role=Role.SECURITY_ANALYST),
        compliance=member(org, role=Role.COMPLIANCE_OFFICER),
        victim=member(org),
    )


def _alert(
    org: Organization,
    summary: str,
    *,
    severity: str = Severity.MEDIUM,
    minutes_ago: int = 0,
    subject: User | None = None,
    assignee: User | None = None,
    kind: str = RuleKind.NEW_DEVICE,
) -> Alert:
    """An alert as the evaluation would store it, last seen `minutes_ago`."""
    alert_rules_ensure(organization_id=org.pk)
    rule = AlertRule.objects.get(organization=org, kind=kind)
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Alert.objects.create(
        organization=org,
        rule=rule,
        kind=kind,
        severity=severity,
        subject_user=subject,
        subject_label=subject.email if subject else "203.0.113.9",
        subject_ip=None if subject else "203.0.113.9",
        subject_key=f"test:{summary}",
        window_key=f"test:{summary}@always",
        summary=summary,
        first_seen_at=at,
        last_seen_at=at,
        assignee=assignee,
    )


# The summaries a test's alerts carry, which _in_order looks for.
_ALL: list[str] = []


def _in_order(body: str) -> list[str]:
    """The summaries of the listed alerts, top to bottom."""
    found = [(body.index(f">{s}</a>"), s) for s in _ALL if f">{s}</a>" in body]
    return [s for _, s in sorted(found)]


@pytest.fixture
def mixed(acme) -> dict[str, Alert]:
    """A low alert seen a minute ago, a high one seen an hour ago, a medium one in between."""
    made = {
        "low-new": _alert(acme.organization, "low-new", severity=Severity.LOW, minutes_ago=1),
        "high-old": _alert(acme.organization, "high-old", severity=Severity.HIGH, minutes_ago=60),
        "medium-mid": _alert(
            acme.organization, "medium-mid", severity=Severity.MEDIUM, minutes_ago=30
        ),
        "high-new": _alert(acme.organization, "high-new", severity=Severity.HIGH, minutes_ago=5),
    }
    _ALL[:] = list(made)
    return made


# --- Order -----------------------------------------------------------------------------------


def test_the_list_puts_high_alerts_first_then_the_latest_seen(acme, mixed):
    response = client_as(acme.analyst).get(LIST_URL)
    assert _in_order(response.content.decode()) == ["high-new", "high-old", "medium-mid", "low-new"]


def test_the_list_sorts_by_last_seen_on_request(acme, mixed):
    response = client_as(acme.analyst).get(LIST_URL, {"sort": "last_seen"})
    assert _in_order(response.content.decode()) == ["low-new", "high-new", "medium-mid", "high-old"]


def test_pages_follow_the_chosen_order_without_gaps_or_repeats(acme, mixed, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 1)
    analyst = client_as(acme.analyst)
    seen: list[str] = []
    url = LIST_URL + "?sort=severity"
    for _ in range(10):
        response = analyst.get(url)
        assert response.status_code == 200
        seen += _in_order(response.content.decode())
        more = response.context["more"]
        if not more:
            break
        url = LIST_URL + more
    assert seen == ["high-new", "high-old", "medium-mid", "low-new"]


def test_a_page_mark_from_another_organization_is_refused_with_a_message(acme, mixed):
    elsewhere = _alert(OrganizationFactory.create(), "elsewhere")
    response = client_as(acme.analyst).get(LIST_URL, {"after": elsewhere.pk})
    assert response.status_code == 400
    assert "no longer exists" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [{"after": "abc"}, {"after": "-1"}, {"after": "9" * 30}, {"sort": "mood"}, {"assignee": "x"}],
)
def test_bad_list_input_is_a_400_with_a_message(acme, mixed, query):
    response = client_as(acme.analyst).get(LIST_URL, query)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()


def test_bad_list_input_over_htmx_answers_the_fragment_with_its_message(acme, mixed):
    response = client_as(acme.analyst).get(LIST_URL, {"sort": "mood"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 400
    assert "<html" not in body
    assert "Sort by" in body


# --- Assignee ----------------------------------------------------------------------------------


def test_the_assignee_filter_takes_me_no_one_and_a_colleague(acme):
    _alert(acme.organization, "mine", assignee=acme.analyst)
    _alert(acme.organization, "admins", assignee=acme.admin)
    _alert(acme.organization, "nobodys")
    _ALL[:] = ["mine", "admins", "nobodys"]
    analyst = client_as(acme.analyst)

    def shown(assignee: str) -> set[str]:
        return set(_in_order(analyst.get(LIST_URL, {"assignee": assignee}).content.decode()))

    assert shown("me") == {"mine"}
    assert shown("none") == {"nobodys"}
    assert shown(str(acme.admin.pk)) == {"admins"}
    assert shown("") == {"mine", "admins", "nobodys"}


def test_the_assignee_filter_refuses_someone_of_another_organization(acme):
    outsider = member(OrganizationFactory.create(), role=Role.SECURITY_ANALYST)
    response = client_as(acme.analyst).get(LIST_URL, {"assignee": outsider.pk})
    assert response.status_code == 400


# --- Counts ------------------------------------------------------------------------------------


def test_headline_list_and_detail_agree_on_how_many_failures(acme):
    """The issue's case: 17 failures at a threshold of 5 match 13 times; pages say 17."""
    start = timezone.now() - timedelta(minutes=5)
    with committing():
        for second in range(17):
            failures_recorded(acme.victim, count=1, at=start + timedelta(seconds=second))
    alert = Alert.objects.get(kind=RuleKind.FAILED_SIGN_INS)
    assert alert.count == 13  # matches, which the pages no longer show as a count
    assert alert.summary.startswith("17 failed sign-ins")
    analyst = client_as(acme.analyst)

    listed = analyst.get(LIST_URL).content.decode()
    assert 'data-testid="alert-events">17<' in listed

    detail = analyst.get(reverse("alerts:alert-detail", args=[alert.pk]))
    body = detail.content.decode()
    assert 'data-testid="alert-event-count">17,' in body
    assert len(detail.context["events"]) == 17
    assert "Matched" not in body
    assert "13 times" not in body


# --- Actions on the account ------------------------------------------------------------------


def _lock(user: User) -> None:
    now = timezone.now()
    LockoutState.objects.create(
        user=user, locked_at=now, locked_until=now + timedelta(minutes=30), counter_reset_at=now
    )


def _detail(alert: Alert) -> str:
    return reverse("alerts:alert-detail", args=[alert.pk])


def _unlock(alert: Alert) -> str:
    return reverse("alerts:alert-subject-unlock", args=[alert.pk])


def _sign_out(alert: Alert) -> str:
    return reverse("alerts:alert-subject-sign-out", args=[alert.pk])


@pytest.fixture
def locked_alert(acme) -> Alert:
    _lock(acme.victim)
    sign_in(Client(), acme.victim.email)  # refused: locked, no session
    return _alert(acme.organization, "locked", subject=acme.victim, kind=RuleKind.FAILED_SIGN_INS)


def test_an_administrator_sees_the_actions_the_alert_calls_for(acme, locked_alert):
    body = client_as(acme.admin).get(_detail(locked_alert)).content.decode()
    assert _unlock(locked_alert) in body
    assert _sign_out(locked_alert) not in body  # no open session to end


def test_an_analyst_sees_no_action_they_may_not_take(acme, locked_alert):
    body = client_as(acme.analyst).get(_detail(locked_alert)).content.decode()
    assert _unlock(locked_alert) not in body
    assert _sign_out(locked_alert) not in body


def test_unlocking_asks_first(acme, locked_alert):
    response = client_as(acme.admin).get(_unlock(locked_alert))
    assert response.status_code == 200
    assert f"Unlock {acme.victim.email}?" in response.content.decode()
    assert LockoutState.objects.get(user=acme.victim).locked_until is not None
    assert events(EventType.LOCKOUT_RELEASED) == []


def test_unlocking_from_the_alert_releases_the_lock_says_so_and_records_it(acme, locked_alert):
    admin = client_as(acme.admin)
    response = admin.post(_unlock(locked_alert))
    assert response.status_code == 303
    assert response["Location"] == _detail(locked_alert)
    assert LockoutState.objects.get(user=acme.victim).locked_until is None
    [released] = events(EventType.LOCKOUT_RELEASED)
    assert released.reason == Reason.ADMIN_UNLOCK
    assert released.actor_id == acme.admin.pk and released.target_user_id == acme.victim.pk
    page = admin.get(response["Location"]).content.decode()
    assert f"{acme.victim.email} is unlocked." in page
    assert _unlock(locked_alert) not in page


def test_signing_out_everywhere_from_the_alert_ends_every_session(acme):
    laptop, phone = Client(), Client()
    sign_in(laptop, acme.victim.email)
    sign_in(phone, acme.victim.email)
    alert = _alert(acme.organization, "devices", subject=acme.victim)
    admin = client_as(acme.admin)
    assert _sign_out(alert) in admin.get(_detail(alert)).content.decode()
    assert "all 2 open sessions" in admin.get(_sign_out(alert)).content.decode()

    response = admin.post(_sign_out(alert))

    assert response.status_code == 303
    assert laptop.get(reverse("accounts:profile")).status_code == 302
    assert phone.get(reverse("accounts:profile")).status_code == 302
    ended = events(EventType.SESSION_ENDED)
    assert len(ended) == 2
    assert {(e.reason, e.actor_id, e.target_user_id) for e in ended} == {
        (Reason.REVOKED_BY_ADMIN, acme.admin.pk, acme.victim.pk)
    }
    assert (
        f"Signed out 2 sessions of {acme.victim.email}."
        in admin.get(response["Location"]).content.decode()
    )


def test_an_administrator_signs_out_their_own_sessions_elsewhere(acme):
    alert = _alert(acme.organization, "me", subject=acme.admin)
    response = client_as(acme.admin).post(_sign_out(alert))
    assert response.status_code == 409
    assert "Profile → Security" in response.content.decode()
    assert UserSession.objects.filter(user=acme.admin, ended_at__isnull=False).count() == 0


@pytest.mark.parametrize("action", [_unlock, _sign_out])
def test_actions_send_anonymous_visitors_to_sign_in(client, locked_alert, action):
    response = client.post(action(locked_alert))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", ["analyst", "compliance", "victim"])
@pytest.mark.parametrize("action", [_unlock, _sign_out])
def test_actions_are_refused_to_every_role_but_administrators(acme, locked_alert, role, action):
    for method in ("get", "post"):
        response = getattr(client_as(getattr(acme, role)), method)(action(locked_alert))
        assert response.status_code == 403
    assert LockoutState.objects.get(user=acme.victim).locked_until is not None
    assert events(EventType.LOCKOUT_RELEASED) == []


@pytest.mark.parametrize("action", [_unlock, _sign_out])
def test_another_organizations_administrator_finds_no_such_alert(locked_alert, action):
    outsider = member(OrganizationFactory.create(), role=Role.ADMINISTRATOR)
    assert client_as(outsider).post(action(locked_alert)).status_code == 404
    assert LockoutState.objects.get(user=locked_alert.subject_user).locked_until is not None


@pytest.mark.parametrize("action", ["alert-subject-unlock", "alert-subject-sign-out"])
def test_an_alert_about_no_member_has_no_account_to_act_on(acme, action):
    about_an_address = _alert(acme.organization, "spraying")
    response = client_as(acme.admin).post(reverse(f"alerts:{action}", args=[about_an_address.pk]))
    assert response.status_code == 404


def test_a_made_up_alert_id_is_not_found(acme):
    response = client_as(acme.admin).post(reverse("alerts:alert-subject-unlock", args=[999999]))
    assert response.status_code == 404
