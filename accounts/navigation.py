"""The menu: every page a person may open, grouped, with the current page and section marked.

One table (``MENU``) names each menu link by its URL name, the capability that shows it
(``accounts.access``) and the pages that live under it (an event under its log, an alert under
Alerts), so the current section and the breadcrumbs come from the same place. The other apps'
pages appear by URL name only: nothing here imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.urls import reverse

from .access import Capability

if TYPE_CHECKING:
    from .access import Access

C = Capability


@dataclass(frozen=True)
class Entry:
    """A menu link: its label, URL name, who sees it, and the URL names of pages under it."""

    label: str
    url_name: str
    capability: Capability | None = None
    pages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """A menu group, and the page its breadcrumbs start from (``home``, labelled ``home_label``)."""

    key: str
    label: str
    entries: tuple[Entry, ...]
    home: str
    home_label: str


MENU: tuple[Group, ...] = (
    Group(
        "profile",
        "Profile",
        (
            Entry("Profile", "accounts:profile", pages=("accounts:activity-report",)),
            Entry(
                "Activity Log",
                "accounts:activity",
                pages=("accounts:activity-event", "accounts:activity-search-delete"),
            ),
            Entry("Alerts about me", "alerts:my-alerts"),
            Entry(
                "Sign-in & sessions",
                "accounts:security",
                pages=(
                    "accounts:mfa-enrol",
                    "accounts:passkey-add",
                    "accounts:mfa-backup-codes",
                    "accounts:mfa-backup-codes-new",
                    "accounts:mfa-device-remove",
                    "accounts:session-end",
                    "accounts:sessions-end-others",
                ),
            ),
            Entry("Change password", "accounts:password-change"),
        ),
        "accounts:profile",
        "Profile",
    ),
    Group(
        "security",
        "Security",
        (
            Entry("Overview", "accounts:security-settings", C.VIEW_SECURITY_SETTINGS),
            Entry(
                "Audit Log",
                "accounts:audit-log",
                C.VIEW_AUDIT_LOG,
                ("accounts:audit-log-event", "accounts:audit-log-search-delete"),
            ),
            Entry("Exports", "exports:export-list", C.EXPORT_AUDIT_LOG),
            Entry(
                "Alerts",
                "alerts:alert-list",
                C.TRIAGE_ALERTS,
                (
                    "alerts:alert-detail",
                    "alerts:alert-subject-unlock",
                    "alerts:alert-subject-sign-out",
                ),
            ),
            Entry("Alert rules", "alerts:rule-list", C.TRIAGE_ALERTS, ("alerts:rule-edit",)),
            Entry(
                "Webhooks",
                "alerts:webhook-list",
                C.MANAGE_WEBHOOKS,
                ("alerts:webhook-detail", "alerts:webhook-delete"),
            ),
            Entry(
                "Reviews",
                "compliance:reviews",
                C.VIEW_REVIEWS,
                (
                    "compliance:schedule-edit",
                    "compliance:schedule-add",
                    "compliance:review-detail",
                    "compliance:review-sign-off",
                    "compliance:review-open",
                ),
            ),
            Entry(
                "Monitoring checklist",
                "compliance:checklist",
                C.VIEW_REVIEWS,
                ("compliance:guide", "compliance:guide-edit", "compliance:retention-acknowledge"),
            ),
            Entry(
                "Streams",
                "streams:stream-list",
                C.MANAGE_STREAMS,
                (
                    "streams:stream-create",
                    "streams:stream-edit",
                    "streams:stream-replay",
                    "streams:stream-delete",
                ),
            ),
        ),
        "accounts:security-settings",
        "Security settings",
    ),
    Group(
        "organization",
        "Organization",
        (
            Entry(
                "Members",
                "accounts:members",
                C.MANAGE_MEMBERS,
                ("accounts:member-sign-out", "accounts:member-mfa-reset"),
            ),
            Entry(
                "Email domains", "accounts:domains", C.MANAGE_DOMAINS, ("accounts:domain-remove",)
            ),
            Entry("Sign-in throttling", "accounts:throttling", C.MANAGE_THROTTLING),
            Entry(
                "Access policies",
                "policies:access-policies",
                C.MANAGE_ACCESS_POLICIES,
                ("policies:remove",),
            ),
            Entry("API tokens", "api:tokens", C.MANAGE_API_TOKENS, ("api:token-revoke",)),
            Entry("Retention", "retention:retention", C.VIEW_RETENTION),
            Entry("Archives & scheduled exports", "retention:archives", C.MANAGE_ARCHIVES),
            Entry("Log integrity", "integrity:integrity", C.VERIFY_INTEGRITY),
            Entry(
                "Access reviews",
                "reports:access-reviews",
                C.REVIEW_ACCESS,
                (
                    "reports:access-review",
                    "reports:access-review-decide",
                    "reports:access-review-complete",
                ),
            ),
            Entry(
                "Compliance reports",
                "reports:reports",
                C.COMPLIANCE_REPORTS,
                ("reports:report", "reports:report-status"),
            ),
        ),
        # Everyone who sees this group may open Settings → Security (accounts.access).
        "accounts:security-settings",
        "Security settings",
    ),
)


@dataclass(frozen=True)
class Link:
    """A menu link as shown: ``current`` is "page" on its own page, "true" on a page under it."""

    label: str
    url: str
    current: str | None


@dataclass(frozen=True)
class ShownGroup:
    key: str
    label: str
    links: tuple[Link, ...]
    current: bool


@dataclass(frozen=True)
class Menu:
    groups: tuple[ShownGroup, ...]
    breadcrumbs: tuple[Link, ...]


def _current(entry: Entry, view_name: str) -> str | None:
    if view_name == entry.url_name:
        return "page"
    return "true" if view_name in entry.pages else None


def menu_for(access: Access, view_name: str) -> Menu:
    """The groups and links this person may open, the current ones marked, and the breadcrumbs."""
    groups: list[ShownGroup] = []
    breadcrumbs: tuple[Link, ...] = ()
    for group in MENU:
        entries = [e for e in group.entries if e.capability is None or access.can(e.capability)]
        if not entries:
            continue
        links = tuple(Link(e.label, reverse(e.url_name), _current(e, view_name)) for e in entries)
        current = next((link for link in links if link.current), None)
        groups.append(ShownGroup(group.key, group.label, links, current is not None))
        if current is not None:
            # The way up from here: the group's home, then the entry a sub-page lives under.
            trail = []
            if view_name != group.home:
                trail.append(Link(group.home_label, reverse(group.home), None))
            if current.current == "true":
                trail.append(Link(current.label, current.url, None))
            breadcrumbs = tuple(trail)
    return Menu(tuple(groups), breadcrumbs)
