"""Forms of the reports app: a decision on a member, a report's period and framework."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import Role

from .models import Decision, Framework

# Twelve months and a leap day: what an annual audit asks for, and what the benchmark measures.
REPORT_MAX_DAYS = 366


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices)
    role = forms.ChoiceField(choices=[("", "—"), *Role.choices], required=False)
    note = forms.CharField(max_length=500, required=False, strip=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == Decision.CHANGE_ROLE and not data.get("role"):
            self.add_error("role", "Choose the member's new role.")
        return data


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class ReportForm(forms.Form):
    """A framework and whole days in UTC, from the first day to the last, both included."""

    framework = forms.ChoiceField(choices=Framework.choices)
    start = forms.DateField(label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        label="To, included (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start is None or end is None:
            return data
        yesterday = timezone.now().astimezone(UTC).date() - timedelta(days=1)
        if end < start:
            self.add_error("end", "The period must end on or after the day it starts.")
        elif end > yesterday:
            # A day not yet over would give figures that change after the report is signed.
            self.add_error(
                "end", f"The period must be over: end it on {yesterday} (yesterday) or before."
            )
        elif (end - start).days + 1 > REPORT_MAX_DAYS:
            self.add_error("end", f"A report covers at most {REPORT_MAX_DAYS} days.")
        return data

    def period(self) -> tuple[datetime, datetime]:
        """[start, end): midnight UTC of the first day to midnight after the last."""
        start: date = self.cleaned_data["start"]
        end: date = self.cleaned_data["end"]
        return _midnight(start), _midnight(end) + timedelta(days=1)
