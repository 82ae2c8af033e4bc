"""The Access policies page's forms: each refuses bad input with a sentence saying why."""

from __future__ import annotations

import ipaddress
from datetime import time
from typing import Any

from django import forms

from accounts.models import Organization, Role
from accounts.timezones import zone_choices, zone_valid

from .compiled import END_OF_DAY
from .models import ROLE_CHOICES, NetworkAction, NetworkList, SessionLimitAction
from .networks import CidrError, parse_cidrs

DAYS = [
    (1, "Mon"),
    (2, "Tue"),
    (3, "Wed"),
    (4, "Thu"),
    (5, "Fri"),
    (6, "Sat"),
    (7, "Sun"),
]


def _lists_of(organization: Organization) -> Any:
    return NetworkList.objects.filter(organization=organization).order_by("name")


class CidrField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        try:
            return parse_cidrs(text)
        except CidrError as exc:
            raise forms.ValidationError(str(exc), code="cidrs") from None


class NetworkListForm(forms.Form):
    name = forms.CharField(label="Name", max_length=80, help_text="For example “Office”.")
    cidrs = CidrField(
        label="Networks",
        max_length=200_000,
        help_text="One per line: 203.0.113.0/24, 2001:db8::/32, or a single address.",
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError("The name cannot hold control characters.")
        return name


class NetworkListEditForm(forms.Form):
    cidrs = CidrField(label="Networks", max_length=200_000)


class NetworkRuleForm(forms.Form):
    role = forms.ChoiceField(label="Who", choices=ROLE_CHOICES, required=False)
    action = forms.ChoiceField(label="Rule", choices=NetworkAction.choices)
    network_list = forms.ModelChoiceField(
        label="Networks",
        queryset=NetworkList.objects.none(),
        error_messages={"invalid_choice": "Choose one of your network lists."},
    )

    def __init__(self, organization: Organization, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["network_list"].queryset = _lists_of(organization)  # type: ignore[attr-defined]


class AccessPolicyForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone of the hours", choices=zone_choices, initial="UTC"
    )
    break_glass = forms.ModelChoiceField(
        label="Break-glass networks",
        queryset=NetworkList.objects.none(),
        required=False,
        empty_label="None",
        help_text="Administrators may always sign in from these, whatever the rules say.",
        error_messages={"invalid_choice": "Choose one of your network lists."},
    )
    max_sessions = forms.IntegerField(
        label="Sessions per person at once",
        min_value=1,
        max_value=50,
        required=False,
        help_text="Empty: no limit.",
    )
    session_limit_action = forms.ChoiceField(
        label="At the limit", choices=SessionLimitAction.choices
    )

    def __init__(self, organization: Organization, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["break_glass"].queryset = _lists_of(organization)  # type: ignore[attr-defined]

    def clean_time_zone(self) -> str:
        zone: str = self.cleaned_data["time_zone"]
        if not zone_valid(zone):
            raise forms.ValidationError(f"{zone[:64]} is not a time zone.")
        return zone


class EndOfDayTimeField(forms.TimeField):
    """A time, where 24:00 is the end of the day."""

    def to_python(self, value: Any) -> time | None:
        if isinstance(value, str) and value.strip() in ("24:00", "24:00:00"):
            return END_OF_DAY
        return super().to_python(value)


class TimeWindowForm(forms.Form):
    role = forms.ChoiceField(label="Who", choices=ROLE_CHOICES, required=False)
    days = forms.TypedMultipleChoiceField(
        label="Days",
        choices=DAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one day."},
    )
    starts = forms.TimeField(label="From", widget=forms.TimeInput(attrs={"type": "time"}))
    ends = EndOfDayTimeField(
        label="Until", help_text="24:00 for the end of the day.", widget=forms.TextInput()
    )
    active = forms.BooleanField(label="In force", required=False, initial=True)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        starts, ends = cleaned.get("starts"), cleaned.get("ends")
        if starts is not None and ends is not None and ends <= starts:
            self.add_error(
                "ends",
                "The window ends before it starts. A night shift is two windows: "
                "22:00–24:00 and 00:00–06:00.",
            )
        return cleaned


class TimeExceptionForm(forms.Form):
    role = forms.ChoiceField(label="Who", choices=ROLE_CHOICES, required=False)
    on = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    allowed = forms.TypedChoiceField(
        label="That day",
        choices=[("0", "No sign-in all day"), ("1", "Sign-in allowed all day")],
        coerce=lambda value: value == "1",
    )
    note = forms.CharField(label="Note", max_length=120, required=False)


def _limit(label: str, maximum: int) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=1, max_value=maximum, required=False)


class SessionPoliciesForm(forms.Form):
    """Each role's idle limit (minutes) and lifetime (hours); empty: none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for role in Role:
            self.fields[f"idle_{role}"] = _limit(f"{role.label}: idle minutes", 24 * 60)
            self.fields[f"lifetime_{role}"] = _limit(f"{role.label}: lifetime hours", 24 * 30)

    def values(self) -> dict[str, tuple[int | None, int | None]]:
        return {
            role: (self.cleaned_data[f"idle_{role}"], self.cleaned_data[f"lifetime_{role}"])
            for role in Role
        }


class PreviewForm(forms.Form):
    ip = forms.CharField(label="IP address", max_length=64)
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)

    def clean_ip(self) -> str:
        text = self.cleaned_data["ip"].strip()
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise forms.ValidationError(
                "Enter one IPv4 or IPv6 address, such as 203.0.113.7."
            ) from None
