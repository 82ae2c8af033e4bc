"""A refused sign-in is kept even when the transaction around it rolls back.

PostgreSQL only: the in-memory SQLite test database locks whole tables between connections.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.db import DEFAULT_DB_ALIAS, transaction
from django.test import RequestFactory

from accounts.models import LockoutState
from audit.models import AuditEvent, EventType, Reason
from audit.services import DURABLE_ALIAS, durable_alias

from .factories import PASSWORD, member


class _RollBack(Exception):
    pass


@pytest.mark.postgres(reason="a second connection writing while the first holds a transaction")
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_failed_sign_in_survives_the_rollback_of_the_request_transaction(settings):
    assert settings.DATABASES["default"]["ATOMIC_REQUESTS"] is True
    user = member()
    request = RequestFactory().post("/anything/", REMOTE_ADDR="203.0.113.77")

    # As in any ATOMIC_REQUESTS view: authentication fails, then the view errors and the whole
    # request transaction is rolled back.
    with pytest.raises(_RollBack), transaction.atomic():
        assert authenticate(request, username=user.email, password="wrong") is None
        raise _RollBack

    [failed] = AuditEvent.objects.filter(event_type=EventType.LOGIN_FAILED)
    assert failed.reason == Reason.INVALID_CREDENTIALS
    assert failed.actor_id == user.pk
    assert failed.ip_address == "203.0.113.77"


@pytest.mark.postgres(reason="a second connection writing while the first holds a transaction")
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_success_events_roll_back_with_the_change_they_describe():
    user = member()
    request = RequestFactory().post("/anything/")
    from audit.services import event_record

    with pytest.raises(_RollBack), transaction.atomic():
        event_record(event_type=EventType.PASSWORD_CHANGED, actor=user, request=request)
        raise _RollBack

    assert not AuditEvent.objects.filter(event_type=EventType.PASSWORD_CHANGED).exists()


@pytest.mark.postgres(reason="a second connection writing while the first holds a transaction")
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_unknown_user_failure_survives_the_rollback_too():
    request = RequestFactory().post("/anything/")
    with pytest.raises(_RollBack), transaction.atomic():
        authenticate(request, username="ghost@example.test", password="x")
        raise _RollBack
    [failed] = AuditEvent.objects.filter(event_type=EventType.LOGIN_FAILED)
    assert failed.reason == Reason.UNKNOWN_USER


@pytest.mark.django_db
def test_a_failure_without_a_request_is_recorded_once():
    user = member()
    assert authenticate(None, username=user.email, password="wrong") is None
    assert authenticate(None, email="ghost@example.test", password="x") is None
    reasons = list(AuditEvent.objects.order_by("id").values_list("reason", flat=True))
    assert reasons == [Reason.INVALID_CREDENTIALS, Reason.UNKNOWN_USER]


@pytest.mark.postgres(reason="a second connection writing while the first holds a transaction")
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_lockout_survives_the_rollback_of_the_request_transaction():
    user = member()
    request = RequestFactory().post("/anything/")

    with pytest.raises(_RollBack), transaction.atomic():
        for _ in range(10):  # the default policy's threshold
            assert authenticate(request, username=user.email, password="wrong") is None
        raise _RollBack

    [locked] = AuditEvent.objects.filter(event_type=EventType.LOCKOUT_TRIGGERED)
    assert locked.target_user_id == user.pk
    assert AuditEvent.objects.filter(event_type=EventType.LOGIN_FAILED).count() == 10
    # A request from nowhere the account signed in from: the unfamiliar scope is locked.
    assert LockoutState.objects.get(user=user).unfamiliar_locked_until is not None
    assert authenticate(request, username=user.email, password=PASSWORD) is None  # still locked


@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_durable_writes_take_the_second_connection_only_inside_a_transaction():
    assert durable_alias() == DEFAULT_DB_ALIAS  # autocommit: a write commits on its own
    with transaction.atomic():
        assert durable_alias() == DURABLE_ALIAS
    assert durable_alias() == DEFAULT_DB_ALIAS
