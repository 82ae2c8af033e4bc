"""Filters that put events into words (audit.descriptions) for the pages."""

from __future__ import annotations

from django import template

from .. import descriptions
from ..descriptions import Describable

register = template.Library()

register.filter("event_title", descriptions.event_title)
register.filter("reason_title", descriptions.reason_title)
register.filter("outcome_title", descriptions.outcome_title)
register.filter("category_title", descriptions.category_title)
register.filter("country_name", descriptions.country_name)


@register.filter
def event_what(event: Describable) -> str:
    """ "Wrong password for alice@acme.test"."""
    return descriptions.event_what(event)


@register.filter
def event_sentence(event: Describable) -> str:
    """ "Wrong password for alice@acme.test from Berlin, Germany — Chrome on macOS"."""
    return descriptions.event_sentence(event)


@register.filter
def event_place(event: Describable) -> str:
    """ "Berlin, Germany"."""
    return descriptions.place_of(city=event.city, country=event.country)


@register.filter
def event_device(event: Describable) -> str:
    """ "Chrome on macOS"."""
    return descriptions.device_of(browser=event.browser, os=event.os)


@register.filter
def yes_no(value: object) -> str:
    """ "Yes" or "No" for a flag (never "True")."""
    return "Yes" if value else "No"


@register.filter
def human(value: object) -> str:
    """A setting's value as people read it: Yes/No for flags, lists joined, — for nothing."""
    if isinstance(value, bool):
        return yes_no(value)
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(human(item) for item in value) or "—"
    return str(value)
