"""The access policies at sign-in and on every request (accounts.enforcement's Enforcer).

Registered in PoliciesConfig.ready(). Each check reads the organization's compiled policy
(policies.compiled: no query while its version is current) and decides; recording the refusal
or ending the session is accounts' (the sign-in view, AccountSecurityMiddleware).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.contrib.sessions.models import Session
from django.db.models import QuerySet
from django.utils import timezone

from accounts.enforcement import Refusal, SessionFacts, SessionVerdict
from accounts.models import UserSession
from accounts.sessions import sessions_end
from audit.context import SESSION_HASH_KEY
from audit.models import Reason

from .compiled import Decision, policy_of
from .models import SessionLimitAction

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

NETWORK_REFUSED = (
    "Your organization does not allow signing in from this network. If you need to, ask one "
    "of its administrators."
)
HOURS_REFUSED = (
    "Your organization allows signing in only at set days and hours, and this is not one of "
    "them. If you need to, ask one of its administrators."
)
TOO_MANY_SESSIONS = (
    "You are signed in in {count} places already, as many as your organization allows. Sign "
    "out in one of them (or end it on Sign-in & sessions), then try again."
)
NETWORK_ENDED = "Your session ended: your organization does not allow this network."
HOURS_ENDED = "Your session ended: your organization's sign-in hours are over."
IDLE_ENDED = "Your session ended after {minutes} minutes without activity. Sign in again."
LIFETIME_ENDED = "Your session reached its limit of {hours} hours. Sign in again."


def _membership(user: User) -> tuple[Organization, str] | None:
    """The user's organization (loaded with the user by the sign-in and by every request) and
    role; None for platform users."""
    membership = getattr(user, "membership", None)
    if membership is None:
        return None
    return membership.organization, membership.role


def _live_sessions(user: User, now: datetime) -> QuerySet[UserSession]:
    """The user's tracked sessions still open and whose Django session has not run out."""
    live = Session.objects.filter(expire_date__gt=now).values("session_key")
    return UserSession.objects.filter(
        user=user, ended_at__isnull=True, session_key__in=live
    ).order_by("-started_at", "-pk")


def _is_network(decision: Decision) -> bool:
    return decision.rule.startswith("network_")


class PolicyEnforcer:
    def sign_in_refusal(self, *, user: User, ip: str | None, now: datetime) -> Refusal | None:
        found = _membership(user)
        if found is None:
            return None
        organization, role = found
        policy = policy_of(organization)
        decision = policy.decision(role=role, ip=ip, now=now)
        if not decision.allowed:
            return Refusal(
                rule=decision.rule,
                message=NETWORK_REFUSED if _is_network(decision) else HOURS_REFUSED,
                details=decision.details,
            )
        if policy.max_sessions and policy.session_limit_action == SessionLimitAction.REFUSE:
            count = _live_sessions(user, now).count()
            if count >= policy.max_sessions:
                return Refusal(
                    rule="max_sessions",
                    message=TOO_MANY_SESSIONS.format(count=count),
                    details={"max_sessions": policy.max_sessions, "open_sessions": count},
                )
        return None

    def sign_in_admitted(self, *, user: User, request: HttpRequest) -> None:
        found = _membership(user)
        if found is None:
            return
        policy = policy_of(found[0])
        if not policy.max_sessions or policy.session_limit_action != SessionLimitAction.END_OLDEST:
            return
        current = request.session.get(SESSION_HASH_KEY, "")
        others = (
            _live_sessions(user, timezone.now())
            .exclude(session_hash=current)
            .values_list("session_hash", flat=True)
        )
        # The newest first: keep the sign-in that just started and the newest others.
        for session_hash in list(others)[policy.max_sessions - 1 :]:
            sessions_end(user=user, reason=Reason.POLICY, request=request, only_hash=session_hash)

    def session_verdict(
        self, *, user: User, facts: SessionFacts, now: datetime
    ) -> SessionVerdict | None:
        found = _membership(user)
        if found is None:
            return None
        organization, role = found
        policy = policy_of(organization)
        limits = policy.limits_of(role)
        idle, lifetime = limits.idle_minutes, limits.lifetime_hours
        last, started = facts.last_active_at, facts.started_at
        if idle and last is not None and now - last > timedelta(minutes=idle):
            return SessionVerdict(
                expired=True,
                rule="idle_timeout",
                message=IDLE_ENDED.format(minutes=idle),
                details={"idle_minutes": str(idle)},
            )
        if lifetime and started is not None and now - started > timedelta(hours=lifetime):
            return SessionVerdict(
                expired=True,
                rule="lifetime",
                message=LIFETIME_ENDED.format(hours=lifetime),
                details={"lifetime_hours": str(lifetime)},
            )
        decision = policy.decision(role=role, ip=facts.ip, now=now)
        if decision.allowed:
            return None
        return SessionVerdict(
            expired=False,
            rule=decision.rule,
            message=NETWORK_ENDED if _is_network(decision) else HOURS_ENDED,
            details={key: str(value) for key, value in decision.details.items()},
        )
