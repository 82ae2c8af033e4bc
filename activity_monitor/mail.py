"""The development email backend: Django's console backend, minus the secrets.

A reset link printed to the web process's output is a live credential in every log collector that
reads it. This backend prints each message as Django's console backend does, with reset tokens, API
tokens and other secrets the log filter knows replaced by "[redacted]". To follow a reset link in
development, send mail to a catcher instead (docker compose runs Mailpit; see the README).
"""

from __future__ import annotations

import copy

from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend
from django.core.mail.message import EmailAlternative

from audit.logging import redact


def _redacted(message: EmailMessage) -> EmailMessage:
    """A copy of message whose subject, body and text alternatives are redacted."""
    clean = copy.copy(message)
    clean.subject = redact(str(message.subject))
    clean.body = redact(str(message.body))
    if isinstance(clean, EmailMultiAlternatives):
        clean.alternatives = [
            EmailAlternative(redact(content) if isinstance(content, str) else content, mimetype)
            for content, mimetype in clean.alternatives
        ]
    return clean


class RedactingConsoleEmailBackend(ConsoleEmailBackend):
    """Print each message to the console with its secrets redacted (development only)."""

    def write_message(self, message: EmailMessage) -> None:
        super().write_message(_redacted(message))
