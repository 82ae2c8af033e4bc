"""Sign-in, sign-out, password and profile pages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from audit.models import Reason
from audit.selectors import events_for_user

from .forms import SignInForm
from .selectors import membership_of, user_can_view_audit_log
from .services import (
    password_changed_record,
    password_reset_completed_record,
    password_reset_failed_record,
    password_reset_requested_record,
)


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url("accounts:profile")


# Not atomic: a refused sign-in must be committed whatever happens to the rest of the request.
@transaction.non_atomic_requests
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SignInForm(request, data=request.POST)
        if form.is_valid() and form.user is not None:
            with transaction.atomic():
                login(request, form.user)
            return HttpResponseRedirect(_safe_next(request))
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
def profile(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/profile.html", {"membership": membership_of(request.user)})


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    events = events_for_user(user=request.user)[:50]
    return render(request, "accounts/activity.html", {"events": events})


@login_required
def security_settings(request: HttpRequest) -> HttpResponse:
    if not user_can_view_audit_log(request.user):
        raise PermissionDenied(
            "Settings → Security is for administrators, analysts and compliance."
        )
    return render(
        request, "accounts/security_settings.html", {"membership": membership_of(request.user)}
    )


@sensitive_post_parameters()
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
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
