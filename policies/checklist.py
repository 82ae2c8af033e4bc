"""The monitoring checklist's item for the access policies (accounts.checklist)."""

from __future__ import annotations

from datetime import datetime

from accounts.checklist import (
    ChecklistItem,
    Evidence,
    EvidenceSource,
    Status,
    checklist_evidence_register,
    checklist_item_register,
)
from accounts.models import Organization, Role

from .selectors import policies_of

ITEM = ChecklistItem(
    "access_policies",
    80,
    "Restrict where, when and how long people sign in",
    "policies:access-policies",
    "Access policies",
)
# PCI DSS 8.2.8: at most 15 minutes idle for those who see the logs and the settings.
PCI_IDLE_MINUTES = 15
STAFF = (Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER)


def _within(idle_minutes: int | None) -> bool:
    return idle_minutes is not None and 0 < idle_minutes <= PCI_IDLE_MINUTES


def idle_limit_evidence(organization: Organization, now: datetime) -> Evidence:
    limits = {limits.role: limits for limits in policies_of(organization).limits}
    over = [limits[role].label for role in STAFF if not _within(limits[role].idle_minutes)]
    if over:
        return Evidence(
            Status.FAILING,
            f"{', '.join(over)}: no idle limit of {PCI_IDLE_MINUTES} minutes or less "
            "(PCI DSS 8.2.8).",
        )
    return Evidence(
        Status.DONE,
        f"Administrators, analysts and compliance officers are signed out after at most "
        f"{PCI_IDLE_MINUTES} minutes idle.",
    )


def network_and_hours_evidence(organization: Organization, now: datetime) -> Evidence:
    policies = policies_of(organization)
    windows = [w for w in policies.windows if w.active]
    if not policies.rules and not windows:
        return Evidence(
            Status.TO_DO, "No network rule or sign-in hours: anyone may sign in from anywhere."
        )
    return Evidence(
        Status.DONE,
        f"{len(policies.rules)} network rule(s) and {len(windows)} sign-in window(s) in force.",
    )


def checklist_register() -> None:
    checklist_item_register(ITEM)
    checklist_evidence_register(EvidenceSource(ITEM.key, "Idle limit", idle_limit_evidence))
    checklist_evidence_register(
        EvidenceSource(ITEM.key, "Networks and hours", network_and_hours_evidence)
    )
