"""Request types for annotations, and the answer every successful POST gives (303 See Other).

Django's HttpRequest says its user may be anonymous and knows nothing of ``request.htmx``. A view
behind ``@login_required`` (or an admin action, behind the admin's staff check) takes an
``AuthenticatedHttpRequest``; a view anyone may reach that asks ``request.htmx`` takes an
``HtmxHttpRequest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import resolve_url

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from .models import User


class HtmxHttpRequest(HttpRequest):
    # Set on every request by django_htmx's HtmxMiddleware (settings.MIDDLEWARE).
    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    user: User


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def see_other(to: Any, *args: Any, **kwargs: Any) -> HttpResponseSeeOther:
    """Redirect after a POST so that reloading the page GETs it and repeats nothing."""
    return HttpResponseSeeOther(resolve_url(to, *args, **kwargs))
