from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent

from .factories import PASSWORD

LOGIN_URL = reverse("accounts:login")

# The Content-Security-Policy every response carries (issue 12, finding 9), one directive each.
CSP_POLICY = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
}


def client_as(user: User, **environ: Any) -> Client:
    """A test client already signed in as `user` (no sign-in view runs)."""
    client = Client(**environ)
    client.force_login(user)
    return client


def sign_in(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN_URL, {"email": email, "password": password}, **extra)


def events(event_type: str | None = None, **filters) -> list[AuditEvent]:
    queryset = AuditEvent.objects.order_by("id")
    if event_type:
        queryset = queryset.filter(event_type=event_type)
    return list(queryset.filter(**filters))


def csp_directives(header: str) -> set[str]:
    """A Content-Security-Policy header's directives (django-csp writes them in no fixed order)."""
    return {part.strip() for part in header.split(";")}
