"""The alert emails read exactly as written, in plain text (templates/alerts/email)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Role, User
from alerts.models import RuleKind

from .alerts_support import (
    BERLIN,
    FIREFOX_LINUX,
    alerts,
    committing,
    sign_in_from,
)
from .factories import member

pytestmark = pytest.mark.django_db


def test_the_new_device_email_tells_the_user_where_and_on_what_they_signed_in(client, geoip_db):
    user = member()
    sign_in_from(client, user.email)
    with committing():
        client.post(reverse("accounts:logout"))

    User.objects.filter(pk=user.pk).update(time_zone="Europe/Berlin")

    sign_in_from(Client(), user.email, ip=BERLIN, agent=FIREFOX_LINUX)

    [alert] = alerts(RuleKind.NEW_DEVICE)
    subject = "New sign-in to your account from a new device"
    [message] = [m for m in mail.outbox if m.subject == subject]
    assert message.to == [user.email]
    local = alert.last_seen_at.astimezone(ZoneInfo("Europe/Berlin"))  # the person's own zone
    assert message.body == (
        f"Hello,\n\nYour account {user.email} was just signed in to from Berlin, Germany with "
        f"Firefox 132 on Linux (IP address {BERLIN}) at "
        f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (Europe/Berlin).\n\n"
        "If this was you, there is nothing to do. If it was not, change your password now "
        "and sign out your other sessions from your Profile.\n"
    )
    assert message.alternatives == []


def test_the_alert_email_to_the_team_names_rule_severity_and_link_unescaped(client, settings):
    settings.ALERTS_BASE_URL = "https://monitor.example/"
    user = member(email="o'brien&co@acme.test")
    analyst = member(user.membership.organization, role=Role.SECURITY_ANALYST)
    for _ in range(5):
        sign_in_from(client, user.email, password="wrong")

    [alert] = alerts(RuleKind.FAILED_SIGN_INS)
    [message] = mail.outbox
    assert message.to == [analyst.email]
    summary = "5 failed sign-ins for o'brien&co@acme.test within 15 minutes"
    assert message.subject == f"[High] {summary}"
    assert message.body == (
        f"Alert: Failed sign-ins for one account\n{summary}\nSeverity: High\n"
        f"First seen: {alert.first_seen_at:%Y-%m-%d %H:%M:%S} UTC\n"
        f"Triage it: https://monitor.example/settings/security/alerts/{alert.pk}/\n"
    )
