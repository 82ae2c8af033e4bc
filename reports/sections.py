"""The compliance report's sections: a registry other apps add to, like the overview's panels.

Each section names the clauses it answers per framework, the control that meets them, and a
function that gathers its evidence for an organization and a period. The report job
(reports.services.report_build) runs the sections that answer a clause of the chosen framework,
in order, and keeps what each returns: figures for the page, a status, and the rows of the CSV
the bundle carries. An app above reports (the review schedule) registers its own section in its
AppConfig.ready with report_section_register; registering a name again replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import Organization


class Status:
    """How a section's evidence stands against its clauses (stable values, shown on the page)."""

    MET = "met"
    ATTENTION = "attention"  # evidence shows a gap the reader should look at
    NO_EVIDENCE = "no_evidence"  # nothing happened in the period to show either way


@dataclass(frozen=True)
class Clause:
    reference: str
    requirement: str


@dataclass(frozen=True)
class Period:
    """[start, end): start inclusive, end exclusive; and the framework reported on."""

    start: datetime
    end: datetime
    framework: str = ""


@dataclass(frozen=True)
class Evidence:
    """What a section found: its status, labelled figures, notes, and the rows of its CSV."""

    status: str
    figures: Sequence[tuple[str, str]]
    notes: Sequence[str] = ()
    header: Sequence[str] = ()
    rows: Sequence[Sequence[object]] = field(default_factory=list)


@dataclass(frozen=True)
class ReportSection:
    name: str
    order: int
    title: str
    control: str
    clauses: Mapping[str, Sequence[Clause]]  # by Framework value
    evidence: Callable[[Organization, Period], Evidence]

    def answers(self, framework: str) -> bool:
        return bool(self.clauses.get(framework))


# By name: registering again (a second ready(), a test) replaces instead of doubling.
_sections: dict[str, ReportSection] = {}


def report_section_register(section: ReportSection) -> None:
    """Add (or replace, by name) a section of the compliance report."""
    _sections[section.name] = section


def report_sections_for(framework: str) -> list[ReportSection]:
    """The registered sections that answer a clause of the framework, in order."""
    return [
        section
        for section in sorted(_sections.values(), key=lambda s: (s.order, s.name))
        if section.answers(framework)
    ]
