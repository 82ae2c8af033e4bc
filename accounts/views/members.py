"""Settings → Security (the overview) and its Members page: roles, the MFA policy, unlocking,
signing out and resetting a member's two-step verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.models import Reason

from .. import mfa
from ..access import Capability, access_for, require
from ..forms import MemberRoleForm, MfaPolicyForm
from ..http import AuthenticatedHttpRequest
from ..lockout import lockout_release
from ..models import LockoutState, LockScope, Membership, Role, SessionEndReason
from ..overview import overview_panels_for
from ..selectors import member_of, members_with_lockout_of
from ..services import (
    LastAdministratorError,
    member_role_change,
    organization_mfa_policy_update,
)
from ..sessions import sessions_end


@login_required
@require_GET
def security_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VIEW_SECURITY_SETTINGS)
    panels = overview_panels_for(access_for(request.user), now=timezone.now())
    return render(
        request,
        "accounts/security_settings.html",
        {"organization": organization, "panels": panels},
    )


def _member_or_404(request: AuthenticatedHttpRequest, membership_id: int) -> Membership:
    target = member_of(require(request, Capability.MANAGE_MEMBERS), membership_id)
    if target is None:
        raise Http404("No such member in your organization.")
    return target


@dataclass(frozen=True)
class _MemberRow:
    # With familiar_failures and unfamiliar_failures (selectors.members_with_lockout_of).
    member: Membership
    # The end of each lock that holds now (None: not locked in that scope).
    locked_until: datetime | None  # every source
    unfamiliar_locked_until: datetime | None  # unfamiliar sources only

    @property
    def locked(self) -> bool:
        return self.locked_until is not None or self.unfamiliar_locked_until is not None


def _members_page(request: AuthenticatedHttpRequest, *, status: int = 200) -> HttpResponse:
    organization = require(request, Capability.MANAGE_MEMBERS)
    now = timezone.now()
    rows: list[_MemberRow] = []
    for member in members_with_lockout_of(organization, now=now):
        state: LockoutState | None = getattr(member.user, "lockout_state", None)
        ends = {s: state.lock_of(s)[1] for s in state.scopes_locked(now)} if state else {}
        rows.append(_MemberRow(member, ends.get(LockScope.ALL), ends.get(LockScope.UNFAMILIAR)))
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
def members(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _members_page(request)


@login_required
@require_POST
def member_role(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
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


def _members_refusal(request: AuthenticatedHttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    return _members_page(request, status=409)


@login_required
@require_POST
def member_unlock(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
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
def member_sign_out(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
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
def member_mfa_reset(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
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
def mfa_policy(request: AuthenticatedHttpRequest) -> HttpResponse:
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
