"""Receivers for Django's own auth signals: every sign-in, failure and sign-out is recorded."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.backends import AuthFailure
from accounts.models import User
from accounts.services import (
    last_login_stamp,
    login_failure_record,
    session_end_current,
    session_start,
)
from audit.models import Reason


def _failure_from_credentials(credentials: dict[str, Any]) -> AuthFailure:
    """Reconstruct why a sign-in failed when no request carried the backend's reason."""
    attempted = str(credentials.get("username") or credentials.get("email") or "")
    user = (
        User._default_manager.by_email(attempted[:254])
        .select_related("membership__organization")
        .first()
        if attempted and "\x00" not in attempted
        else None
    )
    reason = Reason.INVALID_CREDENTIALS if user else Reason.UNKNOWN_USER
    return AuthFailure(reason, user, attempted)


@receiver(user_login_failed, dispatch_uid="audit.login_failed")
def on_login_failed(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    failure = getattr(request, "auth_failure", None) or _failure_from_credentials(credentials)
    login_failure_record(
        user=failure.user, reason=failure.reason, attempted=failure.attempted, request=request
    )


@receiver(user_logged_in, dispatch_uid="audit.logged_in")
def on_logged_in(sender: object, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        last_login_stamp(user)  # nothing to record, but last_login moves as Django's would
        return
    session_start(request=request, user=user, method=getattr(request, "auth_method", "password"))


@receiver(user_logged_out, dispatch_uid="audit.logged_out")
def on_logged_out(
    sender: object, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    if request is None or user is None:
        return
    session_end_current(request=request, user=user)
