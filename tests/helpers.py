from __future__ import annotations

from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent

from .factories import PASSWORD

LOGIN_URL = reverse("accounts:login")


def sign_in(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN_URL, {"email": email, "password": password}, **extra)


def events(event_type: str | None = None, **filters) -> list[AuditEvent]:
    queryset = AuditEvent.objects.order_by("id")
    if event_type:
        queryset = queryset.filter(event_type=event_type)
    return list(queryset.filter(**filters))
