"""In development, printed mail never carries a live reset link (issue 12, finding 6)."""

from __future__ import annotations

import re

import pytest
from django.core.mail import EmailMultiAlternatives
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .factories import member
from .settings_support import ROOT, settings_under

pytestmark = pytest.mark.django_db

REDACTING = "activity_monitor.mail.RedactingConsoleEmailBackend"
# Django's token: a base-36 timestamp, a dash, 32 hexadecimal digits.
LIVE_TOKEN = re.compile(r"/reset/[0-9A-Za-z_\-]+/[0-9a-z]+-[0-9a-f]{20,}")


def test_a_reset_requested_in_development_prints_the_mail_without_its_link(
    client, settings, capsys
):
    settings.EMAIL_BACKEND = REDACTING
    user = member(email="forgetful@example.test")
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))

    response = client.post("/password-reset/", {"email": user.email})

    assert response.status_code == 303
    printed = capsys.readouterr().out
    assert "To: forgetful@example.test" in printed
    assert "Choose a new password here" in printed
    assert f"/password-reset/reset/{uidb64}/[redacted]/" in printed
    assert not LIVE_TOKEN.search(printed)


def test_html_alternatives_are_redacted_too(settings, capsys):
    settings.EMAIL_BACKEND = REDACTING
    link = "https://monitor.example.test/password-reset/reset/MQ/c9x2ab-5f1e2d3c4b5a69788796a5b4/"
    message = EmailMultiAlternatives(
        subject="Reset", body=f"Go to {link}", to=["someone@example.test"]
    )
    message.attach_alternative(f'<p><a href="{link}">Reset</a></p>', "text/html")

    message.send()

    printed = capsys.readouterr().out
    assert "c9x2ab-5f1e2d3c4b5a69788796a5b4" not in printed
    assert printed.count("/password-reset/reset/MQ/[redacted]/") == 2
    # The message object the caller holds is left as it was.
    assert link in message.body


def test_development_prints_redacted_mail_and_production_sends_it():
    assert settings_under({"DEBUG": "1"})["EMAIL_BACKEND"] == REDACTING
    # An empty line copied from .env.example means the default too.
    assert settings_under({"DEBUG": "1", "EMAIL_BACKEND": ""})["EMAIL_BACKEND"] == REDACTING
    production = settings_under({})
    assert production["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"


def test_docker_compose_sends_mail_to_its_catcher_over_smtp():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "EMAIL_BACKEND: django.core.mail.backends.smtp.EmailBackend" in compose
    assert "EMAIL_HOST: ${EMAIL_HOST:-mailpit}" in compose
    assert "image: axllent/mailpit" in compose
    assert "console" not in compose
