"""Reads for accounts: who belongs where, and what a user's role lets them do."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import AUDIT_LOG_ROLES, Membership, Role, User, UserSession


def membership_of(user: User) -> Membership | None:
    """The user's membership (with its organization), or None for anonymous and platform users."""
    if not user.is_authenticated:
        return None
    return getattr(user, "membership", None)


def user_can_view_audit_log(user: User) -> bool:
    membership = membership_of(user)
    return membership is not None and membership.role in AUDIT_LOG_ROLES


def user_is_administrator(user: User) -> bool:
    membership = membership_of(user)
    return membership is not None and membership.role == Role.ADMINISTRATOR


def sessions_open_of(user: User) -> QuerySet[UserSession]:
    """The user's own sessions that have not ended, most recently active first."""
    return UserSession.objects.filter(user=user, ended_at__isnull=True).order_by(
        "-last_activity_at", "-id"
    )


def session_open_of(user: User, session_hash: str) -> UserSession | None:
    """One of the user's own open sessions; None for a session of anyone else."""
    return sessions_open_of(user).filter(session_hash=session_hash).first()


def members_of(admin: User) -> QuerySet[Membership]:
    """The members of the administrator's organization, with MFA and lock status; else none."""
    membership = membership_of(admin)
    if membership is None or membership.role != Role.ADMINISTRATOR:
        return Membership.objects.none()
    confirmed_totp = TOTPDevice.objects.filter(user=OuterRef("user"), confirmed=True)
    return (
        Membership.objects.filter(organization_id=membership.organization_id)
        .select_related("user", "user__lockout_state", "organization")
        .annotate(has_mfa=Exists(confirmed_totp))
        .order_by("user__email")
    )


def member_of(admin: User, membership_id: int) -> Membership | None:
    """One member of the administrator's own organization; None for any other organization."""
    return members_of(admin).filter(pk=membership_id).first()
