"""The open-alert count in the navigation, for analysts and administrators."""

from __future__ import annotations

from django.http import HttpRequest

from .selectors import open_alert_count, user_can_triage


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user_can_triage(user):
        return {}
    return {"nav_can_triage_alerts": True, "nav_open_alerts": open_alert_count(user=user)}
