"""Settings → Security → Retention, and Archives & scheduled exports."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.access import Capability, require
from accounts.http import AuthenticatedHttpRequest, see_other
from accounts.models import Organization

from .archives import stored_file_download_record, stored_files_verify
from .files import FileCheckFailed, archive_storage
from .forms import ExportScheduleForm, RetentionSettingsForm, ScheduleFilterForm
from .models import VerifyStatus
from .policy import RetentionInputError, retention_settings_update
from .schedules import (
    ScheduleFiltersInvalid,
    export_schedule_create,
    export_schedule_delete,
    export_schedule_run,
)
from .selectors import (
    framework_warnings,
    purge_runs_for,
    retention_dates,
    retention_settings_of,
    schedule_get,
    schedules_for,
    stored_file_get,
    stored_files_for,
)

FILES_SHOWN = 200


@login_required
@require_http_methods(["GET", "POST"])
def retention(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VIEW_RETENTION)
    current = retention_settings_of(organization)
    status = 200
    if request.method == "POST":
        require(request, Capability.MANAGE_RETENTION)
        form = RetentionSettingsForm(request.POST, organization=organization)
        if form.is_valid():
            try:
                changes = retention_settings_update(
                    organization=organization,
                    actor=request.user,
                    frameworks=form.cleaned_data["frameworks"],
                    archive_before_purge=form.cleaned_data["archive_before_purge"],
                    retention_days=form.retention_days(),
                    request=request,
                )
            except RetentionInputError as exc:
                form.add_error(None, str(exc))
            else:
                if changes:
                    messages.success(request, "Retention settings saved.")
                else:
                    messages.info(request, "Nothing changed: those already were the settings.")
                return see_other("retention:retention")
        messages.error(request, "The retention settings were not saved: see below.")
        status = 400
    else:
        form = RetentionSettingsForm(
            organization=organization,
            initial={
                "frameworks": current.frameworks,
                "archive_before_purge": current.archive_before_purge,
                "retention_years": organization.retention_days // 365,
            },
        )
    context = {
        "organization": organization,
        "current": current,
        "form": form,
        "dates": retention_dates(organization),
        "warnings": framework_warnings(organization, current),
        "runs": purge_runs_for(organization),
    }
    return render(request, "retention/retention.html", context, status=status)


def _archives_context(
    organization: Organization, form: ExportScheduleForm, filter_form: ScheduleFilterForm
) -> dict[str, object]:
    files = list(stored_files_for(organization).order_by("-created_at", "-pk")[:FILES_SHOWN])
    return {
        "organization": organization,
        "form": form,
        "filter_form": filter_form,
        "schedules": schedules_for(organization),
        "files": files,
        "problems": sum(
            1 for f in files if f.verify_status not in (VerifyStatus.OK, VerifyStatus.NOT_VERIFIED)
        ),
    }


@login_required
@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def archives(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ARCHIVES)
    status = 200
    if request.method == "POST":
        form = ExportScheduleForm(request.POST)
        filter_form = ScheduleFilterForm(request.POST)
        if form.is_valid() and filter_form.is_valid():
            data = form.cleaned_data
            try:
                schedule = export_schedule_create(
                    organization=organization,
                    actor=request.user,
                    name=data["name"],
                    frequency=data["frequency"],
                    filters=filter_form.canonical(),
                    window_days=data["window_days"],
                    request=request,
                )
            except RetentionInputError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"Scheduled “{schedule.name}”; the first file is made "
                    f"{schedule.next_run_at:%Y-%m-%d %H:%M} UTC.",
                )
                return see_other("retention:archives")
        messages.error(request, "The export was not scheduled: see below.")
        status = 400
    else:
        form, filter_form = ExportScheduleForm(), ScheduleFilterForm()
    template = "retention/archives.html"
    if request.htmx and request.method == "GET":
        template += "#files"
    context = _archives_context(organization, form, filter_form)
    return render(request, template, context, status=status)


@login_required
@vary_on_headers("HX-Request")
@require_POST
def verify(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ARCHIVES)
    checked = stored_files_verify(files=stored_files_for(organization))
    bad = [f for f in checked if f.verify_status != VerifyStatus.OK]
    if bad:
        messages.error(request, f"{len(bad)} of {len(checked)} files failed verification.")
    else:
        messages.success(request, f"All {len(checked)} files verified: checksums and rows match.")
    if request.htmx:
        context = _archives_context(organization, ExportScheduleForm(), ScheduleFilterForm())
        return render(request, "retention/archives.html#files", context)
    return see_other("retention:archives")


@login_required
@require_POST
def schedule_run(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    organization = require(request, Capability.MANAGE_ARCHIVES)
    schedule = schedule_get(organization=organization, pk=pk)
    try:
        stored = export_schedule_run(
            schedule=schedule, period_end=timezone.now(), actor=request.user, request=request
        )
    except FileCheckFailed as exc:
        messages.error(request, f"The export could not be stored: {exc}")
    except ScheduleFiltersInvalid as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Exported {stored.row_count} events to {stored.filename}.")
    return see_other("retention:archives")


@login_required
@require_http_methods(["GET", "POST"])
def schedule_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Ask, then stop the scheduled export (its files stay)."""
    organization = require(request, Capability.MANAGE_ARCHIVES)
    schedule = schedule_get(organization=organization, pk=pk)
    if request.method != "POST":
        files = stored_files_for(organization).filter(schedule=schedule).count()
        return render(
            request, "retention/schedule_delete.html", {"schedule": schedule, "files": files}
        )
    export_schedule_delete(schedule=schedule, actor=request.user, request=request)
    messages.success(request, f"Stopped “{schedule.name}”; its files are kept.")
    return see_other("retention:archives")


@login_required
@require_GET
def download(request: AuthenticatedHttpRequest, pk: int) -> FileResponse:
    organization = require(request, Capability.MANAGE_ARCHIVES)
    stored = stored_file_get(organization=organization, pk=pk)
    storage = archive_storage()
    if not storage.exists(stored.name):
        raise Http404("The file is missing from the archive storage; run Verify.")
    stored_file_download_record(stored_file=stored, actor=request.user, request=request)
    content_type = "application/gzip" if stored.name.endswith(".gz") else "text/csv"
    response = FileResponse(
        storage.open(stored.name, "rb"),
        as_attachment=True,
        filename=stored.filename,
        content_type=content_type,
    )
    response["X-Checksum-SHA256"] = stored.sha256
    return response
