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


STYLES = ("", "full", "exact")


def _zone_label(value: datetime) -> str:
    """ "CET (Europe/Berlin)" in the active zone; "UTC" alone where the abbreviation is its name."""
    zone = timezone.get_current_timezone_name()
    abbreviation = timezone.localtime(value).tzname() or zone
    return zone if abbreviation == zone else f"{abbreviation} ({zone})"


@register.inclusion_tag("audit/_when.html")
def when(value: object, style: str = "") -> dict[str, Any]:
    """A <time> in the active zone: relative ("3 minutes ago", the exact time on hover and for
    screen readers); style "exact": the local time and zone ("until 14:05 CET" reads better than
    "until in 9 minutes"); style "full": to the microsecond with the zone, then relative."""
    if style not in STYLES:
        raise template.TemplateSyntaxError(f"{{% when %}} knows the styles {STYLES}, not {style!r}")
    if not isinstance(value, datetime):  # None, or what iso_datetime could not read
        return {"value": None}
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    zone = timezone.get_current_timezone_name()
    local = timezone.localtime(value)
    zone_label = _zone_label(value)
    return {
        "value": value,
        "iso": value.astimezone(UTC).isoformat(),
        "relative": relative(value, now=timezone.now()),
        "exact": exact(value, microseconds=style == "full"),
        "zone_abbreviation": local.tzname(),
        "zone": zone,
        "zone_label": zone_label,
        "variant": style,
    }


@register.filter
def local_exact(value: datetime | None) -> str:
    """The exact local time as text (emails): "2026-03-11 08:30:15 JST (Asia/Tokyo)"."""
    if not isinstance(value, datetime):
        return ""
    return f"{exact(value)} {_zone_label(value)}"


@register.filter
def iso_datetime(value: object) -> datetime | None:
    """A datetime from ISO 8601 text (as JSON details and alert notes keep it); None if not one."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
