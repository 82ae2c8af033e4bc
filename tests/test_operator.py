"""Platform operator tools: health and the read-only events list in the Django admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent, EventType

from .factories import UserFactory, member
from .helpers import sign_in

pytestmark = pytest.mark.django_db


def test_health_reports_the_database(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert response.json()["database"] is True


def test_health_refuses_post(client):
    assert client.post("/health/").status_code == 405


@pytest.fixture
def operator_client(client):
    operator = UserFactory.create(is_staff=True, is_superuser=True)
    sign_in(client, operator.email)
    return client


def test_operators_see_events_without_an_organization(operator_client, client):
    sign_in(client.__class__(), "nobody@example.test", "x")
    response = operator_client.get(reverse("admin:audit_auditevent_changelist"))
    assert response.status_code == 200
    assert b"nobody@example.test" in response.content


def test_the_admin_cannot_change_or_delete_events(operator_client):
    event = AuditEvent.objects.filter(event_type=EventType.LOGIN_SUCCEEDED).first()
    change = reverse("admin:audit_auditevent_change", args=[event.pk])
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert operator_client.post(change, {"reason": "edited"}).status_code == 403
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.reason == ""


def test_organization_staff_without_is_staff_cannot_open_the_admin(client):
    user = member()
    sign_in(client, user.email)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
