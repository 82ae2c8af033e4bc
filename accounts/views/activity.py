"""Profile → Activity Log, Settings → Security → Audit Log, and one event's page in each."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from audit.forms import PERIOD_CHOICES, VALUE_TITLES, EventFilterForm
from audit.member_view import event_seen_by
from audit.selectors import (
    LIST_FIELDS,
    CursorError,
    Page,
    event_for_organization,
    event_for_user,
    event_list_parts,
    event_timeline,
    events_page,
)
from audit.viewed import audit_log_viewed_record

from ..access import Capability, require
from ..http import AuthenticatedHttpRequest
from ..models import Organization, SearchLog, User
from ..selectors import event_filters_with_members, membership_of, saved_searches_for
from ..templatetags.search import search_url
from .searches import kept_query


def user_scope(user: User) -> str:
    """What the cursors of the person's own Activity Log are signed for."""
    return f"user:{user.pk}"


def organization_scope(organization: Organization) -> str:
    """What the cursors of the organization's Audit Log are signed for."""
    return f"org:{organization.pk}"


def _query_without_cursor(form: EventFilterForm) -> str:
    data = {k: v for k, v in form.data.items() if k != "cursor" and v not in ("", None)}
    return urlencode(data)


# The Advanced fields a chip may stand for (q's words have a chip each; tz and cursor none).
_CHIP_FIELDS = (
    "start",
    "end",
    "category",
    "event_type",
    "outcome",
    "reason",
    "user",
    "ip",
    "country",
)


def _chips(request: AuthenticatedHttpRequest, form: EventFilterForm) -> list[dict[str, str]]:
    """The active filters, each with the URL of this page without it."""
    if not form.is_valid():
        return []
    query = form.query
    q = form.cleaned_data.get("q", "")
    chips = [
        {"label": term.label, "url": search_url(request, q=query.without(term))}
        for term in query.terms
    ]
    period = form.cleaned_data.get("period")
    if period and period != "custom":
        chips.append(
            {
                "label": dict(PERIOD_CHOICES)[period],
                "url": search_url(request, q=q, drop=("period",)),
            }
        )
    for name in _CHIP_FIELDS:
        value = form.cleaned_data.get(name)
        if name in form.fields and value not in (None, ""):
            chips.append(
                {
                    "label": f"{form.fields[name].label or name.capitalize()}: "
                    f"{VALUE_TITLES.get(name, str)(str(value))}",
                    "url": search_url(request, q=q, drop=(name,)),
                }
            )
    return chips


def _advanced_open(form: EventFilterForm) -> bool:
    """Whether the Advanced fields hold anything (or an error) the person should see."""
    if form.is_bound and form.data.get("period") == "custom":
        return True
    fields = [name for name in _CHIP_FIELDS if name in form.fields]
    return any(form.data.get(name) for name in fields) or any(
        name in form.errors for name in fields
    )


def _list_page(
    request: AuthenticatedHttpRequest,
    *,
    template: str,
    form: EventFilterForm,
    queryset: Any,
    scope: str,
    context: dict[str, Any],
    seen_by: User | None = None,
) -> tuple[HttpResponse, bool]:
    """Render a filtered, paged list (the whole page, or its results partial for HTMX).

    With seen_by, the rows are what that person may see of them (their own Activity Log).
    """
    page: Page | None = None
    if form.is_valid():
        try:
            page = events_page(
                [part.only(*LIST_FIELDS) for part in queryset(form)],
                cursor=form.cleaned_data["cursor"],
                scope=scope,
            )
        except CursorError as exc:
            form.add_error("cursor", str(exc))
    if page is not None and seen_by is not None:
        page.events = [event_seen_by(event, viewer_id=seen_by.pk) for event in page.events]
    base_query = _query_without_cursor(form) if form.is_bound else ""
    context = {
        **context,
        "form": form,
        "page": page,
        "tz": (form.cleaned_data.get("tz") if form.is_valid() else None)
        or timezone.get_current_timezone_name(),
        "base_query": base_query,
        "first_page": not (form.is_valid() and form.cleaned_data["cursor"]),
        "chips": _chips(request, form),
        "advanced_open": _advanced_open(form),
    }
    # History restores ask for the whole page, HTMX or not.
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    name = f"{template}#results" if partial else template
    status = 200 if page is not None else 400
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    if partial:
        push_url(response, request.get_full_path())
    return response, page is not None


