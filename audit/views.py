"""Profile → Activity Log, Settings → Security → Audit Log, and one event's investigation page."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from accounts.access import Capability, require
from accounts.models import Organization, User

from .forms import EventFilterForm
from .member_view import event_seen_by
from .models import EventType
from .selectors import (
    LIST_FIELDS,
    CursorError,
    Page,
    event_for_organization,
    event_for_user,
    event_list_parts,
    event_timeline,
    events_page,
)
from .services import event_record

# A person re-running the same filter within this many seconds is one "view" of the log.
VIEWED_DEDUP_SECONDS = getattr(settings, "AUDIT_LOG_VIEWED_DEDUP_SECONDS", 300)


def user_scope(user: User) -> str:
    return f"user:{user.pk}"


def organization_scope(organization: Organization) -> str:
    return f"org:{organization.pk}"


def record_viewed_once(
    request: HttpRequest,
    *,
    organization: Organization,
    looked_at: dict[str, Any],
    actor: User | None = None,
    actor_label: str = "",
    dedup_key: str | None = None,
) -> None:
    """Record audit_log.viewed, once per viewer and distinct filter per few minutes.

    Paging (the cursor) and HTMX swaps of the same filters are the same view. The dedupe lives
    in the cache; with Redis unreachable the cache answers as no cache (`add` succeeds), so every
    view is recorded: more rows for a while, never a view left unrecorded or a failed page.
    """
    digest = hashlib.sha256(json.dumps(looked_at, sort_keys=True).encode()).hexdigest()[:32]
    key = f"audit_log.viewed:{dedup_key or request.user.pk}:{digest}"
    if cache.add(key, True, timeout=VIEWED_DEDUP_SECONDS):
        event_record(
            event_type=EventType.AUDIT_LOG_VIEWED,
            actor=actor if actor is not None else request.user,
            actor_label=actor_label,
            organization=organization,
            details=looked_at,
            request=request,
        )


def _query_without_cursor(form: EventFilterForm) -> str:
    data = {k: v for k, v in form.data.items() if k != "cursor" and v not in ("", None)}
    return urlencode(data)


def _list_page(
    request: HttpRequest,
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
        "tz": (form.cleaned_data.get("tz") if form.is_valid() else None) or "UTC",
        "base_query": base_query,
        "first_page": not (form.is_valid() and form.cleaned_data["cursor"]),
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


@require_GET
@login_required
def activity(request: HttpRequest) -> HttpResponse:
    """Profile → Activity Log: the signed-in person's own events, newest first."""
    user = request.user
    form = EventFilterForm(request.GET, organization_wide=False)
    response, _ = _list_page(
        request,
        template="audit/activity.html",
        form=form,
        queryset=lambda f: event_list_parts(filters=f.filters(), user=user),
        scope=user_scope(user),
        context={
            "activity_export_url": reverse("exports:activity-csv"),
            "detail_prefix": reverse("audit:activity"),
        },
        seen_by=user,
    )
    return response


@require_GET
@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """Settings → Security → Audit Log: the organization's events, for the audit roles."""
    organization = require(request, Capability.VIEW_AUDIT_LOG)
    form = EventFilterForm(request.GET)
    response, shown = _list_page(
        request,
        template="audit/audit_log.html",
        form=form,
        queryset=lambda f: event_list_parts(filters=f.filters(), organization=organization),
        scope=organization_scope(organization),
        context={
            "organization": organization,
            "audit_log_export_url": reverse("exports:audit-log-csv"),
            "detail_prefix": reverse("audit:audit-log"),
        },
    )
    if shown:
        record_viewed_once(
            request, organization=organization, looked_at={"filters": form.canonical()}
        )
    return response


@require_GET
@login_required
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    """One event with all its fields and the investigation timeline around it."""
    organization = require(request, Capability.VIEW_AUDIT_LOG)
    event = event_for_organization(organization=organization, event_id=event_id)
    if event is None:
        raise Http404("No such event in your organization.")
    record_viewed_once(request, organization=organization, looked_at={"event_id": event.pk})
    return render(
        request,
        "audit/event_detail.html",
        {
            "event": event,
            "timeline": event_timeline(organization=organization, event=event),
            "detail_prefix": reverse("audit:audit-log"),
            "details_json": json.dumps(event.details, indent=2, sort_keys=True),
        },
    )


@require_GET
@login_required
def activity_event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    """One of the person's own events, with what they may see of it."""
    event = event_for_user(user=request.user, event_id=event_id)
    if event is None:
        raise Http404("No such event in your activity.")
    event = event_seen_by(event, viewer_id=request.user.pk)
    return render(
        request,
        "audit/event_detail.html",
        {
            "event": event,
            "timeline": None,
            "details_json": json.dumps(event.details, indent=2, sort_keys=True),
        },
    )
