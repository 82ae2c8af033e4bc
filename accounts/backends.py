"""Email-and-password authentication that knows about lockouts and records why it refused."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from audit.models import Reason

from .domains import organization_for_address
from .lockout import (
    MAX_EMAIL_LENGTH,
    Verdict,
    attempted_name_label,
    hash_for_nothing,
    login_failure_record,
    password_attempt,
)
from .models import Organization, User
from .selectors import user_for_sign_in
from .throttling import Decision, Purpose, throttle_attempt, throttle_refund


def _lookup_worthy(value: str) -> bool:
    return 0 < len(value) <= MAX_EMAIL_LENGTH and not any(ch in value for ch in "\x00\r\n")


def takes_credentials(credentials: Mapping[str, Any]) -> bool:
    """Whether EmailBackend checks (and records the refusal of) these credentials."""
    name = credentials.get("username", credentials.get(User.USERNAME_FIELD))
    return name is not None and credentials.get("password") is not None


def attempt_organization(user: User | None, attempted: str) -> Organization | None:
    """The organization an attempt is for: the account's, or the one that verified the domain
    of an unknown address (whose Audit Log sees its failures and throttling)."""
    if user is None:
        return organization_for_address(attempted_name_label(attempted))
    membership = getattr(user, "membership", None)  # select_related by user_for_sign_in
    return membership.organization if membership is not None else None


@dataclass(frozen=True)
class PasswordSignIn:
    user: User | None  # the account, if the name and password were right and it may sign in
    value: Any = None  # what `then` returned
    # Refused by the throttle before any check (accounts.throttling): when to try again.
    throttled: Decision | None = None


def password_sign_in(
    *,
    request: HttpRequest | None,
    username: str,
    password: str,
    then: Callable[[User], Any] | None = None,
) -> PasswordSignIn:
    """Check a sign-in name and password, recording every refusal.

    With a request, the attempt is first charged to the throttle (accounts.throttling): a
    throttled attempt checks nothing, hashes nothing, and says when to try again. An unknown name
    costs a hash like a wrong password and takes no lock; a known account's password is checked
    under its lockout lock (accounts.lockout.credential_attempt), and `then` runs with the user
    while that lock is held, so the sign-in it records precedes any lock.
    """
    attempted = str(username).strip()
    user = user_for_sign_in(attempted) if _lookup_worthy(attempted) else None
    organization = attempt_organization(user, attempted)
    decision = None
    if request is not None:
        decision = throttle_attempt(
            request=request,
            purpose=Purpose.SIGN_IN,
            account=attempted,
            organization=organization,
            user=user,
        )
        if not decision.allowed:
            return PasswordSignIn(user=None, throttled=decision)
    if user is None:
        hash_for_nothing(password)
        login_failure_record(
            user=None,
            reason=Reason.UNKNOWN_USER,
            attempted=attempted,
            organization=organization,
            request=request,
        )
        return PasswordSignIn(user=None)
    found = user

    def admitted() -> PasswordSignIn:
        if not found.is_active:
            return PasswordSignIn(user=None)  # the right password of a disabled account
        return PasswordSignIn(user=found, value=then(found) if then is not None else None)

    result = password_attempt(user=user, password=password, request=request, then=admitted)
    if result.verdict is Verdict.LOCKED:
        hash_for_nothing(password)  # a locked account answers as slowly as any other
    if result.verdict is not Verdict.PASSED:
        return PasswordSignIn(user=None)
    signed_in = cast(PasswordSignIn, result.value)  # what admitted() returned
    if signed_in.user is None:
        login_failure_record(user=user, reason=Reason.INACTIVE_ACCOUNT, request=request)
    elif decision is not None:
        throttle_refund(decision=decision)  # only failures use the buckets up
    return signed_in


class EmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        return password_sign_in(request=request, username=username, password=password).user

    def get_user(self, user_id: int) -> User | None:
        user = (
            User._default_manager.filter(pk=user_id)
            .select_related("membership__organization")
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
