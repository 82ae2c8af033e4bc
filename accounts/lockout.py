"""The one place a password or a second factor is checked: under the account's lockout lock.

Every check of a secret (the sign-in's password, the two-step code, the old password on Change
password, the password that confirms removing a device) goes through credential_attempt. It takes
a row lock on the account's LockoutState in a transaction of its own and, while holding it: refuses
without checking if the account is locked for the attempt's source; otherwise checks, and on a
wrong answer records login.failed, counts the account's failures from that class of source in the
window and, at the organization's threshold, locks the account for that class and records
lockout.triggered. So whatever the concurrency no attempt is checked after the lock that refuses
it, and a burst of N > threshold wrong guesses from one class is checked exactly `threshold` times.

Smart lockout: an attempt's source is familiar or unfamiliar (accounts.familiarity, decided
under the lock). The two classes are counted apart and locked apart. Unfamiliar failures
at the threshold lock out unfamiliar sources only (scope "unfamiliar"), so an attacker cannot lock
the owner out of a device or network the account signs in from; familiar failures at the threshold
lock out every source (scope "all"). Each class gets at most `threshold` wrong attempts per lock
period (PCI DSS 8.3.4), whoever sends them.

Releasing a lock (its time is up, an administrator unlocks, a password reset) is a write of its
own, under the same row lock; reading whether an account is locked never writes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.context import short_hash
from audit.models import AuditEvent, EventType, Outcome, Reason
from audit.services import durable_alias, event_record

from .familiarity import Source, attempt_source
from .models import LockoutState, LockScope, Organization, User

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
    """Tell whether a lockout row says locked now, in any scope; a read (expired locks are
    released elsewhere)."""
    return state is not None and state.is_locked(now or timezone.now())


def lockout_is_expired(*, state: LockoutState | None, now: datetime | None = None) -> bool:
    """Tell whether a lockout row holds a lock whose time is up and is not yet released; a read."""
    return state is not None and bool(state.scopes_expired(now or timezone.now()))


# Each scope's fields: (counter reset, locked at, locked until).
_SCOPE_FIELDS = {
    LockScope.ALL: ("counter_reset_at", "locked_at", "locked_until"),
    LockScope.UNFAMILIAR: (
        "unfamiliar_counter_reset_at",
        "unfamiliar_locked_at",
        "unfamiliar_locked_until",
    ),
}


def scope_locked_by(source: Source) -> LockScope:
    """The lock a class of source sets when its failures reach the threshold."""
    return LockScope.ALL if source is Source.FAMILIAR else LockScope.UNFAMILIAR


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
    *,
    user: User | None,
    reason: str,
    attempted: str = "",
    organization: Organization | None = None,
    request: HttpRequest | None,
    details: Mapping[str, object] | None = None,
) -> None:
    """Record a sign-in refused for something other than a wrong secret (an unknown account, a
    disabled one, an access policy: `details` adds to a known account's). An unknown address
    belongs to `organization`, the one that verified its domain
    (accounts.domains.organization_for_address, which the caller has already asked).

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
            organization=organization,
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
        details={"method": FACTOR_PASSWORD, **(details or {})},
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
    source: Source | None = None,
) -> AttemptResult:
    """Decide an attempt at a known account's secret under the account's lockout lock.

    `check` answers True (right), False (wrong: recorded as login.failed and counted) or None
    (it did not look: nothing recorded). `then` runs after a right answer while the lock is still
    held, so what it records (the sign-in) comes before any lock a later attempt sets. The lock
    is taken on a connection that commits on its own (audit.services.durable_alias): a refusal
    and a lock are kept whatever happens to the caller's transaction. `source` is the attempt's
    class; without it, it is decided from the request (the second step passes the one its
    password step decided).
    """
    alias = durable_alias()
    with transaction.atomic(using=alias):
        state = _lockout_state_for_update(user, using=alias)
        if source is None:
            # Under the lock: a sign-in that committed while this attempt waited for it has made
            # its device and network familiar, as if the two attempts had come one by one.
            source = attempt_source(user=user, request=request)
        now = timezone.now()
        expired = state.scopes_expired(now)
        if expired:
            lockout_release_locked(
                state=state, reason=Reason.EXPIRED, scopes=expired, request=request, using=alias
            )
        if state.refuses(familiar=source is Source.FAMILIAR, now=now):
            _failure_record(
                user, Reason.ACCOUNT_LOCKED, factor, purpose, source, request, using=alias
            )
            return AttemptResult(Verdict.LOCKED, locked=True)
        answer = check()
        if answer is None:
            return AttemptResult(Verdict.UNCHECKED)
        if answer:
            return AttemptResult(Verdict.PASSED, value=then() if then is not None else None)
        reason = Reason.MFA_FAILED if factor == FACTOR_MFA else Reason.INVALID_CREDENTIALS
        _failure_record(user, reason, factor, purpose, source, request, using=alias)
        locked = _lock_if_due(user, state, source, request=request, using=alias)
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
    source: Source,
    request: HttpRequest | None,
    *,
    using: str,
) -> None:
    details = {"method": factor, "source": str(source)}
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


