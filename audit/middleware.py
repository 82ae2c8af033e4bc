"""Gives every request an id and every browser a long-lived device cookie."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .ip import parse_ip

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_DEVICE_COOKIE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _incoming_request_id(request: HttpRequest) -> str | None:
    """Accept a proxy's X-Request-ID only from a trusted proxy and only if it looks like one."""
    candidate: str = request.META.get("HTTP_X_REQUEST_ID", "")
    if not candidate or not _REQUEST_ID.match(candidate):
        return None
    peer = parse_ip(request.META.get("REMOTE_ADDR", ""))
    if peer is None or not any(
        peer.version == net.version and peer in net for net in settings.TRUSTED_PROXIES
    ):
        return None
    return candidate


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    # HttpRequest declares neither attribute: this middleware adds them, as django-htmx's
    # adds request.htmx (with the same "type: ignore"); audit.context reads them.
    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _incoming_request_id(request) or uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        cookie = request.COOKIES.get(settings.DEVICE_COOKIE_NAME, "")
        if not _DEVICE_COOKIE.match(cookie):
            # A missing or malformed cookie: this browser gets a fresh one.
            request.COOKIES.pop(settings.DEVICE_COOKIE_NAME, None)
            request.new_device_cookie = secrets.token_urlsafe(24)  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        new_cookie = getattr(request, "new_device_cookie", None)
        if new_cookie:
            response.set_cookie(
                settings.DEVICE_COOKIE_NAME,
                new_cookie,
                max_age=settings.DEVICE_COOKIE_AGE,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
