"""Session services: the sessions a sign-in starts, their activity, and how they end.

Each UserSession row follows one Django session (by a short hash, never the key) and every
start and end writes its audit event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from audit.context import SESSION_HASH_KEY, forget_request_context, request_context, short_hash
from audit.ip import resolve_client_ip
from audit.models import AuditEvent, EventType, Reason
from audit.services import EventSpec, event_record, events_record

from .familiarity import network_of
from .models import SessionEndReason, User, UserSession

if TYPE_CHECKING:
    from django.http import HttpRequest


def session_start(*, request: HttpRequest, user: User, method: str = "password") -> UserSession:
    """Record a successful sign-in and the session it starts (call right after login())."""
    # The session row and its events: all or none. savepoint=False: inside the sign-in's
    # transaction (the lockout lock's) this adds no statement of its own.
    with transaction.atomic(savepoint=False):
        return _session_start(request=request, user=user, method=method)


def _session_start(*, request: HttpRequest, user: User, method: str) -> UserSession:
    session = request.session
    if not session.session_key:
        # login() over another user's session flushes it and leaves the key to be made on save;
        # the session row needs it now.
        session.cycle_key()
    now = timezone.now()
    existing = session.get(SESSION_HASH_KEY)
    tracked = None
    if existing:  # signing in again inside a live session of the same user: same session
        tracked = UserSession.objects.filter(
            session_hash=existing, user=user, ended_at__isnull=True
        ).first()
    specs = [
        EventSpec(event_type=EventType.LOGIN_SUCCEEDED, actor=user, details={"method": method})
    ]
    if tracked is not None:
        tracked.session_key = session.session_key or ""
        tracked.last_activity_at = now
        tracked.save(update_fields=["session_key", "last_activity_at"])
    else:
        session[SESSION_HASH_KEY] = short_hash(session.session_key or "", purpose="session")
        forget_request_context(request)
        context = request_context(request)
        tracked = UserSession.objects.create(
            user=user,
            organization_id=getattr(getattr(user, "membership", None), "organization_id", None),
            session_key=session.session_key or "",
            session_hash=session[SESSION_HASH_KEY],
            **context.client_fields(),
            network=network_of(context.ip_address),
            started_at=now,
            last_activity_at=now,
        )
        session[SESSION_NETWORK_KEY] = tracked.network
        session[SESSION_STARTED_KEY] = now.timestamp()
        specs.append(
            EventSpec(
                event_type=EventType.SESSION_STARTED,
                actor=user,
                details={"expires_at": session.get_expiry_date().isoformat()},
            )
        )
    events_record(specs=specs, request=request)
    return tracked


# When the tracked session started (a POSIX timestamp), for the access policies' lifetime limit
# (accounts.enforcement) without a query.
SESSION_STARTED_KEY = "_am_started"


# Recorded in session.ended's details when a sign-in in the same browser ended the session.
ENDED_BY_SIGN_IN = "sign_in"


def session_end_replaced(*, request: HttpRequest) -> None:
    """End the session the request came with, before a sign-in gives the browser a new one.

    Call once the credentials are verified, right before login() (or the two-step sign-in's
    pending state). A signed-in session (anyone's: the same user, another one, or one planted by
    an attacker) is recorded as session.ended, reason logout, with ended_by "sign_in"; then the
    stored session is deleted, so the key the browser came with is dead and login() makes a new
    one (no session fixation, whatever Django's login() would keep for the same user).
    """
    session = request.session
    session_hash = session.get(SESSION_HASH_KEY, "")
    tracked = None
    if session_hash:
        tracked = (
            UserSession.objects.filter(session_hash=session_hash, ended_at__isnull=True)
            .select_related("user__membership")
            .first()
        )
    if tracked is not None:
        with transaction.atomic():
            _session_end_claim(
                tracked,
                end_reason=SessionEndReason.LOGOUT,
                event_type=EventType.SESSION_ENDED,
                reason=Reason.LOGOUT,
                details={"ended_by": ENDED_BY_SIGN_IN},
                request=request,
            )
    session.flush()
    forget_request_context(request)


def session_end_current(*, request: HttpRequest, user: User) -> None:
    """Record a sign-out and the end of its session (call before the session is flushed)."""
    session_hash = request.session.get(SESSION_HASH_KEY, "")
    now = timezone.now()
    specs = [EventSpec(event_type=EventType.LOGOUT, actor=user)]
    if session_hash:
        ended = UserSession.objects.filter(session_hash=session_hash, ended_at__isnull=True).update(
            ended_at=now, end_reason=SessionEndReason.LOGOUT
        )
        if ended:
            specs.append(
                EventSpec(event_type=EventType.SESSION_ENDED, actor=user, reason=Reason.LOGOUT)
            )
    events_record(specs=specs, request=request)


def sessions_end(
    *,
    user: User,
    reason: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
    keep_current: bool = False,
    only_hash: str | None = None,
) -> int:
    """End the user's open sessions (all, all but the request's, or one); returns how many."""
    current_hash = request.session.get(SESSION_HASH_KEY, "") if request is not None else ""
    open_sessions = UserSession.objects.filter(user=user, ended_at__isnull=True)
    if only_hash is not None:
        open_sessions = open_sessions.filter(session_hash=only_hash)
    if keep_current and current_hash:
        open_sessions = open_sessions.exclude(session_hash=current_hash)
    now = timezone.now()
    specs = []
    with transaction.atomic():
        for tracked in open_sessions.select_for_update():
            UserSession.objects.filter(pk=tracked.pk).update(ended_at=now, end_reason=reason)
            Session.objects.filter(session_key=tracked.session_key).delete()
            specs.append(
                EventSpec(
                    event_type=EventType.SESSION_ENDED,
                    reason=reason,
                    actor=actor or user,
                    target_user=user if actor is not None and actor != user else None,
                    session_hash=tracked.session_hash,
                    details={"started_at": tracked.started_at.isoformat()},
                )
            )
        if specs:
            events_record(specs=specs, request=request)
    return len(specs)


def session_end_by_policy(
    *, request: HttpRequest, expired: bool, rule: str, details: Mapping[str, str]
) -> None:
    """End the request's session because an access policy no longer admits it, and sign out.

    expired (an idle or lifetime limit): session.expired, reason expired; otherwise (the network
    or the hours no longer allowed): session.ended, reason policy. Either with the rule in the
    details. Not a sign-out: no logout event, no user_logged_out signal.
    """
    session_hash = request.session.get(SESSION_HASH_KEY, "")
    tracked = (
        UserSession.objects.filter(session_hash=session_hash, ended_at__isnull=True)
        .select_related("user__membership")
        .first()
        if session_hash
        else None
    )
    if tracked is not None:
        with transaction.atomic():
            _session_end_claim(
                tracked,
                end_reason=SessionEndReason.EXPIRED if expired else SessionEndReason.POLICY,
                event_type=EventType.SESSION_EXPIRED if expired else EventType.SESSION_ENDED,
                reason=Reason.EXPIRED if expired else Reason.POLICY,
                details={"policy": rule, **details},
                request=request,
            )
    request.session.flush()
    request.user = AnonymousUser()
    forget_request_context(request)


def session_rekey(*, request: HttpRequest) -> None:
    """Follow the session to its new key after Django cycled it (password change)."""
    session_hash = request.session.get(SESSION_HASH_KEY)
    if session_hash and request.session.session_key:
        UserSession.objects.filter(session_hash=session_hash).update(
            session_key=request.session.session_key
        )


# Last activity is written at most this often per session, not on every request.
SESSION_TOUCH_INTERVAL = 60
SESSION_TOUCHED_KEY = "_am_touched"


def session_touch(*, request: HttpRequest) -> bool:
    """Move the session's last-activity time forward, at most once a minute; True if it did."""
    session = request.session
    session_hash = session.get(SESSION_HASH_KEY)
    if not session_hash:
        return False
    now = timezone.now()
    touched = session.get(SESSION_TOUCHED_KEY)
    if isinstance(touched, (int, float)) and now.timestamp() - touched < SESSION_TOUCH_INTERVAL:
        return False
    session[SESSION_TOUCHED_KEY] = int(now.timestamp())
    UserSession.objects.filter(session_hash=session_hash, ended_at__isnull=True).update(
        last_activity_at=now
    )
    return True


