"""The filter form shared by the Activity Log, the Audit Log, CSV export and the API."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from .countries import COUNTRY_NAMES
from .descriptions import (
    category_title,
    country_name,
    event_title,
    outcome_title,
    reason_codes,
    reason_title,
)
from .models import EVENT_TYPES_BY_CATEGORY, Category, Outcome, category_of
from .query import IP_MESSAGE, Query, QueryError, ip_or_network, query_parse
from .selectors import Condition, EventFilters
from .widgets import QuickSelect

_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
# The days a filter may name. A day becomes the instants from its midnight to the next one in
# the viewer's zone (whose offset is always less than a day); Python's datetime holds those only
# for days well inside its years 1 to 9999. 1900 is long before any event this product records.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(9998, 12, 31)
DATE_RANGE_MESSAGE = f"Enter a date from {MIN_DATE:%Y-%m-%d} to {MAX_DATE:%Y-%m-%d}."
# User ids are PostgreSQL bigints.
MAX_USER_ID = 2**63 - 1
USER_ID_MESSAGE = "A user id is written with the digits 0-9 and is at most 19 digits long."


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class DayField(forms.DateField):
    """A day written YYYY-MM-DD in ASCII digits (what a date input sends), within the range."""

    input_formats = ["%Y-%m-%d"]
    default_error_messages = {"invalid": "Enter a date as YYYY-MM-DD, e.g. 2026-03-01."}
    default_validators = [
        MinValueValidator(MIN_DATE, message=DATE_RANGE_MESSAGE),
        MaxValueValidator(MAX_DATE, message=DATE_RANGE_MESSAGE),
    ]

    def to_python(self, value: Any) -> date | None:
        # strptime reads any Unicode digit ("２０２６"); only the ASCII form is a date here.
        # Stored filters (JSON) may hold any type; only text or a date is one.
        if isinstance(value, str) and not value.isascii():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        if value is not None and not isinstance(value, str | date):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class WholeNumberField(forms.IntegerField):
    """A whole number in ASCII digits: int() would also read "３" or "٣" as a number."""

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str) and not value.strip().isascii():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


def user_id_of(value: str) -> int | None:
    """The user id the user filter names, None for an address or name; refuses a number
    that is not an id (Unicode digits such as "²" or "①", more than a bigint holds)."""
    if not value.isdigit():
        return None
    if not value.isascii() or int(value) > MAX_USER_ID:
        raise ValidationError(USER_ID_MESSAGE)
    return int(value)


def _blank_choice(values: list[str], title: Any) -> list[tuple[str, str]]:
    """The codes as a dropdown's options, each shown in words (the value stays the code)."""
    return [("", "Any"), *((value, title(value)) for value in values)]


def _event_type_choices() -> list[Any]:
    """Every event type in words, grouped by category."""
    return [
        ("", "Any"),
        *(
            (category_title(category), [(value, event_title(value)) for value in values])
            for category, values in EVENT_TYPES_BY_CATEGORY.items()
        ),
    ]


def _reason_choices() -> list[tuple[str, str]]:
    return [
        ("", "Any"),
        *sorted(((code, reason_title(code)) for code in reason_codes()), key=_by_words),
    ]


def _country_choices() -> list[tuple[str, str]]:
    return [("", "Any"), *sorted(COUNTRY_NAMES.items(), key=_by_words)]


def _by_words(choice: tuple[str, str]) -> str:
    return choice[1].casefold()


class _CodeSelect(QuickSelect):
    """A dropdown of codes that shows the code in the address whatever its case (de is DE), and
    one it does not list as itself, so the page never pretends to show another filter."""

    def format_value(self, value: Any) -> Any:  # Select's: a list of the selected values
        return [str(v).upper() for v in super().format_value(value)]

    def optgroups(self, name: str, value: list[str], attrs: dict[str, Any] | None = None) -> Any:
        known = {str(choice[0]) for choice in self.choices}
        extra = [(v, v) for v in value if v and v not in known]
        if extra:
            self.choices = [*self.choices, *extra]
        return super().optgroups(name, value, attrs)


