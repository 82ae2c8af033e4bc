"""Settings → Security → Access reviews: campaigns, decisions applied through the member
services and recorded, separation of duties, read-only evidence once completed."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role, User
from audit.models import EventType
from reports.models import AccessReview, AccessReviewItem, Decision

from .factories import OrganizationFactory, member
from .helpers import client_as, events
from .mfa_support import totp_device
from .test_audit_log import add

pytestmark = pytest.mark.django_db

LIST = reverse("reports:access-reviews")


@pytest.fixture
def officer(org):
    return member(org, Role.COMPLIANCE_OFFICER, email="compliance@acme.test")


@pytest.fixture
def alice(org):
    return member(org, email="alice@acme.test")


@pytest.fixture
def review(org, admin, officer, alice):
    client_as(officer).post(LIST)
    return AccessReview.objects.get(organization=org)


def item_of(review, user) -> AccessReviewItem:
    return AccessReviewItem.objects.get(review=review, user=user)


def decide_url(review, item) -> str:
    return reverse("reports:access-review-decide", args=[review.pk, item.pk])


def urls_of(review, item) -> list[str]:
    return [
        reverse("reports:access-review", args=[review.pk]),
        decide_url(review, item) + "?decision=keep",
        reverse("reports:access-review-complete", args=[review.pk]),
        reverse("reports:access-review-csv", args=[review.pk]),
    ]


# --- Who may ----------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, review, alice):
    for url in [LIST, *urls_of(review, item_of(review, alice))]:
        assert client.get(url).status_code == 302


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST])
def test_other_roles_are_refused_every_view(org, review, alice, role):
    client = client_as(member(org, role))
    item = item_of(review, alice)
    for url in [LIST, *urls_of(review, item)]:
        assert client.get(url).status_code == 403, url
    assert client.post(LIST).status_code == 403
    assert client.post(decide_url(review, item), {"decision": "keep"}).status_code == 403
    assert AccessReview.objects.count() == 1
    assert item_of(review, alice).decision == ""


def test_another_tenants_administrator_finds_nothing(review, alice):
    client = client_as(member(OrganizationFactory(), Role.ADMINISTRATOR))
    item = item_of(review, alice)
    for url in urls_of(review, item):
        assert client.get(url).status_code == 404, url
    assert client.post(decide_url(review, item), {"decision": "remove"}).status_code == 404
    assert "alice@acme.test" not in client.get(LIST).content.decode()
    assert Membership.objects.filter(user=alice).exists()


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER])
def test_administrators_and_compliance_officers_open_the_pages(org, review, alice, role):
    client = client_as(member(org, role))
    assert client.get(LIST).status_code == 200
    for url in urls_of(review, item_of(review, alice))[:3]:
        assert client.get(url).status_code == 200, url


# --- A campaign -------------------------------------------------------------------------------


def test_a_campaign_lists_every_member_with_role_mfa_last_sign_in_and_privileged_actions(
    org, admin, officer, alice
):
    totp_device(admin)
    signed_in = timezone.now() - timedelta(days=3)
    User.objects.filter(pk=alice.pk).update(last_login=signed_in)
    recent = timezone.now() - timedelta(days=2)
    for _ in range(3):
        add(org, admin, event_type=EventType.SETTINGS_CHANGED, occurred_at=recent)
    add(org, admin, event_type=EventType.EXPORT_CREATED, occurred_at=recent)
    # Too old to count, and a sign-in is no privileged action.
    add(org, admin, event_type=EventType.SETTINGS_CHANGED, occurred_at=recent - timedelta(days=100))
    add(org, admin, event_type=EventType.LOGIN_SUCCEEDED, occurred_at=recent)
    other = OrganizationFactory()
    member(other, email="stranger@other.test")

    response = client_as(officer).post(LIST)

    review = AccessReview.objects.get()
    assert response.status_code == 303
    assert response["Location"] == reverse("reports:access-review", args=[review.pk])
    items = {i.email: i for i in review.items.all()}
    assert set(items) == {"admin@acme.test", "compliance@acme.test", "alice@acme.test"}
    assert items["admin@acme.test"].role == Role.ADMINISTRATOR
    assert items["admin@acme.test"].has_mfa and not items["alice@acme.test"].has_mfa
    assert items["admin@acme.test"].privileged_actions == 4
    assert items["alice@acme.test"].privileged_actions == 0
    assert items["alice@acme.test"].last_sign_in_at == signed_in
    # No last_login stamped (history from elsewhere): the log's latest sign-in.
    assert items["admin@acme.test"].last_sign_in_at == recent
    [started] = events(EventType.ACCESS_REVIEW_STARTED)
    assert started.actor_id == officer.pk and started.organization_id == org.pk
    assert started.details == {"access_review_id": review.pk, "members": 3}
    page = client_as(officer).get(response["Location"]).content.decode()
    assert "alice@acme.test" in page and "stranger@other.test" not in page


def test_a_second_campaign_is_refused_while_one_is_open(review, officer):
    response = client_as(officer).post(LIST)
    assert response.status_code == 409
    assert "already open" in response.content.decode()
    assert AccessReview.objects.count() == 1


# --- Decisions --------------------------------------------------------------------------------


def test_asking_to_remove_shows_a_confirmation_and_changes_nothing(review, officer, alice):
    item = item_of(review, alice)
    response = client_as(officer).get(decide_url(review, item), {"decision": "remove"})
    assert response.status_code == 200
    assert "Remove alice@acme.test?" in response.content.decode()
    assert Membership.objects.filter(user=alice).exists()
    assert item_of(review, alice).decision == ""


def test_keep_is_recorded_with_who_and_when(review, officer, alice):
    item = item_of(review, alice)
    response = client_as(officer).post(decide_url(review, item), {"decision": "keep"})
    assert response.status_code == 303
    item.refresh_from_db()
    assert item.decision == Decision.KEEP and item.decided_by == officer
    assert item.decided_by_label == "compliance@acme.test" and item.decided_at is not None
    assert Membership.objects.get(user=alice).role == Role.MEMBER
    [decided] = events(EventType.ACCESS_REVIEW_DECIDED)
    assert decided.target_user_id == alice.pk and decided.details["decision"] == "keep"


def test_a_role_change_goes_through_the_member_service(review, admin, alice):
    item = item_of(review, alice)
    response = client_as(admin).post(
        decide_url(review, item),
        {"decision": "change_role", "role": Role.SECURITY_ANALYST, "note": "on call rota"},
    )
    assert response.status_code == 303
    assert Membership.objects.get(user=alice).role == Role.SECURITY_ANALYST
    [changed] = events(EventType.MEMBER_ROLE_CHANGED)
    assert changed.actor_id == admin.pk and changed.target_user_id == alice.pk
    assert changed.details == {"old": Role.MEMBER, "new": Role.SECURITY_ANALYST}
    item.refresh_from_db()
    assert (item.decision, item.new_role, item.note) == (
        Decision.CHANGE_ROLE,
        Role.SECURITY_ANALYST,
        "on call rota",
    )
    assert item.role == Role.MEMBER  # as the campaign found them


def test_removal_takes_the_member_out_ends_their_access_and_is_recorded(
    org, review, officer, alice
):
    client_as(alice)  # a session of Alice's
    response = client_as(officer).post(
        decide_url(review, item_of(review, alice)), {"decision": "remove"}
    )
    assert response.status_code == 303
    assert not Membership.objects.filter(user=alice).exists()
    assert not User.objects.get(pk=alice.pk).is_active
    [removed] = events(EventType.MEMBER_REMOVED)
    assert removed.actor_id == officer.pk and removed.target_user_id == alice.pk
    assert removed.organization_id == org.pk and removed.details == {"role": Role.MEMBER}
    assert item_of(review, alice).decision == Decision.REMOVE


def test_a_reviewer_cannot_decide_on_their_own_access(review, officer):
    item = item_of(review, officer)
    client = client_as(officer)
    response = client.post(decide_url(review, item), {"decision": "keep"})
    assert response.status_code == 403
    assert "separation of duties" in response.content.decode()
    assert client.get(decide_url(review, item), {"decision": "keep"}).status_code == 403
    assert item_of(review, officer).decision == ""
    assert events(EventType.ACCESS_REVIEW_DECIDED) == []


def test_another_reviewer_decides_on_the_first_ones_access(review, admin, officer):
    response = client_as(admin).post(
        decide_url(review, item_of(review, officer)), {"decision": "keep"}
    )
    assert response.status_code == 303
    assert item_of(review, officer).decided_by == admin


def test_removing_the_last_administrator_is_refused(review, officer, admin):
    response = client_as(officer).post(
        decide_url(review, item_of(review, admin)), {"decision": "remove"}
    )
    assert response.status_code == 409
    assert "last administrator" in response.content.decode()
    assert Membership.objects.get(user=admin).role == Role.ADMINISTRATOR
    assert item_of(review, admin).decision == ""
    assert events(EventType.MEMBER_REMOVED) == []


@pytest.mark.parametrize(
    "data",
    [
        {"decision": "promote"},
        {"decision": "change_role"},
        {"decision": "change_role", "role": "owner"},
        {},
    ],
)
def test_bad_decisions_are_refused_with_a_message(review, officer, alice, data):
    response = client_as(officer).post(decide_url(review, item_of(review, alice)), data)
    assert response.status_code == 400
    assert "Nothing was decided for alice@acme.test" in response.content.decode()
    assert item_of(review, alice).decision == ""


# --- Completion: evidence ---------------------------------------------------------------------


def test_completing_needs_every_member_decided(review, officer):
    response = client_as(officer).post(reverse("reports:access-review-complete", args=[review.pk]))
    assert response.status_code == 409
    assert "still need a decision" in response.content.decode()
    review.refresh_from_db()
    assert review.completed_at is None


def test_a_completed_campaign_is_read_only_evidence(review, admin, officer, alice):
    officer_client, admin_client = client_as(officer), client_as(admin)
    officer_client.post(decide_url(review, item_of(review, alice)), {"decision": "keep"})
    officer_client.post(decide_url(review, item_of(review, admin)), {"decision": "keep"})
    admin_client.post(decide_url(review, item_of(review, officer)), {"decision": "keep"})
    complete = reverse("reports:access-review-complete", args=[review.pk])
    assert officer_client.get(complete).status_code == 200

    assert officer_client.post(complete).status_code == 303

    review.refresh_from_db()
    assert review.completed_by == officer and review.completed_at is not None
    [completed] = events(EventType.ACCESS_REVIEW_COMPLETED)
    assert completed.details == {
        "access_review_id": review.pk,
        "keep": 3,
        "change_role": 0,
        "remove": 0,
    }
    late = officer_client.post(decide_url(review, item_of(review, alice)), {"decision": "remove"})
    assert late.status_code == 409
    assert Membership.objects.filter(user=alice).exists()
    assert officer_client.post(complete).status_code == 409
    body = officer_client.get(reverse("reports:access-review-csv", args=[review.pk]))
    rows = list(csv.DictReader(io.StringIO(body.content.decode())))
    assert {r["email"]: (r["decision"], r["decided_by"]) for r in rows} == {
        "admin@acme.test": ("keep", "compliance@acme.test"),
        "alice@acme.test": ("keep", "compliance@acme.test"),
        "compliance@acme.test": ("keep", "admin@acme.test"),
    }


def test_a_compliance_officer_may_take_access_away_but_not_give_more(org, review, officer):
    analyst = member(org, Role.SECURITY_ANALYST, email="analyst@acme.test")
    # Made after the campaign started: its row is added as the campaign would have listed it.
    review_analyst = AccessReviewItem.objects.create(
        review=review,
        organization=org,
        user=analyst,
        email=analyst.email,
        role=analyst.membership.role,
    )
    client = client_as(officer)
    asked = client.get(
        decide_url(review, review_analyst), {"decision": "change_role", "role": Role.ADMINISTRATOR}
    )
    assert asked.status_code == 409  # refused before asking
    assert "Only administrators give more access" in asked.content.decode()
    up = client.post(
        decide_url(review, review_analyst), {"decision": "change_role", "role": Role.ADMINISTRATOR}
    )
    assert up.status_code == 409
    assert "Only administrators give more access" in up.content.decode()
    assert Membership.objects.get(user=analyst).role == Role.SECURITY_ANALYST
    down = client.post(
        decide_url(review, review_analyst), {"decision": "change_role", "role": Role.MEMBER}
    )
    assert down.status_code == 303
    assert Membership.objects.get(user=analyst).role == Role.MEMBER


def test_an_administrator_may_give_more_access_in_a_review(review, admin, alice):
    response = client_as(admin).post(
        decide_url(review, item_of(review, alice)),
        {"decision": "change_role", "role": Role.COMPLIANCE_OFFICER},
    )
    assert response.status_code == 303
    assert Membership.objects.get(user=alice).role == Role.COMPLIANCE_OFFICER
