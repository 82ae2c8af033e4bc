"""Changing one's password, and resetting a forgotten one by email."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unicodedata import normalize

from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from audit.models import Reason

from ..activity_checks import secured_awaiting_reset
from ..backends import attempt_organization
from ..forms import PasswordChangeForm
from ..http import AuthenticatedHttpRequest, see_other
from ..models import User
from ..selectors import user_for_sign_in
from ..services import (
    password_changed_record,
    password_reset_completed_record,
    password_reset_failed_record,
    password_reset_requested_record,
)
from ..throttling import (
    Purpose,
    reset_throttled_message,
    throttle_attempt,
    throttled_response,
)


# Not atomic: a wrong old password must be recorded (and counted) whatever happens next.
@transaction.non_atomic_requests
@sensitive_post_parameters()
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: AuthenticatedHttpRequest) -> HttpResponse:
    # After "No, secure my account" the old password no longer works (someone else may know
    # it): the session that answered chooses the new one without it.
    secured = secured_awaiting_reset(request.user)
    form: auth_forms.SetPasswordForm[User] | PasswordChangeForm = (
        auth_forms.SetPasswordForm(request.user, request.POST or None)
        if secured
        else PasswordChangeForm(request.user, request.POST or None, request=request)
    )
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            update_session_auth_hash(request, user)
            password_changed_record(request=request, user=user)
        messages.success(request, "Your password was changed. Your other sessions were signed out.")
        return see_other("accounts:profile")
    if form.errors:
        messages.error(request, "Your password was not changed: see below.")
    return render(request, "accounts/password_change.html", {"form": form, "secured": secured})


def _see_other(response: HttpResponse) -> HttpResponse:
    """Django's auth views answer a good POST with 302; every POST here answers 303."""
    if isinstance(response, HttpResponseRedirect):
        return see_other(response.url)
    return response


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form, which also serves an account secured by "No, secure my account": its
    password was taken away until its owner chooses one by this email (Django's form serves only
    accounts with a usable password)."""

    def get_users(self, email: str) -> Iterator[User]:
        for user in User.objects.filter(email__iexact=email, is_active=True):
            # Compared as Django compares them (Unicode TR 36): no look-alike address matches.
            same = normalize("NFKC", user.email).casefold() == normalize("NFKC", email).casefold()
            if same and (user.has_usable_password() or secured_awaiting_reset(user)):
                yield user


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password-reset-sent")

    def form_valid(self, form: Any) -> HttpResponse:
        email = form.cleaned_data["email"]
        # Throttled like sign-ins, per client IP and per address (its own buckets): each request
        # sends an email, and a flood must neither mail a victim nor write a row per request.
        account = user_for_sign_in(email)
        decision = throttle_attempt(
            request=self.request,
            purpose=Purpose.PASSWORD_RESET,
            account=email,
            organization=attempt_organization(account, email),
            user=account,
        )
        if not decision.allowed:
            form.add_error(None, reset_throttled_message(decision.retry_after))
            return throttled_response(self.form_invalid(form), decision)
        users = list(form.get_users(email))
        # The requester sees the same page whether or not the address is known.
        password_reset_requested_record(request=self.request, email=email, users=users)
        return _see_other(super().form_valid(form))


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password-reset-done")

    def dispatch(self, *args: Any, **kwargs: Any) -> HttpResponseBase:
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
        return _see_other(response)
