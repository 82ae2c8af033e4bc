"""Writes for accounts: password events, members' roles and the organization's MFA policy, each
with its audit events (sessions: accounts.sessions; lockouts: accounts.lockout)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from audit.models import EventType, Outcome, Reason
from audit.services import event_record

from .lockout import lockout_release
from .models import (
    Membership,
    MfaPolicy,
    Organization,
    Role,
    SavedSearch,
    SessionEndReason,
    User,
)
from .notifications import security_notice_queue
from .sessions import session_rekey, sessions_end

if TYPE_CHECKING:
    from django.http import HttpRequest


# --- Passwords -------------------------------------------------------------------------------


def _password_change_satisfied(user: User) -> None:
    """A new password was chosen: the one required ("No, secure my account") is no longer due."""
    if user.password_change_required_at is not None:
        User.objects.filter(pk=user.pk).update(password_change_required_at=None)
        user.password_change_required_at = None


def password_changed_record(*, request: HttpRequest, user: User) -> None:
    """Record a password change and end every other session of the user."""
    session_rekey(request=request)
    _password_change_satisfied(user)
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
    _password_change_satisfied(user)
    event = event_record(event_type=EventType.PASSWORD_RESET_COMPLETED, actor=user, request=request)
    security_notice_queue(event=event)
    lockout_release(user=user, reason=Reason.PASSWORD_RESET, request=request)
    sessions_end(user=user, reason=SessionEndReason.PASSWORD_CHANGED, request=request)


# --- Preferences ------------------------------------------------------------------------------


def user_time_zone_set(
    *, user: User, time_zone: str, request: HttpRequest | None = None, only_if_unset: bool = False
) -> bool:
    """Store the person's zone (a valid IANA name) and record the change; False if unchanged.

    only_if_unset: what the browser reports after a sign-in never overrides a chosen zone.
    """
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        old = locked.time_zone
        if old == time_zone or (only_if_unset and old):
            return False
        locked.time_zone = time_zone
        locked.save(update_fields=["time_zone"])
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            reason="time zone",
            actor=user,
            target_user=user,
            details={"time_zone": {"old": old, "new": time_zone}},
            request=request,
        )
    user.time_zone = time_zone
    return True


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


def member_remove(
    *, admin: User, membership: Membership, request: HttpRequest | None = None
) -> bool:
    """Take a member out of the organization: end their sessions, deactivate the account (a
    user belongs to one organization) and record member.removed; False if already gone.

    Raises LastAdministratorError rather than remove the organization's last administrator,
    with the administrators' rows locked as member_role_change does. The user row stays, so
    the events that name them keep their name.
    """
    organization = membership.organization
    with transaction.atomic():
        admins = list(
            Membership.objects.select_for_update()
            .filter(organization_id=membership.organization_id, role=Role.ADMINISTRATOR)
            .values_list("pk", flat=True)
        )
        current = (
            Membership.objects.select_for_update()
            .select_related("user")
            .filter(pk=membership.pk)
            .first()
        )
        if current is None:
            return False
        if current.role == Role.ADMINISTRATOR and admins == [current.pk]:
            raise LastAdministratorError
        user = current.user
        role = current.role
        current.delete()
        User.objects.filter(pk=user.pk).update(is_active=False)
        event_record(
            event_type=EventType.MEMBER_REMOVED,
            actor=admin,
            target_user=user,
            organization=organization,
            details={"role": role},
            request=request,
        )
        sessions_end(user=user, reason=SessionEndReason.REVOKED_BY_ADMIN, actor=admin)
    return True


def organization_mfa_policy_update(
    *,
    admin: User,
    organization: Organization,
    policy: str,
    roles: list[str],
    passkey_roles: list[str] | None = None,
    request: HttpRequest | None = None,
) -> bool:
    """Set who must use a second factor, and who a passkey, and record settings.changed.

    False if nothing changed. `passkey_roles` None keeps the roles that must use a passkey.
    """
    roles = sorted(set(roles)) if policy == MfaPolicy.ROLES else []
    if passkey_roles is None:
        passkey_roles = list(organization.mfa_passkey_roles or [])
    passkey_roles = sorted(set(passkey_roles)) if policy != MfaPolicy.OFF else []
    old = {
        "mfa_policy": organization.mfa_policy,
        "mfa_required_roles": organization.mfa_required_roles,
        "mfa_passkey_roles": organization.mfa_passkey_roles or [],
    }
    new = {
        "mfa_policy": policy,
        "mfa_required_roles": roles,
        "mfa_passkey_roles": passkey_roles,
    }
    if old == new:
        return False
    with transaction.atomic():
        organization.mfa_policy = policy
        organization.mfa_required_roles = roles
        organization.mfa_passkey_roles = passkey_roles
        organization.save(update_fields=["mfa_policy", "mfa_required_roles", "mfa_passkey_roles"])
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=admin,
            organization=organization,
            details={"setting": "mfa_policy", "old": old, "new": new},
            request=request,
        )
    return True


# --- Sign-in throttling ----------------------------------------------------------------------

THROTTLE_FIELDS = (
    "throttle_ip_burst",
    "throttle_ip_refill_seconds",
    "throttle_account_burst",
    "throttle_account_refill_seconds",
    "throttle_allowlist",
)


def organization_throttle_update(
    *,
    admin: User,
    organization: Organization,
    values: dict[str, object],
    request: HttpRequest | None = None,
) -> bool:
    """Set the organization's throttle limits and allowlist (`values` by field name, already
    validated; None: the platform default) and record settings.changed with what changed, old
    and new; False if nothing changed."""
    old = {field: getattr(organization, field) for field in THROTTLE_FIELDS}
    new = {field: values.get(field, old[field]) for field in THROTTLE_FIELDS}
    changed = [field for field in THROTTLE_FIELDS if old[field] != new[field]]
    if not changed:
        return False
    with transaction.atomic():
        for field in changed:
            setattr(organization, field, new[field])
        organization.save(update_fields=changed)
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=admin,
            organization=organization,
            details={
                "setting": "throttling",
                "old": {field: old[field] for field in changed},
                "new": {field: new[field] for field in changed},
            },
            request=request,
        )
    return True


# --- Saved searches ----------------------------------------------------------------------------


def saved_search_create(
    *,
    owner: User,
    organization: Organization,
    log: str,
    name: str,
    query: str,
    shared: bool,
    request: HttpRequest | None = None,
) -> SavedSearch:
    """Keep a search by name (replacing the owner's search of that name on the same log) and
    record search.saved."""
    with transaction.atomic():
        search, _ = SavedSearch.objects.update_or_create(
            organization=organization,
            owner=owner,
            log=log,
            name=name,
            defaults={"query": query, "shared": shared},
        )
        event_record(
            event_type=EventType.SEARCH_SAVED,
            actor=owner,
            organization=organization,
            details={
                "saved_search_id": search.pk,
                "log": log,
                "name": name,
                "query": query,
                "shared": shared,
            },
            request=request,
        )
    return search


def saved_search_delete(
    *, search: SavedSearch, actor: User, request: HttpRequest | None = None
) -> None:
    """Delete a saved search and record search.deleted."""
    with transaction.atomic():
        details = {
            "saved_search_id": search.pk,
            "log": search.log,
            "name": search.name,
            "query": search.query,
            "shared": search.shared,
        }
        search.delete()
        event_record(
            event_type=EventType.SEARCH_DELETED,
            actor=actor,
            organization=search.organization,
            details=details,
            request=request,
        )
