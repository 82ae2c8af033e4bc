"""A compliance report's bundle: a zip of the report as self-contained HTML, one CSV per
section, and manifest.json naming each file's SHA-256. Kept in exports' storage."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string
from django.utils import timezone

from audit.models import AuditEvent
from exports.csv import FORMULA_START
from exports.services import export_root
from integrity.selectors import seal_head

from .models import Framework

if TYPE_CHECKING:
    from .models import ComplianceReport
    from .sections import Evidence, ReportSection

# The page shows this many rows of each section; the CSV in the bundle has them all.
PREVIEW_ROWS = 20
DOCUMENT = "report.html"
MANIFEST = "manifest.json"


def report_root() -> Path:
    """Where bundles are kept: a folder of the exports' storage (EXPORT_ROOT)."""
    return export_root() / "reports"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in FORMULA_START else text


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """The rows as CSV (formula cells neutralised as exports do), header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue().encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def report_content(
    *, report: ComplianceReport, built: Sequence[tuple[ReportSection, Evidence]]
) -> dict[str, Any]:
    """What the page and the document show, as JSON: no markup, no model instances."""
    empty = not (
        AuditEvent.objects.filter(
            organization=report.organization,
            occurred_at__gte=report.period_start,
            occurred_at__lt=report.period_end,
        ).exists()
    )
    return {
        "organization": report.organization.name,
        "framework": Framework(report.framework).label,
        "period_start": report.period_start.isoformat(),
        "period_end": report.period_end.isoformat(),
        "generated_at": timezone.now().isoformat(),
        "requested_by": report.requested_by_label,
        "empty": empty,
        "sections": [
            {
                "name": section.name,
                "title": section.title,
                "control": section.control,
                "clauses": [
                    {"reference": c.reference, "requirement": c.requirement}
                    for c in section.clauses[report.framework]
                ],
                "status": evidence.status,
                "figures": [list(pair) for pair in evidence.figures],
                "notes": list(evidence.notes),
                "csv": f"{section.name}.csv",
                "rows": len(evidence.rows),
                "header": list(evidence.header),
                "preview": [[_cell(v) for v in row] for row in evidence.rows[:PREVIEW_ROWS]],
            }
            for section, evidence in built
        ],
    }


def report_bundle_write(
    *, report: ComplianceReport, built: Sequence[tuple[ReportSection, Evidence]]
) -> tuple[dict[str, Any], str, int, str]:
    """Write the bundle under a temporary name, then rename it into place.

    Returns the content, the file's name (under report_root()), its size and its SHA-256.
    """
    content = report_content(report=report, built=built)
    files: list[tuple[str, bytes]] = [
        (f"{section.name}.csv", csv_bytes(evidence.header, evidence.rows))
        for section, evidence in built
    ]
    document = render_to_string("reports/report_document.html", {"content": content})
    files.insert(0, (DOCUMENT, document.encode()))
    manifest = {
        "report_id": str(report.pk),
        "organization": content["organization"],
        "framework": report.framework,
        "period_start": content["period_start"],
        "period_end": content["period_end"],
        "generated_at": content["generated_at"],
        "files": [{"name": n, "sha256": sha256(d), "size": len(d)} for n, d in files],
        # The head of the organization's chain of seals, so the bundle names the log it read.
        "integrity_seal": seal_head(report.organization_id),
    }
    files.append((MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode()))
    content["files"] = manifest["files"]

    root = report_root()
    root.mkdir(parents=True, exist_ok=True)
    name = f"{report.pk}.zip"
    part = root / f"{name}.{report.attempts}.part"
    stamp = timezone.now().timetuple()[:6]
    try:
        with part.open("wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as bundle:
                for file_name, data in files:
                    info = zipfile.ZipInfo(file_name, date_time=stamp)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    bundle.writestr(info, data)
            handle.flush()
            os.fsync(handle.fileno())
        data = part.read_bytes()
        os.replace(part, root / name)
    finally:
        part.unlink(missing_ok=True)
    return content, name, len(data), sha256(data)
