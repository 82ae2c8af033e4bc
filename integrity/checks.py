"""Start-up and `manage.py check`: name the signing key's setting when it is missing or bad."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Warning, register

from .keys import SETTING, SigningKeyError, signing_key


@register()
def signing_key_check(app_configs: Any = None, **kwargs: Any) -> list[Warning | Error]:
    from django.conf import settings

    if not (getattr(settings, SETTING, "") or "").strip():
        return [
            Warning(
                f"{SETTING} is not set: events are not sealed, and verify_integrity will say it "
                "cannot verify.",
                hint="Set it to `manage.py seal_events --new-key`'s output (docs/integrity.md).",
                id="integrity.W001",
            )
        ]
    try:
        signing_key()
    except SigningKeyError as exc:
        return [Error(str(exc), id="integrity.E001")]
    return []
