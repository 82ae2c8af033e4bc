"""Who may do what: one table from role to capabilities, asked by every view and template.

Views call ``require(request, Capability.X)``, which answers the organization the person may act
in or refuses with PermissionDenied; selectors that scope by the acting user ask ``can``; the
navigation and pages ask the ``may`` template value (``{% if may.manage_members %}``), put in every
template's context by ``accounts.context_processors.navigation``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied

from .models import Membership, Organization, Role
from .selectors import membership_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest

    from .models import User


class Capability(enum.StrEnum):
    """Something a role lets a person do in their own organization."""

    VIEW_SECURITY_SETTINGS = "view_security_settings"
    VIEW_AUDIT_LOG = "view_audit_log"
    EXPORT_AUDIT_LOG = "export_audit_log"
    TRIAGE_ALERTS = "triage_alerts"
    MANAGE_ALERT_RULES = "manage_alert_rules"
    MANAGE_WEBHOOKS = "manage_webhooks"
    VIEW_RETENTION = "view_retention"
    MANAGE_RETENTION = "manage_retention"
    MANAGE_ARCHIVES = "manage_archives"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_DOMAINS = "manage_domains"
    MANAGE_API_TOKENS = "manage_api_tokens"
    MANAGE_THROTTLING = "manage_throttling"
    # Settings → Security → Log integrity: the seals and the button that re-derives them.
    VERIFY_INTEGRITY = "verify_integrity"
    # Settings → Security → Reviews and the monitoring checklist (compliance app): reading them,
    # and for administrators changing the schedule and the log-analysis guide. Who signs a
    # review is the schedule's assigned role or person (compliance.selectors.may_sign).
    VIEW_REVIEWS = "view_reviews"
    MANAGE_REVIEWS = "manage_reviews"
    # Settings → Security → Access reviews (reports app): start a campaign and decide on each
    # member's access, applied through the member services (SOC 2 CC6.2-6.3, PCI DSS 7.2.4).
    REVIEW_ACCESS = "review_access"
    # Settings → Security → Compliance reports (reports app): generate and download them.
    COMPLIANCE_REPORTS = "compliance_reports"
    # Settings → Security → Streams: destinations that receive every event (Enterprise tier).
    MANAGE_STREAMS = "manage_streams"
    # Settings → Security → Access policies: networks, hours and session limits (policies app).
    MANAGE_ACCESS_POLICIES = "manage_access_policies"


C = Capability

# The one table. Members have no capability here: what everyone signed in may do (their own
# Profile, Activity Log, alerts about them, sessions and devices) is scoped to themselves.
CAPABILITIES: Mapping[Role, frozenset[Capability]] = MappingProxyType(
    {
        Role.MEMBER: frozenset(),
        Role.SECURITY_ANALYST: frozenset(
            {
                C.VIEW_SECURITY_SETTINGS,
                C.VIEW_AUDIT_LOG,
                C.EXPORT_AUDIT_LOG,
                C.TRIAGE_ALERTS,
                C.VIEW_REVIEWS,
            }
        ),
        Role.COMPLIANCE_OFFICER: frozenset(
            {
                C.VIEW_SECURITY_SETTINGS,
                C.VIEW_AUDIT_LOG,
                C.EXPORT_AUDIT_LOG,
                C.VIEW_RETENTION,
                C.MANAGE_ARCHIVES,
                C.VERIFY_INTEGRITY,
                C.VIEW_REVIEWS,
                C.REVIEW_ACCESS,
                C.COMPLIANCE_REPORTS,
            }
        ),
        Role.ADMINISTRATOR: frozenset(Capability),
    }
)

# What a refused person reads (the 403 page shows it).
REFUSALS: Mapping[Capability, str] = MappingProxyType(
    {
        C.VIEW_SECURITY_SETTINGS: (
            "Settings → Security is for administrators, analysts and compliance."
        ),
        C.VIEW_AUDIT_LOG: (
            "The audit log is for administrators, security analysts and compliance officers."
        ),
        C.EXPORT_AUDIT_LOG: (
            "The audit log is for administrators, security analysts and compliance officers."
        ),
        C.TRIAGE_ALERTS: "Alerts are for security analysts and administrators.",
        C.MANAGE_ALERT_RULES: "Only administrators change alert rules and webhooks.",
        C.MANAGE_WEBHOOKS: "Only administrators change alert rules and webhooks.",
        C.VIEW_RETENTION: "Retention and archives are for administrators and compliance.",
        C.MANAGE_RETENTION: "Only administrators change retention settings.",
        C.MANAGE_ARCHIVES: "Archives and exports are for administrators and compliance.",
        C.MANAGE_MEMBERS: "Members are managed by the organization's administrators.",
        C.MANAGE_DOMAINS: "Email domains are managed by the organization's administrators.",
        C.MANAGE_API_TOKENS: "API tokens are managed by administrators.",
        C.MANAGE_THROTTLING: (
            "Sign-in throttling is managed by the organization's administrators."
        ),
        C.VERIFY_INTEGRITY: "Log integrity is for administrators and compliance officers.",
        C.VIEW_REVIEWS: (
            "Reviews and the checklist are for administrators, analysts and compliance officers."
        ),
        C.MANAGE_REVIEWS: "Only administrators change the review schedule and the guide.",
        C.REVIEW_ACCESS: "Access reviews are for administrators and compliance officers.",
        C.COMPLIANCE_REPORTS: "Compliance reports are for administrators and compliance officers.",
        C.MANAGE_STREAMS: "Streams to a SIEM are managed by the organization's administrators.",
        C.MANAGE_ACCESS_POLICIES: (
            "Access policies are managed by the organization's administrators."
        ),
    }
)


@dataclass(frozen=True)
class Access:
    """The organization a person acts in and what they may do there."""

    membership: Membership | None
    capabilities: frozenset[Capability]

    @property
    def organization(self) -> Organization | None:
        return self.membership.organization if self.membership is not None else None

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @property
    def may(self) -> dict[str, bool]:
        """Every capability by name, for templates: ``{% if may.view_audit_log %}``."""
        return {capability.value: capability in self.capabilities for capability in Capability}


def access_for(user: User | AnonymousUser) -> Access:
    """The user's organization and capabilities; nothing for anonymous and platform users."""
    membership = membership_of(user) if user.is_authenticated else None
    if membership is None:
        return Access(membership=None, capabilities=frozenset())
    return Access(membership=membership, capabilities=CAPABILITIES[Role(membership.role)])


def can(user: User | AnonymousUser, capability: Capability) -> bool:
    return access_for(user).can(capability)


def is_platform_operator(user: User | AnonymousUser) -> bool:
    """Whether the person runs the platform (the Django admin's own test: active staff), which
    no organization role grants."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def roles_with(capability: Capability) -> frozenset[Role]:
    """The roles that hold a capability (for queries such as who is told about alerts)."""
    return frozenset(role for role, held in CAPABILITIES.items() if capability in held)


def is_step_down(old: Role | str, new: Role | str) -> bool:
    """Whether moving from role `old` to `new` takes away anything `old` could do."""
    return bool(CAPABILITIES[Role(old)] - CAPABILITIES[Role(new)])


def require(request: HttpRequest, capability: Capability) -> Organization:
    """The organization the signed-in person may do this in, or PermissionDenied saying who may."""
    access = access_for(request.user)
    if access.organization is None or not access.can(capability):
        raise PermissionDenied(REFUSALS[capability])
    return access.organization
