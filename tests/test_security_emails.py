"""Security emails (NIST SP 800-63B): queued on commit, sent by the Celery task, nothing secret."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from audit.models import AuditEvent, EventType

from .factories import PASSWORD, member
from .helpers import sign_in
from .mfa_support import backup_codes, code_for, sign_in_with_code, totp_device

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 2026"


def _html(message: EmailMessage) -> str:
    assert isinstance(message, EmailMultiAlternatives)
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert isinstance(content, str)
    return content


def _assert_nothing_secret(message, *secrets: str) -> None:
    for part in (message.subject, message.body, _html(message)):
        for secret in secrets:
            assert secret not in part


def test_adding_an_app_emails_the_user_once_it_commits(client, django_capture_on_commit_callbacks):
    user = member()
    sign_in(client, user.email)
    client.get(reverse("accounts:mfa-enrol"))
    device = TOTPDevice.objects.get(user=user)
    code = f"{totp(device.bin_key):06d}"

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:mfa-enrol"), {"name": "Work phone", "code": code})

    # The device, and the first backup codes.
    added, generated = mail.outbox
    assert added.to == [user.email]
    assert added.subject == "Activity Monitor: A two-step verification method was added"
    assert "Work phone" in added.body and "Work phone" in _html(added)
    assert generated.subject == "Activity Monitor: New backup codes were generated"
    tokens = list(StaticToken.objects.values_list("token", flat=True))
    for message in mail.outbox:
        _assert_nothing_secret(message, device.key, code, *tokens, *(t[:4] for t in tokens))


def test_nothing_is_sent_before_the_change_commits(client):
    user = member()
    device = totp_device(user)
    sign_in_with_code(client, user, code_for(device))

    # The test's transaction never commits.
    response = client.post(reverse("accounts:mfa-backup-codes-new"))

    assert response.status_code == 303
    assert mail.outbox == []


def test_regenerating_backup_codes_emails_the_user(client, django_capture_on_commit_callbacks):
    user = member()
    device = totp_device(user)
    backup_codes(user)
    sign_in_with_code(client, user, code_for(device))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:mfa-backup-codes-new"))

    [message] = mail.outbox
    assert "old ones no longer work" in message.body or "no longer work" in message.body
    tokens = list(StaticToken.objects.values_list("token", flat=True))
    _assert_nothing_secret(message, *tokens)


def test_removing_a_device_emails_the_user(client, django_capture_on_commit_callbacks):
    user = member()
    device = totp_device(user, name="Old phone")
    sign_in_with_code(client, user, code_for(device))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("accounts:mfa-device-remove", args=["totp", device.pk]), {"password": PASSWORD}
        )

    [message] = mail.outbox
    assert message.subject == "Activity Monitor: A two-step verification method was removed"
    assert "Old phone" in message.body
    _assert_nothing_secret(message, PASSWORD, device.key)


def test_an_admin_reset_emails_the_member_not_the_admin(client, django_capture_on_commit_callbacks):
    admin = member(role=Role.ADMINISTRATOR)
    colleague = member(organization=admin.membership.organization)
    totp_device(colleague)
    sign_in(client, admin.email)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:member-mfa-reset", args=[colleague.membership.pk]))

    [message] = mail.outbox
    assert message.to == [colleague.email]
    assert admin.email in message.body  # who did it


def test_a_password_change_emails_the_user(client, django_capture_on_commit_callbacks):
    user = member()
    sign_in(client, user.email)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("accounts:password-change"),
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )

    [message] = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "Activity Monitor: Your password was changed"
    _assert_nothing_secret(message, PASSWORD, NEW_PASSWORD)


def test_the_email_gives_the_time_in_the_persons_zone_and_the_event_in_words(
    client, django_capture_on_commit_callbacks
):
    user = member(time_zone="Asia/Tokyo")
    sign_in(client, user.email)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("accounts:password-change"),
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )

    [message] = mail.outbox
    event = AuditEvent.objects.get(event_type=EventType.PASSWORD_CHANGED, actor=user)
    local = event.occurred_at.astimezone(ZoneInfo("Asia/Tokyo"))
    when = f"{local:%Y-%m-%d %H:%M:%S} JST (Asia/Tokyo)"
    assert f"When: {when}" in message.body
    assert when in _html(message)
    assert 'Your Activity Log shows it as "Password changed" (password.changed).' in message.body


def test_a_completed_password_reset_emails_the_user(django_capture_on_commit_callbacks):
    user = member()
    browser = Client()
    browser.post(reverse("accounts:password-reset"), {"email": user.email})
    link = re.search(r"https?://[^/]+(/password-reset/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = browser.get(link)["Location"]
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )

    assert response.status_code == 303
    [message] = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "Activity Monitor: Your password was reset"
    token = link.rstrip("/").rsplit("/", 1)[-1]
    _assert_nothing_secret(message, NEW_PASSWORD, token)
