"""/metrics: Prometheus' scrape, for the platform operator or a bearer token (METRICS_TOKEN)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from accounts.access import is_platform_operator

from .metrics import metrics_text


def _token_matches(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _refused(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Every app's metrics, for the platform operator (signed in) or a scraper with the token."""
    if not (_token_matches(request) or is_platform_operator(request.user)):
        if request.headers.get("Authorization") or not request.user.is_authenticated:
            return _refused(401, "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.")
        return _refused(403, "Metrics are for the platform operator.")
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
