"""An organization's policies compiled for checking, the decisions, and their cache.

Compiled once per version of the organization's policies (Organization.access_policy_token,
new at every change) and kept in the process. The version comes with the organization every
request already reads (the signed-in user's membership), so a change on one web node reaches
every other at its next request, and the check needs neither a query nor Redis: Redis down
cannot break a sign-in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from accounts.models import Organization, Role

from .models import (
    EVERYONE,
    AccessPolicy,
    NetworkAction,
    NetworkList,
    NetworkRule,
    SessionLimitAction,
    SessionPolicy,
    TimeException,
    TimeWindow,
)
from .networks import EVERYWHERE, NetworkSet, parse_address

# PCI DSS 8.2.8: re-authenticate after 15 minutes idle, for the roles with access to the
# cardholder-data environment's logs and settings. Members have no idle limit unless set.
DEFAULT_IDLE_MINUTES: dict[str, int | None] = {
    Role.ADMINISTRATOR: 15,
    Role.SECURITY_ANALYST: 15,
    Role.COMPLIANCE_OFFICER: 15,
    Role.MEMBER: None,
}
END_OF_DAY = time.max  # a window's end "24:00"


@dataclass(frozen=True)
class Rule:
    id: int
    role: str
    action: str
    list_name: str
    networks: NetworkSet

    @property
    def name(self) -> str:
        return f"network_{self.action}:{self.list_name}"


@dataclass(frozen=True)
class Window:
    id: int
    role: str
    days: frozenset[int]
    starts: time
    ends: time

    def holds(self, moment: datetime) -> bool:
        clock = moment.time()
        return moment.isoweekday() in self.days and self.starts <= clock < self.ends


@dataclass(frozen=True)
class Exception_:
    role: str
    on: date
    allowed: bool


@dataclass(frozen=True)
class Limits:
    idle_minutes: int | None
    lifetime_hours: int | None


@dataclass(frozen=True)
class Decision:
    """What the policy does with a sign-in: allowed or not, and the rule that decided."""

    allowed: bool
    rule: str
    explanation: str
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledPolicy:
    token: str
    zone: ZoneInfo
    rules: tuple[Rule, ...]
    break_glass: NetworkSet | None
    break_glass_name: str
    windows: tuple[Window, ...]
    exceptions: tuple[Exception_, ...]
    limits: dict[str, Limits]
    max_sessions: int | None
    session_limit_action: str

    def network_decision(self, *, role: str, ip: str | None) -> Decision:
        address = parse_address(ip)
        if (
            role == Role.ADMINISTRATOR
            and self.break_glass is not None
            and address is not None
            and self.break_glass.contains(address)
        ):
            return Decision(
                True,
                "break_glass",
                f"Allowed: administrators may always sign in from {self.break_glass_name}.",
            )
        mine = [rule for rule in self.rules if rule.role in (EVERYONE, role)]
        for rule in mine:
            if (
                rule.action == NetworkAction.BLOCK
                and address is not None
                and rule.networks.contains(address)
            ):
                return Decision(
                    False,
                    rule.name,
                    f"Refused: {rule.list_name} is blocked for {_whom(rule.role)}.",
                    {"network_list": rule.list_name, "rule_id": rule.id},
                )
        allow = [rule for rule in mine if rule.action == NetworkAction.ALLOW_ONLY]
        if allow and not (
            address is not None and any(rule.networks.contains(address) for rule in allow)
        ):
            names = ", ".join(sorted({rule.list_name for rule in allow}))
            return Decision(
                False,
                f"network_allow_only:{names}",
                f"Refused: {_whom(allow[0].role)} may sign in only from {names}.",
                {"network_list": names, "rule_id": allow[0].id},
            )
        if allow:
            return Decision(True, "network_allow_only", "Allowed: inside an allowed network.")
        return Decision(True, "", "Allowed: no network rule applies.")

    def time_decision(self, *, role: str, now: datetime) -> Decision:
        local = now.astimezone(self.zone)
        today = [e for e in self.exceptions if e.on == local.date() and e.role in (EVERYONE, role)]
        if any(not e.allowed for e in today):
            return Decision(
                False,
                "time_exception",
                f"Refused: {local.date().isoformat()} is closed to sign-in.",
                {"date": local.date().isoformat(), "zone": self.zone.key},
            )
        if today:
            return Decision(True, "time_exception", "Allowed: an exception opens this date.")
        windows = [w for w in self.windows if w.role in (EVERYONE, role)]
        if not windows:
            return Decision(True, "", "Allowed: no hours apply.")
        if any(w.holds(local) for w in windows):
            return Decision(True, "time_window", "Allowed: inside the allowed hours.")
        return Decision(
            False,
            "time_window",
            f"Refused: outside the allowed hours ({local:%a %H:%M} {self.zone.key}).",
            {"local_time": local.strftime("%a %H:%M"), "zone": self.zone.key},
        )

    def decision(self, *, role: str, ip: str | None, now: datetime) -> Decision:
        network = self.network_decision(role=role, ip=ip)
        # Break-glass networks admit administrators whatever else the policy says.
        if not network.allowed or network.rule == "break_glass":
            return network
        hours = self.time_decision(role=role, now=now)
        if not hours.allowed:
            return hours
        return Decision(
            True,
            network.rule or hours.rule,
            f"{network.explanation} {hours.explanation}",
        )

    def limits_of(self, role: str) -> Limits:
        return self.limits.get(role) or Limits(DEFAULT_IDLE_MINUTES.get(role), None)


def _whom(role: str) -> str:
    return "everyone" if role == EVERYONE else f"{Role(role).label.lower()}s"


def compile_policy(organization_id: int) -> CompiledPolicy:
    """Read the organization's policies from the database and compile them."""
    policy = AccessPolicy.objects.filter(organization_id=organization_id).first()
    lists = {
        row.pk: (row.name, NetworkSet.of(row.cidrs))
        for row in NetworkList.objects.filter(organization_id=organization_id)
    }
    rules = tuple(
        Rule(r.pk, r.role, r.action, *lists[r.network_list_id])
        for r in NetworkRule.objects.filter(organization_id=organization_id).order_by("pk")
    )
    glass = lists.get(policy.break_glass_id) if policy and policy.break_glass_id else None
    return CompiledPolicy(
        token=Organization.objects.filter(pk=organization_id)
        .values_list("access_policy_token", flat=True)
        .get(),
        zone=ZoneInfo(policy.time_zone if policy else "UTC"),
        rules=rules,
        break_glass=glass[1] if glass else None,
        break_glass_name=glass[0] if glass else "",
        windows=tuple(
            Window(w.pk, w.role, frozenset(w.days), w.starts, w.ends)
            for w in TimeWindow.objects.filter(organization_id=organization_id, active=True)
        ),
        exceptions=tuple(
            Exception_(e.role, e.on, e.allowed)
            for e in TimeException.objects.filter(organization_id=organization_id)
        ),
        limits={
            s.role: Limits(s.idle_minutes, s.lifetime_hours)
            for s in SessionPolicy.objects.filter(organization_id=organization_id)
        },
        max_sessions=policy.max_sessions if policy else None,
        session_limit_action=(
            policy.session_limit_action if policy else SessionLimitAction.END_OLDEST
        ),
    )


def admins_locked_out(policy: CompiledPolicy) -> bool:
    """Whether the network rules leave administrators no address to sign in from."""
    mine = [r for r in policy.rules if r.role in (EVERYONE, Role.ADMINISTRATOR)]
    allowed = NetworkSet()
    allow = [r for r in mine if r.action == NetworkAction.ALLOW_ONLY]
    for rule in allow:
        allowed = allowed.union(rule.networks)
    if not allow:
        allowed = EVERYWHERE
    blocked = NetworkSet()
    for rule in mine:
        if rule.action == NetworkAction.BLOCK:
            blocked = blocked.union(rule.networks)
    return blocked.covers(allowed) and not policy.break_glass


# --- The cache ----------------------------------------------------------------------------------

_local: dict[int, CompiledPolicy] = {}
_lock = threading.Lock()


def policy_of(organization: Organization) -> CompiledPolicy:
    """The organization's policy in force, compiled (this process's copy while its version is
    the organization's: no query, no Redis)."""
    local = _local.get(organization.pk)
    if local is not None and local.token == organization.access_policy_token:
        return local
    compiled = compile_policy(organization.pk)
    with _lock:
        _local[organization.pk] = compiled
    return compiled
