""" "Was this you?" on the Profile: recent security activity, "Yes, it was me" and "No, secure
my account" end to end through the real views (sign-in, second step, password change)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ActivityAnswer, ActivityCheck, Organization, Role, User, UserSession
from alerts.models import Alert, AlertStatus, RuleKind, Severity
from audit.models import AuditEvent, EventType, Reason

from .alerts_support import BERLIN, FIREFOX_LINUX, NEW_YORK, TOKYO, committing, sign_in_from
from .factories import PASSWORD, OrganizationFactory, member
from .helpers import client_as, events, sign_in
from .mfa_support import code_for, second_step, totp_device

pytestmark = pytest.mark.django_db

PROFILE = reverse("accounts:profile")
PASSWORD_CHANGE = reverse("accounts:password-change")
NEW_PASSWORD = "a-new-pass-phrase-2026"


def _confirm(event: AuditEvent) -> str:
    return reverse("accounts:activity-confirm", args=[event.pk])


def _report(event: AuditEvent) -> str:
    return reverse("accounts:activity-report", args=[event.pk])


@dataclass
class Scene:
    organization: Organization
    alice: User
    analyst: User
    laptop: Client  # alice's own browser, signed in first
    intruder: Client  # someone else with alice's password, signed in from Tokyo
    intruders_sign_in: AuditEvent


def _last_sign_in(user: User) -> AuditEvent:
    return AuditEvent.objects.filter(actor=user, event_type=EventType.LOGIN_SUCCEEDED).latest("id")


@pytest.fixture
def scene() -> Scene:
    org = OrganizationFactory.create()
    alice = member(org, email="alice@acme.test")
    analyst = member(org, role=Role.SECURITY_ANALYST)
    laptop, intruder = Client(), Client()
    assert sign_in_from(laptop, alice.email, ip=NEW_YORK).status_code == 302
    assert sign_in_from(intruder, alice.email, ip=TOKYO, agent=FIREFOX_LINUX).status_code == 302
    return Scene(org, alice, analyst, laptop, intruder, _last_sign_in(alice))


# --- The Profile's list ------------------------------------------------------------------------


def test_the_profile_asks_about_a_sign_in_from_a_new_device_and_place(scene):
    body = scene.laptop.get(PROFILE).content.decode()
    assert "Sign-in from a new device and place" in body
    assert _confirm(scene.intruders_sign_in) in body
    assert _report(scene.intruders_sign_in) in body


def test_the_first_sign_in_and_a_familiar_one_are_not_asked_about(scene):
    first = AuditEvent.objects.filter(
        actor=scene.alice, event_type=EventType.LOGIN_SUCCEEDED
    ).earliest("id")
    sign_in_from(scene.laptop, scene.alice.email, ip=NEW_YORK)  # same browser, same place
    again = _last_sign_in(scene.alice)
    body = scene.laptop.get(PROFILE).content.decode()
    assert f'data-event-id="{first.pk}"' not in body
    assert f'data-event-id="{again.pk}"' not in body


def test_a_password_change_is_asked_about(scene):
    scene.laptop.post(
        PASSWORD_CHANGE,
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    changed = AuditEvent.objects.get(event_type=EventType.PASSWORD_CHANGED)
    body = scene.laptop.get(PROFILE).content.decode()
    assert "Password changed" in body
    assert _report(changed) in body


def test_a_member_without_recent_activity_is_told_so():
    quiet = member(OrganizationFactory.create())
    assert "Nothing new in the last 30 days." in client_as(quiet).get(PROFILE).content.decode()


# --- "No, secure my account" end to end ------------------------------------------------------


def test_no_secure_my_account_end_to_end(scene):
    laptop, alice = scene.laptop, scene.alice
    reported = scene.intruders_sign_in

    # Asked first: nothing happens on GET.
    asked = laptop.get(_report(reported))
    assert asked.status_code == 200
    assert "sign out your other session" in asked.content.decode()
    assert events(EventType.ACTIVITY_REPORTED) == []

    with committing():  # the alert rules run after the commit, as in production
        response = laptop.post(_report(reported))
    assert response.status_code == 303
    assert response["Location"] == PASSWORD_CHANGE

    # The intruder's session is over; alice's own goes on, but only to the password change.
    assert scene.intruder.get(PROFILE).status_code == 302
    assert scene.intruder.get(PROFILE)["Location"].startswith(reverse("accounts:login"))
    [ended] = events(EventType.SESSION_ENDED, reason=Reason.REVOKED_BY_USER)
    assert ended.session_hash == reported.session_hash
    assert UserSession.objects.filter(user=alice, ended_at__isnull=True).count() == 1
    for path in (PROFILE, reverse("accounts:activity"), reverse("alerts:my-alerts")):
        gated = laptop.get(path)
        assert gated.status_code == 302 and gated["Location"] == PASSWORD_CHANGE
    htmx = laptop.get(reverse("accounts:activity"), HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"] == PASSWORD_CHANGE
    page = laptop.get(PASSWORD_CHANGE).content.decode()
    assert "Choose a new password now." in page

    # Recorded: the answer, what was done, and the alert the security team gets.
    [report] = events(EventType.ACTIVITY_REPORTED)
    assert report.actor_id == alice.pk and report.organization_id == scene.organization.pk
    assert report.details["event_id"] == reported.pk
    assert report.details["sessions_ended"] == 1
    assert report.details["credential_change_required"] is True
    assert ActivityCheck.objects.get(user=alice, event_id=reported.pk).answer == "not_me"
    alert = Alert.objects.get(kind=RuleKind.REPORTED_BY_MEMBER)
    assert alert.subject_user_id == alice.pk
    assert alert.severity == Severity.HIGH and alert.status == AlertStatus.OPEN
    assert alert.subject_ip == TOKYO
    assert set(alert.event_ids) == {reported.pk, report.pk}
    [raised] = events(EventType.ALERT_RAISED, reason=RuleKind.REPORTED_BY_MEMBER)
    assert raised.details["alert_id"] == alert.pk

    # The answer shows on the alert, to the security team.
    detail = client_as(scene.analyst).get(reverse("alerts:alert-detail", args=[alert.pk]))
    assert "No, it was not me" in detail.content.decode()

    # Signing out and in again does not get around the new password.
    laptop.post(reverse("accounts:logout"))
    assert sign_in(laptop, alice.email)["Location"] == PROFILE
    assert laptop.get(PROFILE)["Location"] == PASSWORD_CHANGE

    # The old password again is refused; a new one frees the account.
    same = laptop.post(
        PASSWORD_CHANGE,
        {"old_password": PASSWORD, "new_password1": PASSWORD, "new_password2": PASSWORD},
    )
    assert same.status_code == 200
    assert "other than your current one" in same.content.decode()
    changed = laptop.post(
        PASSWORD_CHANGE,
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    alice.refresh_from_db()
    assert alice.password_change_required_at is None
    assert len(events(EventType.PASSWORD_CHANGED, actor_id=alice.pk)) == 1
    profile = laptop.get(PROFILE)
    assert profile.status_code == 200
    assert "No, it was not me" in profile.content.decode()
    mine = laptop.get(reverse("alerts:my-alerts")).content.decode()
    assert "No, it was not me" in mine
    assert sign_in(scene.intruder, alice.email).status_code == 200  # the old password is dead


def test_a_replayed_report_changes_nothing(scene):
    with committing():
        scene.laptop.post(_report(scene.intruders_sign_in))
        again = scene.laptop.post(_report(scene.intruders_sign_in))
    assert again.status_code == 302
    assert len(events(EventType.ACTIVITY_REPORTED)) == 1
    assert Alert.objects.filter(kind=RuleKind.REPORTED_BY_MEMBER).count() == 1
    assert ActivityCheck.objects.count() == 1


def test_with_a_second_factor_the_code_comes_before_the_new_password(scene):
    device = totp_device(scene.alice)
    scene.laptop.post(_report(scene.intruders_sign_in))
    browser = Client()
    first = sign_in(browser, scene.alice.email)
    assert first["Location"] == reverse("accounts:mfa-verify")  # not signed in yet
    assert browser.get(PROFILE)["Location"].startswith(reverse("accounts:login"))
    second_step(browser, code_for(device))
    assert browser.get(PROFILE)["Location"] == PASSWORD_CHANGE


# --- "Yes, it was me" ------------------------------------------------------------------------


def test_yes_it_was_me_is_recorded_once_and_shown_on_the_alert(scene):
    with committing():
        sign_in_from(Client(), scene.alice.email, ip=BERLIN, agent=FIREFOX_LINUX)
    berlin = _last_sign_in(scene.alice)
    response = scene.laptop.post(_confirm(berlin))
    assert response.status_code == 303
    assert response["Location"] == PROFILE + "#security-activity"
    scene.laptop.post(_confirm(berlin))  # a replay
    [confirmed] = events(EventType.ACTIVITY_CONFIRMED)
    assert confirmed.details["event_id"] == berlin.pk
    assert events(EventType.ACTIVITY_REPORTED) == []
    assert scene.alice.password_change_required_at is None
    assert UserSession.objects.filter(user=scene.alice, ended_at__isnull=True).count() == 3

    alert = Alert.objects.get(kind=RuleKind.NEW_DEVICE, event_ids__contains=[berlin.pk])
    detail = client_as(scene.analyst).get(reverse("alerts:alert-detail", args=[alert.pk]))
    assert 'data-testid="alert-answer"' in detail.content.decode()
    assert "Yes, it was me" in detail.content.decode()
    body = scene.laptop.get(PROFILE).content.decode()
    assert "Thanks: noted that it was you." in body


def test_yes_may_still_become_no_but_no_stays_no(scene):
    scene.laptop.post(_confirm(scene.intruders_sign_in))
    scene.laptop.post(_report(scene.intruders_sign_in))
    assert ActivityCheck.objects.get().answer == ActivityAnswer.NOT_ME
    scene.laptop.post(_confirm(scene.intruders_sign_in))
    assert ActivityCheck.objects.get().answer == ActivityAnswer.NOT_ME
    assert len(events(EventType.ACTIVITY_CONFIRMED)) == 1
    assert len(events(EventType.ACTIVITY_REPORTED)) == 1


# --- Who may answer, and bad input -----------------------------------------------------------


@pytest.mark.parametrize("url", [_confirm, _report])
def test_anonymous_visitors_are_sent_to_sign_in(scene, url):
    response = Client().post(url(scene.intruders_sign_in))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("url", [_confirm, _report])
def test_a_colleague_may_not_answer_about_someone_elses_event(scene, url):
    colleague = member(scene.organization, role=Role.ADMINISTRATOR)
    response = client_as(colleague).post(url(scene.intruders_sign_in))
    assert response.status_code == 404
    assert ActivityCheck.objects.count() == 0
    assert events(EventType.ACTIVITY_REPORTED) == []


@pytest.mark.parametrize("url", [_confirm, _report])
def test_another_organization_may_not_answer_about_it(scene, url):
    outsider = member(OrganizationFactory.create(), role=Role.ADMINISTRATOR)
    assert client_as(outsider).post(url(scene.intruders_sign_in)).status_code == 404
    assert client_as(outsider).get(_report(scene.intruders_sign_in)).status_code == 404


def test_a_made_up_event_id_is_not_found(scene):
    assert scene.laptop.post(reverse("accounts:activity-confirm", args=[99999999])).status_code == (
        404
    )
    assert scene.laptop.get(reverse("accounts:activity-report", args=[99999999])).status_code == (
        404
    )


def test_an_event_of_another_kind_is_not_answerable(scene):
    sign_in(Client(), scene.alice.email, password="wrong")
    failed = AuditEvent.objects.get(event_type=EventType.LOGIN_FAILED)
    assert scene.laptop.post(_report(failed)).status_code == 404


def test_yes_takes_only_post(scene):
    assert scene.laptop.get(_confirm(scene.intruders_sign_in)).status_code == 405
    assert ActivityCheck.objects.count() == 0
