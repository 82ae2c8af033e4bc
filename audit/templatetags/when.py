"""{% when value %}: a time in the viewer's zone, relative, with the exact time beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.translation import ngettext

register = template.Library()

# Older than this, a time reads as a date: "3 weeks ago" tells an investigator too little.
RELATIVE_DAYS = 7


def relative(value: datetime, *, now: datetime) -> str:
    """ "just now", "3 minutes ago", "in 2 hours", "5 days ago"; older: the local date and time."""
    seconds = (now - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "in a few seconds" if future else "just now"
    minutes = round(seconds / 60)
    hours = round(seconds / 3600)
    days = round(seconds / 86400)
    if seconds < 45 * 60:
        text = ngettext("%d minute", "%d minutes", minutes) % minutes
    elif seconds < 22 * 3600:
        text = ngettext("%d hour", "%d hours", hours) % hours
    elif days <= RELATIVE_DAYS:
        text = ngettext("%d day", "%d days", days) % days
    else:
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    return f"in {text}" if future else f"{text} ago"


def exact(value: datetime, *, microseconds: bool = False) -> str:
    """The local time to the second (or microsecond)."""
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%d %H:%M:%S.%f" if microseconds else "%Y-%m-%d %H:%M:%S")


@register.inclusion_tag("audit/_when.html")
def when(value: datetime | None, style: str = "") -> dict[str, Any]:
    """A <time> in the active zone: relative in lists, the exact time first with style="full"."""
    if value is None:
        return {"value": None}
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    zone = timezone.get_current_timezone_name()
    local = timezone.localtime(value)
    # "CET (Europe/Berlin)"; "UTC" alone where the abbreviation is the zone's name.
    zone_label = zone if local.tzname() == zone else f"{local.tzname()} ({zone})"
    return {
        "value": value,
        "iso": value.astimezone(UTC).isoformat(),
        "relative": relative(value, now=timezone.now()),
        "exact": exact(value, microseconds=style == "full"),
        "zone_abbreviation": local.tzname(),
        "zone": zone,
        "zone_label": zone_label,
        "full": style == "full",
    }


@register.filter
def local_exact(value: datetime | None) -> str:
    """The exact local time as text (for emails and plain text): "2026-03-11 08:30:15 JST"."""
    if value is None:
        return ""
    return f"{exact(value)} {timezone.localtime(value).tzname()}"
