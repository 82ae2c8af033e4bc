"""Settings → Security's overview: the panels apps above accounts add to it, each for a capability.

accounts sits below alerts, exports and retention (the import layers), so it cannot read their
tables; instead each of them registers a panel in its AppConfig.ready(), as alerts registers
its reaction to events with audit.services.after_events_commit. The view shows the panels the
viewer's role may see (accounts.access), in order, each rendered from its own template with the
data its function returns for the organization.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .access import Access, Capability
    from .models import Organization


@dataclass(frozen=True)
class OverviewPanel:
    """One section of the overview: who may see it, its template and what fills it."""

    name: str
    order: int
    capability: Capability
    template: str
    data: Callable[[Organization, datetime], Mapping[str, object]]


@dataclass(frozen=True)
class RenderedPanel:
    name: str
    template: str
    data: Mapping[str, object]


# By name: registering again (a second ready(), a test) replaces instead of doubling.
_panels: dict[str, OverviewPanel] = {}


def overview_panel_register(panel: OverviewPanel) -> None:
    """Add (or replace, by name) a panel of the overview."""
    _panels[panel.name] = panel


def overview_panels_for(access: Access, *, now: datetime) -> list[RenderedPanel]:
    """The registered panels the person may see, in order, with their data."""
    organization = access.organization
    if organization is None:
        return []
    return [
        RenderedPanel(panel.name, panel.template, panel.data(organization, now))
        for panel in sorted(_panels.values(), key=lambda p: (p.order, p.name))
        if access.can(panel.capability)
    ]


# accounts' own panels (registered in AccountsConfig.ready).

# The chart's span: a month of days, enough to see a week's rhythm and an attack's spike.
ACTIVITY_DAYS = 30


def sign_in_activity(organization: Organization, now: datetime) -> Mapping[str, object]:
    """The chart's days, and the same series for its script (json_script, no inline script)."""
    from django.utils import timezone

    from .selectors import sign_ins_by_day_of

    # Days of the viewer's zone (the one the request activated), as every time on the page.
    zone = timezone.get_current_timezone()
    days = sign_ins_by_day_of(organization, days=ACTIVITY_DAYS, now=now, zone=zone)
    return {
        # The table's rows, labelled here: thirty `date` filters cost the page milliseconds.
        "rows": [
            {
                "iso": d.day.isoformat(),
                "label": f"{d.day:%a} {d.day.day} {d.day:%b}",
                "succeeded": d.succeeded,
                "failed": d.failed,
            }
            for d in days
        ],
        "zone": timezone.get_current_timezone_name(),
        "totals": {
            "succeeded": sum(d.succeeded for d in days),
            "failed": sum(d.failed for d in days),
        },
        "chart": {
            "days": [d.day.isoformat() for d in days],
            "succeeded": [d.succeeded for d in days],
            "failed": [d.failed for d in days],
        },
    }


def accounts_status(organization: Organization, now: datetime) -> Mapping[str, object]:
    """Who is locked out now, and how many members have a second factor."""
    from .models import MfaPolicy, Role
    from .selectors import locked_members_of, mfa_adoption_of

    required_roles = [Role(role).label for role in organization.mfa_required_roles or []]
    return {
        "locked": locked_members_of(organization, now=now),
        "mfa": mfa_adoption_of(organization),
        "mfa_policy": organization.mfa_policy,
        "mfa_required_roles": required_roles if organization.mfa_policy == MfaPolicy.ROLES else [],
        "mfa_passkey_roles": [
            Role(role).label
            for role in organization.mfa_passkey_roles or []
            if organization.passkey_required_for(role)
        ],
    }
