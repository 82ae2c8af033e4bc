"""Reads for accounts: who belongs where, and what a user's role lets them do."""

from __future__ import annotations

from .models import AUDIT_LOG_ROLES, Membership, Role, User


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
