"""Lockout: the per-organization policy, counted atomically, released once by any of three paths."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.forms import SIGN_IN_REFUSED
from accounts.models import LockoutState, Role
from accounts.services import lockouts_release_expired
from accounts.tasks import lockout_release_expired
from audit.models import EventType, Reason

from .factories import OrganizationFactory, member
from .helpers import events, sign_in

pytestmark = pytest.mark.django_db


def _fail(client, user, times):  # type: ignore[no-untyped-def]
    for _ in range(times):
        sign_in(client, user.email, "wrong password")


def test_ten_failures_in_fifteen_minutes_lock_the_account(client):
    user = member()
    _fail(client, user, 10)

    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    assert locked.target_user_id == user.pk
    assert locked.reason == "10 failed sign-ins in 15 minutes"
    assert locked.details["threshold"] == 10
    state = LockoutState.objects.get(user=user)
    assert state.locked_until - state.locked_at == timedelta(minutes=30)


def test_nine_failures_do_not_lock(client):
    user = member()
    _fail(client, user, 9)
    assert events(EventType.LOCKOUT_TRIGGERED) == []
    assert sign_in(client, user.email).status_code == 302


def test_the_right_password_is_refused_while_locked_with_the_usual_message(client):
    user = member()
    _fail(client, user, 10)

    response = sign_in(client, user.email)

    assert response.status_code == 200
    assert SIGN_IN_REFUSED in response.content.decode()
    assert events(EventType.LOGIN_FAILED)[-1].reason == Reason.ACCOUNT_LOCKED
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_failures_while_locked_do_not_trigger_again(client):
    user = member()
    _fail(client, user, 15)
    assert len(events(EventType.LOCKOUT_TRIGGERED)) == 1
    reasons = [e.reason for e in events(EventType.LOGIN_FAILED)]
    assert reasons == [Reason.INVALID_CREDENTIALS] * 10 + [Reason.ACCOUNT_LOCKED] * 5


def test_failures_older_than_the_window_do_not_count(client):
    user = member()
    _fail(client, user, 9)
    # Age the nine failures past the window by moving the counter's start, as time would.
    LockoutState.objects.update_or_create(user=user, defaults={"counter_reset_at": timezone.now()})
    _fail(client, user, 1)
    assert events(EventType.LOCKOUT_TRIGGERED) == []


def test_a_successful_sign_in_resets_the_count(client):
    user = member()
    _fail(client, user, 9)
    assert sign_in(client, user.email).status_code == 302
    client.post(reverse("accounts:logout"))
    _fail(client, user, 9)
    assert events(EventType.LOCKOUT_TRIGGERED) == []


def test_the_organization_policy_decides(client):
    organization = OrganizationFactory(lockout_threshold=3, lockout_duration_minutes=60)
    user = member(organization)
    _fail(client, user, 3)
    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    assert locked.reason == "3 failed sign-ins in 15 minutes"
    state = LockoutState.objects.get(user=user)
    assert state.locked_until - state.locked_at == timedelta(minutes=60)


@pytest.mark.parametrize("threshold", [0, 101, 1000])
def test_no_one_can_configure_more_than_100_attempts(threshold):
    organization = OrganizationFactory.build(lockout_threshold=threshold)
    with pytest.raises(ValidationError):
        organization.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganizationFactory(lockout_threshold=threshold)


def test_unknown_accounts_are_never_locked_and_cannot_be_told_apart(client):
    for _ in range(12):
        response = sign_in(client, "ghost@example.test", "x")
        assert SIGN_IN_REFUSED in response.content.decode()
    assert events(EventType.LOCKOUT_TRIGGERED) == []


def _expire_lock(user) -> None:  # type: ignore[no-untyped-def]
    LockoutState.objects.filter(user=user).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )


def test_an_expired_lock_is_released_once_by_the_task(client):
    user = member()
    _fail(client, user, 10)
    _expire_lock(user)

    assert lockout_release_expired.delay().get() == 1
    assert lockouts_release_expired() == 0

    [released] = events(EventType.LOCKOUT_RELEASED)
    assert released.reason == Reason.EXPIRED
    assert released.target_user_id == user.pk
    assert sign_in(client, user.email).status_code == 302


def test_an_expired_lock_is_released_once_by_the_next_sign_in(client):
    user = member()
    _fail(client, user, 10)
    _expire_lock(user)

    assert sign_in(client, user.email).status_code == 302
    assert lockouts_release_expired() == 0
    assert [e.reason for e in events(EventType.LOCKOUT_RELEASED)] == [Reason.EXPIRED]


def test_a_lock_still_running_is_not_released_by_the_task(client):
    user = member()
    _fail(client, user, 10)
    assert lockouts_release_expired() == 0
    assert events(EventType.LOCKOUT_RELEASED) == []


def _admin_unlock(user):  # type: ignore[no-untyped-def]
    """Unlock `user` through the Django admin action, as a platform operator; returns both."""
    operator = member(role=Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    admin_client = Client()
    sign_in(admin_client, operator.email)
    response = admin_client.post(
        reverse("admin:accounts_lockoutstate_changelist"),
        {"action": "unlock", "_selected_action": [user.pk]},
    )
    return operator, response


def test_admin_unlock_through_the_django_admin_action(client):
    user = member()
    _fail(client, user, 10)

    operator, response = _admin_unlock(user)

    assert response.status_code == 302
    [released] = events(EventType.LOCKOUT_RELEASED)
    assert released.reason == Reason.ADMIN_UNLOCK
    assert released.actor_id == operator.pk
    assert released.target_user_id == user.pk
    assert sign_in(client, user.email).status_code == 302


def test_admin_unlock_of_an_unlocked_account_records_nothing(client):
    user = member()
    _fail(client, user, 2)
    _admin_unlock(user)
    assert events(EventType.LOCKOUT_RELEASED) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_parallel_wrong_passwords_locks_exactly_once():
    user = member()
    attempts = 24
    barrier = threading.Barrier(attempts)
    statuses: list[int] = []

    def attempt() -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            statuses.append(sign_in(client, user.email, "wrong").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * attempts
    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    failures = events(EventType.LOGIN_FAILED)
    assert len(failures) == attempts  # every attempt is on record, once
    # At least the policy's ten counted; attempts whose password was checked before the lock
    # committed say so, every later one says the account was locked.
    counted = [e for e in failures if e.reason == Reason.INVALID_CREDENTIALS]
    assert len(counted) >= 10
    assert locked.details["failures"] >= 10
    assert {e.reason for e in failures} <= {Reason.INVALID_CREDENTIALS, Reason.ACCOUNT_LOCKED}
    state = LockoutState.objects.get(user=user)
    assert state.locked_until - state.locked_at == timedelta(minutes=30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_parallel_sign_in_succeeds_while_locked():
    user = member()
    _fail(Client(), user, 10)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def attempt() -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            statuses.append(sign_in(client, user.email).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * 8
    assert events(EventType.LOGIN_SUCCEEDED) == []
    assert len(events(EventType.LOGIN_FAILED, reason=Reason.ACCOUNT_LOCKED)) == 8
