"""The open-alert count in the navigation, for those who triage alerts."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.access import Capability, can

from .selectors import open_alert_count


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not can(user, Capability.TRIAGE_ALERTS):
        return {}
    return {"nav_open_alerts": open_alert_count(user=user)}
