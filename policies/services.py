"""Changes to an organization's access policies: each one checked, recorded as settings.changed
with its old and new values, and a new version of the policy (Organization.access_policy_token,
which tells every process its compiled copy is out of date)."""

from __future__ import annotations

import secrets
from datetime import date, time
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from accounts.enforcement import request_ip
from accounts.models import Organization, Role, User
from audit.models import EventType
from audit.services import event_record

from .compiled import admins_locked_out, compile_policy
from .models import (
    AccessPolicy,
    NetworkList,
    NetworkRule,
    SessionPolicy,
    TimeException,
    TimeWindow,
)

if TYPE_CHECKING:
    from django.http import HttpRequest


class PolicyError(ValueError):
    """A change refused, with the reason the administrator reads."""


LOCKS_OUT_EVERY_ADMINISTRATOR = (
    "Refused: administrators could then sign in from no address at all. Narrow the rule, or "
    "first name a break-glass network administrators may always sign in from."
)


def _locks_out_you(ip: str | None, why: str) -> str:
    return (
        f"Refused: this would refuse your own sign-in from {ip or 'an unknown address'} and end "
        f"your session ({why}). Name a break-glass network holding your address first: "
        "administrators may always sign in from it."
    )


def access_policy_of(organization: Organization) -> AccessPolicy:
    """The organization's policy row, created with the defaults on first use."""
    policy, _ = AccessPolicy.objects.get_or_create(organization=organization)
    return policy


def _changed(
    *,
    admin: User,
    organization: Organization,
    setting: str,
    old: object,
    new: object,
    request: HttpRequest | None,
) -> None:
    """Inside the change's transaction: refuse it if it locks administrators out (every one, or
    the one making it, from where and when they make it), else give the policy a new version
    and record settings.changed."""
    compiled = compile_policy(organization.pk)
    if admins_locked_out(compiled):
        raise PolicyError(LOCKS_OUT_EVERY_ADMINISTRATOR)
    if request is not None:
        ip = request_ip(request)
        decision = compiled.decision(role=Role.ADMINISTRATOR, ip=ip, now=timezone.now())
        if not decision.allowed:
            raise PolicyError(_locks_out_you(ip, decision.explanation))
    token = secrets.token_hex(8)
    Organization.objects.filter(pk=organization.pk).update(access_policy_token=token)
    organization.access_policy_token = token
    event_record(
        event_type=EventType.SETTINGS_CHANGED,
        actor=admin,
        organization=organization,
        details={"setting": f"access_policies.{setting}", "old": old, "new": new},
        request=request,
    )


def _role_name(role: str) -> str:
    return role or "everyone"


def network_list_create(
    *,
    admin: User,
    organization: Organization,
    name: str,
    cidrs: list[str],
    request: HttpRequest | None = None,
) -> NetworkList:
    """Add a named list of networks (`cidrs` already parsed by networks.parse_cidrs)."""
    with transaction.atomic():
        access_policy_of(organization)
        if NetworkList.objects.filter(organization=organization, name=name).exists():
            raise PolicyError(f"There is already a network list named “{name}”.")
        network_list = NetworkList.objects.create(organization=organization, name=name, cidrs=cidrs)
        _changed(
            admin=admin,
            organization=organization,
            setting="network_list",
            old=None,
            new={"name": name, "cidrs": cidrs},
            request=request,
        )
    return network_list


def network_list_update(
    *,
    admin: User,
    network_list: NetworkList,
    cidrs: list[str],
    request: HttpRequest | None = None,
) -> bool:
    """Replace a list's networks; False if nothing changed. Refused if it locks admins out."""
    old = list(network_list.cidrs)
    if old == cidrs:
        return False
    with transaction.atomic():
        NetworkList.objects.filter(pk=network_list.pk).update(cidrs=cidrs)
        _changed(
            admin=admin,
            organization=network_list.organization,
            setting="network_list",
            old={"name": network_list.name, "cidrs": old},
            new={"name": network_list.name, "cidrs": cidrs},
            request=request,
        )
    network_list.cidrs = cidrs
    return True


def network_list_delete(
    *, admin: User, network_list: NetworkList, request: HttpRequest | None = None
) -> None:
    """Remove a list no rule uses and that is not the break-glass list."""
    organization = network_list.organization
    if network_list.rules.exists():
        raise PolicyError(
            f"“{network_list.name}” is used by a network rule: remove the rule first."
        )
    if AccessPolicy.objects.filter(break_glass=network_list).exists():
        raise PolicyError(
            f"“{network_list.name}” is the break-glass list: choose another one first."
        )
    with transaction.atomic():
        old = {"name": network_list.name, "cidrs": network_list.cidrs}
        network_list.delete()
        _changed(
            admin=admin,
            organization=organization,
            setting="network_list",
            old=old,
            new=None,
            request=request,
        )


def network_rule_create(
    *,
    admin: User,
    organization: Organization,
    role: str,
    action: str,
    network_list: NetworkList,
    request: HttpRequest | None = None,
) -> NetworkRule:
    """Add a network rule; refused if administrators (or the acting one) could no longer sign in."""
    with transaction.atomic():
        access_policy_of(organization)
        rule = NetworkRule.objects.create(
            organization=organization, role=role, action=action, network_list=network_list
        )
        _changed(
            admin=admin,
            organization=organization,
            setting="network_rule",
            old=None,
            new={"role": _role_name(role), "action": action, "network_list": network_list.name},
            request=request,
        )
    return rule


