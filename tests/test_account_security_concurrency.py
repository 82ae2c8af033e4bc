"""Races on PostgreSQL: one backup code used at once by many, two admins demoting each other."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role
from audit.models import EventType

from .factories import member
from .helpers import all_at_once, events, sign_in
from .mfa_support import backup_codes, second_step, totp_device

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_one_backup_code_used_in_parallel_signs_in_exactly_once(settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0  # about the replay, not the back-off
    user = member()
    totp_device(user)
    backup_codes(user, ("abcd2345",))
    browsers = [Client() for _ in range(6)]
    for browser in browsers:
        sign_in(browser, user.email)

    statuses = all_at_once(
        *[lambda b=browser: second_step(b, "abcd2345").status_code for browser in browsers]
    )

    assert sorted(statuses) == [303] + [400] * 5
    assert len(events(EventType.LOGIN_SUCCEEDED)) == 1
    assert len(events(EventType.MFA_VERIFICATION_FAILED)) == 5


def test_two_administrators_demoting_each_other_at_once_leave_one_administrator():
    first = member(role=Role.ADMINISTRATOR)
    second = member(organization=first.membership.organization, role=Role.ADMINISTRATOR)
    first_client, second_client = Client(), Client()
    sign_in(first_client, first.email)
    sign_in(second_client, second.email)

    def demote(client: Client, target) -> int:
        url = reverse("accounts:member-role", args=[target.membership.pk])
        # A step down, confirmed (the Members page asks first).
        return client.post(url, {"role": Role.MEMBER, "confirmed": "1"}).status_code

    statuses = all_at_once(
        lambda: demote(first_client, second), lambda: demote(second_client, first)
    )

    organization_id = first.membership.organization_id
    admins = Membership.objects.filter(organization_id=organization_id, role=Role.ADMINISTRATOR)
    assert admins.count() == 1
    assert len(events(EventType.MEMBER_ROLE_CHANGED)) == 1
    assert sorted(statuses) in ([303, 403], [303, 409])
