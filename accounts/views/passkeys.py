"""Passkeys: adding one (Profile → Security), and signing in with one, as the second step after
the password or as the whole sign-in.

Each ceremony is two requests: a POST that answers the options for navigator.credentials as
JSON (static/js/passkeys.js asks for them; its challenge waits in the session), then the form
POST that carries the browser's answer and is answered like every form, with a redirect (or the
page again with the refusal and a 4xx).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from audit.models import Reason

from .. import mfa, passkeys
from ..forms import SIGN_IN_REFUSED, PasskeyAddForm, PasskeyAnswerForm
from ..http import AuthenticatedHttpRequest, see_other
from ..lockout import FACTOR_MFA, credential_attempt, login_failure_record
from ..sessions import session_end_replaced
from ..throttling import (
    Purpose,
    sign_in_throttled_message,
    throttle_attempt,
    throttle_refund,
    throttled_response,
)
from .mfa import backup_codes_shown_next
from .sign_in import (
    NO_SIGN_IN_PENDING,
    after_sign_in,
    browser_zone,
    policy_refused,
    safe_next,
    second_step_page,
    second_step_passed,
    sign_in_again,
)


def _answer_error(form: PasskeyAnswerForm) -> str:
    return " ".join(str(error) for error in form.errors.get("credential", []))


def _options(options: dict[str, object]) -> JsonResponse:
    return JsonResponse(options, headers={"Cache-Control": "no-store"})


# --- Adding a passkey ------------------------------------------------------------------------


@login_required
@require_POST
def passkey_add_options(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _options(passkeys.registration_options(request=request, user=request.user))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def passkey_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    form = PasskeyAddForm(request.POST if request.method == "POST" else None)
    refusal = ""
    if request.method == "POST" and form.is_valid():
        try:
            device = passkeys.passkey_register(
                request=request,
                user=user,
                answer=form.cleaned_data["credential"],
                name=form.cleaned_data["name"],
            )
        except passkeys.PasskeyRefused as refused:
            refusal = refused.message
        else:
            otp_login(request, device)
            if mfa.enrolment_missing(user) is None:
                request.session.pop(mfa.ENROL_REQUIRED_SESSION_KEY, None)
            messages.success(request, f"“{device.name}” is set up: sign in with it from now on.")
            if mfa.backup_device_of(user) is None:
                codes = mfa.backup_codes_generate(user=user, request=request)
                return backup_codes_shown_next(request, codes, first=True)
            return see_other("accounts:security")
    if form.errors or refusal:
        messages.error(request, "The passkey was not added: see below.")
    context = {
        "form": form,
        "refusal": refusal,
        "enrol_required": request.session.get(mfa.ENROL_REQUIRED_SESSION_KEY),
    }
    status = 400 if form.errors or refusal else 200
    return render(request, "accounts/passkey_add.html", context, status=status)


# --- The second step of a sign-in ------------------------------------------------------------


@csrf_protect
@never_cache
@require_POST
def passkey_verify_options(request: HttpRequest) -> HttpResponse:
    pending = mfa.pending_load(request)
    if pending is None:
        return JsonResponse({"error": NO_SIGN_IN_PENDING}, status=400)
    return _options(passkeys.authentication_options(request=request, user=pending.user))


# Not atomic, like mfa_verify: a refusal must be committed whatever happens to the rest of the
# request; the sign-in is written while the account's lockout lock is held.
@transaction.non_atomic_requests
@csrf_protect
@never_cache
@require_POST
def passkey_verify(request: HttpRequest) -> HttpResponse:
    pending = mfa.pending_load(request)
    if pending is None:
        mfa.pending_clear(request)
        return sign_in_again(request, NO_SIGN_IN_PENDING, status=400)
    form = PasskeyAnswerForm(request.POST)
    if not form.is_valid():
        return second_step_page(request, pending, passkey_error=_answer_error(form), status=400)
    user = pending.user
    try:
        check = passkeys.passkey_verify(
            request=request, user=user, answer=form.cleaned_data["credential"]
        )
    except passkeys.PasskeyRefused as refused:
        passkeys.passkey_failed_record(request=request, user=user, refusal=refused)
        return second_step_page(request, pending, passkey_error=refused.message, status=400)
    # Through the lockout like a code: a locked account is refused; nothing here is a guess, so
    # nothing is counted.
    attempt = credential_attempt(
        user=user,
        factor=FACTOR_MFA,
        check=lambda: True,
        request=request,
        then=lambda: second_step_passed(
            request, pending, check.device, mfa.METHOD_PASSWORD_PASSKEY
        ),
        source=pending.source,
    )
    if attempt.locked:
        mfa.pending_clear(request)
        return sign_in_again(request, SIGN_IN_REFUSED, status=403)
    response: HttpResponse = attempt.value
    return response


# --- The passkey as the whole sign-in --------------------------------------------------------


@csrf_protect
@never_cache
@require_POST
def passkey_sign_in_options(request: HttpRequest) -> HttpResponse:
    return _options(passkeys.authentication_options(request=request, user=None))


@transaction.non_atomic_requests
@csrf_protect
@never_cache
@require_POST
def passkey_sign_in(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request)
    # Charged to the address like a password attempt (nobody is known yet): a flood of answers
    # is refused before any is checked or recorded. Only refusals use the bucket up.
    decision = throttle_attempt(request=request, purpose=Purpose.SIGN_IN)
    if not decision.allowed:
        refusal = sign_in_throttled_message(decision.retry_after)
        return throttled_response(sign_in_again(request, refusal, status=429), decision)
    form = PasskeyAnswerForm(request.POST)
    if not form.is_valid():
        return sign_in_again(request, _answer_error(form), status=400)
    try:
        check = passkeys.passkey_verify(
            request=request, user=None, answer=form.cleaned_data["credential"]
        )
    except passkeys.PasskeyRefused as refused:
        passkeys.passkey_failed_record(request=request, user=None, refusal=refused)
        return sign_in_again(request, refused.message, status=400)
    throttle_refund(decision=decision)
    user = mfa.user_for_sign_in(check.user.pk)
    if user is None or not user.is_active:
        login_failure_record(user=check.user, reason=Reason.INACTIVE_ACCOUNT, request=request)
        return sign_in_again(request, SIGN_IN_REFUSED, status=403)
    zone = browser_zone(request)

    def signed_in() -> HttpResponse:
        mfa.pending_clear(request)
        session_end_replaced(request=request)
        mfa.second_factor_verified_record(user=user, device=check.device, request=request)
        refused = policy_refused(request, user, mfa.METHOD_PASSKEY)
        if refused is not None:
            return refused
        request.auth_method = mfa.METHOD_PASSKEY  # type: ignore[attr-defined]
        login(request, user)
        otp_login(request, check.device)
        return after_sign_in(request, user, next_url, zone)

    attempt = credential_attempt(
        user=user, factor=FACTOR_MFA, check=lambda: True, request=request, then=signed_in
    )
    if attempt.locked:
        return sign_in_again(request, SIGN_IN_REFUSED, status=403)
    response: HttpResponse = attempt.value
    return response
