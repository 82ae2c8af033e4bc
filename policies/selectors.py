"""Reads of an organization's access policies: the page, the overview, the preview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.models import Organization, Role

from .compiled import DEFAULT_IDLE_MINUTES, Decision, compile_policy
from .models import (
    AccessPolicy,
    NetworkList,
    NetworkRule,
    SessionPolicy,
    TimeException,
    TimeWindow,
)


@dataclass(frozen=True)
class RoleLimits:
    role: str
    label: str
    idle_minutes: int | None
    lifetime_hours: int | None
    default: bool  # no row: the defaults (PCI DSS 8.2.8's 15 minutes for staff roles)


def session_limits_of(organization: Organization) -> list[RoleLimits]:
    """Each role's session limits in force, in the order of the roles."""
    rows = {s.role: s for s in SessionPolicy.objects.filter(organization=organization)}
    limits = []
    for role in Role:
        row = rows.get(role)
        if row is None:
            limits.append(RoleLimits(role, role.label, DEFAULT_IDLE_MINUTES[role], None, True))
        else:
            limits.append(RoleLimits(role, role.label, row.idle_minutes, row.lifetime_hours, False))
    return limits


@dataclass(frozen=True)
class Policies:
    policy: AccessPolicy | None
    lists: list[NetworkList]
    rules: list[NetworkRule]
    windows: list[TimeWindow]
    exceptions: list[TimeException]
    limits: list[RoleLimits]


def policies_of(organization: Organization) -> Policies:
    """Everything the Access policies page shows, of the organization's only."""
    return Policies(
        policy=AccessPolicy.objects.filter(organization=organization)
        .select_related("break_glass")
        .first(),
        lists=list(NetworkList.objects.filter(organization=organization).order_by("name")),
        rules=list(
            NetworkRule.objects.filter(organization=organization)
            .select_related("network_list")
            .order_by("pk")
        ),
        windows=list(TimeWindow.objects.filter(organization=organization).order_by("pk")),
        exceptions=list(TimeException.objects.filter(organization=organization).order_by("on")),
        limits=session_limits_of(organization),
    )


def policy_preview(organization: Organization, *, ip: str, role: str, now: datetime) -> Decision:
    """What the policy in force would do with a sign-in from `ip` as `role`, now."""
    return compile_policy(organization.pk).decision(role=role, ip=ip, now=now)


def policies_in_force(organization: Organization, now: datetime) -> dict[str, object]:
    """The overview panel's summary of the policies in force."""
    policies = policies_of(organization)
    return {
        "rules": policies.rules,
        "windows": [w for w in policies.windows if w.active],
        "exceptions": [e for e in policies.exceptions if e.on >= now.date()],
        "limits": policies.limits,
        "policy": policies.policy,
    }
