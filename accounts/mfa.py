"""Second factors: enrolment, backup codes, removal, and the two-step sign-in's pending state.

Devices are django-otp's: a TOTPDevice per authenticator app, a WebAuthnCredential per passkey
(django-otp-webauthn; the ceremonies are in accounts.passkeys) and one StaticDevice holding the
single-use backup codes. Every change writes its audit event (device kind and name, never the
secret or a code) and queues the user's security email on commit.
"""

from __future__ import annotations

import re
from base64 import b32encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core import signing
from django.db import transaction
from django.utils.crypto import constant_time_compare
from django_otp import verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from audit.models import EventType, Outcome, Reason
from audit.services import event_record

from .familiarity import Source, attempt_source
from .lockout import FACTOR_MFA, Verdict, credential_attempt
from .models import User
from .notifications import security_notice_queue

if TYPE_CHECKING:
    from django.http import HttpRequest

BACKUP_CODE_COUNT = 10
BACKUP_DEVICE_NAME = "Backup codes"
DEFAULT_TOTP_NAME = "Authenticator app"

# Method names stored in login.succeeded details (the brief's list).
METHOD_TOTP = "password+totp"
METHOD_BACKUP_CODE = "backup_code"
METHOD_PASSWORD_PASSKEY = "password+passkey"  # noqa: S105 - a method's name
METHOD_PASSKEY = "passkey"  # the passkey is the whole sign-in

KIND_TOTP = "totp"
KIND_BACKUP = "backup_codes"
KIND_PASSKEY = "passkey"
# Where the session's required enrolment leads (ENROL_REQUIRED_SESSION_KEY's value).
ENROL_PASSKEY = "passkey"
ENROL_ANY = "any"

# The two-step sign-in keeps who passed the password step in the session, signed and short-lived.
PENDING_SESSION_KEY = "_mfa_pending"
PENDING_SALT = "accounts.mfa.pending"
PENDING_MAX_AGE = 5 * 60
# Set after the password step when the organization requires MFA and the user has none.
ENROL_REQUIRED_SESSION_KEY = "_mfa_enrol_required"

TOTP_CODE = re.compile(r"^\d{6}$")
BACKUP_CODE = re.compile(r"^[a-z2-7]{8}$")


def device_kind(device: Device) -> str:
    if isinstance(device, WebAuthnCredential):
        return KIND_PASSKEY
    return KIND_BACKUP if isinstance(device, StaticDevice) else KIND_TOTP


def _device_details(device: Device) -> dict[str, str]:
    return {"device_kind": device_kind(device), "device_name": device.name}


def normalise_code(raw: str) -> str:
    """Drop the spaces and dashes people type inside codes; backup codes are case-blind."""
    return re.sub(r"[\s-]", "", raw or "").lower()


def code_kind(code: str) -> str | None:
    """Which kind of device a normalised code is for, or None if it is neither shape."""
    if TOTP_CODE.match(code):
        return KIND_TOTP
    if BACKUP_CODE.match(code):
        return KIND_BACKUP
    return None


def format_backup_code(token: str) -> str:
    return f"{token[:4]}-{token[4:]}"


def totp_manual_key(device: TOTPDevice) -> str:
    """The base32 key people type into an authenticator app, in groups of four."""
    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


# --- Reads -----------------------------------------------------------------------------------


def totp_devices_of(user: User, *, confirmed: bool | None = True) -> list[TOTPDevice]:
    queryset = TOTPDevice.objects.filter(user=user).order_by("id")
    if confirmed is not None:
        queryset = queryset.filter(confirmed=confirmed)
    return list(queryset)


def backup_device_of(user: User) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def passkeys_of(user: User) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("id"))


def user_has_passkey(user: User) -> bool:
    return bool(WebAuthnCredential.objects.filter(user=user, confirmed=True).exists())


