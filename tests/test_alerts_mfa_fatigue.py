"""MFA fatigue: repeated failed second-factor checks for one account, then a success, through the
real two-step sign-in with a real authenticator app."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from alerts.models import AlertRule, RuleKind
from audit.models import EventType, Outcome, Reason
from audit.services import EventSpec, events_record

from .alerts_support import NEW_YORK, alerts, committing
from .factories import member
from .helpers import events, sign_in
from .mfa_support import VERIFY_URL, code_for, second_step, totp_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_throttle(settings):
    """For tests about several wrong codes in a row, not about django-otp's back-off."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def _wrong_code(device: TOTPDevice) -> str:
    """A code the device refuses: none of the steps its tolerance accepts."""
    accepted = {code_for(device, step) for step in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in accepted)


def _codes(client: Client, user: User, device: TOTPDevice, *, wrong: int, then_right: bool):
    """The password, then `wrong` wrong codes and perhaps the right one, each committed."""
    assert sign_in(client, user.email, REMOTE_ADDR=NEW_YORK)["Location"] == VERIFY_URL
    for _ in range(wrong):
        with committing():
            assert second_step(client, _wrong_code(device), REMOTE_ADDR=NEW_YORK).status_code == 400
    if then_right:
        with committing():
            response = second_step(client, code_for(device), REMOTE_ADDR=NEW_YORK)
        assert response.status_code == 303 and response["Location"] != VERIFY_URL


def _rule_set(user: User, **parameters) -> None:
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.MFA_FATIGUE
    ).update(parameters=parameters)


def test_five_failed_codes_then_the_right_one_raise_an_mfa_fatigue_alert(client, no_throttle):
    user = member()
    device = totp_device(user)
    _codes(client, user, device, wrong=5, then_right=True)

    [alert] = alerts(RuleKind.MFA_FATIGUE)
    assert alert.subject_user == user
    assert alert.details["failures"] == 5
    assert alert.details["threshold"] == 5
    assert alert.details["window_minutes"] == 10
    assert alert.details["device_kind"] == "totp"
    failed = [e.pk for e in events(EventType.MFA_VERIFICATION_FAILED)]
    [verified] = events(EventType.MFA_VERIFIED)
    assert alert.event_ids == [*failed, verified.pk]
    assert "after 5 failed checks within 10 minutes" in alert.summary


def test_four_failed_codes_then_the_right_one_raise_nothing(client, no_throttle):
    user = member()
    _codes(client, user, totp_device(user), wrong=4, then_right=True)
    assert alerts(RuleKind.MFA_FATIGUE) == []


def test_failed_codes_without_a_success_raise_no_mfa_fatigue_alert(client, no_throttle):
    user = member()
    _codes(client, user, totp_device(user), wrong=6, then_right=False)
    assert alerts(RuleKind.MFA_FATIGUE) == []
    # The wrong codes are failed sign-ins too: that rule speaks for them.
    assert len(alerts(RuleKind.FAILED_SIGN_INS)) == 1


def test_failures_older_than_the_window_do_not_count(client, no_throttle):
    user = member()
    device = totp_device(user)
    events_record(
        specs=[
            EventSpec(
                event_type=EventType.MFA_VERIFICATION_FAILED,
                outcome=Outcome.FAILURE,
                reason=Reason.MFA_FAILED,
                actor=user,
                occurred_at=timezone.now() - timedelta(minutes=11),
            )
            for _ in range(4)
        ]
    )
    _codes(client, user, device, wrong=1, then_right=True)
    assert alerts(RuleKind.MFA_FATIGUE) == []


def test_another_accounts_failures_do_not_count(client, no_throttle):
    user = member()
    neighbour = member(user.membership.organization)
    _codes(Client(), neighbour, totp_device(neighbour), wrong=5, then_right=False)
    _codes(client, user, totp_device(user), wrong=1, then_right=True)
    assert alerts(RuleKind.MFA_FATIGUE) == []


def test_the_threshold_and_window_are_editable(client, no_throttle):
    user = member()
    _rule_set(user, failures=3, window_minutes=5)
    _codes(client, user, totp_device(user), wrong=3, then_right=True)
    [alert] = alerts(RuleKind.MFA_FATIGUE)
    assert (alert.details["threshold"], alert.details["window_minutes"]) == (3, 5)


def test_codes_refused_by_django_otps_back_off_count_as_denials(client, settings):
    # A back-off of minutes, not django-otp's default second: a slow machine's next attempt
    # must still fall inside it.
    settings.OTP_TOTP_THROTTLE_FACTOR = 600
    user = member()
    device = totp_device(user)
    _codes(client, user, device, wrong=5, then_right=False)  # 1 checked, then 4 held back
    assert [e.reason for e in events(EventType.MFA_VERIFICATION_FAILED)].count("throttled") == 4
    # Time passes: the back-off is over.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(days=1)
    )
    with committing():
        assert second_step(client, code_for(device), REMOTE_ADDR=NEW_YORK).status_code == 303

    [alert] = alerts(RuleKind.MFA_FATIGUE)
    assert (alert.details["failures"], alert.details["throttled"]) == (5, 4)


def test_the_rule_switched_off_raises_nothing(client, no_throttle):
    user = member()
    AlertRule.objects.filter(
        organization=user.membership.organization, kind=RuleKind.MFA_FATIGUE
    ).update(enabled=False)
    _codes(client, user, totp_device(user), wrong=5, then_right=True)
    assert alerts(RuleKind.MFA_FATIGUE) == []
