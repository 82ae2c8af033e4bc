"""Passkeys (WebAuthn): adding one, and checking one at the second step or as the whole sign-in.

The credentials are django-otp-webauthn's WebAuthnCredential devices and py_webauthn checks the
answers (through django-otp-webauthn's WebAuthnHelper, which reads OTP_WEBAUTHN_RP_ID and
OTP_WEBAUTHN_ALLOWED_ORIGINS). The views and the session state are ours, so that a passkey fits
the two-step sign-in (accounts.mfa.PendingSignIn), the lockout and the audit events.

Each ceremony's challenge waits in the session and is taken out before its answer is checked,
whatever the outcome: an answer replayed, or for a challenge that was never handed out here, finds
no challenge or another one and is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django_otp_webauthn.models import WebAuthnCredential
from webauthn import base64url_to_bytes
from webauthn.helpers.exceptions import WebAuthnException

from audit.models import EventType, Outcome, Reason
from audit.services import event_record

from .mfa import KIND_PASSKEY
from .models import User
from .notifications import security_notice_queue

if TYPE_CHECKING:
    from django.http import HttpRequest

DEFAULT_PASSKEY_NAME = "Passkey"
# The browser's answer is a few kilobytes; anything far larger is not one.
MAX_ANSWER_LENGTH = 64 * 1024

REGISTER_STATE_KEY = "_passkey_register"
AUTHENTICATE_STATE_KEY = "_passkey_authenticate"

MESSAGES = {
    Reason.PASSKEY_REPLAYED: (
        "That passkey answer was already used or was not asked for here. Try the passkey again."
    ),
    Reason.PASSKEY_WRONG_ORIGIN: (
        "That passkey answer was made for another site. Open this site at its own address and "
        "try again."
    ),
    Reason.PASSKEY_OTHER_USER: (
        "That passkey belongs to another account. Use a passkey of the account you are "
        "signing in to."
    ),
    Reason.PASSKEY_UNKNOWN: (
        "That passkey is not known here: it may have been removed. Sign in another way."
    ),
    Reason.PASSKEY_INVALID: "That passkey answer could not be verified. Try the passkey again.",
}


class PasskeyRefused(Exception):
    """A passkey answer that was not accepted; `reason` is an audit Reason code."""

    def __init__(self, reason: str, *, owner: User | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.owner = owner  # the account whose passkey it is, when the passkey is known

    @property
    def message(self) -> str:
        return MESSAGES.get(self.reason, MESSAGES[Reason.PASSKEY_INVALID])


def _helper(request: HttpRequest) -> Any:
    return WebAuthnCredential.get_webauthn_helper(request=request)


def _answer(raw: str) -> dict[str, Any]:
    """The browser's answer (PublicKeyCredential as JSON) as a dict; refused when malformed."""
    if not raw or len(raw) > MAX_ANSWER_LENGTH:
        raise PasskeyRefused(Reason.PASSKEY_INVALID)
    try:
        data = json.loads(raw)
    except ValueError:
        raise PasskeyRefused(Reason.PASSKEY_INVALID) from None
    if not isinstance(data, dict) or not isinstance(data.get("rawId"), str):
        raise PasskeyRefused(Reason.PASSKEY_INVALID)
    return data


def _state_take(request: HttpRequest, key: str) -> dict[str, Any]:
    """Take the ceremony's state out of the session, saved at once so it is never used twice."""
    state = request.session.pop(key, None)
    request.session.save()
    if not isinstance(state, dict) or "challenge" not in state:
        raise PasskeyRefused(Reason.PASSKEY_REPLAYED)
    return state


def _reason_of(error: WebAuthnException) -> str:
    """The audit reason for py_webauthn's refusal (it tells them apart only in its message)."""
    text = str(error)
    if "challenge" in text or "sign count" in text:
        return Reason.PASSKEY_REPLAYED
    if "origin" in text or "RP ID" in text:
        return Reason.PASSKEY_WRONG_ORIGIN
    return Reason.PASSKEY_INVALID


# --- Adding a passkey ------------------------------------------------------------------------


