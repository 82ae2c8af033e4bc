""" "Was this you?" on the Profile: recent security activity, "Yes, it was me" and "No, secure
my account" end to end through the real views (sign-in, second step, password change)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.core import mail
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
    assert sign_in_from(laptop, alice.email, ip=NEW_YORK).status_code == 303
    assert sign_in_from(intruder, alice.email, ip=TOKYO, agent=FIREFOX_LINUX).status_code == 303
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


def _reset_mails(email: str) -> list[mail.EmailMessage]:
    """The emails to this address holding a link to choose a password (not security notices)."""
    return [m for m in mail.outbox if email in m.to and "/password-reset/reset/" in str(m.body)]


def _reset_link(email: str) -> str:
    link = re.search(
        r"https?://[^/]+(/password-reset/reset/\S+/)", str(_reset_mails(email)[-1].body)
    )
    assert link is not None
    return link.group(1)


def _choose_password(browser: Client, link: str, password: str):
    form_page = browser.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    return browser.post(
        form_page.redirect_chain[-1][0], {"new_password1": password, "new_password2": password}
    )


def test_no_secure_my_account_end_to_end(scene):
    laptop, alice = scene.laptop, scene.alice
    reported = scene.intruders_sign_in

    # Asked first: nothing happens on GET.
    asked = laptop.get(_report(reported))
    assert asked.status_code == 200
    assert "make your current password stop working at once" in asked.content.decode()
    assert "sign out every other session of yours (1 open now)" in asked.content.decode()
    assert events(EventType.ACTIVITY_REPORTED) == []
    assert _reset_mails(alice.email) == []

    with committing():  # the alert rules and the email run after the commit, as in production
        response = laptop.post(_report(reported))
    assert response.status_code == 303
    assert response["Location"] == reverse("accounts:password-change")

    # The intruder's session is over; the one that answered stays, held at the new password.
    gone = scene.intruder.get(PROFILE)
    assert gone.status_code == 302 and gone["Location"].startswith(reverse("accounts:login"))
    held = laptop.get(PROFILE)
    assert held.status_code == 302 and held["Location"] == reverse("accounts:password-change")
    [ended] = events(EventType.SESSION_ENDED, reason=Reason.REVOKED_BY_USER)
    assert ended.session_hash == reported.session_hash
    said = laptop.get(reverse("accounts:password-change")).content.decode()
    assert "Your account is secured" in said and "Your old password no longer works" in said
    assert 'name="old_password"' not in said  # it is the password someone else may know

    # The old password no longer signs in, through the real sign-in view, from anywhere else.
    for browser in (Client(), scene.intruder):
        refused = sign_in(browser, alice.email)
        assert refused.status_code == 200
        assert browser.get(PROFILE).status_code == 302
    refusals = events(EventType.LOGIN_FAILED, actor_id=alice.pk)
    assert len(refusals) == 2 and {e.reason for e in refusals} == {Reason.INVALID_CREDENTIALS}

    # Recorded: the answer, what was done, and the alert the security team gets.
    [report] = events(EventType.ACTIVITY_REPORTED)
    assert report.actor_id == alice.pk and report.organization_id == scene.organization.pk
    assert report.details["event_id"] == reported.pk
    assert report.details["sessions_ended"] == 1
    assert report.details["credential_disabled"] is True
    assert report.details["reset_link_sent_to"] == alice.email
    assert ActivityCheck.objects.get(user=alice, event_id=reported.pk).answer == "not_me"
    alert = Alert.objects.get(kind=RuleKind.REPORTED_BY_MEMBER)
    assert alert.subject_user_id == alice.pk
    assert alert.severity == Severity.HIGH and alert.status == AlertStatus.OPEN
    assert alert.subject_ip == TOKYO
    assert alert.details["credential_disabled"] is True
    assert set(alert.event_ids) == {reported.pk, report.pk}
    [raised] = events(EventType.ALERT_RAISED, reason=RuleKind.REPORTED_BY_MEMBER)
    assert raised.details["alert_id"] == alert.pk
    detail = client_as(scene.analyst).get(reverse("alerts:alert-detail", args=[alert.pk]))
    assert "No, it was not me" in detail.content.decode()

    # The emailed link, should this page be lost, holds a token that is in no event.
    link = _reset_link(alice.email)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert not AuditEvent.objects.filter(details__icontains=token).exists()
    # The session that answered chooses the new password, without the old one.
    chosen = laptop.post(
        reverse("accounts:password-change"),
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert chosen.status_code == 303 and chosen["Location"] == PROFILE
    alice.refresh_from_db()
    assert alice.password_change_required_at is None and alice.has_usable_password()
    assert len(events(EventType.PASSWORD_CHANGED, actor_id=alice.pk)) == 1
    assert sign_in(scene.intruder, alice.email).status_code == 200  # the old one stays dead
    assert sign_in(Client(), alice.email, NEW_PASSWORD).status_code == 303
    profile = laptop.get(PROFILE)
    assert profile.status_code == 200  # no further step: the new password is chosen
    assert "No, it was not me" in profile.content.decode()
    mine = laptop.get(reverse("alerts:my-alerts")).content.decode()
    assert "No, it was not me" in mine


def test_a_lost_link_is_sent_again_by_forgot_your_password(scene):
    with committing():
        scene.laptop.post(_report(scene.intruders_sign_in))
    assert len(_reset_mails(scene.alice.email)) == 1

    asked = Client().post(reverse("accounts:password-reset"), {"email": scene.alice.email})

    assert asked.status_code == 303
    assert len(_reset_mails(scene.alice.email)) == 2
    link = _reset_link(scene.alice.email)
    assert _choose_password(Client(), link, NEW_PASSWORD).status_code == 303
    assert sign_in(Client(), scene.alice.email, NEW_PASSWORD).status_code == 303


def test_an_account_without_a_password_for_another_reason_gets_no_reset_email(scene):
    outsider = member(scene.organization, email="service@acme.test")
    outsider.set_unusable_password()
    outsider.save()

    Client().post(reverse("accounts:password-reset"), {"email": outsider.email})

    assert _reset_mails(outsider.email) == []


def test_a_replayed_report_changes_nothing(scene):
    with committing():
        scene.laptop.post(_report(scene.intruders_sign_in))
        # The answering session is held at the new password; the intruder's was signed out.
        again = scene.laptop.post(_report(scene.intruders_sign_in))
        intruder = scene.intruder.post(_report(scene.intruders_sign_in))
    assert again.status_code == 303 and again["Location"] == reverse("accounts:password-change")
    assert intruder.status_code == 302 and intruder["Location"].startswith(
        reverse("accounts:login")
    )
    assert len(events(EventType.ACTIVITY_REPORTED)) == 1
    assert Alert.objects.filter(kind=RuleKind.REPORTED_BY_MEMBER).count() == 1
    assert ActivityCheck.objects.count() == 1
    assert len(_reset_mails(scene.alice.email)) == 1


def test_with_a_second_factor_the_new_password_still_needs_the_code(scene):
    device = totp_device(scene.alice)
    with committing():
        scene.laptop.post(_report(scene.intruders_sign_in))
    assert sign_in(Client(), scene.alice.email).status_code == 200  # old password: refused
    browser = Client()
    _choose_password(browser, _reset_link(scene.alice.email), NEW_PASSWORD)
    first = sign_in(browser, scene.alice.email, NEW_PASSWORD)
    assert first["Location"] == reverse("accounts:mfa-verify")  # not signed in yet
    assert browser.get(PROFILE)["Location"].startswith(reverse("accounts:login"))
    second_step(browser, code_for(device))
    assert browser.get(PROFILE).status_code == 200


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
