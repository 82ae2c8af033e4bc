"""The throttle's fast path: an address already refused is answered before Django's stack.

A flood from addresses whose IP bucket is empty would otherwise cost a whole request each: the
sessions, CSRF and authentication middleware, the user and domain lookups that find the
organization's limits, and the sign-in page rendered with its context processors. Here, near the
top of MIDDLEWARE, a throttled endpoint's request (a sign-in or reset POST, an API GET) asks
Redis one question about its client IP's bucket, without charging it: did the full path
(accounts.throttling) refuse this address, is its bucket still empty, and is the event window
that refusal opened still the current one? Then the refusal is counted in that window and the
answer is HTTP 429 with Retry-After and the page's sentence, from a page rendered once per
sentence (no request context, no database query, no password hash). Otherwise, or if Redis does
not answer, the request goes on to the full path, which decides as it always has.

What the fast path relies on (accounts.throttle_store `mark` and `refusal`):
- The full path notes in the IP bucket, at each refusal by that bucket, when the bucket has a
  token again (at the limits that refusal applied) and the window key it counted in. A charge or
  a refund clears the note, so the fast path never refuses longer than the full path would.
- The window's login.throttled is always written by the full path (the window's first refused
  attempt); the fast path only counts, in the window of the organization that refusal was for.
  So an address attacking several organizations is counted in the Audit Log of the one whose
  attempt was refused first in the window (the IP bucket is one for every organization anyway).
- The platform's allowlist is checked here; an address on any organization's allowlist is never
  noted (the organization is not known before the full path). An entry added while an address
  is noted applies once the noted refusal's Retry-After has passed.
- It answers before CSRF and sessions: a refusal changes nothing but a count, reads no cookie
  and sets none of them (the device cookie of audit.middleware aside).
- Without Redis (the database's buckets, `make run`) or while it is down, every request takes
  the full path: no database work is added. After a Redis error the fast path stands aside for
  a few seconds, so an outage costs no second timeout per request.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers

from audit.ip import parse_ip

from .throttle_store import RedisStore, StoreUnavailable
from .throttling import (
    KEY_PREFIX,
    Purpose,
    api_throttled_message,
    client_ip,
    ip_key,
    reset_throttled_message,
    sign_in_throttled_message,
)

logger = logging.getLogger(__name__)

# After a Redis error, the fast path stands aside this long (the full path has its own fallback).
STAND_ASIDE_SECONDS = 5.0
_stand_aside_until = 0.0

# The throttled endpoints by URL name, and the methods the full path throttles there.
ENDPOINTS: dict[str, tuple[Purpose, frozenset[str]]] = {
    "accounts:login": (Purpose.SIGN_IN, frozenset({"POST"})),
    "accounts:passkey-sign-in": (Purpose.SIGN_IN, frozenset({"POST"})),
    "accounts:password-reset": (Purpose.PASSWORD_RESET, frozenset({"POST"})),
    "api:events": (Purpose.API_TOKEN, frozenset({"GET", "HEAD"})),
}


@functools.cache
def _paths(urlconf: str) -> dict[str, tuple[Purpose, frozenset[str]]]:
    """The endpoints' paths in a URLconf (one without an endpoint simply lacks it)."""
    paths = {}
    for name, endpoint in ENDPOINTS.items():
        try:
            paths[reverse(name, urlconf=urlconf)] = endpoint
        except NoReverseMatch:
            continue
    return paths


def fast_refusal(request: HttpRequest, purpose: Purpose) -> int | None:
    """Retry-After seconds if the client's address may be refused without the full path (the
    refusal counted in its window), else None. One Redis round trip; never raises."""
    global _stand_aside_until
    url = settings.THROTTLE_REDIS_URL
    if not settings.THROTTLE_ENABLED or not url or time.monotonic() < _stand_aside_until:
        return None
    ip = client_ip(request)
    address = parse_ip(ip or "")
    if address is not None and any(
        address.version == net.version and address in net for net in settings.THROTTLE_ALLOWLIST
    ):
        return None
    key = f"{KEY_PREFIX}{purpose}:ip:{ip_key(ip)}"
    try:
        wait = RedisStore(url).refusal(key, settings.THROTTLE_EVENT_WINDOW_SECONDS)
    except (StoreUnavailable, redis.RedisError) as exc:
        _stand_aside_until = time.monotonic() + STAND_ASIDE_SECONDS
        logger.info("throttle fast path: Redis did not answer (%s); the full path decides", exc)
        return None
    return None if wait is None else max(1, math.ceil(wait))


@functools.lru_cache(maxsize=256)
def _page(purpose: Purpose, sentence: str) -> bytes:
    """The refusal page for a sentence, rendered once: no request, so no context processors
    (nobody is signed in on it, and it holds no form: the person must wait anyway)."""
    context = {
        "title": "Sign in" if purpose is Purpose.SIGN_IN else "Reset your password",
        "sentence": sentence,
        "again_url": reverse(
            "accounts:login" if purpose is Purpose.SIGN_IN else "accounts:password-reset"
        ),
        "offer_reset": purpose is Purpose.SIGN_IN,
    }
    return render_to_string("accounts/throttled.html", context).encode()


def refusal_response(purpose: Purpose, retry_after: int) -> HttpResponse:
    """HTTP 429 with Retry-After and the endpoint's sentence, as the full path answers."""
    response: HttpResponse
    if purpose is Purpose.API_TOKEN:
        response = JsonResponse(
            {"error": api_throttled_message(retry_after), "retry_after": retry_after},
            status=429,
        )
    else:
        sentence = (
            sign_in_throttled_message(retry_after)
            if purpose is Purpose.SIGN_IN
            else reset_throttled_message(retry_after)
        )
        response = HttpResponse(_page(purpose, sentence), status=429)
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    # XFrameOptionsMiddleware is below this one; SecurityMiddleware and CSP's are above.
    response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
    return response


class ThrottleFastPathMiddleware:
    """Goes right after audit's RequestContextMiddleware, before sessions and CSRF."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        urlconf = getattr(request, "urlconf", None) or settings.ROOT_URLCONF
        endpoint = _paths(urlconf).get(request.path_info)
        if endpoint is not None and request.method in endpoint[1]:
            retry_after = fast_refusal(request, endpoint[0])
            if retry_after is not None:
                return refusal_response(endpoint[0], retry_after)
        return self.get_response(request)
