"""Who, where and with what a request came: computed once per request, on first use."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest

from .geo import EMPTY as NO_GEO
from .geo import GeoLocation, locate
from .ip import resolve_client_ip
from .sanitize import clean_text
from .useragent import MAX_USER_AGENT, parse_user_agent

SESSION_HASH_KEY = "_audit_session_hash"


@dataclass(frozen=True)
class RequestContext:
    ip_address: str | None = None
    user_agent: str = ""
    browser: str = ""
    os: str = ""
    device_type: str = ""
    device_id: str = ""
    geo: GeoLocation = NO_GEO
    request_id: str = ""
    session_hash: str = ""
    # Facts about the request that belong in the event's details (an unparsable forwarding
    # header, a truncated user agent).
    notes: dict[str, str] = field(default_factory=dict)

    def client_fields(self) -> dict[str, str | None]:
        """Address, user agent, device and place, as events and session rows name the fields."""
        return {
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "browser": self.browser,
            "os": self.os,
            "device_type": self.device_type,
            "device_id": self.device_id,
            "country": self.geo.country,
            "city": self.geo.city,
        }


EMPTY_CONTEXT = RequestContext()


def short_hash(value: str, *, purpose: str) -> str:
    """A 16-hex-digit keyed hash: identifies a secret-derived value without revealing it."""
    key = f"{purpose}:{settings.SECRET_KEY}".encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def _build(request: HttpRequest) -> RequestContext:
    meta = request.META
    notes: dict[str, str] = {}
    resolved = resolve_client_ip(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES
    )
    if resolved.unparsable_header is not None:
        notes["unparsable_client_ip"] = clean_text(resolved.unparsable_header, 512)
    raw_agent = meta.get("HTTP_USER_AGENT", "")
    agent = clean_text(raw_agent, MAX_USER_AGENT)
    if len(raw_agent) > MAX_USER_AGENT:
        notes["user_agent_truncated_from"] = str(len(raw_agent))
    parsed = parse_user_agent(agent)
    device_cookie = request.COOKIES.get(settings.DEVICE_COOKIE_NAME) or getattr(
        request, "new_device_cookie", ""
    )
    session = getattr(request, "session", None)
    session_hash = ""
    if session is not None and session.session_key:
        session_hash = session.get(SESSION_HASH_KEY, "")
    return RequestContext(
        ip_address=resolved.ip,
        user_agent=agent,
        browser=parsed.browser,
        os=parsed.os,
        device_type=parsed.device_type,
        device_id=short_hash(device_cookie, purpose="device") if device_cookie else "",
        geo=locate(resolved.ip),
        request_id=getattr(request, "request_id", ""),
        session_hash=session_hash,
        notes=notes,
    )


def request_context(request: HttpRequest | None) -> RequestContext:
    """Return the request's context, computing it on first use; None gives an empty one."""
    if request is None:
        return EMPTY_CONTEXT
    cached = getattr(request, "_audit_context", None)
    if cached is None:
        cached = _build(request)
        # HttpRequest declares no such attribute: the cache is ours.
        request._audit_context = cached  # type: ignore[attr-defined]
    return cached


def forget_request_context(request: HttpRequest) -> None:
    """Drop the cached context, e.g. after sign-in gave the request a new session."""
    if hasattr(request, "_audit_context"):
        del request._audit_context
