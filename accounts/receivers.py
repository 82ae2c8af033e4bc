"""Receivers for Django's own auth signals: every sign-in, failure and sign-out is recorded.

They live here, not in audit: what a sign-in means is the accounts app's to decide; audit only
records what it is given.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from audit.models import Reason

from .backends import takes_credentials
from .domains import organization_for_address
from .lockout import (
    FACTOR_PASSWORD,
    attempted_name_label,
    credential_attempt,
    login_failure_record,
)
from .models import User
from .sessions import session_end_current, session_start


@receiver(user_login_failed, dispatch_uid="accounts.login_failed")
def on_login_failed(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if takes_credentials(credentials):
        return  # EmailBackend recorded its refusal when it made it, under the account's lock
    # Credentials no backend could take (none of our forms sends such): refused all the same,
    # and for a named account a refusal counts towards its lockout like a wrong password.
    attempted = str(credentials.get("username") or credentials.get("email") or "")
    user = (
        User._default_manager.by_email(attempted[:254])
        .select_related("membership__organization")
        .first()
        if attempted and "\x00" not in attempted
        else None
    )
    if user is None:
        login_failure_record(
            user=None,
            reason=Reason.UNKNOWN_USER,
            attempted=attempted,
            organization=organization_for_address(attempted_name_label(attempted)),
            request=request,
        )
    else:
        credential_attempt(user=user, factor=FACTOR_PASSWORD, check=lambda: False, request=request)


@receiver(user_logged_in, dispatch_uid="accounts.logged_in")
def on_logged_in(sender: object, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return  # no session to record (Django's update_last_login still stamps last_login)
    session_start(request=request, user=user, method=getattr(request, "auth_method", "password"))


@receiver(user_logged_out, dispatch_uid="accounts.logged_out")
def on_logged_out(
    sender: object, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    if request is None or user is None:
        return
    session_end_current(request=request, user=user)
