"""Sign-in: the password, then (for a person with a second factor) the two-step code; sign-out."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.models import Device

from audit.models import Reason

from .. import mfa
from ..enforcement import sign_in_admitted, sign_in_refusal
from ..forms import SIGN_IN_REFUSED, SecondStepForm, SignInForm
from ..http import see_other
from ..lockout import login_failure_record
from ..models import User
from ..services import user_time_zone_set
from ..sessions import session_end_replaced
from ..throttling import throttled_response
from ..timezones import zone_valid


def safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url("accounts:profile")


def browser_zone(request: HttpRequest) -> str:
    """The time zone the sign-in form's script read from the browser, if it is a real one."""
    zone = request.POST.get("time_zone", "").strip()
    return zone if len(zone) <= 64 and zone_valid(zone) else ""


def after_sign_in(request: HttpRequest, user: User, next_url: str, zone: str) -> HttpResponse:
    """Send a member whose organization requires MFA, and who has none, to enrolment first.

    A person without a time zone gets the browser's, so the first page already shows it.
    """
    if zone and not user.time_zone:
        user_time_zone_set(user=user, time_zone=zone, request=request, only_if_unset=True)
    sign_in_admitted(user=user, request=request)
    missing = mfa.enrolment_missing(user)
    if missing == mfa.ENROL_PASSKEY:
        request.session[mfa.ENROL_REQUIRED_SESSION_KEY] = missing
        messages.warning(
            request,
            "Your organization requires a passkey for your role: an authenticator app alone "
            "is not enough. Add a passkey to continue.",
        )
        return see_other("accounts:passkey-add")
    if missing is not None:
        request.session[mfa.ENROL_REQUIRED_SESSION_KEY] = missing
        messages.warning(
            request,
            "Your organization requires two-step verification. Set up an authenticator app "
            "or a passkey to continue.",
        )
        return see_other("accounts:mfa-enrol")
    return see_other(next_url)


def second_step_passed(
    request: HttpRequest, pending: mfa.PendingSignIn, device: Device, method: str
) -> HttpResponse:
    """Sign in the pending user whose second factor was right (under the lockout lock), unless
    an access policy refuses them."""
    mfa.pending_clear(request)
    session_end_replaced(request=request)
    mfa.second_factor_verified_record(user=pending.user, device=device, request=request)
    refused = policy_refused(request, pending.user, method)
    if refused is not None:
        return refused
    request.auth_method = method  # type: ignore[attr-defined]
    login(request, pending.user)
    otp_login(request, device)
    return after_sign_in(request, pending.user, pending.next_url, pending.time_zone)


def policy_refused(request: HttpRequest, user: User, method: str) -> HttpResponse | None:
    """Refuse, and record, a sign-in whose password and second factor were right but an access
    policy forbids (accounts.enforcement); None if the policy admits it. Not counted towards
    the lockout: it says nothing about the secret."""
    refusal = sign_in_refusal(user=user, request=request)
    if refusal is None:
        return None
    login_failure_record(
        user=user,
        reason=Reason.POLICY_DENIED,
        request=request,
        details={"method": method, "rule": refusal.rule, **refusal.details},
    )
    return sign_in_again(request, refusal.message, status=403)


