"""Settings → Security (the overview) and its Members page: roles, the MFA policy, unlocking,
signing out and resetting a member's two-step verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.models import Reason

from .. import mfa
from ..access import Capability, access_for, is_step_down, require
from ..forms import MemberRoleForm, MfaPolicyForm
from ..http import AuthenticatedHttpRequest, see_other
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


def _members_page(
    request: AuthenticatedHttpRequest,
    *,
    policy_form: MfaPolicyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = require(request, Capability.MANAGE_MEMBERS)
    now = timezone.now()
    rows: list[_MemberRow] = []
    for member in members_with_lockout_of(organization, now=now):
        state: LockoutState | None = getattr(member.user, "lockout_state", None)
        ends = {s: state.lock_of(s)[1] for s in state.scopes_locked(now)} if state else {}
        rows.append(_MemberRow(member, ends.get(LockScope.ALL), ends.get(LockScope.UNFAMILIAR)))
    policy_form = policy_form or MfaPolicyForm(
        initial={
            "policy": organization.mfa_policy,
            "roles": organization.mfa_required_roles,
            "passkey_roles": organization.mfa_passkey_roles,
        }
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
@require_http_methods(["GET", "POST"])
def member_role(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
    """Change a member's role; a change that takes anything away asks first (GET ?role=)."""
    target = _member_or_404(request, membership_id)
    form = MemberRoleForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(
            request,
            f"Choose one of the listed roles: the role of {target.user.email} is unchanged.",
        )
        return _members_page(request, status=400)
    role = form.cleaned_data["role"]
    if request.method != "POST":
        return render(
            request,
            "accounts/member_role_confirm.html",
            {"target": target, "role": role, "role_label": Role(role).label},
        )
    if is_step_down(target.role, role) and not form.cleaned_data["confirmed"]:
        return see_other(
            reverse("accounts:member-role", args=[target.pk]) + "?" + urlencode({"role": role})
        )
    try:
        changed = member_role_change(
            admin=request.user, membership=target, role=role, request=request
        )
    except LastAdministratorError:
        return _members_refusal(
            request,
            f"{target.user.email} is the organization's last administrator. "
            "Make someone else an administrator first.",
        )
    if changed:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    else:
        messages.info(request, f"{target.user.email} already was {target.get_role_display()}.")
    return see_other("accounts:members")


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
    return see_other("accounts:members")


@login_required
@require_http_methods(["GET", "POST"])
def member_sign_out(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
    """Ask, then end every session of the member."""
    target = _member_or_404(request, membership_id)
    if target.user_id == request.user.pk:
        return _members_refusal(request, "To sign out your own sessions, use Profile → Security.")
    if request.method != "POST":
        return render(request, "accounts/member_sign_out.html", {"target": target})
    ended = sessions_end(
        user=target.user,
        reason=SessionEndReason.REVOKED_BY_ADMIN,
        actor=request.user,
        request=request,
    )
    if ended:
        messages.success(
            request,
            f"Signed {target.user.email} out everywhere ({ended} session{pluralize(ended)}).",
        )
    else:
        messages.info(request, f"{target.user.email} was not signed in anywhere.")
    return see_other("accounts:members")


@login_required
@require_http_methods(["GET", "POST"])
def member_mfa_reset(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
    """Ask, then remove every two-step verification method of the member."""
    target = _member_or_404(request, membership_id)
    if target.user_id == request.user.pk:
        return _members_refusal(
            request, "To change your own two-step verification, use Profile → Security."
        )
    if request.method != "POST":
        required = target.organization.mfa_required_for(target.role)
        return render(
            request, "accounts/member_mfa_reset.html", {"target": target, "required": required}
        )
    removed = mfa.mfa_reset_by_admin(admin=request.user, user=target.user, request=request)
    if removed:
        messages.success(
            request,
            f"Reset two-step verification of {target.user.email}: removed {removed} "
            f"method{pluralize(removed)}. They set it up again at their next sign-in.",
        )
    else:
        messages.info(request, f"{target.user.email} had no two-step verification to reset.")
    return see_other("accounts:members")


@login_required
@require_POST
def mfa_policy(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_MEMBERS)
    form = MfaPolicyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The two-step verification policy was not changed: see below.")
        return _members_page(request, policy_form=form, status=400)
    changed = organization_mfa_policy_update(
        admin=request.user,
        organization=organization,
        policy=form.cleaned_data["policy"],
        roles=form.cleaned_data["roles"],
        passkey_roles=form.cleaned_data["passkey_roles"],
        request=request,
    )
    if changed:
        messages.success(
            request,
            "Two-step verification policy saved. It applies from each member's next sign-in.",
        )
    else:
        messages.info(request, "Nothing changed: that already was the policy.")
    return see_other("accounts:members")
