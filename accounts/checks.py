"""Start-up and `manage.py check`: passkey settings that no browser would accept."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.core.checks import Error, Warning, register


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@register()
def passkey_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Warning | Error]:
    from django.conf import settings

    rp_id = (settings.OTP_WEBAUTHN_RP_ID or "").strip().lower()
    problems: list[Warning | Error] = []
    if _is_ip(rp_id):
        problems.append(
            Error(
                f"WEBAUTHN_RP_ID {rp_id!r} is an IP address: browsers accept only a domain.",
                hint="Set WEBAUTHN_RP_ID to the site's domain (`localhost` for `make run`).",
                id="accounts.E101",
            )
        )
    for origin in settings.OTP_WEBAUTHN_ALLOWED_ORIGINS:
        host = (urlsplit(origin).hostname or "").lower()
        if host != rp_id and not host.endswith("." + rp_id):
            problems.append(
                Error(
                    f"WEBAUTHN_ALLOWED_ORIGINS has {origin!r}, which is not on the RP ID "
                    f"{rp_id!r} or a subdomain of it: no passkey would work there.",
                    id="accounts.E102",
                )
            )
    if not settings.DEBUG and rp_id == "localhost":
        problems.append(
            Warning(
                "WEBAUTHN_RP_ID is `localhost` with DEBUG off: passkeys work only on this machine.",
                hint="Set WEBAUTHN_RP_ID and WEBAUTHN_ALLOWED_ORIGINS to the site's domain.",
                id="accounts.W101",
            )
        )
    return problems
