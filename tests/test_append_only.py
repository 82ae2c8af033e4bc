"""The database itself refuses to change or remove audit events, except through the purge.

With the two roles (CI) the app's role is refused by its privileges before the guard is asked;
tests/test_database_roles.py tries each way around that. With one role the guard refuses.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import Tier
from audit.models import AuditEvent, EventType
from audit.purge import events_purge_batch
from audit.services import event_record

from .factories import OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored() -> AuditEvent:
    return event_record(event_type=EventType.LOGOUT, actor_label="someone@example.test")


def _refused(sql: str, params: list[int]) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only|permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def test_raw_update_is_refused(stored):
    _refused("UPDATE audit_auditevent SET outcome = 'failure' WHERE id = %s", [stored.pk])
    stored.refresh_from_db()
    assert stored.outcome == "success"


def test_raw_delete_is_refused(stored):
    _refused("DELETE FROM audit_auditevent WHERE id = %s", [stored.pk])
    assert AuditEvent.objects.filter(pk=stored.pk).exists()


def test_orm_update_and_delete_are_refused(stored):
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=stored.pk).update(reason="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=stored.pk).delete()
    stored.refresh_from_db()
    assert stored.reason == ""


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(stored):
    _refused("TRUNCATE audit_auditevent", [])
    assert AuditEvent.objects.filter(pk=stored.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_gate_closes_when_its_transaction_ends(stored):
    # SET LOCAL only lasts for its transaction; the next transaction is guarded again (and with
    # two roles the app's role cannot open it at all).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL audit.retention_purge = 'on'")
    _refused("DELETE FROM audit_auditevent WHERE id = %s", [stored.pk])


def test_the_retention_purge_path_deletes_only_what_it_is_asked_to():
    organization, other = (OrganizationFactory.create(tier=Tier.SMALL_BUSINESS) for _ in range(2))
    now = timezone.now()
    old = [
        AuditEvent(
            event_type=EventType.LOGOUT, organization=org, occurred_at=now - timedelta(days=100)
        )
        for org in (organization, organization, other)
    ]
    recent = AuditEvent(event_type=EventType.LOGOUT, organization=organization, occurred_at=now)
    AuditEvent.objects.bulk_create([*old, recent])

    # 91 days: inside the test's transaction the database's clock stands at the test's start, a
    # moment before `now`, and a cutoff newer than its own would be refused.
    deleted = events_purge_batch(organization_id=organization.pk, before=now - timedelta(days=91))

    assert deleted == 2
    assert AuditEvent.objects.filter(organization=organization).count() == 1
    assert AuditEvent.objects.filter(organization=other).count() == 1
    # And the gate is closed again afterwards.
    _refused("DELETE FROM audit_auditevent WHERE organization_id = %s", [other.pk])
