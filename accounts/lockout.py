"""The one place a password or a second factor is checked: under the account's lockout lock.

Every check of a secret (the sign-in's password, the two-step code, the old password on Change
password, the password that confirms removing a device) goes through credential_attempt. It takes
a row lock on the account's LockoutState in a transaction of its own and, while holding it: refuses
without checking if the account is locked; otherwise checks, and on a wrong answer records
login.failed, counts the account's failures in the window and, at the organization's threshold,
locks the account and records lockout.triggered. So whatever the concurrency no attempt is checked
after the lock, and a burst of N > threshold wrong guesses is checked exactly `threshold` times.

Releasing a lock (its time is up, an administrator unlocks, a password reset) is a write of its
own, under the same row lock; reading whether an account is locked never writes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.context import short_hash
from audit.models import AuditEvent, EventType, Outcome, Reason
from audit.services import durable_alias, event_record

from .models import LockoutState, Organization, User
from .selectors import organization_for_address

if TYPE_CHECKING:
    from django.http import HttpRequest

# Longer passwords are refused unhashed: hashing megabytes is a denial-of-service lever.
MAX_PASSWORD_LENGTH = 4096
MAX_EMAIL_LENGTH = 254

# Failures that count towards a lockout. A refusal because the account is already locked or
# inactive does not: it proves nothing about the password.
COUNTED_FAILURES = (Reason.INVALID_CREDENTIALS, Reason.MFA_FAILED)

FACTOR_PASSWORD = "password"  # noqa: S105 - a factor's name
FACTOR_MFA = "mfa"

# Why a signed-in user's secret was checked again; stored as details.purpose of a failure.
PURPOSE_SIGN_IN = "sign_in"
PURPOSE_PASSWORD_CHANGE = "password_change"  # noqa: S105 - a purpose's name
PURPOSE_MFA_DEVICE_REMOVE = "mfa_device_remove"


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = 10
    window_minutes: int = 15
    duration_minutes: int = 30

    @classmethod
    def of(cls, organization: Organization | None) -> LockoutPolicy:
        if organization is None:
            return cls()
        return cls(
            organization.lockout_threshold,
            organization.lockout_window_minutes,
            organization.lockout_duration_minutes,
        )

    def describe(self) -> str:
        return f"{self.threshold} failed sign-ins in {self.window_minutes} minutes"


class Verdict(enum.Enum):
    PASSED = "passed"
    WRONG = "wrong"  # checked and wrong: recorded and counted
    LOCKED = "locked"  # refused without a check: the account is locked
    UNCHECKED = "unchecked"  # the check declined to look (django-otp's throttle): not counted


@dataclass(frozen=True)
class AttemptResult:
    verdict: Verdict
    # The account is locked after this attempt: it was, or this failure locked it.
    locked: bool = False
    # What `then` returned, for a passed check.
    value: Any = None


def lockout_is_active(*, state: LockoutState | None, now: datetime | None = None) -> bool:
    """Tell whether a lockout row says locked now; a read (expired locks are released elsewhere)."""
    return state is not None and state.is_locked(now or timezone.now())


def lockout_is_expired(*, state: LockoutState | None, now: datetime | None = None) -> bool:
    """Tell whether a lockout row holds a lock whose time is up and is not yet released; a read."""
    return (
        state is not None
        and state.locked_until is not None
        and state.locked_until <= (now or timezone.now())
    )


def attempted_name_label(attempted: str) -> str:
    """What is stored of a sign-in name that matched no account.

    A plausible address is kept as typed (unknown-user failures and password spraying are told
    apart by it). Anything else may be a password typed into the wrong field: only its length
    and a keyed hash are kept, enough to see the same text tried again, never the text.
    """
    if len(attempted) <= MAX_EMAIL_LENGTH:
        try:
            validate_email(attempted)
        except ValidationError:
            pass
        else:
            return attempted
    return f"masked:{len(attempted)}:{short_hash(attempted, purpose='attempted-name')}"


def hash_for_nothing(password: str) -> None:
    """Spend what a password check costs without checking anything (an unknown or locked
    account answers as slowly as a wrong password)."""
    make_password(password[:MAX_PASSWORD_LENGTH])


def login_failure_record(
    *, user: User | None, reason: str, attempted: str = "", request: HttpRequest | None
) -> None:
    """Record a sign-in refused for something other than a wrong secret (an unknown account, a
    disabled one). An unknown address at a domain an organization has verified belongs to it.

    Kept even if the request rolls back; never counted towards a lockout (credential_attempt
    records and counts wrong secrets, under the account's lock).
    """
    if reason in COUNTED_FAILURES:
        raise ValueError(f"{reason} is recorded by credential_attempt, under the account's lock")
    if user is None:
        label = attempted_name_label(attempted)
        event_record(
            event_type=EventType.LOGIN_FAILED,
            outcome=Outcome.FAILURE,
            reason=reason,
            actor_label=label,
            # An address at an organization's verified domain is that organization's to see.
            organization=organization_for_address(label),
            details={"attempted_username": label},
            request=request,
            durable=True,
        )
        return
    event_record(
        event_type=EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
        reason=reason,
        actor=user,
        details={"method": FACTOR_PASSWORD},
        request=request,
        durable=True,
    )


def credential_attempt(
    *,
    user: User,
    factor: str,
    check: Callable[[], bool | None],
    request: HttpRequest | None,
    purpose: str = PURPOSE_SIGN_IN,
    then: Callable[[], Any] | None = None,
) -> AttemptResult:
    """Decide an attempt at a known account's secret under the account's lockout lock.

    `check` answers True (right), False (wrong: recorded as login.failed and counted) or None
    (it did not look: nothing recorded). `then` runs after a right answer while the lock is still
    held, so what it records (the sign-in) comes before any lock a later attempt sets. The lock
    is taken on a connection that commits on its own (audit.services.durable_alias): a refusal
    and a lock are kept whatever happens to the caller's transaction.
    """
    alias = durable_alias()
    with transaction.atomic(using=alias):
        state = _lockout_state_for_update(user, using=alias)
        now = timezone.now()
        if lockout_is_expired(state=state, now=now):
            lockout_release_locked(state=state, reason=Reason.EXPIRED, request=request, using=alias)
        if lockout_is_active(state=state, now=now):
            _failure_record(user, Reason.ACCOUNT_LOCKED, factor, purpose, request, using=alias)
            return AttemptResult(Verdict.LOCKED, locked=True)
        answer = check()
        if answer is None:
            return AttemptResult(Verdict.UNCHECKED)
        if answer:
            return AttemptResult(Verdict.PASSED, value=then() if then is not None else None)
        reason = Reason.MFA_FAILED if factor == FACTOR_MFA else Reason.INVALID_CREDENTIALS
        _failure_record(user, reason, factor, purpose, request, using=alias)
        locked = _lock_if_due(user, state, request=request, using=alias)
        return AttemptResult(Verdict.WRONG, locked=locked)


def password_attempt(
    *,
    user: User,
    password: str,
    request: HttpRequest | None,
    purpose: str = PURPOSE_SIGN_IN,
    then: Callable[[], Any] | None = None,
) -> AttemptResult:
    """Decide an attempt at the account's password (credential_attempt)."""

    def check() -> bool:
        if len(password) > MAX_PASSWORD_LENGTH:
            hash_for_nothing(password)
            return False
        return user.check_password(password)

    return credential_attempt(
        user=user, factor=FACTOR_PASSWORD, check=check, request=request, purpose=purpose, then=then
    )


def _lockout_state_for_update(user: User, *, using: str) -> LockoutState:
    """The account's lockout row, locked until the transaction ends; created if missing."""
    rows = (
        LockoutState.objects.using(using)
        .select_for_update(of=("self",))
        .select_related("user")  # named by the lockout.released event of an expired lock
        .filter(user_id=user.pk)
    )
    state = rows.first()
    if state is None:
        # Two first attempts may both get here: one row is created, both then wait on its lock.
        LockoutState.objects.using(using).bulk_create(
            [LockoutState(user_id=user.pk)], ignore_conflicts=True
        )
        state = rows.get()
    return state


def _failure_record(
    user: User,
    reason: str,
    factor: str,
    purpose: str,
    request: HttpRequest | None,
    *,
    using: str,
) -> None:
    details = {"method": factor}
    if purpose != PURPOSE_SIGN_IN:
        details["purpose"] = purpose
    event_record(
        event_type=EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
        reason=reason,
        actor=user,
        details=details,
        request=request,
        using=using,
    )


def _lock_if_due(
    user: User, state: LockoutState, *, request: HttpRequest | None, using: str
) -> bool:
    """Count the failures in the window and lock the account at the threshold; True if locked."""
    now = timezone.now()
    policy = LockoutPolicy.of(user.organization)
    # Failures count within the window, since the last reset (lock or release) and since the
    # last successful sign-in (Django keeps last_login; no write needed on success).
    since = max(
        moment
        for moment in (now - timedelta(minutes=policy.window_minutes), state.counter_reset_at)
        if moment is not None
    )
    # last_login is read by the counting statement itself, which starts after the lock is held:
    # a sign-in that committed while this request waited for the lock resets the count. (Read
    # with the locked row, it would be the version from before the wait.)
    last_sign_in = User.objects.using(using).filter(pk=user.pk).values("last_login")
    failures = (
        AuditEvent.objects.using(using)
        .filter(
            actor_id=user.pk,
            event_type=EventType.LOGIN_FAILED,
            reason__in=COUNTED_FAILURES,
            occurred_at__gt=Coalesce(Subquery(last_sign_in), Value(since)),
        )
        .filter(occurred_at__gt=since)
        .count()
    )
    if failures < policy.threshold:
        return False
    state.locked_at = state.counter_reset_at = now
    state.locked_until = now + timedelta(minutes=policy.duration_minutes)
    state.save(using=using, update_fields=["locked_at", "locked_until", "counter_reset_at"])
    event_record(
        event_type=EventType.LOCKOUT_TRIGGERED,
        reason=policy.describe(),
        target_user=user,
        details={
            "failures": failures,
            "threshold": policy.threshold,
            "window_minutes": policy.window_minutes,
            "locked_until": state.locked_until.isoformat(),
        },
        request=request,
        using=using,
    )
    return True


def lockout_release_locked(
    *,
    state: LockoutState,
    reason: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
    using: str,
) -> None:
    """Unlock a lockout row the caller holds locked, and record lockout.released."""
    locked_at, locked_until = state.locked_at, state.locked_until
    state.locked_until = None
    state.counter_reset_at = timezone.now()
    state.save(using=using, update_fields=["locked_until", "counter_reset_at"])
    event_record(
        event_type=EventType.LOCKOUT_RELEASED,
        reason=reason,
        actor=actor,
        target_user=state.user,
        details={
            "locked_at": locked_at.isoformat() if locked_at else None,
            "locked_until": locked_until.isoformat() if locked_until else None,
        },
        request=request,
        using=using,
    )


def lockout_release(
    *,
    user: User,
    reason: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> bool:
    """Unlock the account and record lockout.released, once; False if it was not locked.

    Under the lockout row's lock, the one the sign-in checks under: of two releases, or a
    release and a sign-in, one goes first and the other sees what it did.
    """
    with transaction.atomic():
        state = (
            LockoutState.objects.select_for_update(of=("self",))
            .select_related("user__membership")
            .filter(user_id=user.pk)
            .first()
        )
        if state is None or state.locked_until is None:
            return False
        if reason == Reason.EXPIRED and not lockout_is_expired(state=state):
            return False
        lockout_release_locked(
            state=state, reason=reason, actor=actor, request=request, using=DEFAULT_DB_ALIAS
        )
    return True


def lockouts_release_expired() -> int:
    """Release every lock whose time is up; returns how many were released by this call."""
    released = 0
    expired = LockoutState.objects.filter(locked_until__lte=timezone.now()).select_related(
        "user__membership"
    )
    for state in expired.iterator(chunk_size=500):
        released += lockout_release(user=state.user, reason=Reason.EXPIRED)
    return released
