"""CSV downloads of the Audit Log and the Activity Log, and the list of background exports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from accounts.access import Capability, require
from accounts.http import AuthenticatedHttpRequest
from accounts.selectors import event_filters_with_members
from audit.forms import EventFilterForm
from audit.selectors import events_matching

from . import services
from .models import Export, ExportStatus
from .selectors import export_for_organization, exports_for_organization


def _csv_response(lines: Iterable[bytes], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _bad_filters(form: EventFilterForm) -> HttpResponse:
    return HttpResponseBadRequest(form.refusal(), content_type="text/plain; charset=utf-8")


def _stamp() -> str:
    return timezone.now().strftime("%Y%m%dT%H%M%SZ")


@require_GET
@login_required
def audit_log_csv(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The Audit Log's filtered rows as CSV: streamed, or as a job when there are many."""
    organization = require(request, Capability.EXPORT_AUDIT_LOG)
    form = EventFilterForm(request.GET, paged=False)
    if not form.is_valid():
        return _bad_filters(form)
    queryset = events_matching(
        filters=event_filters_with_members(form.filters(), organization=organization),
        organization=organization,
    )
    filters = form.canonical()
    if services.rows_at_most(queryset, services.stream_max_rows()) > services.stream_max_rows():
        export = services.export_create(
            request=request, user=request.user, organization=organization, filters=filters
        )
        return redirect(f"{reverse('exports:export-list')}?created={export.pk}")
    services.export_streamed_record(
        request=request,
        user=request.user,
        organization=organization,
        filters=filters,
        scope="organization",
    )
    return _csv_response(
        services.csv_stream(queryset), f"audit-log-{organization.slug}-{_stamp()}.csv"
    )


@require_GET
@login_required
def activity_csv(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The person's own filtered activity as CSV, always streamed (one person's rows)."""
    form = EventFilterForm(request.GET, organization_wide=False, paged=False)
    if not form.is_valid():
        return _bad_filters(form)
    queryset = events_matching(filters=form.filters(), user=request.user)
    organization = getattr(getattr(request.user, "membership", None), "organization", None)
    services.export_streamed_record(
        request=request,
        user=request.user,
        organization=organization,
        filters=form.canonical(),
        scope="own_activity",
    )
    return _csv_response(
        services.csv_stream_seen_by(queryset, viewer_id=request.user.id),
        f"my-activity-{_stamp()}.csv",
    )


@require_GET
@login_required
def export_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Settings → Security → Exports: the organization's background exports."""
    organization = require(request, Capability.EXPORT_AUDIT_LOG)
    exports = exports_for_organization(organization=organization)[:100]
    return render(
        request,
        "exports/export_list.html",
        {"exports": exports, "stream_max_rows": services.stream_max_rows()},
    )


def _export_or_404(request: HttpRequest, export_id: uuid.UUID) -> Export:
    organization = require(request, Capability.EXPORT_AUDIT_LOG)
    export = export_for_organization(organization=organization, export_id=str(export_id))
    if export is None:
        raise Http404("No such export in your organization.")
    return export


@require_GET
@login_required
def export_status(request: AuthenticatedHttpRequest, export_id: uuid.UUID) -> HttpResponse:
    """The progress fragment; polls while the job runs and stops (HTTP 286) when it is done."""
    export = _export_or_404(request, export_id)
    response = render(request, "exports/_export_status.html", {"export": export})
    if export.is_finished and request.htmx:
        stop = HttpResponseStopPolling(response.content)
        patch_vary_headers(stop, ["HX-Request"])
        return stop
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@login_required
def export_download(request: AuthenticatedHttpRequest, export_id: uuid.UUID) -> HttpResponseBase:
    export = _export_or_404(request, export_id)
    expired = export.expires_at is not None and export.expires_at <= timezone.now()
    if export.status == ExportStatus.EXPIRED or expired:
        return HttpResponse(
            "This export has expired; create it again from the Audit Log.",
            status=410,
            content_type="text/plain; charset=utf-8",
        )
    if export.status != ExportStatus.DONE:
        return HttpResponse(
            "This export is not ready yet.", status=409, content_type="text/plain; charset=utf-8"
        )
    path = services.export_root() / export.file_name
    if not path.exists():
        raise Http404("The export's file is gone.")
    services.export_downloaded_record(request=request, user=request.user, export=export)
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"audit-log-{export.organization.slug}-{export.created_at:%Y%m%dT%H%M%SZ}.csv",
        content_type="text/csv; charset=utf-8",
    )
    response["X-Content-SHA256"] = export.sha256
    return response
