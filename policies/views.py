"""Settings → Security → Access policies: networks, hours, session limits and a preview."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import Capability, require
from accounts.enforcement import request_ip
from accounts.http import AuthenticatedHttpRequest, see_other
from accounts.models import Organization

from . import services
from .forms import (
    AccessPolicyForm,
    NetworkListEditForm,
    NetworkListForm,
    NetworkRuleForm,
    PreviewForm,
    SessionPoliciesForm,
    TimeExceptionForm,
    TimeWindowForm,
)
from .models import NetworkList, NetworkRule, TimeException, TimeWindow
from .selectors import policies_of, policy_preview

PAGE = "policies:access-policies"


def _forms(organization: Organization) -> dict[str, forms.Form]:
    policies = policies_of(organization)
    policy = policies.policy
    return {
        "list_form": NetworkListForm(),
        "rule_form": NetworkRuleForm(organization),
        "settings_form": AccessPolicyForm(
            organization,
            initial={
                "time_zone": policy.time_zone if policy else "UTC",
                "break_glass": policy.break_glass_id if policy else None,
                "max_sessions": policy.max_sessions if policy else None,
                "session_limit_action": policy.session_limit_action if policy else None,
            },
        ),
        "window_form": TimeWindowForm(initial={"days": [1, 2, 3, 4, 5], "active": True}),
        "exception_form": TimeExceptionForm(),
        "sessions_form": SessionPoliciesForm(
            initial={
                key: value
                for limits in policies.limits
                for key, value in (
                    (f"idle_{limits.role}", limits.idle_minutes),
                    (f"lifetime_{limits.role}", limits.lifetime_hours),
                )
            }
        ),
    }


def _page(
    request: AuthenticatedHttpRequest,
    organization: Organization,
    *,
    status: int = 200,
    **bound: Any,
) -> HttpResponse:
    preview_form = PreviewForm(request.GET if "ip" in request.GET else None)
    preview = None
    if preview_form.is_bound and preview_form.is_valid():
        preview = policy_preview(
            organization,
            ip=preview_form.cleaned_data["ip"],
            role=preview_form.cleaned_data["role"],
            now=timezone.now(),
        )
    if preview_form.is_bound and preview_form.errors and status == 200:
        status = 400
    context = {
        "organization": organization,
        "policies": policies_of(organization),
        **_forms(organization),
        **bound,
        "preview_form": preview_form,
        "preview": preview,
        "your_ip": request_ip(request),
    }
    return render(request, "policies/access_policies.html", context, status=status)


def _refused(
    request: AuthenticatedHttpRequest, organization: Organization, **bound: Any
) -> HttpResponse:
    messages.error(request, "Not saved: see below.")
    return _page(request, organization, status=400, **bound)


@login_required
@require_GET
def access_policies(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    return _page(request, organization)


def _policy_error(form: forms.Form, error: services.PolicyError) -> None:
    form.add_error(None, str(error))


@login_required
@require_POST
def network_list_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    form = NetworkListForm(request.POST)
    if form.is_valid():
        try:
            services.network_list_create(
                admin=request.user,
                organization=organization,
                name=form.cleaned_data["name"],
                cidrs=form.cleaned_data["cidrs"],
                request=request,
            )
        except services.PolicyError as error:
            _policy_error(form, error)
        else:
            messages.success(request, f"Network list “{form.cleaned_data['name']}” added.")
            return see_other(PAGE)
    return _refused(request, organization, list_form=form)


@login_required
@require_POST
def network_list_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    network_list = get_object_or_404(NetworkList, pk=pk, organization=organization)
    form = NetworkListEditForm(request.POST)
    if form.is_valid():
        try:
            changed = services.network_list_update(
                admin=request.user,
                network_list=network_list,
                cidrs=form.cleaned_data["cidrs"],
                request=request,
            )
        except services.PolicyError as error:
            _policy_error(form, error)
        else:
            messages.success(
                request, f"“{network_list.name}” saved." if changed else "Nothing changed."
            )
            return see_other(PAGE)
    messages.error(request, f"“{network_list.name}” was not saved: {_first_error(form)}")
    return _page(request, organization, status=400)


def _first_error(form: forms.Form) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return ""


@login_required
@require_POST
def network_rule_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    form = NetworkRuleForm(organization, request.POST)
    if form.is_valid():
        try:
            services.network_rule_create(
                admin=request.user,
                organization=organization,
                role=form.cleaned_data["role"],
                action=form.cleaned_data["action"],
                network_list=form.cleaned_data["network_list"],
                request=request,
            )
        except services.PolicyError as error:
            _policy_error(form, error)
        else:
            messages.success(request, "Network rule added.")
            return see_other(PAGE)
    return _refused(request, organization, rule_form=form)


@login_required
@require_POST
def settings_save(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    form = AccessPolicyForm(organization, request.POST)
    if form.is_valid():
        try:
            changed = services.access_policy_update(
                admin=request.user,
                organization=organization,
                time_zone=form.cleaned_data["time_zone"],
                break_glass=form.cleaned_data["break_glass"],
                max_sessions=form.cleaned_data["max_sessions"],
                session_limit_action=form.cleaned_data["session_limit_action"],
                request=request,
            )
        except services.PolicyError as error:
            _policy_error(form, error)
        else:
            messages.success(request, "Saved." if changed else "Nothing changed.")
            return see_other(PAGE)
    return _refused(request, organization, settings_form=form)


@login_required
@require_POST
def time_window_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    form = TimeWindowForm(request.POST)
    if form.is_valid():
        try:
            services.time_window_create(
                admin=request.user,
                organization=organization,
                role=form.cleaned_data["role"],
                days=form.cleaned_data["days"],
                starts=form.cleaned_data["starts"],
                ends=form.cleaned_data["ends"],
                active=form.cleaned_data["active"],
                request=request,
            )
        except services.PolicyError as error:
            _policy_error(form, error)
        else:
            messages.success(request, "Sign-in hours added.")
            return see_other(PAGE)
    return _refused(request, organization, window_form=form)


@login_required
@require_POST
def time_exception_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    form = TimeExceptionForm(request.POST)
    if form.is_valid():
        try:
            services.time_exception_create(
                admin=request.user,
                organization=organization,
                role=form.cleaned_data["role"],
                on=form.cleaned_data["on"],
                allowed=form.cleaned_data["allowed"],
                note=form.cleaned_data["note"],
                request=request,
            )
        except services.PolicyError as error:
            _policy_error(form, error)
        else:
            messages.success(request, "Date exception added.")
            return see_other(PAGE)
    return _refused(request, organization, exception_form=form)


@login_required
@require_POST
def sessions_save(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    form = SessionPoliciesForm(request.POST)
    if form.is_valid():
        changed = services.session_policies_update(
            admin=request.user, organization=organization, values=form.values(), request=request
        )
        messages.success(request, "Session limits saved." if changed else "Nothing changed.")
        return see_other(PAGE)
    return _refused(request, organization, sessions_form=form)


# What the confirmation page removes, by the URL's kind.
KINDS: dict[str, type[NetworkList | NetworkRule | TimeWindow | TimeException]] = {
    "network-list": NetworkList,
    "network-rule": NetworkRule,
    "time-window": TimeWindow,
    "time-exception": TimeException,
}


def _describe(thing: NetworkList | NetworkRule | TimeWindow | TimeException) -> str:
    if isinstance(thing, NetworkList):
        return f"the network list “{thing.name}” ({len(thing.cidrs)} networks)"
    if isinstance(thing, NetworkRule):
        return (
            f"the rule “{thing.get_action_display()} {thing.network_list.name}” for "
            f"{thing.get_role_display().lower()}"
        )
    if isinstance(thing, TimeWindow):
        return f"the sign-in hours for {thing.get_role_display().lower()}"
    return f"the exception on {thing.on.isoformat()} for {thing.get_role_display().lower()}"


@login_required
@require_http_methods(["GET", "POST"])
def remove(request: AuthenticatedHttpRequest, kind: str, pk: int) -> HttpResponse:
    """Remove a list, a rule, hours or an exception, after a confirmation page."""
    organization = require(request, Capability.MANAGE_ACCESS_POLICIES)
    model = KINDS.get(kind)
    if model is None:
        raise Http404("No such kind of policy.")
    thing = cast(
        "NetworkList | NetworkRule | TimeWindow | TimeException",
        get_object_or_404(model._default_manager, pk=pk, organization=organization),
    )
    description = _describe(thing)
    if request.method == "POST":
        try:
            if isinstance(thing, NetworkList):
                services.network_list_delete(
                    admin=request.user, network_list=thing, request=request
                )
            elif isinstance(thing, NetworkRule):
                services.network_rule_delete(admin=request.user, rule=thing, request=request)
            elif isinstance(thing, TimeWindow):
                services.time_window_delete(admin=request.user, window=thing, request=request)
            else:
                services.time_exception_delete(admin=request.user, exception=thing, request=request)
        except services.PolicyError as error:
            messages.error(request, str(error))
            return _page(request, organization, status=400)
        messages.success(request, f"Removed {description}.")
        return see_other(PAGE)
    return render(request, "policies/remove.html", {"description": description})
