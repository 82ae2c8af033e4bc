"""The development email backend: Django's console backend, minus the secrets.

A reset link printed to the web process's output is a live credential in every log collector that
reads it. This backend prints each message as Django's console backend does, with reset tokens, API
tokens and other secrets the log filter knows replaced by "[redacted]". To follow a reset link in
development, send mail to a catcher instead (docker compose runs Mailpit; see the README).
"""

from __future__ import annotations

import copy

from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend

from audit.logging import redact


def _redacted(message: EmailMessage) -> EmailMessage:
    """A copy of message whose subject, body and text alternatives are redacted."""
    clean = copy.copy(message)
    clean.subject = redact(str(message.subject))
    clean.body = redact(str(message.body))
    alternatives = getattr(message, "alternatives", None)
    if alternatives:
        clean.alternatives = [  # type: ignore[attr-defined]
            type(alternative)(
                redact(alternative[0]) if isinstance(alternative[0], str) else alternative[0],
                alternative[1],
            )
            for alternative in alternatives
        ]
    return clean


class RedactingConsoleEmailBackend(ConsoleEmailBackend):
    """Print each message to the console with its secrets redacted (development only)."""

    def write_message(self, message: EmailMessage) -> None:
        super().write_message(_redacted(message))