def _signed_in(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    """Start the session of a user whose password was right (the old session ends first)."""
    zone = browser_zone(request)
    session_end_replaced(request=request)
    if mfa.user_has_any_device(user):
        # Signed in only after the second step: for now the session merely remembers that
        # this user gave the right password.
        mfa.pending_start(request=request, user=user, next_url=next_url, time_zone=zone)
        return see_other("accounts:mfa-verify")
    refused = policy_refused(request, user, "password")
    if refused is not None:
        return refused
    login(request, user)
    return after_sign_in(request, user, next_url, zone)


# Not atomic: a refused sign-in must be committed whatever happens to the rest of the request.
# The successful one is written while the account's lockout lock is held (accounts.lockout), in
# the lock's transaction.
@transaction.non_atomic_requests
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        next_url = safe_next(request)
        form = SignInForm(
            request,
            data=request.POST,
            then=lambda user: _signed_in(request, user, next_url),
        )
        if form.is_valid() and form.outcome is not None:
            outcome: HttpResponse = form.outcome  # what _signed_in returned
            return outcome
        if form.throttled is not None:
            return throttled_response(
                render(
                    request,
                    "accounts/sign_in.html",
                    {"form": form, "next": request.GET.get("next", "")},
                ),
                form.throttled,
            )
    else:
        form = SignInForm(request)
    return render(
        request, "accounts/sign_in.html", {"form": form, "next": request.GET.get("next", "")}
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You have signed out.")
    return see_other("accounts:login")


SECOND_STEP_REFUSED = (
    "That code did not work. Codes from the app change every 30 seconds and each works once; "
    "each backup code works once."
)


SECOND_STEP_THROTTLED = "Too many wrong codes in a row. Wait a few seconds, then try again."


NO_SIGN_IN_PENDING = (
    "Your sign-in was not started here, took too long or is no longer valid. "
    "Sign in again with your email and password."
)


PASSKEY_REQUIRED = (
    "Your organization requires your passkey for this step: codes are not accepted. "
    "Lost your passkey? Ask an administrator to reset your two-step verification."
)


def sign_in_again(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """The sign-in page with a refusal, for a second step that cannot go on."""
    context = {"form": SignInForm(request), "next": "", "refusal": message}
    return render(request, "accounts/sign_in.html", context, status=status)


# Not atomic, like sign_in: failed codes, throttling and lockouts must be committed whatever
# happens to the rest of the request. The successful sign-in is written while the account's
# lockout lock is held, in the lock's transaction.
@transaction.non_atomic_requests
@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    pending = mfa.pending_load(request)
    if pending is None:
        mfa.pending_clear(request)
        return sign_in_again(request, NO_SIGN_IN_PENDING, status=400)
    user = pending.user
    form = SecondStepForm(request.POST or None)
    # A member who must use a passkey and has one: codes are phishable, so they are refused.
    passkey_only = mfa.passkey_required_for(user) and mfa.user_has_passkey(user)
    if request.method == "POST" and form.is_valid() and passkey_only:
        mfa.second_factor_refused_record(
            user=user,
            code=form.cleaned_data["code"],
            reason=Reason.PASSKEY_REQUIRED,
            request=request,
        )
        form.add_error(None, PASSKEY_REQUIRED)
    elif request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]

        def signed_in(device: Device, method: str) -> HttpResponse:
            return second_step_passed(request, pending, device, method)

        result = mfa.second_factor_attempt(
            user=user, code=code, request=request, then=signed_in, source=pending.source
        )
        if result.value is not None:
            signed_in_response: HttpResponse = result.value  # what signed_in returned
            return signed_in_response
        if result.wrong or result.throttled:
            mfa.second_factor_failed_record(
                user=user, code=code, throttled=result.throttled, request=request
            )
        if result.locked:
            mfa.pending_clear(request)
            return sign_in_again(request, SIGN_IN_REFUSED, status=403)
        form.add_error(None, SECOND_STEP_THROTTLED if result.throttled else SECOND_STEP_REFUSED)
    return second_step_page(request, pending, form=form, status=400 if form.errors else 200)


def second_step_page(
    request: HttpRequest,
    pending: mfa.PendingSignIn,
    *,
    form: SecondStepForm | None = None,
    passkey_error: str = "",
    status: int = 200,
) -> HttpResponse:
    user = pending.user
    context = {
        "form": form or SecondStepForm(),
        "email": user.email,
        "has_passkey": mfa.user_has_passkey(user),
        "has_code": bool(mfa.totp_devices_of(user)) or mfa.backup_device_of(user) is not None,
        "passkey_only": mfa.passkey_required_for(user) and mfa.user_has_passkey(user),
        "passkey_error": passkey_error,
    }
    return render(request, "accounts/mfa_verify.html", context, status=status)