def user_has_mfa(user: User) -> bool:
    """A user has MFA with a confirmed authenticator app or passkey (backup codes alone do not)."""
    confirmed = {"user": user, "confirmed": True}
    return bool(
        TOTPDevice.objects.filter(**confirmed)
        .values("pk")
        .union(WebAuthnCredential.objects.filter(**confirmed).values("pk"))
        .exists()
    )


def user_has_any_device(user: User) -> bool:
    """Whether the sign-in needs a second step: an authenticator app, a passkey or backup codes."""
    confirmed = {"user": user, "confirmed": True}
    return bool(
        TOTPDevice.objects.filter(**confirmed)
        .values("pk")
        .union(
            StaticDevice.objects.filter(**confirmed).values("pk"),
            WebAuthnCredential.objects.filter(**confirmed).values("pk"),
        )
        .exists()
    )


def user_devices(user: User) -> list[Device]:
    """Every confirmed device of the user: passkeys, authenticator apps, then backup codes."""
    devices: list[Device] = [*passkeys_of(user), *totp_devices_of(user)]
    backup = backup_device_of(user)
    if backup is not None:
        devices.append(backup)
    return devices


def device_of_user(user: User, *, kind: str, pk: int) -> Device | None:
    """The user's own confirmed device of that kind and id, or None (someone else's is None)."""
    models: dict[str, type[Device]] = {
        KIND_BACKUP: StaticDevice,
        KIND_TOTP: TOTPDevice,
        KIND_PASSKEY: WebAuthnCredential,
    }
    model = models.get(kind)
    if model is None:
        return None
    return model.objects.filter(user=user, pk=pk, confirmed=True).first()


def mfa_required_for(user: User) -> bool:
    membership = getattr(user, "membership", None)
    return membership is not None and membership.organization.mfa_required_for(membership.role)


def passkey_required_for(user: User) -> bool:
    """Whether the user's organization demands a phishing-resistant method (a passkey) of them."""
    membership = getattr(user, "membership", None)
    return membership is not None and membership.organization.passkey_required_for(membership.role)


def enrolment_missing(user: User) -> str | None:
    """What the organization requires of the user and they have not set up, or None.

    ENROL_PASSKEY when a passkey is required and missing (an authenticator app does not
    satisfy it), ENROL_ANY when a second factor is required and there is none.
    """
    if passkey_required_for(user) and not user_has_passkey(user):
        return ENROL_PASSKEY
    if mfa_required_for(user) and not user_has_mfa(user):
        return ENROL_ANY
    return None


# --- Enrolment and devices -------------------------------------------------------------------


def totp_setup_device(*, user: User) -> TOTPDevice:
    """The user's enrolment in progress: an unconfirmed device, reused until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEFAULT_TOTP_NAME, confirmed=False)
    return device


def totp_device_confirm(
    *, user: User, device: TOTPDevice, code: str, name: str, request: HttpRequest | None
) -> bool:
    """Confirm an enrolment with its first code; records mfa.device_added. False if wrong."""
    if device.user_id != user.pk or device.confirmed:
        return False
    if not verify_token(user, device.persistent_id, code):
        return False
    with transaction.atomic():
        device.refresh_from_db()
        device.name = name or DEFAULT_TOTP_NAME
        device.confirmed = True
        device.save(update_fields=["name", "confirmed"])
        event = event_record(
            event_type=EventType.MFA_DEVICE_ADDED,
            actor=user,
            details=_device_details(device),
            request=request,
        )
        security_notice_queue(event=event)
    return True


def backup_codes_generate(*, user: User, request: HttpRequest | None) -> list[str]:
    """Replace the user's backup codes with ten new ones and return them (shown once)."""
    with transaction.atomic():
        device = backup_device_of(user)
        if device is None:
            device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME)
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
        event = event_record(
            event_type=EventType.MFA_BACKUP_CODES_GENERATED,
            actor=user,
            details={**_device_details(device), "count": BACKUP_CODE_COUNT},
            request=request,
        )
        security_notice_queue(event=event)
    return codes