# The network (accounts.familiarity.network_of: IPv4 /24, IPv6 /64, as the smart lockout's) the
# session's latest request came from, kept in the session itself: a request from the same
# network costs a dictionary lookup, not a query.
SESSION_NETWORK_KEY = "_am_network"


def _request_network(request: HttpRequest) -> tuple[str | None, str]:
    """The request's client address and its network, without the rest of the request context."""
    meta = request.META
    ip = resolve_client_ip(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES
    ).ip
    return ip, network_of(ip)


def session_location_track(*, request: HttpRequest, user: User) -> AuditEvent | None:
    """Record session.location_changed when a signed-in session is used from a new network.

    New means neither the network the session started in nor the one last recorded for it, so
    a session moving back and forth between two places is recorded once. Returns the event, if
    one was recorded. A request from the network of the session's previous request (nearly
    every request) costs no query and no GeoIP lookup.
    """
    session = request.session
    session_hash = session.get(SESSION_HASH_KEY)
    if not session_hash:
        return None
    ip, network = _request_network(request)
    if not network or session.get(SESSION_NETWORK_KEY) == network:
        return None
    session[SESSION_NETWORK_KEY] = network
    tracked = UserSession.objects.filter(session_hash=session_hash, ended_at__isnull=True).first()
    if tracked is None:
        return None
    started = {
        "ip": tracked.ip_address,
        # Sessions from before the smart lockout have no network stored.
        "network": tracked.network or network_of(tracked.ip_address),
        "country": tracked.country,
    }
    if network in (started["network"], tracked.moved_network):
        return None
    place = request_context(request).geo
    # A conditional update: of two requests arriving from the new network at once, one records.
    claimed = UserSession.objects.filter(pk=tracked.pk, moved_network=tracked.moved_network).update(
        moved_ip=ip, moved_network=network, moved_country=place.country
    )
    if not claimed:
        return None
    if not started["network"] and not tracked.moved_network:
        # Started without a usable address (an unparsable forwarding header): its first known
        # place is where it is, not a move. Later moves are compared with it.
        return None
    previous = (
        {"ip": tracked.moved_ip, "network": tracked.moved_network, "country": tracked.moved_country}
        if tracked.moved_network
        else started
    )
    return event_record(
        event_type=EventType.SESSION_LOCATION_CHANGED,
        actor=user,
        details={
            "session_started_at": tracked.started_at.isoformat(),
            "started": started,
            "previous": previous,
            "new": {"ip": ip, "network": network, "country": place.country},
        },
        request=request,
    )


