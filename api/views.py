"""GET /api/v1/events (Enterprise tier, token auth) and Settings → Security → API tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import Capability, require
from accounts.http import AuthenticatedHttpRequest, see_other
from accounts.models import Organization
from accounts.selectors import event_filters_with_members
from accounts.throttling import (
    Purpose,
    api_throttled_message,
    throttle_attempt,
    throttle_refund,
    throttled_response,
)
from audit.context import request_context
from audit.selectors import events_matching
from audit.serialization import event_json
from audit.viewed import audit_log_viewed_record

from . import services
from .feed import FeedCursorError, feed_page
from .forms import EventFeedForm
from .models import ApiToken

# --- The API -----------------------------------------------------------------------------------


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    response = JsonResponse({"error": message, **extra}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="activity-monitor"'
    return response


def _refused(form: EventFeedForm) -> JsonResponse:
    fields = {name: list(errors) for name, errors in form.errors.items()}
    return _error(400, form.refusal(), fields=fields)


def _token_from(request: HttpRequest) -> ApiToken | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return (
        ApiToken.objects.select_related("organization", "created_by")
        .filter(token_hash=services.token_hash(secret.strip()), revoked_at__isnull=True)
        .first()
    )


@csrf_exempt
@require_GET
def events(request: HttpRequest) -> JsonResponse:
    """The organization's events in feed order; poll with next_cursor to get each exactly once."""
    # Token checks are throttled per client IP (accounts.throttling); a valid token gives its
    # charge back, so only guesses use the bucket up.
    decision = throttle_attempt(request=request, purpose=Purpose.API_TOKEN)
    if not decision.allowed:
        return throttled_response(
            _error(
                429,
                api_throttled_message(decision.retry_after),
                retry_after=decision.retry_after,
            ),
            decision,
        )
    token = _token_from(request)
    if token is None:
        return _error(401, "Send a valid, unrevoked API token: Authorization: Bearer <token>.")
    throttle_refund(decision=decision)
    organization = token.organization
    if not organization.has_api:
        return _error(
            403,
            f"The events API is part of the Enterprise tier; {organization.name} is on "
            f"{organization.get_tier_display()}.",
            tier=organization.tier,
        )
    form = EventFeedForm(request.GET)
    if not form.is_valid():
        return _refused(form)
    try:
        page = feed_page(
            events_matching(
                filters=event_filters_with_members(form.filters(), organization=organization),
                organization=organization,
            ),
            organization_id=organization.pk,
            cursor=form.cleaned_data["cursor"],
            limit=form.cleaned_data["limit"],
        )
    except FeedCursorError as exc:
        form.add_error("cursor", str(exc))
        return _refused(form)
    context = request_context(request)
    services.api_token_used(token=token, ip_address=context.ip_address)
    audit_log_viewed_record(
        request=request,
        organization=organization,
        looked_at={
            "filters": form.canonical(),
            "via": "api",
            "api_token_id": token.pk,
            "api_token_prefix": token.prefix,
        },
        actor=token.created_by,
        actor_label=token.label,
        dedup_key=f"api:{token.pk}",
    )
    return JsonResponse(
        {
            "events": [event_json(event) for event in page.events],
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
        }
    )


# --- Settings → Security → API tokens ------------------------------------------------------------


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. SIEM import.",
        error_messages={"required": "Give the token a name, so you can tell it apart later."},
    )


# The new token's secret, kept in the session for the one page that shows it after the redirect:
# never in the URL, a message or an event, and gone once shown.
_SHOW_ONCE_KEY = "api.created_once"


def _tokens_page(
    request: AuthenticatedHttpRequest,
    organization: Organization,
    form: TokenForm,
    *,
    created_secret: str | None = None,
    status: int = 200,
) -> HttpResponse:
    response = render(
        request,
        "api/tokens.html",
        {
            "organization": organization,
            "form": form,
            "tokens": ApiToken.objects.filter(organization=organization).select_related(
                "created_by"
            ),
            "created_secret": created_secret,
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    organization = require(request, Capability.MANAGE_API_TOKENS)
    if request.method != "POST":
        secret = request.session.pop(_SHOW_ONCE_KEY, None)
        return _tokens_page(request, organization, TokenForm(), created_secret=secret)
    if not organization.has_api:
        raise PermissionDenied("API tokens need the Enterprise tier.")
    form = TokenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The token was not created: correct the field below.")
        return _tokens_page(request, organization, form, status=400)
    token, secret = services.api_token_create(
        organization=organization,
        user=request.user,
        name=form.cleaned_data["name"],
        request=request,
    )
    request.session[_SHOW_ONCE_KEY] = secret
    messages.success(request, f"Created the token “{token.name}”. Copy it now: it is shown once.")
    return see_other("api:tokens")


def _token_or_404(request: AuthenticatedHttpRequest, token_id: int) -> ApiToken:
    organization = require(request, Capability.MANAGE_API_TOKENS)
    token = ApiToken.objects.filter(organization=organization, pk=token_id).first()
    if token is None:
        raise Http404("No such token in your organization.")
    return token


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    """Ask, then revoke the token."""
    token = _token_or_404(request, token_id)
    if request.method != "POST":
        return render(request, "api/token_revoke.html", {"token": token})
    if services.api_token_revoke(token=token, user=request.user, request=request):
        messages.success(
            request, f"Revoked the token “{token.name}”. Requests that send it are now refused."
        )
    else:
        messages.info(request, f"The token “{token.name}” was already revoked.")
    return see_other("api:tokens")
