"""Keep secrets out of log lines and printed mail: reset tokens in URLs, API tokens, passwords.

One list of patterns serves every place text leaves the process for an operator's eyes: Django's
loggers (runserver's access log included, through LOGGING), gunicorn's access and error logs
(through gunicorn.conf.py) and the development email backend.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# A slash, also percent-encoded as in ?next=%2Fpassword-reset%2Freset%2F...
_SLASH = r"(?:/|%2[Ff])"

_PATTERNS = [
    # /password-reset/reset/<uidb64>/<token>/: whatever stands in the token's place, valid or
    # not, except Django's own "set-password" step, which replaces the token once it is checked.
    (
        re.compile(
            rf"({_SLASH}reset{_SLASH}[0-9A-Za-z_\-]+{_SLASH})"
            r"(?!set-password(?:[/\s\"'?#&]|%2[Ff]|$))[^/\s\"'?#&%]+"
        ),
        rf"\1{REDACTED}",
    ),
    # Our API tokens ("am_" and 43 URL-safe characters) wherever they appear; the 8-character
    # prefix shown on the tokens page is shorter and stays readable.
    (re.compile(r"\bam_[A-Za-z0-9_\-]{20,}"), f"am_{REDACTED}"),
    # Authorization: Bearer <token>
    (re.compile(r"(\bBearer\s+)[^\s\"',]+", re.I), rf"\1{REDACTED}"),
    # Credentials in query strings, form bodies and cookies: ?token=..., password1=...,
    # api_key=..., sessionid=...; the names a client could plausibly put a secret under.
    (
        re.compile(
            r"((?:password\d?|passwd|secret|token|api_?key|key|otp|code|sessionid|"
            r"csrfmiddlewaretoken)=)[^&;\s\"']+",
            re.I,
        ),
        rf"\1{REDACTED}",
    ),
]


def redact(text: str) -> str:
    """Return text with every secret the patterns know replaced by "[redacted]"."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """A handler filter that redacts the formatted message of every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # A traceback can quote the URL too ("Invalid HTTP_HOST header", a failed reverse()):
        # format it now, redacted, where every formatter looks for it first.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class DropThrottledFilter(logging.Filter):
    """Drop django.request's "Too Many Requests" lines: a throttled flood would write one a
    request. Throttled attempts are recorded as login.throttled events, one per window."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 429