def device_remove(*, user: User, device: Device, request: HttpRequest | None) -> list[str]:
    """Remove one of the user's devices; the last app or passkey takes the backup codes along.

    Returns the names of the removed devices.
    """
    removed: list[Device] = [device]
    with transaction.atomic():
        if isinstance(device, TOTPDevice | WebAuthnCredential):
            apps = TOTPDevice.objects.filter(user=user, confirmed=True)
            keys = WebAuthnCredential.objects.filter(user=user, confirmed=True)
            if isinstance(device, TOTPDevice):
                apps = apps.exclude(pk=device.pk)
            else:
                keys = keys.exclude(pk=device.pk)
            backup = backup_device_of(user)
            if not apps.exists() and not keys.exists() and backup is not None:
                removed.append(backup)
        for item in removed:
            details = _device_details(item)
            item.delete()
            event = event_record(
                event_type=EventType.MFA_DEVICE_REMOVED,
                actor=user,
                details=details,
                request=request,
            )
            security_notice_queue(event=event)
    return [item.name for item in removed]


def mfa_reset_by_admin(*, admin: User, user: User, request: HttpRequest | None) -> int:
    """Remove every device of a member (lost phone); returns how many devices there were."""
    with transaction.atomic():
        devices = [
            *TOTPDevice.objects.filter(user=user).select_for_update(),
            *StaticDevice.objects.filter(user=user).select_for_update(),
            *WebAuthnCredential.objects.filter(user=user).select_for_update(),
        ]
        confirmed = [_device_details(d) for d in devices if d.confirmed]
        for device in devices:
            device.delete()
        event = event_record(
            event_type=EventType.MFA_RESET_BY_ADMIN,
            actor=admin,
            target_user=user,
            details={"devices": confirmed},
            request=request,
        )
        security_notice_queue(event=event)
    return len(confirmed)


# --- Two-step sign-in ------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingSignIn:
    user: User
    next_url: str
    # The password step's source (accounts.familiarity): the code's failures count in its class.
    source: Source = Source.UNFAMILIAR
    # The browser's time zone from the password step, stored once the sign-in completes.
    time_zone: str = ""


def pending_start(*, request: HttpRequest, user: User, next_url: str, time_zone: str = "") -> None:
    """Remember, for a few minutes, that this user passed the password step in this session."""
    # A new key now, as login() would: a session id planted before the password step is of no
    # use for the code step.
    request.session.cycle_key()
    # The source the password step decided for this request (asked again, it is not recounted).
    source = attempt_source(user=user, request=request)
    request.session[PENDING_SESSION_KEY] = signing.dumps(
        # The password hash's HMAC ends the pending sign-in if the password changes meanwhile.
        {
            "u": user.pk,
            "h": user.get_session_auth_hash(),
            "n": next_url,
            "s": str(source),
            "z": time_zone,
        },
        salt=PENDING_SALT,
    )


def pending_load(request: HttpRequest) -> PendingSignIn | None:
    """The pending sign-in of this session, or None if there is none, it expired or was altered."""
    raw = request.session.get(PENDING_SESSION_KEY)
    if not raw or not isinstance(raw, str):
        return None
    try:
        data = signing.loads(raw, salt=PENDING_SALT, max_age=PENDING_MAX_AGE)
        user_id, auth_hash, next_url = int(data["u"]), str(data["h"]), str(data["n"])
        # A marker signed before sources were carried counts as unfamiliar.
        source = Source(data.get("s", Source.UNFAMILIAR))
        time_zone = str(data.get("z", ""))
    except (signing.BadSignature, KeyError, TypeError, ValueError, AttributeError):
        return None
    user = user_for_sign_in(user_id)
    if user is None or not user.is_active:
        return None
    if not constant_time_compare(auth_hash, user.get_session_auth_hash()):
        return None
    return PendingSignIn(user=user, next_url=next_url, source=source, time_zone=time_zone)


