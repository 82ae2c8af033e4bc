"""What the signed-in person may do, and the menu they see, for every page (accounts.access)."""

from __future__ import annotations

from django.http import HttpRequest

from .access import access_for
from .navigation import menu_for


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    access = access_for(user)
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match is not None else ""
    return {
        "nav_membership": access.membership,
        "may": access.may,
        "nav": menu_for(access, view_name),
    }
