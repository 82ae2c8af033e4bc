"""Email-and-password authentication that knows about lockouts and says why it refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from audit.models import Reason

from .models import User
from .selectors import user_for_sign_in
from .services import lockout_is_active

MAX_EMAIL_LENGTH = 254
# Longer passwords are refused unhashed: hashing megabytes is a denial-of-service lever.
MAX_PASSWORD_LENGTH = 4096


@dataclass(frozen=True)
class AuthFailure:
    reason: str
    user: User | None
    attempted: str


def note_failure(request: HttpRequest | None, failure: AuthFailure) -> None:
    """Leave the refusal's reason on the request for the user_login_failed receiver."""
    if request is not None:
        request.auth_failure = failure  # type: ignore[attr-defined]


def _plausible_email(value: str) -> bool:
    return 0 < len(value) <= MAX_EMAIL_LENGTH and not any(ch in value for ch in "\x00\r\n")


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
        attempted = str(username).strip()
        user = None
        if _plausible_email(attempted):
            user = user_for_sign_in(attempted)
        if user is None or len(password) > MAX_PASSWORD_LENGTH:
            # Hash anyway so that an unknown address takes as long as a wrong password.
            User().set_password(password[:MAX_PASSWORD_LENGTH])
            reason = Reason.UNKNOWN_USER if user is None else Reason.INVALID_CREDENTIALS
            note_failure(request, AuthFailure(reason, user, attempted))
            return None
        if not user.check_password(password):
            # Whether the account is locked is settled under the lockout row's lock when the
            # failure is recorded (accounts.services.login_failure_record).
            note_failure(request, AuthFailure(Reason.INVALID_CREDENTIALS, user, attempted))
            return None
        if lockout_is_active(user=user, request=request):
            note_failure(request, AuthFailure(Reason.ACCOUNT_LOCKED, user, attempted))
            return None
        if not self.user_can_authenticate(user):
            note_failure(request, AuthFailure(Reason.INACTIVE_ACCOUNT, user, attempted))
            return None
        return user

    def get_user(self, user_id: int) -> User | None:
        user = (
            User._default_manager.filter(pk=user_id)
            .select_related("membership__organization")
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
