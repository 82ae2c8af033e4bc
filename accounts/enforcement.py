"""Access policies at sign-in and on every request: the hook an app above accounts plugs into.

accounts owns the sign-in flow and the sessions, but sits below the feature apps (the import
layers of pyproject.toml) and cannot read their tables. The app that keeps the organization's
access policies (policies) registers an Enforcer in its AppConfig.ready(), as apps register
overview panels (accounts.overview). The sign-in asks it once the password and any second factor
are right; AccountSecurityMiddleware asks it on every signed-in request. With no enforcer
registered, every sign-in and every session is admitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils import timezone

from audit.context import SESSION_HASH_KEY
from audit.ip import resolve_client_ip

from .sessions import SESSION_STARTED_KEY, SESSION_TOUCHED_KEY

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import User


@dataclass(frozen=True)
class Refusal:
    """A sign-in the policy refuses: the rule (stored in login.failed's details) and why."""

    rule: str
    message: str
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionFacts:
    """What a request knows of its session without a query."""

    ip: str | None
    started_at: datetime | None
    last_active_at: datetime | None


@dataclass(frozen=True)
class SessionVerdict:
    """A session the policy ends: expired (idle, lifetime: session.expired) or no longer
    allowed (network, hours: session.ended, reason policy)."""

    expired: bool
    rule: str
    message: str
    details: Mapping[str, str] = field(default_factory=dict)


class Enforcer(Protocol):
    def sign_in_refusal(self, *, user: User, ip: str | None, now: datetime) -> Refusal | None:
        """Why this sign-in may not go on, or None (read only: it records nothing)."""

    def sign_in_admitted(self, *, user: User, request: HttpRequest) -> None:
        """Apply what follows a sign-in (after its session started): e.g. a session limit."""

    def session_verdict(
        self, *, user: User, facts: SessionFacts, now: datetime
    ) -> SessionVerdict | None:
        """Why this signed-in session must end now, or None (read only)."""


# By name: registering again (a second ready(), a test) replaces instead of doubling.
_enforcers: dict[str, Enforcer] = {}


def enforcer_register(name: str, enforcer: Enforcer) -> None:
    """Add (or replace, by name) an enforcer of access policies."""
    _enforcers[name] = enforcer


def request_ip(request: HttpRequest) -> str | None:
    """The request's client address (the trusted-proxy resolution every event uses)."""
    meta = request.META
    return resolve_client_ip(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES
    ).ip


def sign_in_refusal(*, user: User, request: HttpRequest) -> Refusal | None:
    """The first refusal of a registered enforcer for this sign-in, or None."""
    if not _enforcers:
        return None
    ip, now = request_ip(request), timezone.now()
    for enforcer in _enforcers.values():
        refusal = enforcer.sign_in_refusal(user=user, ip=ip, now=now)
        if refusal is not None:
            return refusal
    return None


def sign_in_admitted(*, user: User, request: HttpRequest) -> None:
    for enforcer in _enforcers.values():
        enforcer.sign_in_admitted(user=user, request=request)


def session_verdict(*, user: User, request: HttpRequest) -> SessionVerdict | None:
    """The first verdict of a registered enforcer on the request's tracked session, or None.

    Last activity is the session's touch time (accounts.sessions.session_touch, written at most
    once a minute), so an idle limit can end a session up to a minute early, never late.
    """
    session = request.session
    if not _enforcers or not session.get(SESSION_HASH_KEY):
        return None
    started, touched = session.get(SESSION_STARTED_KEY), session.get(SESSION_TOUCHED_KEY)
    started_at = _moment(started)
    facts = SessionFacts(
        ip=request_ip(request),
        started_at=started_at,
        last_active_at=_moment(touched) or started_at,
    )
    now = timezone.now()
    for enforcer in _enforcers.values():
        verdict = enforcer.session_verdict(user=user, facts=facts, now=now)
        if verdict is not None:
            return verdict
    return None


def _moment(value: object) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    return None
