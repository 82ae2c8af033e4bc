"""Settings → Security → Log integrity: the seals, the last verification and its button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import Capability, require
from accounts.http import AuthenticatedHttpRequest, see_other
from activity_monitor.celery import enqueue

from .keys import SigningKeyError, signing_key
from .selectors import integrity_status
from .tasks import integrity_verify as integrity_verify_task


@login_required
@require_GET
def integrity(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VERIFY_INTEGRITY)
    try:
        signing_key()
        key_problem = ""
    except SigningKeyError as exc:
        key_problem = str(exc)
    context = {
        "organization": organization,
        "status": integrity_status(organization.pk),
        "key_problem": key_problem,
    }
    return render(request, "integrity/integrity.html", context)


@login_required
@require_POST
def verify(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.VERIFY_INTEGRITY)
    user_id = request.user.pk
    # Queued: a large log takes minutes; the result is an event, shown on the page.
    transaction.on_commit(lambda: enqueue(integrity_verify_task, organization.pk, user_id))
    messages.success(
        request,
        "Verification started: the result appears below when it ends (refresh the page).",
    )
    return see_other("integrity:integrity")