def _organization_of(user: User) -> Organization | None:
    membership = membership_of(user)
    return membership.organization if membership is not None else None


def _saved(
    request: AuthenticatedHttpRequest, *, organization: Organization | None, log: str
) -> dict[str, Any]:
    """The saved searches beside the box, and what saving the one on screen needs."""
    if organization is None:
        return {"saved_enabled": False}
    name = "audit-log" if log == SearchLog.AUDIT else "activity"
    return {
        "saved_enabled": True,
        "saved_searches": list(
            saved_searches_for(request.user, organization=organization, log=log)
        ),
        "save_url": reverse(f"accounts:{name}-search-save"),
        "delete_url_name": f"accounts:{name}-search-delete",
        "current_query": kept_query(request.GET),
    }


@require_GET
@login_required
def activity(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Profile → Activity Log: the signed-in person's own events, newest first."""
    user = request.user
    form = EventFilterForm(request.GET, organization_wide=False)
    response, _ = _list_page(
        request,
        template="accounts/activity.html",
        form=form,
        queryset=lambda f: event_list_parts(filters=f.filters(), user=user),
        scope=user_scope(user),
        context={
            "activity_export_url": reverse("exports:activity-csv"),
            "detail_prefix": reverse("accounts:activity"),
            **_saved(request, organization=_organization_of(user), log=SearchLog.ACTIVITY),
        },
        seen_by=user,
    )
    return response


@require_GET
@login_required
def audit_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Settings → Security → Audit Log: the organization's events, for the audit roles."""
    organization = require(request, Capability.VIEW_AUDIT_LOG)
    form = EventFilterForm(request.GET)
    response, shown = _list_page(
        request,
        template="accounts/audit_log.html",
        form=form,
        queryset=lambda f: event_list_parts(
            filters=event_filters_with_members(f.filters(), organization=organization),
            organization=organization,
        ),
        scope=organization_scope(organization),
        context={
            "organization": organization,
            "audit_log_export_url": reverse("exports:audit-log-csv"),
            "detail_prefix": reverse("accounts:audit-log"),
            **_saved(request, organization=organization, log=SearchLog.AUDIT),
        },
    )
    if shown:
        audit_log_viewed_record(
            request=request,
            organization=organization,
            looked_at={"filters": form.canonical()},
            actor=request.user,
            dedup_key=f"user:{request.user.pk}",
        )
    return response


@require_GET
@login_required
def audit_log_event(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    """One event with all its fields and the investigation timeline around it."""
    organization = require(request, Capability.VIEW_AUDIT_LOG)
    event = event_for_organization(organization=organization, event_id=event_id)
    if event is None:
        raise Http404("No such event in your organization.")
    audit_log_viewed_record(
        request=request,
        organization=organization,
        looked_at={"event_id": event.pk},
        actor=request.user,
        dedup_key=f"user:{request.user.pk}",
    )
    return render(
        request,
        "accounts/event_detail.html",
        {
            "event": event,
            "timeline": event_timeline(organization=organization, event=event),
            "detail_prefix": reverse("accounts:audit-log"),
            "details_json": json.dumps(event.details, indent=2, sort_keys=True),
        },
    )


@require_GET
@login_required
def activity_event(request: AuthenticatedHttpRequest, event_id: int) -> HttpResponse:
    """One of the person's own events, with what they may see of it."""
    event = event_for_user(user=request.user, event_id=event_id)
    if event is None:
        raise Http404("No such event in your activity.")
    event = event_seen_by(event, viewer_id=request.user.pk)
    return render(
        request,
        "accounts/event_detail.html",
        {
            "event": event,
            "timeline": None,
            "details_json": json.dumps(event.details, indent=2, sort_keys=True),
        },
    )
