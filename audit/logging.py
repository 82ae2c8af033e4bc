"""A logging filter that keeps secrets out of log lines (reset tokens in URLs, passwords)."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # /accounts/password/reset/<uidb64>/<token>/ as it appears in access logs.
    (
        re.compile(r"(/reset/[0-9A-Za-z_\-]+/)(?!set-password/)[0-9A-Za-z]+-[0-9A-Za-z]+"),
        r"\1[redacted]",
    ),
    (
        re.compile(
            r"((?:password\d?|token|otp|code|sessionid|csrfmiddlewaretoken)=)[^&\s\"']+", re.I
        ),
        r"\1[redacted]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
