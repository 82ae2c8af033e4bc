"""Sign-in, sign-out, password and profile pages."""

from __future__ import annotations

from typing import Any

import segno
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect
from django_otp import login as otp_login
from django_otp.models import Device

from audit.context import SESSION_HASH_KEY
from audit.models import Reason

from . import mfa
from .access import Capability, require
from .forms import (
    SIGN_IN_REFUSED,
    MemberRoleForm,
    MfaPolicyForm,
    PasswordChangeForm,
    PasswordConfirmForm,
    SecondStepForm,
    SignInForm,
    TotpEnrolForm,
)
from .lockout import PURPOSE_MFA_DEVICE_REMOVE
from .models import Membership, Role, SessionEndReason, User
from .selectors import (
    member_of,
    members_of,
    membership_of,
    session_open_of,
    sessions_open_of,
)
from .services import (
    LastAdministratorError,
    lockout_release,
    member_role_change,
    organization_mfa_policy_update,
    password_changed_record,
    password_reset_completed_record,
    password_reset_failed_record,
    password_reset_requested_record,
    session_end_replaced,
    sessions_end,
)


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url("accounts:profile")


def _after_sign_in(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    """Send a member whose organization requires MFA, and who has none, to enrolment first."""
    if mfa.mfa_required_for(user) and not mfa.user_has_mfa(user):
        request.session[mfa.ENROL_REQUIRED_SESSION_KEY] = True
        messages.warning(
            request,
            "Your organization requires two-step verification. Set up an authenticator app "
            "to continue.",
        )
        return redirect("accounts:mfa-enrol")
    return HttpResponseRedirect(next_url)


def _signed_in(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    """Start the session of a user whose password was right (the old session ends first)."""
    session_end_replaced(request=request)
    if mfa.user_has_any_device(user):
        # Signed in only after the second step: for now the session merely remembers that
        # this user gave the right password.
        mfa.pending_start(request=request, user=user, next_url=next_url)
        return redirect("accounts:mfa-verify")
    login(request, user)
    return _after_sign_in(request, user, next_url)


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
        next_url = _safe_next(request)
        form = SignInForm(
            request,
            data=request.POST,
            then=lambda user: _signed_in(request, user, next_url),
        )
        if form.is_valid() and form.outcome is not None:
            return form.outcome
    else:
        form = SignInForm(request)
    return render(
        request, "accounts/sign_in.html", {"form": form, "next": request.GET.get("next", "")}
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You have signed out.")
    return redirect("accounts:login")


@login_required
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/profile.html", {"membership": membership_of(request.user)})


@login_required
@require_GET
def security_settings(request: HttpRequest) -> HttpResponse:
    require(request, Capability.VIEW_SECURITY_SETTINGS)
    return render(
        request, "accounts/security_settings.html", {"membership": membership_of(request.user)}
    )


# Not atomic: a wrong old password must be recorded (and counted) whatever happens next.
@transaction.non_atomic_requests
@sensitive_post_parameters()
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            update_session_auth_hash(request, user)
            password_changed_record(request=request, user=user)
        messages.success(request, "Your password was changed. Your other sessions were signed out.")
        return redirect("accounts:profile")
    return render(request, "accounts/password_change.html", {"form": form})


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password-reset-sent")

    def form_valid(self, form: Any) -> HttpResponse:
        email = form.cleaned_data["email"]
        users = list(form.get_users(email))
        # The requester sees the same page whether or not the address is known.
        password_reset_requested_record(request=self.request, email=email, users=users)
        return super().form_valid(form)


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password-reset-done")

    def dispatch(self, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().dispatch(*args, **kwargs)
        # Django redirects a good link to its set-password URL first; only a page that renders
        # "invalid link" is a refusal.
        if not self.validlink and response.status_code == 200:
            password_reset_failed_record(
                request=self.request, user=self.user, reason=Reason.INVALID_TOKEN
            )
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        password_reset_failed_record(
            request=self.request, user=self.user, reason=Reason.PASSWORD_REJECTED
        )
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            password_reset_completed_record(request=self.request, user=form.user)
        return response


# --- Two-step sign-in ------------------------------------------------------------------------

SECOND_STEP_REFUSED = (
    "That code did not work. Codes from the app change every 30 seconds and each works once; "
    "each backup code works once."
)
SECOND_STEP_THROTTLED = "Too many wrong codes in a row. Wait a few seconds, then try again."
NO_SIGN_IN_PENDING = (
    "Your sign-in was not started here, took too long or is no longer valid. "
    "Sign in again with your email and password."
)


def _sign_in_again(request: HttpRequest, message: str, status: int) -> HttpResponse:
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
        return _sign_in_again(request, NO_SIGN_IN_PENDING, status=400)
    user = pending.user
    form = SecondStepForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]

        def signed_in(device: Device, method: str) -> HttpResponse:
            mfa.pending_clear(request)
            session_end_replaced(request=request)
            mfa.second_factor_verified_record(user=user, device=device, request=request)
            request.auth_method = method  # type: ignore[attr-defined]
            login(request, user)
            otp_login(request, device)
            return _after_sign_in(request, user, pending.next_url)

        result = mfa.second_factor_attempt(user=user, code=code, request=request, then=signed_in)
        if result.value is not None:
            return result.value
        if result.wrong or result.throttled:
            mfa.second_factor_failed_record(
                user=user, code=code, throttled=result.throttled, request=request
            )
        if result.locked:
            mfa.pending_clear(request)
            return _sign_in_again(request, SIGN_IN_REFUSED, status=403)
        form.add_error(None, SECOND_STEP_THROTTLED if result.throttled else SECOND_STEP_REFUSED)
    status = 400 if form.errors else 200
    return render(
        request, "accounts/mfa_verify.html", {"form": form, "email": user.email}, status=status
    )


# --- Profile → Security ----------------------------------------------------------------------


def _security_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    backup = mfa.backup_device_of(user)
    return {
        "totp_devices": mfa.totp_devices_of(user),
        "backup_device": backup,
        "backup_codes_left": backup.token_set.count() if backup is not None else 0,
        "mfa_required": mfa.mfa_required_for(user),
        "sessions": list(sessions_open_of(user)),
        "current_session_hash": request.session.get(SESSION_HASH_KEY, ""),
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
def security(request: HttpRequest) -> HttpResponse:
    template = "accounts/security.html"
    if request.htmx:
        template += "#sessions"
    return render(request, template, _security_context(request))


# The page holds the new secret and its answer holds the backup codes: never cached.
@sensitive_post_parameters("code")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_enrol(request: HttpRequest) -> HttpResponse:
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
            request.session.pop(mfa.ENROL_REQUIRED_SESSION_KEY, None)
            if mfa.backup_device_of(user) is None:
                codes = mfa.backup_codes_generate(user=user, request=request)
                return _backup_codes_page(request, codes, first=True)
            messages.success(request, f"“{device.name}” is set up for two-step sign-in.")
            return redirect("accounts:security")
        form.add_error(
            "code",
            "That code did not match. Check that your phone's clock is right, "
            "wait for the next code and try again.",
        )
    context = {
        "form": form,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(
            scale=4, dark="#1d2430", omitsize=False
        ),
        "manual_key": mfa.totp_manual_key(device),
        "enrol_required": request.session.get(mfa.ENROL_REQUIRED_SESSION_KEY, False),
    }
    return render(request, "accounts/mfa_enrol.html", context, status=400 if form.errors else 200)


def _backup_codes_page(request: HttpRequest, codes: list[str], *, first: bool) -> HttpResponse:
    formatted = [mfa.format_backup_code(c) for c in codes]
    download = "Activity Monitor backup codes for " + request.user.email + "\n\n"
    download += "\n".join(formatted) + "\n\nEach code works once.\n"
    return render(
        request,
        "accounts/mfa_backup_codes.html",
        {"codes": formatted, "download": download, "first": first},
    )


@never_cache
@login_required
@require_POST
def mfa_backup_codes(request: HttpRequest) -> HttpResponse:
    if not mfa.user_has_mfa(request.user):
        return HttpResponseBadRequest(
            "Set up an authenticator app first: backup codes stand in for it when it is lost."
        )
    codes = mfa.backup_codes_generate(user=request.user, request=request)
    return _backup_codes_page(request, codes, first=False)


# Not atomic: a wrong password must be recorded (and counted) whatever happens next; the removal
# is one transaction of its own (mfa.device_remove).
@transaction.non_atomic_requests
@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def mfa_device_remove(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    device = mfa.device_of_user(request.user, kind=kind, pk=pk)
    if device is None:
        raise Http404("No such device of yours.")
    form = PasswordConfirmForm(
        request.user, request.POST or None, request=request, purpose=PURPOSE_MFA_DEVICE_REMOVE
    )
    if request.method == "POST" and form.is_valid():
        names = mfa.device_remove(user=request.user, device=device, request=request)
        messages.success(request, "Removed: " + ", ".join(names) + ".")
        if mfa.mfa_required_for(request.user) and not mfa.user_has_mfa(request.user):
            request.session[mfa.ENROL_REQUIRED_SESSION_KEY] = True
            return redirect("accounts:mfa-enrol")
        return redirect("accounts:security")
    return render(
        request,
        "accounts/mfa_device_remove.html",
        {"form": form, "device": device, "kind": mfa.device_kind(device)},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
@vary_on_headers("HX-Request")
def session_end(request: HttpRequest, session_hash: str) -> HttpResponse:
    tracked = session_open_of(request.user, session_hash)
    if tracked is None:
        raise Http404("No such session of yours.")
    if session_hash == request.session.get(SESSION_HASH_KEY):
        sessions_end(
            user=request.user,
            reason=SessionEndReason.REVOKED_BY_USER,
            request=request,
            only_hash=session_hash,
        )
        logout(request)
        messages.info(request, "This session was signed out.")
        if request.htmx:
            return HttpResponseClientRedirect(reverse("accounts:login"))
        return redirect("accounts:login")
    sessions_end(
        user=request.user,
        reason=SessionEndReason.REVOKED_BY_USER,
        request=request,
        only_hash=session_hash,
    )
    return _sessions_response(request, "That session was signed out.")


@login_required
@require_POST
@vary_on_headers("HX-Request")
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    ended = sessions_end(
        user=request.user,
        reason=SessionEndReason.REVOKED_BY_USER,
        request=request,
        keep_current=True,
    )
    return _sessions_response(request, f"Signed out {ended} other session(s).")


def _sessions_response(request: HttpRequest, message: str) -> HttpResponse:
    if request.htmx:
        context = {**_security_context(request), "sessions_message": message}
        return render(request, "accounts/security.html#sessions", context)
    messages.success(request, message)
    return redirect("accounts:security")


# --- Settings → Security → Members -----------------------------------------------------------


def _member_or_404(request: HttpRequest, membership_id: int) -> Membership:
    target = member_of(require(request, Capability.MANAGE_MEMBERS), membership_id)
    if target is None:
        raise Http404("No such member in your organization.")
    return target


def _members_page(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    organization = require(request, Capability.MANAGE_MEMBERS)
    rows = list(members_of(organization))
    now = timezone.now()
    for row in rows:
        state = getattr(row.user, "lockout_state", None)
        row.locked_until = state.locked_until if state and state.is_locked(now) else None
    policy_form = MfaPolicyForm(
        initial={"policy": organization.mfa_policy, "roles": organization.mfa_required_roles}
    )
    context = {
        "rows": rows,
        "roles": Role.choices,
        "organization": organization,
        "policy_form": policy_form,
    }
    return render(request, "accounts/members.html", context, status=status)


@login_required
@require_GET
def members(request: HttpRequest) -> HttpResponse:
    return _members_page(request)


@login_required
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    target = _member_or_404(request, membership_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose one of the listed roles.")
    try:
        changed = member_role_change(
            admin=request.user, membership=target, role=form.cleaned_data["role"], request=request
        )
    except LastAdministratorError:
        return _members_refusal(
            request,
            f"{target.user.email} is the organization's last administrator. "
            "Make someone else an administrator first.",
        )
    if changed:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    return redirect("accounts:members")


def _members_refusal(request: HttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    return _members_page(request, status=409)


@login_required
@require_POST
def member_unlock(request: HttpRequest, membership_id: int) -> HttpResponse:
    target = _member_or_404(request, membership_id)
    released = lockout_release(
        user=target.user, reason=Reason.ADMIN_UNLOCK, actor=request.user, request=request
    )
    if released:
        messages.success(request, f"{target.user.email} is unlocked.")
    else:
        messages.info(request, f"{target.user.email} was not locked.")
    return redirect("accounts:members")


@login_required
@require_POST
def member_sign_out(request: HttpRequest, membership_id: int) -> HttpResponse:
    target = _member_or_404(request, membership_id)
    if target.user_id == request.user.pk:
        return _members_refusal(request, "To sign out your own sessions, use Profile → Security.")
    ended = sessions_end(
        user=target.user,
        reason=SessionEndReason.REVOKED_BY_ADMIN,
        actor=request.user,
        request=request,
    )
    messages.success(request, f"Signed out {ended} session(s) of {target.user.email}.")
    return redirect("accounts:members")


@login_required
@require_POST
def member_mfa_reset(request: HttpRequest, membership_id: int) -> HttpResponse:
    target = _member_or_404(request, membership_id)
    if target.user_id == request.user.pk:
        return _members_refusal(
            request, "To change your own two-step verification, use Profile → Security."
        )
    removed = mfa.mfa_reset_by_admin(admin=request.user, user=target.user, request=request)
    messages.success(
        request, f"Removed {removed} two-step verification method(s) of {target.user.email}."
    )
    return redirect("accounts:members")


@login_required
@require_POST
def mfa_policy(request: HttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_MEMBERS)
    form = MfaPolicyForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        return _members_refusal(request, f"The policy was not changed: {errors}")
    changed = organization_mfa_policy_update(
        admin=request.user,
        organization=organization,
        policy=form.cleaned_data["policy"],
        roles=form.cleaned_data["roles"],
        request=request,
    )
    if changed:
        messages.success(
            request,
            "Two-step verification policy saved. It applies from each member's next sign-in.",
        )
    return redirect("accounts:members")
