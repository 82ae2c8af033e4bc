"""Settings → Security → Sign-in throttling: the organization's limits and allowlist."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from ..access import Capability, require
from ..forms import ThrottleSettingsForm
from ..http import AuthenticatedHttpRequest, see_other
from ..models import Organization
from ..services import organization_throttle_update
from ..throttling import Limits

# Form field -> Organization field.
_FIELDS = {
    "ip_burst": "throttle_ip_burst",
    "ip_refill_seconds": "throttle_ip_refill_seconds",
    "account_burst": "throttle_account_burst",
    "account_refill_seconds": "throttle_account_refill_seconds",
    "allowlist": "throttle_allowlist",
}


def _initial(organization: Organization) -> dict[str, object]:
    initial = {name: getattr(organization, field) for name, field in _FIELDS.items()}
    initial["allowlist"] = "\n".join(organization.throttle_allowlist or [])
    return initial


def _page(
    request: AuthenticatedHttpRequest,
    organization: Organization,
    form: ThrottleSettingsForm,
    *,
    status: int = 200,
) -> HttpResponse:
    context = {
        "organization": organization,
        "form": form,
        "limits": Limits.of(organization),
        "defaults": Limits.of(None),
        "platform_allowlist": [n.with_prefixlen for n in settings.THROTTLE_ALLOWLIST],
        "redis_down": settings.THROTTLE_REDIS_DOWN,
        "window_minutes": settings.THROTTLE_EVENT_WINDOW_SECONDS // 60,
    }
    return render(request, "accounts/throttling.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def throttling(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The organization's throttle limits (empty: the platform's) and allowlist."""
    organization = require(request, Capability.MANAGE_THROTTLING)
    if request.method != "POST":
        return _page(request, organization, ThrottleSettingsForm(initial=_initial(organization)))
    form = ThrottleSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Sign-in throttling was not saved: see below.")
        return _page(request, organization, form, status=400)
    changed = organization_throttle_update(
        admin=request.user,
        organization=organization,
        values={field: form.cleaned_data[name] for name, field in _FIELDS.items()},
        request=request,
    )
    messages.success(request, "Sign-in throttling saved." if changed else "Nothing changed.")
    return see_other("accounts:throttling")