def session_expire_stale(*, batch_size: int = 500) -> int:
    """Record session.expired, once each, for sessions that ran out without a sign-out."""
    now = timezone.now()
    live_keys = Session.objects.filter(expire_date__gt=now).values("session_key")
    stale = (
        UserSession.objects.filter(ended_at__isnull=True, started_at__lt=now)
        .exclude(session_key__in=live_keys)
        .select_related("user__membership")
    )
    expired = 0
    for tracked in stale[:batch_size]:
        with transaction.atomic():
            claimed = _session_end_claim(
                tracked,
                end_reason=SessionEndReason.EXPIRED,
                event_type=EventType.SESSION_EXPIRED,
                reason=Reason.EXPIRED,
                details={"last_activity_at": tracked.last_activity_at.isoformat()},
                now=now,
            )
            if not claimed:
                continue
            Session.objects.filter(session_key=tracked.session_key).delete()
        expired += 1
    return expired


def _session_end_claim(
    tracked: UserSession,
    *,
    end_reason: str,
    event_type: str,
    reason: str,
    details: Mapping[str, str],
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> bool:
    """End a session that is still open and record its event; False if it had ended already.

    A conditional update: of two callers ending the same session, the second claims nothing.
    """
    claimed = UserSession.objects.filter(pk=tracked.pk, ended_at__isnull=True).update(
        ended_at=now or timezone.now(), end_reason=end_reason
    )
    if claimed:
        events_record(
            specs=[
                EventSpec(
                    event_type=event_type,
                    reason=reason,
                    actor=tracked.user,
                    session_hash=tracked.session_hash,
                    details={"started_at": tracked.started_at.isoformat(), **details},
                )
            ],
            request=request,
        )
    return bool(claimed)
