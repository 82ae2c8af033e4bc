"""Navigation flags for the base template."""

from __future__ import annotations

from django.http import HttpRequest

from .selectors import membership_of, user_can_view_audit_log, user_is_administrator


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = membership_of(user)
    return {
        "nav_membership": membership,
        "nav_can_view_audit_log": user_can_view_audit_log(user),
        "nav_is_administrator": user_is_administrator(user),
    }