def counted_failures(source: Source, *, using: str = DEFAULT_DB_ALIAS) -> QuerySet[AuditEvent]:
    """The failures that count towards the lockout of a class of source (every account's)."""
    return AuditEvent.objects.using(using).filter(
        event_type=EventType.LOGIN_FAILED,
        reason__in=COUNTED_FAILURES,
        details__source=str(source),
    )


def _lock_if_due(
    user: User, state: LockoutState, source: Source, *, request: HttpRequest | None, using: str
) -> bool:
    """Count the class's failures in the window and lock its scope at the threshold; True if
    locked."""
    now = timezone.now()
    policy = LockoutPolicy.of(user.organization)
    scope = scope_locked_by(source)
    reset_field, at_field, until_field = _SCOPE_FIELDS[scope]
    # Failures count within the window and since the scope's last reset (lock or release).
    since = max(
        moment
        for moment in (now - timedelta(minutes=policy.window_minutes), getattr(state, reset_field))
        if moment is not None
    )
    failures = counted_failures(source, using=using).filter(actor_id=user.pk, occurred_at__gt=since)
    if source is Source.FAMILIAR:
        # And since the last successful sign-in (Django keeps last_login; no write needed on
        # success). Not for unfamiliar failures: the owner signing in says nothing of a
        # stranger's guesses. last_login is read by the counting statement itself, which starts
        # after the lock is held: a sign-in that committed while this request waited for the
        # lock resets the count. (Read with the locked row, it would be the version from before
        # the wait.)
        last_sign_in = User.objects.using(using).filter(pk=user.pk).values("last_login")
        failures = failures.filter(occurred_at__gt=Coalesce(Subquery(last_sign_in), Value(since)))
    count = failures.count()
    if count < policy.threshold:
        return False
    until = now + timedelta(minutes=policy.duration_minutes)
    for field, value in ((reset_field, now), (at_field, now), (until_field, until)):
        setattr(state, field, value)
    state.save(using=using, update_fields=[reset_field, at_field, until_field])
    event_record(
        event_type=EventType.LOCKOUT_TRIGGERED,
        reason=policy.describe(),
        target_user=user,
        details={
            "scope": str(scope),
            "failures": count,
            "threshold": policy.threshold,
            "window_minutes": policy.window_minutes,
            "locked_until": until.isoformat(),
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
    scopes: Sequence[str] | None = None,
    using: str,
) -> int:
    """Unlock the scopes (default: every lock it holds) of a lockout row the caller holds
    locked, recording lockout.released for each; returns how many were released."""
    now = timezone.now()
    released = 0
    update_fields: list[str] = []
    for scope in LockScope:
        locked_at, locked_until = state.lock_of(scope)
        if locked_until is None or (scopes is not None and scope not in scopes):
            continue
        reset_field, _, until_field = _SCOPE_FIELDS[scope]
        setattr(state, until_field, None)
        setattr(state, reset_field, now)
        update_fields += [until_field, reset_field]
        event_record(
            event_type=EventType.LOCKOUT_RELEASED,
            reason=reason,
            actor=actor,
            target_user=state.user,
            details={
                "scope": str(scope),
                "locked_at": locked_at.isoformat() if locked_at else None,
                "locked_until": locked_until.isoformat(),
            },
            request=request,
            using=using,
        )
        released += 1
    if update_fields:
        state.save(using=using, update_fields=update_fields)
    return released


def lockout_release(
    *,
    user: User,
    reason: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> bool:
    """Unlock the account in every scope (for reason "expired": the scopes whose time is up)
    and record lockout.released for each, once; False if nothing was released.

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
        if state is None:
            return False
        scopes = state.scopes_expired(timezone.now()) if reason == Reason.EXPIRED else None
        released = lockout_release_locked(
            state=state,
            reason=reason,
            actor=actor,
            request=request,
            scopes=scopes,
            using=DEFAULT_DB_ALIAS,
        )
    return released > 0


def lockouts_release_expired() -> int:
    """Release every lock whose time is up; returns how many accounts this call released."""
    released = 0
    now = timezone.now()
    expired = LockoutState.objects.filter(
        Q(locked_until__lte=now) | Q(unfamiliar_locked_until__lte=now)
    ).select_related("user__membership")
    for state in expired.iterator(chunk_size=500):
        released += lockout_release(user=state.user, reason=Reason.EXPIRED)
    return released
