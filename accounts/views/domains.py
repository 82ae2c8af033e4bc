"""Settings → Security → Email domains: list a domain, prove it by DNS, remove it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from ..access import Capability, require
from ..domains import (
    TXT_LABEL,
    DomainRefused,
    organization_domain_add,
    organization_domain_remove,
    organization_domain_verify,
    txt_record_value,
)
from ..forms import DomainAddForm
from ..http import AuthenticatedHttpRequest, see_other
from ..models import OrganizationDomain
from ..selectors import domain_of, domains_of


def _domain_or_404(request: AuthenticatedHttpRequest, domain_id: int) -> OrganizationDomain:
    domain = domain_of(require(request, Capability.MANAGE_DOMAINS), domain_id)
    if domain is None:
        raise Http404("No such domain in your organization.")
    return domain


def _domains_page(
    request: AuthenticatedHttpRequest, form: DomainAddForm | None = None, *, status: int = 200
) -> HttpResponse:
    organization = require(request, Capability.MANAGE_DOMAINS)
    rows = [(domain, txt_record_value(domain)) for domain in domains_of(organization)]
    context = {
        "organization": organization,
        "rows": rows,
        "form": form or DomainAddForm(),
        "txt_label": TXT_LABEL,
    }
    return render(request, "accounts/domains.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def domains(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The organization's email domains and the form that adds one."""
    organization = require(request, Capability.MANAGE_DOMAINS)
    if request.method != "POST":
        return _domains_page(request)
    form = DomainAddForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The domain was not added: see below.")
        return _domains_page(request, form, status=400)
    try:
        added = organization_domain_add(
            organization=organization,
            domain=form.cleaned_data["domain"],
            actor=request.user,
            request=request,
        )
    except DomainRefused as refusal:
        form.add_error("domain", str(refusal))
        messages.error(request, "The domain was not added: see below.")
        return _domains_page(request, form, status=409)
    messages.success(
        request, f"Added {added.domain}. Publish its TXT record (below), then verify it."
    )
    return see_other("accounts:domains")


# Not atomic: the DNS lookup may take the whole timeout, and no transaction may stay open that
# long; the verification is a transaction of its own (accounts.domains).
@transaction.non_atomic_requests
@login_required
@require_POST
def domain_verify(request: AuthenticatedHttpRequest, domain_id: int) -> HttpResponse:
    """Look the domain's TXT record up now; verified, or a message saying what was found."""
    domain = _domain_or_404(request, domain_id)
    try:
        outcome = organization_domain_verify(domain=domain, actor=request.user, request=request)
    except DomainRefused as refusal:
        messages.error(request, str(refusal))
        return _domains_page(request, status=409)
    if not outcome.verified:
        messages.error(request, outcome.message)
        return _domains_page(request, status=409)
    messages.success(request, outcome.message)
    return see_other("accounts:domains")


@login_required
@require_http_methods(["GET", "POST"])
def domain_remove(request: AuthenticatedHttpRequest, domain_id: int) -> HttpResponse:
    """Ask, then remove the domain."""
    domain = _domain_or_404(request, domain_id)
    if request.method != "POST":
        return render(request, "accounts/domain_remove.html", {"domain": domain})
    if organization_domain_remove(domain=domain, actor=request.user, request=request):
        messages.success(
            request,
            f"Removed {domain.domain}. From now on, failed sign-ins for unknown addresses at it "
            "are not recorded for your organization (those already recorded stay).",
        )
    else:
        messages.info(request, f"{domain.domain} was already removed.")
    return see_other("accounts:domains")
