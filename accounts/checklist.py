"""The monitoring checklist's items, and the evidence each app contributes to them.

Like the overview's panels (accounts.overview), the checklist knows nothing of the apps that
fill it: an app registers items (the product page's seven are compliance's) and evidence
sources for any item in its AppConfig.ready(), so an app added later (a SIEM stream) adds its
evidence to "correlate with security events" without touching the others. An item is done when
at least one of its sources is done and none is failing; failing when any source fails.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Organization


class Status(enum.StrEnum):
    DONE = "done"
    TO_DO = "to_do"
    FAILING = "failing"


@dataclass(frozen=True)
class Evidence:
    """What one source found: its status and a sentence saying why (with a date where known)."""

    status: Status
    text: str
    at: datetime | None = None


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    order: int
    title: str
    # The page that fixes it, by URL name.
    fix_url_name: str
    fix_label: str


@dataclass(frozen=True)
class EvidenceSource:
    item: str
    name: str
    check: Callable[[Organization, datetime], Evidence]


@dataclass(frozen=True)
class CheckedItem:
    item: ChecklistItem
    status: Status
    evidence: tuple[tuple[str, Evidence], ...]


# By key and by (item, name): registering again replaces instead of doubling.
_items: dict[str, ChecklistItem] = {}
_sources: dict[tuple[str, str], EvidenceSource] = {}


def checklist_item_register(item: ChecklistItem) -> None:
    """Add (or replace, by key) an item of the checklist."""
    _items[item.key] = item


def checklist_evidence_register(source: EvidenceSource) -> None:
    """Add (or replace, by item and name) a source of evidence for an item."""
    _sources[source.item, source.name] = source


def _combined(found: list[Evidence]) -> Status:
    if any(e.status is Status.FAILING for e in found):
        return Status.FAILING
    if any(e.status is Status.DONE for e in found):
        return Status.DONE
    return Status.TO_DO


def checklist_check(organization: Organization, *, now: datetime) -> list[CheckedItem]:
    """Every item in order with its status computed now from its sources' evidence."""
    checked = []
    for item in sorted(_items.values(), key=lambda i: (i.order, i.key)):
        evidence = tuple(
            (source.name, source.check(organization, now))
            for (key, _), source in sorted(_sources.items())
            if key == item.key
        )
        checked.append(CheckedItem(item, _combined([e for _, e in evidence]), evidence))
    return checked
