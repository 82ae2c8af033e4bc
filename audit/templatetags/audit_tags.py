"""Rendering of the event table's rows in Python.

A page of fifty events is about a thousand template variable lookups and as many calls of
Django's lazy-aware escape(); plain html.escape over the same values gives the same HTML in a
fraction of the time. Every value is escaped; only the assembled rows are marked safe.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import UTC
from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from audit.models import AuditEvent

register = template.Library()


def _row(event: AuditEvent, prefix: str, zone: zoneinfo.ZoneInfo) -> str:
    local = event.occurred_at.astimezone(zone)
    place = ", ".join(part for part in (event.city, event.country) if part)
    agent = " · ".join(part for part in (event.browser, event.os) if part)
    target = f" → {escape(event.target_label)}" if event.target_label else ""
    outcome = escape(event.outcome)
    return (
        f'<tr class="outcome-{outcome}"><td><a href="{escape(prefix)}{int(event.pk)}/">'
        f'<time datetime="{event.occurred_at.astimezone(UTC).isoformat()}">'
        f"{local:%Y-%m-%d %H:%M:%S}</time></a></td>"
        f"<td><code>{escape(event.event_type)}</code></td><td>{outcome}</td>"
        f"<td>{escape(event.reason)}</td><td>{escape(event.actor_label)}{target}</td>"
        f"<td>{escape(event.ip_address or '—')}</td><td>{escape(place)}</td>"
        f"<td>{escape(agent)}</td></tr>"
    )


@register.simple_tag
def event_rows(events: Iterable[AuditEvent], detail_prefix: str, tz: str) -> SafeString:
    """The <tr> of each event: time in `tz` linking to its detail page, then its main fields."""
    zone = zoneinfo.ZoneInfo(tz or "UTC")
    rows = "".join(_row(event, detail_prefix, zone) for event in events)
    return mark_safe(rows or '<tr><td colspan="8">No events match.</td></tr>')  # noqa: S308
