"""Request types for annotations: what middleware and sign-in checks put on a request.

Django's HttpRequest says its user may be anonymous and knows nothing of ``request.htmx``. A view
behind ``@login_required`` (or an admin action, behind the admin's staff check) takes an
``AuthenticatedHttpRequest``; a view anyone may reach that asks ``request.htmx`` takes an
``HtmxHttpRequest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from .models import User


class HtmxHttpRequest(HttpRequest):
    # Set on every request by django_htmx's HtmxMiddleware (settings.MIDDLEWARE).
    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    user: User
