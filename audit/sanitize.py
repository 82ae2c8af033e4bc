"""Make untrusted text safe to store: no NUL (PostgreSQL refuses it), bounded length."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINEBREAK = re.compile(r"[\r\n]+")

# Keys that must never be stored in event details, whatever a caller passes.
SECRET_KEY_PATTERN = re.compile(
    r"pass(word|wd)|secret|token|otp|(^|_)codes?($|_)|session_?key|sessionid|csrf|api_?key"
    r"|authorization|cookie",
    re.IGNORECASE,
)
# ...unless the key plainly names something harmless about it ("token_name", "codes_count").
HARMLESS_SUFFIX = re.compile(r"_(id|name|prefix|count|kind|hash)$", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_PATTERN.search(key)) and not HARMLESS_SUFFIX.search(key)


def clean_text(value: object, limit: int) -> str:
    """Return one line of printable text, at most `limit` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _LINEBREAK.sub(" ", _CONTROL.sub("", text[: limit * 4]))
    return text[:limit]


def clean_details(value: Any, depth: int = 0) -> Any:
    """Copy a details object, dropping secret-looking keys and NUL bytes; bounded in size."""
    if depth > 5:
        return None
    if isinstance(value, dict):
        return {
            clean_text(k, 64): clean_details(v, depth + 1)
            for k, v in list(value.items())[:100]
            if not is_secret_key(str(k))
        }
    if isinstance(value, list | tuple):
        return [clean_details(v, depth + 1) for v in list(value)[:100]]
    if isinstance(value, str):
        return value.replace("\x00", "")[:2000]
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(value, 2000)