def network_rule_delete(
    *, admin: User, rule: NetworkRule, request: HttpRequest | None = None
) -> None:
    organization = rule.organization
    with transaction.atomic():
        old = {
            "role": _role_name(rule.role),
            "action": rule.action,
            "network_list": rule.network_list.name,
        }
        rule.delete()
        _changed(
            admin=admin,
            organization=organization,
            setting="network_rule",
            old=old,
            new=None,
            request=request,
        )


def access_policy_update(
    *,
    admin: User,
    organization: Organization,
    time_zone: str,
    break_glass: NetworkList | None,
    max_sessions: int | None,
    session_limit_action: str,
    request: HttpRequest | None = None,
) -> bool:
    """Set the zone, the break-glass list and the session limit; False if nothing changed."""
    with transaction.atomic():
        policy = AccessPolicy.objects.select_for_update().get(pk=access_policy_of(organization).pk)
        old = _settings_of(policy)
        policy.time_zone = time_zone
        policy.break_glass = break_glass
        policy.max_sessions = max_sessions
        policy.session_limit_action = session_limit_action
        new = _settings_of(policy)
        if old == new:
            return False
        policy.save(
            update_fields=["time_zone", "break_glass", "max_sessions", "session_limit_action"]
        )
        changed = [key for key in new if old[key] != new[key]]
        _changed(
            admin=admin,
            organization=organization,
            setting="settings",
            old={key: old[key] for key in changed},
            new={key: new[key] for key in changed},
            request=request,
        )
    return True


def _settings_of(policy: AccessPolicy) -> dict[str, object]:
    return {
        "time_zone": policy.time_zone,
        "break_glass": policy.break_glass.name if policy.break_glass else None,
        "max_sessions": policy.max_sessions,
        "session_limit_action": policy.session_limit_action,
    }


def _clock(moment: time) -> str:
    return "24:00" if moment == time.max else moment.strftime("%H:%M")


def time_window_create(
    *,
    admin: User,
    organization: Organization,
    role: str,
    days: list[int],
    starts: time,
    ends: time,
    active: bool = True,
    request: HttpRequest | None = None,
) -> TimeWindow:
    if ends <= starts:
        raise PolicyError("The window ends before it starts.")
    with transaction.atomic():
        access_policy_of(organization)
        window = TimeWindow.objects.create(
            organization=organization,
            role=role,
            days=sorted(days),
            starts=starts,
            ends=ends,
            active=active,
        )
        _changed(
            admin=admin,
            organization=organization,
            setting="time_window",
            old=None,
            new=_window_values(window),
            request=request,
        )
    return window


def _window_values(window: TimeWindow) -> dict[str, object]:
    return {
        "role": _role_name(window.role),
        "days": window.days,
        "starts": _clock(window.starts),
        "ends": _clock(window.ends),
        "active": window.active,
    }


def time_window_delete(
    *, admin: User, window: TimeWindow, request: HttpRequest | None = None
) -> None:
    organization = window.organization
    with transaction.atomic():
        old = _window_values(window)
        window.delete()
        _changed(
            admin=admin,
            organization=organization,
            setting="time_window",
            old=old,
            new=None,
            request=request,
        )


def time_exception_create(
    *,
    admin: User,
    organization: Organization,
    role: str,
    on: date,
    allowed: bool,
    note: str = "",
    request: HttpRequest | None = None,
) -> TimeException:
    with transaction.atomic():
        access_policy_of(organization)
        exception = TimeException.objects.create(
            organization=organization, role=role, on=on, allowed=allowed, note=note
        )
        _changed(
            admin=admin,
            organization=organization,
            setting="time_exception",
            old=None,
            new=_exception_values(exception),
            request=request,
        )
    return exception


def _exception_values(exception: TimeException) -> dict[str, object]:
    return {
        "role": _role_name(exception.role),
        "date": exception.on.isoformat(),
        "allowed": exception.allowed,
        "note": exception.note,
    }


def time_exception_delete(
    *, admin: User, exception: TimeException, request: HttpRequest | None = None
) -> None:
    organization = exception.organization
    with transaction.atomic():
        old = _exception_values(exception)
        exception.delete()
        _changed(
            admin=admin,
            organization=organization,
            setting="time_exception",
            old=old,
            new=None,
            request=request,
        )


def session_policies_update(
    *,
    admin: User,
    organization: Organization,
    values: dict[str, tuple[int | None, int | None]],
    request: HttpRequest | None = None,
) -> bool:
    """Set each role's (idle minutes, lifetime hours); None: no limit. False if nothing changed."""
    from .selectors import session_limits_of

    with transaction.atomic():
        access_policy_of(organization)
        current = {
            limits.role: (limits.idle_minutes, limits.lifetime_hours)
            for limits in session_limits_of(organization)
        }
        changed = [role for role, pair in values.items() if current.get(role) != pair]
        if not changed:
            return False
        for role in changed:
            idle, lifetime = values[role]
            SessionPolicy.objects.update_or_create(
                organization=organization,
                role=role,
                defaults={"idle_minutes": idle, "lifetime_hours": lifetime},
            )
        _changed(
            admin=admin,
            organization=organization,
            setting="sessions",
            old={role: _limits_values(current.get(role)) for role in changed},
            new={role: _limits_values(values[role]) for role in changed},
            request=request,
        )
    return True


def _limits_values(pair: tuple[int | None, int | None] | None) -> dict[str, int | None]:
    idle, lifetime = pair or (None, None)
    return {"idle_minutes": idle, "lifetime_hours": lifetime}