# What a chip says for a field's code: the same words as the dropdown.
VALUE_TITLES = {
    "category": category_title,
    "event_type": event_title,
    "outcome": outcome_title,
    "reason": reason_title,
    "country": country_name,
}


# The time presets: how far back from now each reaches. "custom" is the From and To fields.
PERIODS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PERIOD_CHOICES = [
    ("", "Any time"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom dates"),
]


def conditions_of(query: Query) -> tuple[Condition, ...]:
    """The query's qualifiers as the selector's conditions: the positive values of one
    qualifier together (any of them matches), each negation on its own."""
    positive: dict[str, list[str]] = {}
    negated = []
    for term in query.qualified():
        if term.key == "created":
            continue
        if term.negated:
            negated.append(Condition(field=term.key, values=term.values, negated=True))
        else:
            positive.setdefault(term.key, []).extend(term.values)
    together = [
        Condition(field=key, values=tuple(dict.fromkeys(values)))
        for key, values in positive.items()
    ]
    return (*together, *negated)


class EventFilterForm(forms.Form):
    """Parse filter query parameters; `filters()` gives the selector's EventFilters.

    `organization_wide` adds the user and text filters of the Audit Log; the Activity Log shows
    one person's events, so there they would mean nothing.
    """

    q = forms.CharField(
        required=False,
        label="Search",
        strip=False,
        help_text=(
            "Free text (a name or email address) and qualifiers: actor:, target:, type:login.*, "
            "outcome:, reason:, ip:, country:, created:>=2026-11-01; - or NOT in front negates."
        ),
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    period = forms.ChoiceField(
        required=False, label="Time", choices=PERIOD_CHOICES, widget=QuickSelect
    )
    # The browser's date picker (Django's Input takes "type" from attrs as the input type).
    start = DayField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = DayField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    tz = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    category = forms.ChoiceField(
        required=False, choices=_blank_choice(Category.values, category_title), widget=QuickSelect
    )
    event_type = forms.ChoiceField(
        required=False,
        label="Event type",
        choices=_event_type_choices(),
        widget=QuickSelect,
    )
    outcome = forms.ChoiceField(
        required=False, choices=_blank_choice(Outcome.values, outcome_title), widget=QuickSelect
    )
    reason = forms.ChoiceField(required=False, choices=_reason_choices(), widget=QuickSelect)
    user = forms.CharField(
        required=False,
        max_length=254,
        help_text="An email address or a user id.",
    )
    ip = forms.CharField(
        required=False,
        label="IP",
        max_length=64,
        help_text="An address or a CIDR network.",
    )
    # A dropdown of names; the address keeps the two-letter code (any case, as before).
    country = forms.CharField(
        required=False, max_length=8, widget=_CodeSelect(choices=_country_choices())
    )
    cursor = forms.CharField(required=False, max_length=512, widget=forms.HiddenInput)

    ORGANIZATION_ONLY = ("user",)
    # Where in the results to start and how many: how to read them, not what to read.
    NOT_FILTERS = ("cursor", "limit")
    # Whether the search may name dates (a schedule's window moves with each run instead).
    DATED = True
    query: Query = Query(text="")

    def __init__(
        self, *args: Any, organization_wide: bool = True, paged: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.organization_wide = organization_wide
        if not organization_wide:
            for name in self.ORGANIZATION_ONLY:
                del self.fields[name]
        if not paged:  # an export takes every row: a page cursor means nothing there
            del self.fields["cursor"]

    def clean_tz(self) -> str:
        # Unset, the days are the active zone's (the person's own where it is known), as the
        # search's created: days are; an export keeps the zone it was asked in (canonical()).
        value = self.cleaned_data["tz"].strip() or timezone.get_current_timezone_name()
        if value not in _time_zones():
            raise ValidationError("Unknown time zone.")
        return value

    def clean_ip(self) -> str:
        value = self.cleaned_data["ip"].strip()
        if not value:
            return ""
        try:
            return ip_or_network(value)
        except ValueError as exc:
            raise ValidationError(f"Enter {IP_MESSAGE}.") from exc

    def clean_country(self) -> str:
        value: str = self.cleaned_data["country"].strip()
        if value and not _COUNTRY.match(value):
            raise ValidationError("Enter a two-letter country code, e.g. DE.")
        return value.upper()

    def clean_user(self) -> str:
        value: str = self.cleaned_data["user"].strip().lower()
        user_id_of(value)  # refuses what looks like an id but is not one
        return value

    def clean_q(self) -> str:
        text = " ".join(self.cleaned_data["q"].split())
        try:
            query = query_parse(text)
        except QueryError as exc:
            raise ValidationError(str(exc)) from exc
        if not self.DATED and any(term.key == "created" for term in query.terms):
            raise ValidationError(
                "created: has no place here: each run exports the days of its own window."
            )
        self.query = query
        return text

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("end", "The end date is before the start date.")
        category, event_type = cleaned.get("category"), cleaned.get("event_type")
        if category and event_type and category_of(event_type) != category:
            self.add_error("event_type", f"{event_type} is not in category {category}.")
        return cleaned

    def filters(self) -> EventFilters:
        """The validated filters, dates turned into UTC instants of the chosen time zone."""
        data = self.cleaned_data
        zone = zoneinfo.ZoneInfo(data.get("tz") or "UTC")
        starts: list[datetime] = []
        ends: list[datetime] = []
        if data.get("start"):
            starts.append(datetime.combine(data["start"], time.min, tzinfo=zone))
        if data.get("end"):
            # The end date is inclusive: everything before the next day's midnight.
            ends.append(datetime.combine(data["end"] + timedelta(days=1), time.min, tzinfo=zone))
        if data.get("period") in PERIODS:
            starts.append(timezone.now() - PERIODS[data["period"]])
        # The search's days are the active zone's (the person's own, where it is known).
        active = timezone.get_current_timezone()
        for term in self.query.terms:
            if term.since is not None:
                starts.append(datetime.combine(term.since, time.min, tzinfo=active))
            if term.until is not None:
                ends.append(datetime.combine(term.until, time.min, tzinfo=active))
        user = data.get("user") or ""
        user_id = user_id_of(user)
        return EventFilters(
            since=max(starts, default=None),
            until=min(ends, default=None),
            conditions=(
                *conditions_of(self.query),
                *(
                    (Condition(field="reason", values=(data["reason"],)),)
                    if data.get("reason")
                    else ()
                ),
            ),
            category=data.get("category") or "",
            event_type=data.get("event_type") or "",
            outcome=data.get("outcome") or "",
            user_id=user_id,
            user="" if user_id is not None else user,
            ip=data.get("ip") or "",
            country=data.get("country") or "",
            text=self.query.free_text,
            text_excluded=self.query.excluded_text,
        )

    def canonical(self) -> dict[str, str]:
        """The non-empty filters as strings, without cursor or limit: what a view "looked at"."""
        result = {}
        for name in self.fields:
            if name in self.NOT_FILTERS:
                continue
            value = self.cleaned_data.get(name)
            if value not in (None, ""):
                result[name] = str(value)
        if result.get("tz") == "UTC":
            del result["tz"]
        return result

    def refusal(self) -> str:
        """Why the filters were refused, in one sentence for a 400 answer."""
        return f"These filters could not be used: {self.error_text()}"

    def error_text(self) -> str:
        """All errors as one line, for JSON and plain-text 400 responses."""
        parts = []
        for name, errors in self.errors.items():
            label = "filters" if name == "__all__" else name
            parts.append(f"{label}: {' '.join(str(error) for error in errors)}")
        return "; ".join(parts)
