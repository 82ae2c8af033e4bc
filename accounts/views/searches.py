"""Saved searches of the Audit Log and the Activity Log: keep one by name, delete one's own."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from audit.forms import EventFilterForm

from ..access import Capability, require
from ..forms import SavedSearchForm
from ..http import AuthenticatedHttpRequest, see_other
from ..models import Organization, SearchLog
from ..selectors import membership_of, saved_search_own_of
from ..services import saved_search_create, saved_search_delete

# What a saved search keeps of the page's address: the filters, not where the page started
# nor the zone the browser happened to send.
_NOT_KEPT = ("cursor", "tz")


def kept_query(params: QueryDict) -> str:
    """The page's filters as the query string a saved search keeps."""
    kept = params.copy()
    for name in _NOT_KEPT:
        kept.pop(name, None)
    for name in [name for name, value in kept.items() if value == ""]:
        kept.pop(name)
    return kept.urlencode()


def _scope(request: AuthenticatedHttpRequest, log: str) -> tuple[Organization, str]:
    """The organization whose searches these are, and the log's address; 404 or 403 else."""
    if log == SearchLog.AUDIT:
        return require(request, Capability.VIEW_AUDIT_LOG), reverse("accounts:audit-log")
    membership = membership_of(request.user)
    if membership is None:  # platform people keep no searches: they belong to no tenant
        raise Http404("Saved searches belong to an organization.")
    return membership.organization, reverse("accounts:activity")


def _save(request: AuthenticatedHttpRequest, log: str) -> HttpResponse:
    organization, log_url = _scope(request, log)
    form = SavedSearchForm(request.POST)
    if form.is_valid():
        query = kept_query(QueryDict(form.cleaned_data["query"]))
        filters = EventFilterForm(QueryDict(query), organization_wide=log == SearchLog.AUDIT)
        if not query:
            form.add_error(None, "There is no search to save: search first, then save it.")
        elif not filters.is_valid():
            form.add_error(None, f"This search cannot be saved: {filters.error_text()}")
        else:
            search = saved_search_create(
                owner=request.user,
                organization=organization,
                log=log,
                name=form.cleaned_data["name"],
                query=query,
                shared=form.cleaned_data["shared"],
                request=request,
            )
            shared = " and shared with your organization" if search.shared else ""
            messages.success(request, f"Saved the search “{search.name}”{shared}.")
            return see_other(f"{log_url}?{query}")
    return render(
        request,
        "accounts/saved_search_form.html",
        {"form": form, "log_url": log_url},
        status=400,
    )


def _delete(request: AuthenticatedHttpRequest, log: str, search_id: int) -> HttpResponse:
    organization, log_url = _scope(request, log)
    search = saved_search_own_of(request.user, organization=organization, search_id=search_id)
    if search is None or search.log != log:
        raise Http404("No such saved search of yours.")
    if request.method == "POST":
        saved_search_delete(search=search, actor=request.user, request=request)
        messages.success(request, f"Deleted the saved search “{search.name}”.")
        return see_other(log_url)
    return render(
        request, "accounts/saved_search_delete.html", {"search": search, "log_url": log_url}
    )


@require_POST
@login_required
def audit_log_search_save(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Keep the Audit Log's current search by name."""
    return _save(request, SearchLog.AUDIT)


@require_POST
@login_required
def activity_search_save(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Keep the Activity Log's current search by name."""
    return _save(request, SearchLog.ACTIVITY)


@require_http_methods(["GET", "POST"])
@login_required
def audit_log_search_delete(request: AuthenticatedHttpRequest, search_id: int) -> HttpResponse:
    """Ask, then delete one of the person's own saved searches of the Audit Log."""
    return _delete(request, SearchLog.AUDIT, search_id)


@require_http_methods(["GET", "POST"])
@login_required
def activity_search_delete(request: AuthenticatedHttpRequest, search_id: int) -> HttpResponse:
    """Ask, then delete one of the person's own saved searches of the Activity Log."""
    return _delete(request, SearchLog.ACTIVITY, search_id)
