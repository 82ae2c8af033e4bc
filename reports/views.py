"""Settings → Security → Access reviews and Compliance reports."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling

from accounts.access import Capability, require
from accounts.http import AuthenticatedHttpRequest, see_other
from accounts.models import Role

from . import services
from .bundle import report_root
from .forms import DecisionForm, ReportForm
from .models import AccessReview, AccessReviewItem, ComplianceReport, Decision, ReportStatus
from .selectors import (
    access_review_item_of,
    access_review_items_of,
    access_review_of,
    access_review_open_of,
    access_reviews_of,
    decision_counts,
    report_of,
    report_overlapping,
    reports_of,
)

# --- Access reviews ----------------------------------------------------------------------------


def _review_or_404(request: AuthenticatedHttpRequest, review_id: int) -> AccessReview:
    review = access_review_of(require(request, Capability.REVIEW_ACCESS), review_id)
    if review is None:
        raise Http404("No such access review in your organization.")
    return review


def _item_or_404(review: AccessReview, item_id: int) -> AccessReviewItem:
    item = access_review_item_of(review, item_id)
    if item is None:
        raise Http404("No such member in this access review.")
    return item


def _not_own(request: AuthenticatedHttpRequest, item: AccessReviewItem) -> None:
    if item.user_id == request.user.pk:
        raise PermissionDenied(
            "You cannot decide on your own access: another reviewer must (separation of duties)."
        )


@login_required
@require_http_methods(["GET", "POST"])
def access_reviews(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The campaigns, newest first; POST starts one."""
    organization = require(request, Capability.REVIEW_ACCESS)
    if request.method == "POST":
        try:
            review = services.access_review_start(
                actor=request.user, organization=organization, request=request
            )
        except services.AccessReviewRefused as refusal:
            messages.error(request, str(refusal))
            status = 409
        else:
            messages.success(request, f"Access review started: {review.items.count()} members.")
            return see_other("reports:access-review", review.pk)
    else:
        status = 200
    context = {
        "reviews": access_reviews_of(organization)[:50],
        "open_review": access_review_open_of(organization),
    }
    return render(request, "reports/access_reviews.html", context, status=status)


def _review_page(
    request: AuthenticatedHttpRequest, review: AccessReview, *, status: int = 200
) -> HttpResponse:
    context = {
        "review": review,
        "items": access_review_items_of(review),
        "counts": decision_counts(review),
        "roles": Role.choices,
        "decisions": Decision,
    }
    return render(request, "reports/access_review.html", context, status=status)


@login_required
@require_GET
def access_review(request: AuthenticatedHttpRequest, review_id: int) -> HttpResponse:
    """A campaign: every member with their access and the decision taken on it."""
    return _review_page(request, _review_or_404(request, review_id))


@login_required
@require_http_methods(["GET", "POST"])
def access_review_decide(
    request: AuthenticatedHttpRequest, review_id: int, item_id: int
) -> HttpResponse:
    """Decide on one member: GET asks first (a role change or removal), POST applies."""
    review = _review_or_404(request, review_id)
    item = _item_or_404(review, item_id)
    _not_own(request, item)
    form = DecisionForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, f"Nothing was decided for {item.email}: {_errors(form)}")
        return _review_page(request, review, status=400)
    decision, role = form.cleaned_data["decision"], form.cleaned_data["role"]
    if review.is_completed:
        messages.error(request, "This access review is completed: its decisions are final.")
        return _review_page(request, review, status=409)
    if request.method == "GET":
        refusal = services.access_review_decision_refusal(
            actor=request.user, item=item, decision=decision, role=role
        )
        if refusal:  # refused before asking, as the POST would be
            messages.error(request, refusal)
            return _review_page(request, review, status=409)
        context = {
            "review": review,
            "item": item,
            "decision": decision,
            "role": role,
            "role_label": Role(role).label if role else "",
        }
        return render(request, "reports/access_review_decide.html", context)
    try:
        services.access_review_decide(
            actor=request.user,
            item=item,
            decision=decision,
            role=role,
            note=form.cleaned_data["note"],
            request=request,
        )
    except services.AccessReviewRefused as refusal:
        messages.error(request, str(refusal))
        return _review_page(request, review, status=409)
    done = {
        Decision.KEEP: f"{item.email} keeps their access.",
        Decision.CHANGE_ROLE: f"{item.email} is now {Role(role).label if role else ''}.",
        Decision.REMOVE: f"{item.email} was removed from the organization.",
    }
    messages.success(request, done[Decision(decision)])
    return see_other("reports:access-review", review.pk)