def user_for_sign_in(user_id: int) -> User | None:
    """The user with what a sign-in reads (organization, lockout state) in one query."""
    return (
        User.objects.select_related("membership__organization", "lockout_state")
        .filter(pk=user_id)
        .first()
    )


def pending_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)


@dataclass(frozen=True)
class SecondFactorResult:
    device: Device | None
    method: str = ""
    throttled: bool = False


def second_factor_verify(*, user: User, code: str) -> SecondFactorResult:
    """Check a normalised code against the user's devices of its kind (throttled by django-otp).

    A TOTP code is only accepted once and only at a later time step than the last one used; a
    backup code is deleted when used.
    """
    kind = code_kind(code)
    candidates: list[Device]
    if kind == KIND_TOTP:
        candidates, method = list(totp_devices_of(user)), METHOD_TOTP
    elif kind == KIND_BACKUP:
        backup = backup_device_of(user)
        candidates, method = ([backup] if backup else []), METHOD_BACKUP_CODE
    else:
        return SecondFactorResult(device=None)
    throttled = checked = False
    for device in candidates:
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            throttled = True
            continue
        checked = True
        verified = verify_token(user, device.persistent_id, code)
        if verified is not None:
            return SecondFactorResult(device=verified, method=method)
    # Throttled only if no device looked at the code: a code one device refused is a wrong code.
    return SecondFactorResult(device=None, throttled=throttled and not checked)


@dataclass(frozen=True)
class SecondFactorAttempt:
    wrong: bool = False  # checked and wrong: recorded as login.failed and counted
    throttled: bool = False  # django-otp's back-off refused to look: not counted
    locked: bool = False  # the account is locked: refused unchecked, or this code locked it
    value: Any = None  # what `then` returned for a right code


def second_factor_attempt(
    *,
    user: User,
    code: str,
    request: HttpRequest | None,
    then: Callable[[Device, str], Any],
    source: Source,
) -> SecondFactorAttempt:
    """Check a code of the two-step sign-in under the account's lockout lock.

    Through accounts.lockout.credential_attempt, like every password check: refused unchecked
    while locked for `source` (the password step's), a wrong code recorded and counted in its
    class; `then(device, method)` runs for a right code while the lock is held.
    """
    results: list[SecondFactorResult] = []

    def check() -> bool | None:
        result = second_factor_verify(user=user, code=code)
        results.append(result)
        return None if result.throttled else result.device is not None

    def passed() -> Any:
        [result] = results
        return then(result.device, result.method)

    attempt = credential_attempt(
        user=user, factor=FACTOR_MFA, check=check, request=request, then=passed, source=source
    )
    return SecondFactorAttempt(
        wrong=attempt.verdict is Verdict.WRONG,
        throttled=attempt.verdict is Verdict.UNCHECKED,
        locked=attempt.locked,
        value=attempt.value,
    )


def second_factor_failed_record(
    *, user: User, code: str, throttled: bool, request: HttpRequest
) -> None:
    """Record mfa.verification_failed (kept whatever the request does); never the code itself."""
    event_record(
        event_type=EventType.MFA_VERIFICATION_FAILED,
        outcome=Outcome.FAILURE,
        reason="throttled" if throttled else Reason.MFA_FAILED,
        actor=user,
        details={"device_kind": code_kind(code) or "unknown"},
        request=request,
        durable=True,
    )


def second_factor_verified_record(*, user: User, device: Device, request: HttpRequest) -> None:
    event_record(
        event_type=EventType.MFA_VERIFIED,
        actor=user,
        details=_device_details(device),
        request=request,
    )


def second_factor_refused_record(
    *, user: User, code: str, reason: str, request: HttpRequest
) -> None:
    """Record mfa.verification_failed for a code refused unchecked (the organization's policy)."""
    event_record(
        event_type=EventType.MFA_VERIFICATION_FAILED,
        outcome=Outcome.FAILURE,
        reason=reason,
        actor=user,
        details={"device_kind": code_kind(code) or "unknown"},
        request=request,
        durable=True,
    )
