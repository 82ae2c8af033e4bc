"""What the signed-in person may do, for the navigation and every page (accounts.access)."""

from __future__ import annotations

from django.http import HttpRequest

from .access import access_for


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    access = access_for(user)
    return {"nav_membership": access.membership, "may": access.may}
