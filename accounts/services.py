"""Writes for accounts: lockouts, sessions and password events, each with its audit events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from audit.context import SESSION_HASH_KEY, forget_request_context, request_context, short_hash
from audit.models import EventType, Outcome, Reason
from audit.services import EventSpec, event_record, events_record

from .lockout import lockout_release_locked
from .models import (
    LockoutState,
    Membership,
    MfaPolicy,
    Organization,
    Role,
    SessionEndReason,
    User,
    UserSession,
)
from .notifications import security_notice_queue

if TYPE_CHECKING:
    from django.http import HttpRequest


# --- Lockout ---------------------------------------------------------------------------------


def lockout_release(
    *,
    user: User,
    reason: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> bool:
    """Unlock the account and record lockout.released, once; False if it was not locked.

    Under the lockout row's lock, the one the sign-in checks under: of two releases, or a
    release and a sign-in, one goes first and the other sees what it did.
    """
    with transaction.atomic():
        state = (
            LockoutState.objects.select_for_update(of=("self",))
            .select_related("user__membership")
            .filter(user_id=user.pk)
            .first()
        )
        if state is None or state.locked_until is None:
            return False
        if reason == Reason.EXPIRED and state.locked_until > timezone.now():
            return False
        lockout_release_locked(
            state=state, reason=reason, actor=actor, request=request, using=DEFAULT_DB_ALIAS
        )
    return True


def lockouts_release_expired() -> int:
    """Release every lock whose time is up; returns how many were released by this call."""
    released = 0
    expired = LockoutState.objects.filter(locked_until__lte=timezone.now()).select_related(
        "user__membership"
    )
    for state in expired.iterator(chunk_size=500):
        released += lockout_release(user=state.user, reason=Reason.EXPIRED)
    return released


# --- Sessions --------------------------------------------------------------------------------


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
        ctx = request_context(request)
        tracked = UserSession.objects.create(
            user=user,
            organization_id=getattr(getattr(user, "membership", None), "organization_id", None),
            session_key=session.session_key,
            session_hash=session[SESSION_HASH_KEY],
            ip_address=ctx.ip_address,
            user_agent=ctx.user_agent,
            browser=ctx.browser,
            os=ctx.os,
            device_type=ctx.device_type,
            device_id=ctx.device_id,
            country=ctx.geo.country,
            city=ctx.geo.city,
            started_at=now,
            last_activity_at=now,
        )
        specs.append(
            EventSpec(
                event_type=EventType.SESSION_STARTED,
                actor=user,
                details={"expires_at": session.get_expiry_date().isoformat()},
            )
        )
    events_record(specs=specs, request=request)
    return tracked


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
            claimed = UserSession.objects.filter(pk=tracked.pk, ended_at__isnull=True).update(
                ended_at=timezone.now(), end_reason=SessionEndReason.LOGOUT
            )
            if claimed:
                events_record(
                    specs=[
                        EventSpec(
                            event_type=EventType.SESSION_ENDED,
                            reason=Reason.LOGOUT,
                            actor=tracked.user,
                            session_hash=tracked.session_hash,
                            details={
                                "started_at": tracked.started_at.isoformat(),
                                "ended_by": ENDED_BY_SIGN_IN,
                            },
                        )
                    ],
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
            # Conditional update: a concurrent run that got here first leaves nothing to claim.
            claimed = UserSession.objects.filter(pk=tracked.pk, ended_at__isnull=True).update(
                ended_at=now, end_reason=SessionEndReason.EXPIRED
            )
            if not claimed:
                continue
            Session.objects.filter(session_key=tracked.session_key).delete()
            events_record(
                specs=[
                    EventSpec(
                        event_type=EventType.SESSION_EXPIRED,
                        actor=tracked.user,
                        reason=Reason.EXPIRED,
                        session_hash=tracked.session_hash,
                        details={
                            "started_at": tracked.started_at.isoformat(),
                            "last_activity_at": tracked.last_activity_at.isoformat(),
                        },
                    )
                ]
            )
        expired += 1
    return expired


# --- Passwords -------------------------------------------------------------------------------


def password_changed_record(*, request: HttpRequest, user: User) -> None:
    """Record a password change and end every other session of the user."""
    session_rekey(request=request)
    event = event_record(event_type=EventType.PASSWORD_CHANGED, actor=user, request=request)
    security_notice_queue(event=event)
    sessions_end(
        user=user, reason=SessionEndReason.PASSWORD_CHANGED, request=request, keep_current=True
    )


def password_reset_requested_record(*, request: HttpRequest, email: str, users: list[User]) -> None:
    """Record a reset request; one for an unknown address is kept too, as a failure."""
    if not users:
        event_record(
            event_type=EventType.PASSWORD_RESET_REQUESTED,
            outcome=Outcome.FAILURE,
            reason=Reason.UNKNOWN_USER,
            actor_label=email,
            details={"requested_for": email},
            request=request,
        )
        return
    for user in users:
        event_record(event_type=EventType.PASSWORD_RESET_REQUESTED, actor=user, request=request)


def password_reset_failed_record(*, request: HttpRequest, user: User | None, reason: str) -> None:
    """Record a refused reset (bad or expired link, rejected password); never the token."""
    event_record(
        event_type=EventType.PASSWORD_RESET_FAILED,
        outcome=Outcome.FAILURE,
        reason=reason,
        actor=user,
        request=request,
        durable=True,
    )


def password_reset_completed_record(*, request: HttpRequest, user: User) -> None:
    """Record a completed reset: unlock the account and end every session it had."""
    event = event_record(event_type=EventType.PASSWORD_RESET_COMPLETED, actor=user, request=request)
    security_notice_queue(event=event)
    lockout_release(user=user, reason=Reason.PASSWORD_RESET, request=request)
    sessions_end(user=user, reason=SessionEndReason.PASSWORD_CHANGED, request=request)


# --- Members and organization policy ---------------------------------------------------------


class LastAdministratorError(Exception):
    """The change would leave the organization without an administrator."""


def member_role_change(
    *, admin: User, membership: Membership, role: str, request: HttpRequest | None = None
) -> bool:
    """Give a member a new role and record member.role_changed; False if it was already theirs.

    Raises LastAdministratorError rather than demote the organization's last administrator; the
    administrators' rows are locked so two admins demoting each other cannot both succeed.
    """
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    with transaction.atomic():
        admins = list(
            Membership.objects.select_for_update()
            .filter(organization_id=membership.organization_id, role=Role.ADMINISTRATOR)
            .values_list("pk", flat=True)
        )
        current = Membership.objects.select_for_update().get(pk=membership.pk)
        old = current.role
        if old == role:
            return False
        if old == Role.ADMINISTRATOR and admins == [current.pk]:
            raise LastAdministratorError
        current.role = role
        current.save(update_fields=["role"])
        membership.role = role
        event_record(
            event_type=EventType.MEMBER_ROLE_CHANGED,
            actor=admin,
            target_user=current.user,
            details={"old": old, "new": role},
            request=request,
        )
    return True


def organization_mfa_policy_update(
    *,
    admin: User,
    organization: Organization,
    policy: str,
    roles: list[str],
    request: HttpRequest | None = None,
) -> bool:
    """Set who must use a second factor and record settings.changed; False if nothing changed."""
    roles = sorted(set(roles)) if policy == MfaPolicy.ROLES else []
    old = {
        "mfa_policy": organization.mfa_policy,
        "mfa_required_roles": organization.mfa_required_roles,
    }
    new = {"mfa_policy": policy, "mfa_required_roles": roles}
    if old == new:
        return False
    with transaction.atomic():
        organization.mfa_policy = policy
        organization.mfa_required_roles = roles
        organization.save(update_fields=["mfa_policy", "mfa_required_roles"])
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=admin,
            organization=organization,
            details={"setting": "mfa_policy", "old": old, "new": new},
            request=request,
        )
    return True
