"""Lockout: the per-organization policy, counted atomically, released once by any of three paths.

The account has never signed in from a test client here, so every attempt is from an unfamiliar
source and locks the unfamiliar scope (tests/test_smart_lockout.py tells the sources apart).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.forms import SIGN_IN_REFUSED
from accounts.lockout import lockout_is_active, lockout_is_expired, lockouts_release_expired
from accounts.models import LockoutState, Role, User
from accounts.tasks import lockout_release_expired
from audit.models import EventType, Reason

from .factories import PASSWORD, OrganizationFactory, member
from .helpers import events, sign_in, wait_for_a_blocked_statement
from .mfa_support import code_for, second_step, totp_device

pytestmark = pytest.mark.django_db


def _fail(client, user, times):
    for _ in range(times):
        sign_in(client, user.email, "wrong password")


def test_ten_failures_in_fifteen_minutes_lock_the_account(client):
    user = member()
    _fail(client, user, 10)

    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    assert locked.target_user_id == user.pk
    assert locked.reason == "10 failed sign-ins in 15 minutes"
    assert locked.details["threshold"] == 10
    assert locked.details["scope"] == "unfamiliar"
    state = LockoutState.objects.get(user=user)
    assert state.unfamiliar_locked_until - state.unfamiliar_locked_at == timedelta(minutes=30)


def test_nine_failures_do_not_lock(client):
    user = member()
    _fail(client, user, 9)
    assert events(EventType.LOCKOUT_TRIGGERED) == []
    assert sign_in(client, user.email).status_code == 303


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
    LockoutState.objects.update_or_create(
        user=user, defaults={"unfamiliar_counter_reset_at": timezone.now()}
    )
    _fail(client, user, 1)
    assert events(EventType.LOCKOUT_TRIGGERED) == []


def test_a_successful_sign_in_resets_the_count(client):
    user = member()
    _fail(client, user, 9)
    assert sign_in(client, user.email).status_code == 303
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
    assert state.unfamiliar_locked_until - state.unfamiliar_locked_at == timedelta(minutes=60)


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


def _expire_lock(user) -> None:
    LockoutState.objects.filter(user=user).update(
        unfamiliar_locked_until=timezone.now() - timedelta(seconds=1)
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
    assert sign_in(client, user.email).status_code == 303


def test_an_expired_lock_is_released_once_by_the_next_sign_in(client):
    user = member()
    _fail(client, user, 10)
    _expire_lock(user)

    assert sign_in(client, user.email).status_code == 303
    assert lockouts_release_expired() == 0
    assert [e.reason for e in events(EventType.LOCKOUT_RELEASED)] == [Reason.EXPIRED]


def test_reading_an_expired_lock_writes_nothing(client):
    """Whether an account is locked is a read: releasing an expired lock is a write of its own."""
    user = member()
    _fail(client, user, 10)
    _expire_lock(user)
    state = LockoutState.objects.get(user=user)

    with CaptureQueriesContext(connection) as queries:
        assert lockout_is_active(state=state) is False
        assert lockout_is_expired(state=state) is True
    assert queries.captured_queries == []
    assert events(EventType.LOCKOUT_RELEASED) == []
    assert LockoutState.objects.get(user=user).unfamiliar_locked_until is not None


def test_a_lock_still_running_is_not_released_by_the_task(client):
    user = member()
    _fail(client, user, 10)
    assert lockouts_release_expired() == 0
    assert events(EventType.LOCKOUT_RELEASED) == []


def _admin_unlock(user):
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
    assert sign_in(client, user.email).status_code == 303


def test_admin_unlock_of_an_unlocked_account_records_nothing(client):
    user = member()
    _fail(client, user, 2)
    _admin_unlock(user)
    assert events(EventType.LOCKOUT_RELEASED) == []


def _in_parallel(attempts: list[Callable[[], int]], *, workers: int) -> list[int]:
    """Run the attempts from `workers` threads (each with its own connection), all starting at
    once; returns the status codes. Fewer threads than attempts: the database is shared."""
    barrier = threading.Barrier(workers)
    statuses: list[int] = []
    shares = [attempts[n::workers] for n in range(workers)]

    def work(share: list[Callable[[], int]]) -> None:
        try:
            barrier.wait(timeout=30)
            for attempt in share:
                statuses.append(attempt())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == len(attempts), "an attempt raised or hung"
    return statuses


def _attempt(email: str, password: str) -> Callable[[], int]:
    return lambda: sign_in(Client(), email, password).status_code


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_200_wrong_passwords_is_checked_exactly_threshold_times(
    counted_checks, lockout_alone
):
    user = member()
    statuses = _in_parallel([_attempt(user.email, "wrong")] * 200, workers=16)

    assert statuses == [200] * 200
    assert counted_checks.verified == 10  # the policy's threshold, not one more
    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    assert locked.details["failures"] == 10
    failures = events(EventType.LOGIN_FAILED)
    assert len(failures) == 200  # every attempt is on record, once
    checked = [e for e in failures if e.reason == Reason.INVALID_CREDENTIALS]
    refused = [e for e in failures if e.reason == Reason.ACCOUNT_LOCKED]
    assert (len(checked), len(refused)) == (10, 190)
    # Recorded in the order decided: every check before the lock, every refusal after it.
    assert max(e.pk for e in checked) < locked.pk < min(e.pk for e in refused)
    state = LockoutState.objects.get(user=user)
    assert state.unfamiliar_locked_until - state.unfamiliar_locked_at == timedelta(minutes=30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_right_password_succeeds_after_the_lock_in_sixty_parallel_attempts(
    counted_checks, lockout_alone
):
    user = member()
    # Five right passwords among 55 wrong ones: whatever the order, ten wrong ones come in a row
    # (six runs between the five successes hold 55), so the account locks.
    attempts = [_attempt(user.email, "wrong")] * 55 + [_attempt(user.email, PASSWORD)] * 5
    random.Random(12).shuffle(attempts)

    statuses = _in_parallel(attempts, workers=12)

    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    succeeded = events(EventType.LOGIN_SUCCEEDED)
    checked = events(EventType.LOGIN_FAILED, reason=Reason.INVALID_CREDENTIALS)
    refused = events(EventType.LOGIN_FAILED, reason=Reason.ACCOUNT_LOCKED)
    assert statuses.count(303) == len(succeeded) <= 5
    assert all(e.pk < locked.pk and e.occurred_at < locked.occurred_at for e in succeeded)
    assert all(e.pk < locked.pk for e in checked)
    assert all(e.pk > locked.pk for e in refused)
    assert len(succeeded) + len(checked) + len(refused) == 60
    # Every check is a success or a counted failure: nothing was checked after the lock.
    assert counted_checks.verified == len(succeeded) + len(checked)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_parallel_sign_in_succeeds_while_locked(counted_checks):
    user = member()
    _fail(Client(), user, 10)
    counted_checks.reset()

    statuses = _in_parallel([_attempt(user.email, PASSWORD)] * 8, workers=8)

    assert statuses == [200] * 8
    assert events(EventType.LOGIN_SUCCEEDED) == []
    assert len(events(EventType.LOGIN_FAILED, reason=Reason.ACCOUNT_LOCKED)) == 8
    assert counted_checks.verified == 0  # refused without looking at the password


def test_a_locked_account_is_refused_without_checking_the_password(client, counted_checks):
    user = member()
    _fail(client, user, 10)
    assert counted_checks.verified == 10
    sign_in(client, user.email)
    sign_in(client, user.email, "wrong")
    assert counted_checks.verified == 10


def test_a_password_check_holds_the_lockout_row_lock(client):
    """The lock the comments promise: each attempt on a known account takes its lockout row FOR
    UPDATE (created by the first attempt); PostgreSQL only, SQLite has no such clause."""
    user = member()
    sign_in(client, user.email, "wrong")
    assert LockoutState.objects.filter(user=user).exists()
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        sign_in(client, user.email, "wrong")
        sign_in(client, user.email)
    locking = [s for s in statements if '"accounts_lockoutstate"' in s and "FOR UPDATE" in s]
    assert len(locking) == (2 if connection.vendor == "postgresql" else 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_codes_are_checked_exactly_threshold_times_under_the_same_lock(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # about the lockout, not django-otp's back-off
    user = member()
    device = totp_device(user)
    wrong = "000000" if code_for(device) != "000000" else "111111"
    browsers = [Client() for _ in range(30)]
    for browser in browsers:  # each passes the password step: nothing counted yet
        assert sign_in(browser, user.email).status_code == 303

    statuses = _in_parallel(
        [lambda b=browser: second_step(b, wrong).status_code for browser in browsers], workers=10
    )

    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    checked = events(EventType.LOGIN_FAILED, reason=Reason.MFA_FAILED)
    refused = events(EventType.LOGIN_FAILED, reason=Reason.ACCOUNT_LOCKED)
    assert (len(checked), len(refused)) == (10, 20)
    assert len(events(EventType.MFA_VERIFICATION_FAILED)) == 10  # only checked codes
    assert max(e.pk for e in checked) < locked.pk < min(e.pk for e in refused)
    assert sorted(statuses) == [400] * 9 + [403] * 21
    # The right code is refused now, unchecked.
    late = Client()
    sign_in(late, user.email)
    assert second_step(late, code_for(device)).status_code in (400, 403)
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_wrong_passwords_and_wrong_codes_count_together(client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = member()
    device = totp_device(user)
    wrong = "000000" if code_for(device) != "000000" else "111111"
    _fail(client, user, 7)
    sign_in(client, user.email)
    for _ in range(3):
        second_step(client, wrong)

    [locked] = events(EventType.LOCKOUT_TRIGGERED)
    assert locked.details["failures"] == 10
    assert sign_in(client, user.email).status_code == 200  # locked: no second step offered


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_expired_lock_released_by_sign_ins_and_the_task_at_once_is_released_once():
    user = member()
    _fail(Client(), user, 10)
    _expire_lock(user)

    def release() -> int:
        lockouts_release_expired()
        return 0

    statuses = _in_parallel([_attempt(user.email, PASSWORD), release] * 4, workers=8)

    assert statuses.count(303) == 4
    assert [e.reason for e in events(EventType.LOCKOUT_RELEASED)] == [Reason.EXPIRED]
    assert LockoutState.objects.get(user=user).unfamiliar_locked_until is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failure_that_waited_for_the_lock_behind_a_sign_in_counts_only_what_followed_it():
    user = member()
    # A sign-in makes the test clients' network familiar: a sign-in resets the familiar count.
    assert sign_in(Client(), user.email).status_code == 303
    _fail(Client(), user, 9)  # one short of the threshold
    statuses: list[int] = []

    def fail_once() -> None:
        try:
            statuses.append(sign_in(Client(), user.email, "wrong password").status_code)
        finally:
            connections.close_all()

    waiting = threading.Thread(target=fail_once)
    # As a successful sign-in does: hold the account's lockout row, stamp last_login, commit.
    with transaction.atomic():
        LockoutState.objects.select_for_update().get(user=user)
        waiting.start()
        wait_for_a_blocked_statement()  # the failure waits for the lockout row
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    waiting.join(timeout=30)

    assert statuses == [200]
    assert events(EventType.LOCKOUT_TRIGGERED) == []  # one failure since the sign-in, not ten
    assert not lockout_is_active(state=LockoutState.objects.get(user=user))
