"""The server error page: a plain 503 when the database is out of reach, else Django's 500."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults

# What a client is asked to wait before trying again while the database is away.
RETRY_AFTER_SECONDS = 30


def server_error(request: HttpRequest) -> HttpResponse:
    """Answer 503 for a database that cannot be reached, Django's 500 page for anything else.

    Django calls handler500 while it handles the exception, so sys.exc_info() holds it, whether
    a view or a middleware (the session, the signed-in user) raised it. The 503 page is
    rendered without the request: no context processor, session or query can touch the
    database that just failed.
    """
    error = sys.exc_info()[1]
    if isinstance(error, OperationalError | InterfaceError):
        response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return defaults.server_error(request)