def registration_options(*, request: HttpRequest, user: User) -> dict[str, Any]:
    """What navigator.credentials.create() needs; its challenge waits in the session."""
    options, state = _helper(request).register_begin(user=user)
    request.session[REGISTER_STATE_KEY] = state
    return dict(options)


def passkey_register(
    *, request: HttpRequest, user: User, answer: str, name: str
) -> WebAuthnCredential:
    """Check the browser's new credential and keep it; records mfa.device_added (kind passkey)."""
    state = _state_take(request, REGISTER_STATE_KEY)
    data = _answer(answer)
    helper = _helper(request)
    try:
        with transaction.atomic():
            device = helper.register_complete(user=user, state=state, data=data)
            device.name = (name or DEFAULT_PASSKEY_NAME)[:64]
            device.save(update_fields=["name"])
            event = event_record(
                event_type=EventType.MFA_DEVICE_ADDED,
                actor=user,
                details={"device_kind": KIND_PASSKEY, "device_name": device.name},
                request=request,
            )
            security_notice_queue(event=event)
    except WebAuthnException as error:
        raise PasskeyRefused(_reason_of(error)) from error
    except (KeyError, TypeError, ValueError) as error:
        raise PasskeyRefused(Reason.PASSKEY_INVALID) from error
    return device


# --- Checking a passkey ----------------------------------------------------------------------


def authentication_options(*, request: HttpRequest, user: User | None) -> dict[str, Any]:
    """What navigator.credentials.get() needs, for this user's passkeys or (None) any passkey.

    Without a user the passkey is the whole sign-in: it must verify its user (PIN, biometrics).
    """
    options, state = _helper(request).authenticate_begin(
        user=user, require_user_verification=user is None
    )
    request.session[AUTHENTICATE_STATE_KEY] = {**state, "user": user.pk if user else None}
    return dict(options)


@dataclass(frozen=True)
class PasskeyCheck:
    device: WebAuthnCredential
    user: User


def passkey_verify(*, request: HttpRequest, user: User | None, answer: str) -> PasskeyCheck:
    """Check a passkey's answer: for this user's sign-in, or (None) any active account's.

    Raises PasskeyRefused with the reason; the device's sign count is updated when accepted.
    """
    state = _state_take(request, AUTHENTICATE_STATE_KEY)
    data = _answer(answer)
    # The challenge was handed out for this sign-in (this user, or the passkey-only sign-in).
    if state.get("user") != (user.pk if user else None):
        raise PasskeyRefused(Reason.PASSKEY_REPLAYED)
    try:
        raw_id = base64url_to_bytes(data["rawId"])
    except (TypeError, ValueError):
        raise PasskeyRefused(Reason.PASSKEY_INVALID) from None
    device = (
        WebAuthnCredential.objects.select_related("user__membership__organization")
        .filter(credential_id_sha256=WebAuthnCredential.get_credential_id_sha256(raw_id))
        .first()
    )
    if device is None or not device.confirmed:
        raise PasskeyRefused(Reason.PASSKEY_UNKNOWN)
    owner = device.user
    if user is not None and owner.pk != user.pk:
        raise PasskeyRefused(Reason.PASSKEY_OTHER_USER, owner=owner)
    try:
        # Checks the signature, challenge, origin, RP ID and sign count, and saves the count.
        device = _helper(request).authenticate_complete(user=owner, state=state, data=data)
    except WebAuthnException as error:
        raise PasskeyRefused(_reason_of(error), owner=owner) from error
    except (KeyError, TypeError, ValueError) as error:
        raise PasskeyRefused(Reason.PASSKEY_INVALID, owner=owner) from error
    return PasskeyCheck(device=device, user=owner)


def passkey_failed_record(
    *, request: HttpRequest, user: User | None, refusal: PasskeyRefused
) -> None:
    """Record mfa.verification_failed with the reason (kept whatever the request does)."""
    event_record(
        event_type=EventType.MFA_VERIFICATION_FAILED,
        outcome=Outcome.FAILURE,
        reason=refusal.reason,
        actor=user if user is not None else refusal.owner,
        details={"device_kind": KIND_PASSKEY},
        request=request,
        durable=True,
    )