def _errors(form: DecisionForm) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@login_required
@require_http_methods(["GET", "POST"])
def access_review_complete(request: AuthenticatedHttpRequest, review_id: int) -> HttpResponse:
    """Ask, then close the campaign: from then it is read-only evidence."""
    review = _review_or_404(request, review_id)
    if request.method == "GET":
        if review.is_completed:
            return see_other("reports:access-review", review.pk)
        return render(request, "reports/access_review_complete.html", {"review": review})
    try:
        services.access_review_complete(actor=request.user, review=review, request=request)
    except services.AccessReviewRefused as refusal:
        messages.error(request, str(refusal))
        return _review_page(request, review, status=409)
    messages.success(request, "Access review completed: it is kept as evidence.")
    return see_other("reports:access-review", review.pk)


@login_required
@require_GET
def access_review_csv(request: AuthenticatedHttpRequest, review_id: int) -> HttpResponse:
    """The campaign's members and decisions as CSV (the evidence an auditor keeps)."""
    from .bundle import csv_bytes

    review = _review_or_404(request, review_id)
    rows = [
        (
            i.email,
            i.role,
            "yes" if i.has_mfa else "no",
            i.last_sign_in_at.isoformat() if i.last_sign_in_at else "",
            i.privileged_actions,
            i.decision,
            i.new_role,
            i.note,
            i.decided_by_label,
            i.decided_at.isoformat() if i.decided_at else "",
        )
        for i in access_review_items_of(review)
    ]
    header = [
        "email", "role", "mfa", "last_sign_in_at", "privileged_actions_90_days", "decision",
        "new_role", "note", "decided_by", "decided_at",
    ]  # fmt: skip
    response = HttpResponse(csv_bytes(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="access-review-{review.pk}-{review.started_at:%Y%m%d}.csv"'
    )
    return response


# --- Compliance reports ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def reports(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The organization's reports and the form that asks for one."""
    organization = require(request, Capability.COMPLIANCE_REPORTS)
    status = 200
    if request.method == "POST":
        form = ReportForm(request.POST)
        if form.is_valid():
            start, end = form.period()
            framework = form.cleaned_data["framework"]
            overlap = report_overlapping(organization, framework=framework, start=start, end=end)
            if overlap is None:
                report = services.report_create(
                    user=request.user,
                    organization=organization,
                    framework=framework,
                    start=start,
                    end=end,
                    request=request,
                )
                return see_other("reports:report", report.pk)
            form.add_error(
                None,
                f"A {overlap.get_framework_display()} report already covers part of this period "
                f"({overlap.period_start:%Y-%m-%d} to {overlap.period_end:%Y-%m-%d}, end "
                "excluded): open it, or choose a period that does not overlap.",
            )
        status = 400
    else:
        form = ReportForm()
    context = {"form": form, "reports": reports_of(organization)[:50]}
    return render(request, "reports/reports.html", context, status=status)


def _report_or_404(request: AuthenticatedHttpRequest, report_id: uuid.UUID) -> ComplianceReport:
    report = report_of(require(request, Capability.COMPLIANCE_REPORTS), str(report_id))
    if report is None:
        raise Http404("No such report in your organization.")
    return report


@login_required
@require_GET
def report(request: AuthenticatedHttpRequest, report_id: uuid.UUID) -> HttpResponse:
    """The report as a page, once built; its progress while the job runs."""
    found = _report_or_404(request, report_id)
    return render(request, "reports/report.html", {"report": found, "content": found.content})


@login_required
@require_GET
def report_status(request: AuthenticatedHttpRequest, report_id: uuid.UUID) -> HttpResponse:
    """The progress fragment; polls while the job runs and stops (HTTP 286) when it is done."""
    found = _report_or_404(request, report_id)
    response = render(request, "reports/_report_status.html", {"report": found})
    if found.is_finished and request.htmx:
        response = HttpResponseStopPolling(response.content)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def report_download(request: AuthenticatedHttpRequest, report_id: uuid.UUID) -> HttpResponseBase:
    found = _report_or_404(request, report_id)
    if found.status != ReportStatus.DONE:
        return HttpResponse(
            "This report is not ready yet.", status=409, content_type="text/plain; charset=utf-8"
        )
    path = report_root() / found.file_name
    if not path.exists():
        raise Http404("The report's bundle is gone.")
    services.report_downloaded_record(request=request, user=request.user, report=found)
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=(
            f"compliance-{found.framework}-{found.period_start:%Y%m%d}-"
            f"{found.period_end:%Y%m%d}.zip"
        ),
        content_type="application/zip",
    )
    response["X-Content-SHA256"] = found.sha256
    return response
