"""Profile → Security, two-step verification: an authenticator app, backup codes, removal."""

from __future__ import annotations

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods
from django_otp import login as otp_login

from .. import mfa
from ..forms import PasswordConfirmForm, TotpEnrolForm
from ..http import AuthenticatedHttpRequest, see_other
from ..lockout import PURPOSE_MFA_DEVICE_REMOVE


# The page holds the new secret and its answer holds the backup codes: never cached.
@sensitive_post_parameters("code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_enrol(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    device = mfa.totp_setup_device(user=user)
    form = TotpEnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        confirmed = mfa.totp_device_confirm(
            user=user,
            device=device,
            code=form.cleaned_data["code"],
            name=form.cleaned_data["name"],
            request=request,
        )
        if confirmed:
            otp_login(request, device)
            missing = mfa.enrolment_missing(user)
            if missing is None:
                request.session.pop(mfa.ENROL_REQUIRED_SESSION_KEY, None)
            messages.success(request, f"“{device.name}” is set up for two-step sign-in.")
            if missing == mfa.ENROL_PASSKEY:
                # The app is kept, but the organization requires a passkey of this role.
                request.session[mfa.ENROL_REQUIRED_SESSION_KEY] = missing
                return see_other("accounts:passkey-add")
            if mfa.backup_device_of(user) is None:
                codes = mfa.backup_codes_generate(user=user, request=request)
                return backup_codes_shown_next(request, codes, first=True)
            return see_other("accounts:security")
        form.add_error(
            "code",
            "That code did not match. Check that your phone's clock is right, "
            "wait for the next code and try again.",
        )
    if form.errors:
        messages.error(request, "The authenticator app was not added: see below.")
    context = {
        "form": form,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(
            scale=4, dark="#1d2430", omitsize=False
        ),
        "manual_key": mfa.totp_manual_key(device),
        "enrol_required": request.session.get(mfa.ENROL_REQUIRED_SESSION_KEY, False),
        "passkey_required": mfa.passkey_required_for(user),
    }
    return render(request, "accounts/mfa_enrol.html", context, status=400 if form.errors else 200)


# New backup codes wait in the session for the one page that shows them after the redirect (never
# in the URL, a message or an event), so that reloading that page makes no new codes.
_CODES_ONCE_KEY = "accounts.backup_codes_once"


def backup_codes_shown_next(
    request: AuthenticatedHttpRequest, codes: list[str], *, first: bool
) -> HttpResponse:
    request.session[_CODES_ONCE_KEY] = {"codes": codes, "first": first}
    return see_other("accounts:mfa-backup-codes")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_backup_codes_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Ask, then make new backup codes (the earlier ones stop working); the GET of
    mfa_backup_codes after it shows them, once."""
    if not mfa.user_has_mfa(request.user):
        return HttpResponseBadRequest(
            "Set up an authenticator app or a passkey first: backup codes stand in for it "
            "when it is lost."
        )
    backup = mfa.backup_device_of(request.user)
    if request.method != "POST":
        context = {"codes_left": backup.token_set.count() if backup is not None else 0}
        return render(request, "accounts/mfa_backup_codes_new.html", context)
    codes = mfa.backup_codes_generate(user=request.user, request=request)
    if backup is not None:
        messages.success(request, "New backup codes made. Your earlier codes no longer work.")
    else:
        messages.success(request, "Backup codes made.")
    return backup_codes_shown_next(request, codes, first=False)


@never_cache
@login_required
@require_GET
def mfa_backup_codes(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The backup codes just made, shown once; without any, back to Security."""
    once = request.session.pop(_CODES_ONCE_KEY, None)
    if not once:
        messages.info(
            request,
            "Backup codes are shown only once, when they are made. Lost them? Make new ones.",
        )
        return redirect("accounts:security")
    formatted = [mfa.format_backup_code(c) for c in once["codes"]]
    download = "Activity Monitor backup codes for " + request.user.email + "\n\n"
    download += "\n".join(formatted) + "\n\nEach code works once.\n"
    return render(
        request,
        "accounts/mfa_backup_codes.html",
        {"codes": formatted, "download": download, "first": once["first"]},
    )


# Not atomic: a wrong password must be recorded (and counted) whatever happens next; the removal
# is one transaction of its own (mfa.device_remove).
@transaction.non_atomic_requests
@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def mfa_device_remove(request: AuthenticatedHttpRequest, kind: str, pk: int) -> HttpResponse:
    device = mfa.device_of_user(request.user, kind=kind, pk=pk)
    if device is None:
        raise Http404("No such device of yours.")
    form = PasswordConfirmForm(
        request.user, request.POST or None, request=request, purpose=PURPOSE_MFA_DEVICE_REMOVE
    )
    if request.method == "POST" and form.is_valid():
        names = mfa.device_remove(user=request.user, device=device, request=request)
        messages.success(request, "Removed: " + ", ".join(names) + ".")
        missing = mfa.enrolment_missing(request.user)
        if missing is not None:
            request.session[mfa.ENROL_REQUIRED_SESSION_KEY] = missing
            if missing == mfa.ENROL_PASSKEY:
                return see_other("accounts:passkey-add")
            return see_other("accounts:mfa-enrol")
        return see_other("accounts:security")
    if form.errors:
        messages.error(request, "Nothing was removed: see below.")
    return render(
        request,
        "accounts/mfa_device_remove.html",
        {"form": form, "device": device, "kind": mfa.device_kind(device)},
        status=400 if form.errors else 200,
    )
