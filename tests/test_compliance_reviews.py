"""Settings → Security → Reviews: the schedule, each review's queue from the log, marks, the
password-rechecked sign-off (separation of duties, right role, right tenant) and the overdue
sweep (one event, one email per review)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as project_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from activity_monitor.celery import app as celery_app
from audit.models import EventType, Outcome, Reason
from compliance import tasks
from compliance.models import Decision, ItemKind, Review, ReviewSchedule, ReviewStatus

from .compliance_support import alert_at, midnight, record, review_of, schedule_of, team
from .factories import PASSWORD
from .helpers import client_as, events

pytestmark = pytest.mark.django_db

REVIEWS = reverse("compliance:reviews")


@pytest.fixture
def acme():
    return team("Acme")


@pytest.fixture
def globex():
    return team("Globex")


def _detail(review: Review) -> str:
    return reverse("compliance:review-detail", kwargs={"pk": review.pk})


def _sign_off(review: Review) -> str:
    return reverse("compliance:review-sign-off", kwargs={"pk": review.pk})


def _mark(review: Review, item_pk: int) -> str:
    return reverse("compliance:review-item-mark", kwargs={"pk": review.pk, "item_pk": item_pk})


def _mark_all(client: Client, review: Review) -> None:
    for item in review.items.all():
        response = client.post(_mark(review, item.pk), {"decision": "expected", "note": ""})
        assert response.status_code == 303


# --- Who may open what ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.ADMINISTRATOR, 200),
        (Role.SECURITY_ANALYST, 200),
        (Role.COMPLIANCE_OFFICER, 200),
        (Role.MEMBER, 403),
    ],
)
def test_the_reviews_page_by_role(acme, role, status):
    user = {
        Role.ADMINISTRATOR: acme.admin,
        Role.SECURITY_ANALYST: acme.analyst,
        Role.COMPLIANCE_OFFICER: acme.officer,
        Role.MEMBER: acme.alice,
    }[role]
    response = client_as(user).get(REVIEWS)
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        # The product page's three, made on the first visit.
        for name in (
            "Administrators&#x27; weekly review",
            "Security analysts&#x27; daily review",
            "Compliance monthly review",
        ):
            assert name in page


def test_anonymous_visitors_are_sent_to_sign_in(client, acme):
    review = review_of(acme.org, Role.ADMINISTRATOR)
    for url in (REVIEWS, _detail(review), _sign_off(review), reverse("compliance:schedule-add")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert client.post(_sign_off(review), {"password": PASSWORD}).status_code == 302


@pytest.mark.parametrize("who", ["analyst", "officer", "alice"])
def test_only_administrators_change_the_schedule(acme, who):
    user = getattr(acme, who)
    schedule = schedule_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(user)
    edit = reverse("compliance:schedule-edit", kwargs={"pk": schedule.pk})
    assert client.get(reverse("compliance:schedule-add")).status_code == 403
    assert client.get(edit).status_code == 403
    data = {"name": "x", "focus": "all_activity", "frequency": "daily", "assigned_role": "member"}
    assert client.post(edit, data).status_code == 403
    assert (
        client.get(reverse("compliance:review-open", kwargs={"pk": schedule.pk})).status_code == 403
    )
    schedule.refresh_from_db()
    assert schedule.frequency == "daily" and not events(EventType.SETTINGS_CHANGED)


def test_another_tenant_sees_none_of_it(acme, globex):
    review = review_of(acme.org, Role.ADMINISTRATOR)
    record(
        acme.org, EventType.LOCKOUT_TRIGGERED, midnight(2) + timedelta(hours=3), target=acme.alice
    )
    client = client_as(globex.admin)
    page = client.get(REVIEWS).content.decode()
    assert "admin@acme.test" not in page and str(review.pk) not in page.split("History")[1]
    assert client.get(_detail(review)).status_code == 404
    assert client.get(_sign_off(review)).status_code == 404
    assert client.post(_sign_off(review), {"password": PASSWORD}).status_code == 404
    assert client.post(_mark(review, 1), {"decision": "expected"}).status_code == 404
    edit = reverse("compliance:schedule-edit", kwargs={"pk": review.schedule_id})
    assert client.get(edit).status_code == 404
    review.refresh_from_db()
    assert review.status == ReviewStatus.OPEN


# --- The schedule ---------------------------------------------------------------------------


def test_an_administrator_changes_frequency_and_assignee_and_it_is_recorded(acme):
    schedule = schedule_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(acme.admin)
    edit = reverse("compliance:schedule-edit", kwargs={"pk": schedule.pk})
    response = client.post(
        edit,
        {
            "name": schedule.name,
            "focus": schedule.focus,
            "frequency": "weekly",
            "assigned_role": "security_analyst",
            "assignee": acme.analyst.pk,
            "active": "on",
        },
    )
    assert response.status_code == 303
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.actor_id == acme.admin.pk
    assert changed.details["area"] == "review_schedule"
    assert changed.details["old"] == {"frequency": "daily", "assignee": None}
    assert changed.details["new"] == {"frequency": "weekly", "assignee": acme.analyst.email}


def test_an_administrator_adds_a_review(acme):
    client = client_as(acme.admin)
    response = client.post(
        reverse("compliance:schedule-add"),
        {
            "name": "Quarterly access look",
            "focus": "audit_trail",
            "frequency": "monthly",
            "assigned_role": "compliance_officer",
            "active": "on",
        },
    )
    assert response.status_code == 303
    assert ReviewSchedule.objects.filter(organization=acme.org, name="Quarterly access look")
    [added] = events(EventType.SETTINGS_CHANGED)
    assert added.details["old"] is None and added.details["new"]["frequency"] == "monthly"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "No one", "focus": "all_activity", "frequency": "daily"}, "Choose the role"),
        (
            {"name": "Bad", "focus": "nope", "frequency": "hourly", "assigned_role": "member"},
            "Select a valid choice",
        ),
        (
            {
                "name": "Security analysts' daily review",
                "focus": "all_activity",
                "frequency": "daily",
                "assigned_role": "administrator",
            },
            "exists already",
        ),
    ],
)
def test_a_bad_schedule_is_refused_with_a_message(acme, data, message):
    schedule_of(acme.org, Role.ADMINISTRATOR)
    response = client_as(acme.admin).post(reverse("compliance:schedule-add"), data)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not events(EventType.SETTINGS_CHANGED)


def test_a_person_of_another_tenant_cannot_be_assigned(acme, globex):
    schedule = schedule_of(acme.org, Role.ADMINISTRATOR)
    edit = reverse("compliance:schedule-edit", kwargs={"pk": schedule.pk})
    data = {
        "name": schedule.name,
        "focus": schedule.focus,
        "frequency": schedule.frequency,
        "assignee": globex.admin.pk,
    }
    response = client_as(acme.admin).post(edit, data)
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


# --- Periods --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (3, 3, "The period is empty"),
        (2, 4, "The period is empty"),
        ("yesterday", "today", "Enter a valid date"),
    ],
)
def test_empty_reversed_or_garbled_periods_are_refused(acme, start, end, message):
    schedule = schedule_of(acme.org, Role.ADMINISTRATOR)
    url = reverse("compliance:review-open", kwargs={"pk": schedule.pk})

    def day(value):
        return midnight(value).date().isoformat() if isinstance(value, int) else value

    response = client_as(acme.admin).post(url, {"start": day(start), "end": day(end)})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Review.objects.filter(schedule=schedule).exists()


def test_an_overlapping_period_is_refused_with_a_message(acme):
    schedule = schedule_of(acme.org, Role.ADMINISTRATOR)
    url = reverse("compliance:review-open", kwargs={"pk": schedule.pk})
    client = client_as(acme.admin)
    first = {"start": midnight(10).date().isoformat(), "end": midnight(3).date().isoformat()}
    assert client.post(url, first).status_code == 303
    overlapping = {"start": midnight(5).date().isoformat(), "end": midnight(1).date().isoformat()}

    response = client.post(url, overlapping)

    assert response.status_code == 400
    assert "overlaps the review of" in response.content.decode()
    assert Review.objects.filter(schedule=schedule).count() == 1


def test_a_period_not_over_yet_is_refused(acme):
    schedule = schedule_of(acme.org, Role.ADMINISTRATOR)
    url = reverse("compliance:review-open", kwargs={"pk": schedule.pk})
    data = {"start": midnight(1).date().isoformat(), "end": midnight(-1).date().isoformat()}
    response = client_as(acme.admin).post(url, data)
    assert response.status_code == 400
    assert "has not ended yet" in response.content.decode()


# --- The queue ------------------------------------------------------------------------------


def _known_events(acme, globex):
    """One of each kind inside two days ago, and the same kinds outside it or elsewhere."""
    day = midnight(2)
    org = acme.org
    record(
        org,
        EventType.SETTINGS_CHANGED,
        day + timedelta(hours=1),
        actor=acme.admin,
        details={"area": "retention", "old": {}, "new": {}},
    )
    record(
        org,
        EventType.MEMBER_ROLE_CHANGED,
        day + timedelta(hours=2),
        actor=acme.admin,
        target=acme.alice,
        details={"old": "member", "new": "security_analyst"},
    )
    record(org, EventType.LOCKOUT_TRIGGERED, day + timedelta(hours=3), target=acme.alice)
    record(org, EventType.EXPORT_CREATED, day + timedelta(hours=4), actor=acme.officer)
    record(
        org, EventType.EXPORT_DOWNLOADED, day + timedelta(hours=4, minutes=5), actor=acme.officer
    )
    for minute in range(12):  # a spike: 12 failures in the 05:00 hour
        record(
            org,
            EventType.LOGIN_FAILED,
            day + timedelta(hours=5, minutes=minute),
            outcome=Outcome.FAILURE,
            reason=Reason.INVALID_CREDENTIALS,
            ip=f"198.51.100.{minute}",
        )
    for minute in range(3):  # not a spike
        record(
            org,
            EventType.LOGIN_FAILED,
            day + timedelta(hours=9, minutes=minute),
            outcome=Outcome.FAILURE,
            reason=Reason.INVALID_CREDENTIALS,
        )
    # Alice knows the US from last month; Japan is new, the US again is not.
    record(org, EventType.LOGIN_SUCCEEDED, midnight(30), actor=acme.alice, country="US")
    record(org, EventType.LOGIN_SUCCEEDED, day + timedelta(hours=6), actor=acme.alice, country="US")
    record(org, EventType.LOGIN_SUCCEEDED, day + timedelta(hours=7), actor=acme.alice, country="JP")
    record(org, EventType.LOGIN_SUCCEEDED, day + timedelta(hours=8), actor=acme.alice, country="JP")
    alert_at(org, day + timedelta(hours=5, minutes=30))
    # Outside the period, and in another organization: none of it is reviewed.
    record(org, EventType.LOCKOUT_TRIGGERED, midnight(1) + timedelta(hours=1), target=acme.alice)
    record(org, EventType.SETTINGS_CHANGED, day - timedelta(seconds=1), actor=acme.admin)
    record(globex.org, EventType.LOCKOUT_TRIGGERED, day + timedelta(hours=3), target=globex.alice)
    alert_at(globex.org, day + timedelta(hours=3), summary="Globex's own alert")


def test_the_administrators_queue_holds_each_kind_of_the_period_once(acme, globex):
    _known_events(acme, globex)
    review = review_of(acme.org, Role.ADMINISTRATOR)

    page = client_as(acme.second_admin).get(_detail(review)).content.decode()

    kinds = sorted(review.items.values_list("kind", flat=True))
    assert kinds == sorted(
        [
            ItemKind.CONFIGURATION,
            ItemKind.ROLE_CHANGE,
            ItemKind.LOCKOUT,
            ItemKind.EXPORT,
            ItemKind.EXPORT,
            ItemKind.FAILURE_SPIKE,
            ItemKind.NEW_COUNTRY,
            ItemKind.ALERT,
        ]
    )
    assert "12 failed sign-ins in the hour from" in page
    assert "signed in from Japan for the first time" in page
    assert "member → security_analyst" in page
    assert "Spraying from 203.0.113.9" in page and "now <strong>open</strong>" in page
    assert "Globex" not in page
    # Prepared once: opening it again adds nothing.
    client_as(acme.admin).get(_detail(review))
    assert review.items.count() == 8


def test_the_analysts_queue_holds_operations_and_anomalies_only(acme, globex):
    _known_events(acme, globex)
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client_as(acme.analyst).get(_detail(review))
    assert sorted(review.items.values_list("kind", flat=True)) == sorted(
        [ItemKind.LOCKOUT, ItemKind.FAILURE_SPIKE, ItemKind.NEW_COUNTRY, ItemKind.ALERT]
    )


def test_the_alert_state_shown_is_the_current_one(acme, globex):
    alert = alert_at(acme.org, midnight(2) + timedelta(hours=1))
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(acme.analyst)
    assert "now <strong>open</strong>" in client.get(_detail(review)).content.decode()
    alert.status = "resolved"
    alert.save()
    assert "now <strong>resolved</strong>" in client.get(_detail(review)).content.decode()


# --- Marks and sign-off ---------------------------------------------------------------------


def test_the_assigned_role_marks_signs_off_and_it_is_in_the_history(acme, globex):
    _known_events(acme, globex)
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(acme.analyst)
    client.get(_detail(review))
    _mark_all(client, review)
    followed = review.items.get(kind=ItemKind.LOCKOUT)
    client.post(_mark(review, followed.pk), {"decision": "followed_up", "note": "Called Alice"})

    response = client.post(_sign_off(review), {"password": PASSWORD, "note": "All looked at"})

    assert response.status_code == 303
    review.refresh_from_db()
    assert review.status == ReviewStatus.COMPLETED
    assert review.signed_by_id == acme.analyst.pk and review.signed_at is not None
    [completed] = events(EventType.REVIEW_COMPLETED)
    assert completed.actor_id == acme.analyst.pk
    assert completed.details["items"] == 4
    assert completed.details["followed_up"] == 1 and completed.details["expected"] == 3
    assert "password" not in str(completed.details).lower()
    history = client.get(REVIEWS).content.decode().split("History")[1]
    assert acme.analyst.email in history
    # Signed is final: no more marks, no second sign-off.
    client.post(_mark(review, followed.pk), {"decision": "expected", "note": ""})
    assert review.items.get(pk=followed.pk).decision == Decision.FOLLOWED_UP
    assert client.post(_sign_off(review), {"password": PASSWORD}).status_code == 303
    assert len(events(EventType.REVIEW_COMPLETED)) == 1


def test_followed_up_needs_a_note(acme):
    record(
        acme.org, EventType.LOCKOUT_TRIGGERED, midnight(2) + timedelta(hours=3), target=acme.alice
    )
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(acme.analyst)
    client.get(_detail(review))
    item = review.items.get()
    response = client.post(_mark(review, item.pk), {"decision": "followed_up"}, follow=True)
    assert "Say in the note how it was followed up" in response.content.decode()
    assert review.items.get().decision == ""
    bad = client.post(_mark(review, item.pk), {"decision": "maybe"}, follow=True)
    assert "Choose Expected or Followed up" in bad.content.decode()


def test_a_wrong_password_is_refused_recorded_and_counted(acme):
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(acme.analyst)

    response = client.post(_sign_off(review), {"password": "not it"})

    assert response.status_code == 400
    assert "That is not your password" in response.content.decode()
    review.refresh_from_db()
    assert review.status == ReviewStatus.OPEN
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.actor_id == acme.analyst.pk
    assert failed.details["purpose"] == "review_sign_off"
    assert "not it" not in str(failed.details)
    assert not events(EventType.REVIEW_COMPLETED)


def test_wrong_passwords_at_sign_off_lock_the_account_like_sign_ins(acme, lockout_alone):
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(acme.analyst)
    for _ in range(acme.org.lockout_threshold):
        client.post(_sign_off(review), {"password": "guess"})

    assert len(events(EventType.LOCKOUT_TRIGGERED)) == 1
    refused = client.post(_sign_off(review), {"password": PASSWORD})
    assert refused.status_code == 400
    review.refresh_from_db()
    assert review.status == ReviewStatus.OPEN


def test_a_person_whose_own_changes_are_all_under_review_may_not_sign(acme):
    record(
        acme.org,
        EventType.SETTINGS_CHANGED,
        midnight(2) + timedelta(hours=1),
        actor=acme.admin,
        details={"area": "retention"},
    )
    record(
        acme.org,
        EventType.MEMBER_ROLE_CHANGED,
        midnight(2) + timedelta(hours=2),
        actor=acme.admin,
        target=acme.alice,
        details={"old": "member", "new": "administrator"},
    )
    review = review_of(acme.org, Role.ADMINISTRATOR)
    own = client_as(acme.admin)
    assert "someone else must sign it off" in own.get(_detail(review)).content.decode()
    _mark_all(own, review)

    response = own.post(_sign_off(review), {"password": PASSWORD})

    assert response.status_code == 400
    assert "Everything under review is your own doing" in response.content.decode()
    # Refused before the password is asked: nothing checked, nothing signed.
    assert not events(EventType.LOGIN_FAILED)
    assert not events(EventType.REVIEW_COMPLETED)
    # The other administrator signs it.
    other = client_as(acme.second_admin)
    assert other.post(_sign_off(review), {"password": PASSWORD}).status_code == 303
    [completed] = events(EventType.REVIEW_COMPLETED)
    assert completed.actor_id == acme.second_admin.pk


def test_unmarked_items_block_the_sign_off(acme):
    record(
        acme.org, EventType.LOCKOUT_TRIGGERED, midnight(2) + timedelta(hours=3), target=acme.alice
    )
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    response = client_as(acme.analyst).post(_sign_off(review), {"password": PASSWORD})
    assert response.status_code == 400
    assert "1 item still to mark" in response.content.decode()
    assert not events(EventType.REVIEW_COMPLETED)


@pytest.mark.parametrize("who", ["admin", "officer"])
def test_the_wrong_role_may_not_mark_or_sign(acme, who):
    record(
        acme.org, EventType.LOCKOUT_TRIGGERED, midnight(2) + timedelta(hours=3), target=acme.alice
    )
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(getattr(acme, who))
    assert client.get(_detail(review)).status_code == 200  # they may read it
    item = review.items.get()
    assert client.post(_mark(review, item.pk), {"decision": "expected"}).status_code == 403
    assert client.get(_sign_off(review)).status_code == 403
    assert client.post(_sign_off(review), {"password": PASSWORD}).status_code == 403
    assert not events(EventType.REVIEW_COMPLETED) and not events(EventType.LOGIN_FAILED)


def test_a_review_assigned_to_a_person_is_theirs_alone(acme):
    schedule = schedule_of(acme.org, Role.ADMINISTRATOR)
    schedule.assignee = acme.second_admin
    schedule.save()
    review = review_of(acme.org, Role.ADMINISTRATOR)
    assert client_as(acme.admin).get(_sign_off(review)).status_code == 403
    assert client_as(acme.second_admin).get(_sign_off(review)).status_code == 200


# --- Overdue --------------------------------------------------------------------------------


def test_the_sweep_marks_overdue_once_and_emails_the_assignees(acme, globex, mailoutbox):
    review = review_of(acme.org, Role.SECURITY_ANALYST, days_ago=5)
    Review.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(hours=1))

    first = tasks.reviews_sweep()
    second = tasks.reviews_sweep()

    assert first["overdue"] == 1 and second["overdue"] == 0
    [overdue] = events(EventType.REVIEW_OVERDUE)
    assert overdue.organization_id == acme.org.pk
    assert overdue.details["review"] == review.pk
    [email] = mailoutbox
    assert email.to == [acme.analyst.email]
    assert "overdue" in email.subject
    assert f"/settings/security/reviews/{review.pk}/" in email.body
    # The sweep opened the periods just ended for both organizations, none of them overdue.
    assert Review.objects.filter(organization=globex.org).count() == 3
    # The overview shows it to the people who read reviews.
    overview = client_as(acme.officer).get(reverse("accounts:security-settings"))
    assert "1 review overdue" in overview.content.decode()
    elsewhere = client_as(globex.admin).get(reverse("accounts:security-settings"))
    assert "No review is overdue" in elsewhere.content.decode()


def test_a_failed_email_is_sent_by_the_next_sweep(acme, mailoutbox, settings):
    review = review_of(acme.org, Role.SECURITY_ANALYST, days_ago=5)
    Review.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(hours=1))
    settings.EMAIL_BACKEND = "tests.compliance_support.FailingEmailBackend"
    tasks.reviews_sweep()
    assert Review.objects.get(pk=review.pk).overdue_email_pending
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    tasks.reviews_sweep()

    assert len(mailoutbox) == 1
    assert len(events(EventType.REVIEW_OVERDUE)) == 1


def test_the_sweep_is_a_registered_beat_task():
    entry = project_settings.CELERY_BEAT_SCHEDULE["compliance-reviews-sweep"]
    assert entry["task"] == "compliance.tasks.reviews_sweep"
    assert entry["task"] in celery_app.tasks


def test_members_may_not_read_a_review(acme):
    review = review_of(acme.org, Role.SECURITY_ANALYST)
    client = client_as(acme.alice)
    assert client.get(_detail(review)).status_code == 403
    assert client.get(_sign_off(review)).status_code == 403
    assert client.post(_mark(review, 1), {"decision": "expected"}).status_code == 403


def test_metrics_count_unsigned_reviews_due_and_overdue(acme, globex, client, settings):
    settings.METRICS_TOKEN = "metrics-token-for-tests-0123456789"
    review_of(acme.org, Role.SECURITY_ANALYST)
    late = review_of(globex.org, Role.ADMINISTRATOR, days_ago=9, days=7)
    Review.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    text = response.content.decode()
    assert 'activity_monitor_reviews_unsigned{state="due"} 1.0' in text
    assert 'activity_monitor_reviews_unsigned{state="overdue"} 1.0' in text
    assert 'activity_monitor_collector_up{collector="compliance"} 1.0' in text
