"""Per-request account upkeep: the access policies that may end a session, session
last-activity and location, the MFA enrolment an organization requires, and the person's time
zone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from .enforcement import session_verdict
from .http import see_other
from .mfa import ENROL_PASSKEY, ENROL_REQUIRED_SESSION_KEY
from .sessions import session_end_by_policy, session_location_track, session_touch
from .timezones import zone_of

# What a member who must enrol may still reach: the enrolment page and the way out (and the
# browser's report of their time zone, which the enrolment page sends like any other).
ENROL_ALLOWED_VIEWS = frozenset(
    {
        "accounts:mfa-enrol",
        "accounts:passkey-add",
        "accounts:passkey-add-options",
        "accounts:logout",
        "accounts:time-zone-detected",
    }
)
# What a member who must choose a new password ("No, secure my account") may still reach.
PASSWORD_ALLOWED_VIEWS = frozenset(
    {"accounts:password-change", "accounts:logout", "accounts:time-zone-detected"}
)


class AccountSecurityMiddleware:
    """Goes after AuthenticationMiddleware, OTPMiddleware and django-htmx's middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # Before the touch: an idle limit measures from the request before this one.
            verdict = session_verdict(user=user, request=request)
            if verdict is not None:
                session_end_by_policy(
                    request=request,
                    expired=verdict.expired,
                    rule=verdict.rule,
                    details=verdict.details,
                )
                messages.info(request, verdict.message)
                login = reverse("accounts:login")
                return _send_to(request, f"{login}?{urlencode({'next': request.get_full_path()})}")
            session_touch(request=request)
            session_location_track(request=request, user=user)
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        match = request.resolver_match
        view_name = match.view_name if match is not None else ""
        # The password first: a second factor enrolled under a password someone else may know
        # protects little.
        # Stored on the user, not the session, so that signing in again (with the password and
        # any second factor) leads here too.
        if getattr(user, "password_change_required_at", None) is not None:
            if view_name in PASSWORD_ALLOWED_VIEWS:
                return None
            return _send_to(request, reverse("accounts:password-change"))
        required = request.session.get(ENROL_REQUIRED_SESSION_KEY)
        if not required:
            return None
        if view_name in ENROL_ALLOWED_VIEWS:
            return None
        if required == ENROL_PASSKEY:
            return _send_to(request, reverse("accounts:passkey-add"))
        return _send_to(request, reverse("accounts:mfa-enrol"))


def _send_to(request: HttpRequest, target: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(target)
    # A POST turned away answers like any other POST: 303, so the browser GETs the page.
    return redirect(target) if request.method in ("GET", "HEAD") else see_other(target)


class TimeZoneMiddleware:
    """Activate the signed-in person's zone for the request; goes after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            timezone.activate(zone_of(user))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            # A thread serves other people next: none of them should inherit this zone.
            timezone.deactivate()
