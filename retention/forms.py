"""Forms for the retention page and scheduled exports; every field bounded and validated."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import Organization, Tier
from audit.forms import EventFilterForm

from .models import MAX_WINDOW_DAYS, Framework, Frequency

YEARS_MESSAGE = "Retention must be a whole number of years from 1 to 10."


class RetentionSettingsForm(forms.Form):
    frameworks = forms.MultipleChoiceField(
        choices=Framework.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Compliance frameworks we follow",
    )
    archive_before_purge = forms.BooleanField(
        required=False,
        label="Archive events to a verified gzip CSV file before they are purged",
    )
    retention_years = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=10,
        label="Keep events for (years)",
        error_messages={"min_value": YEARS_MESSAGE, "max_value": YEARS_MESSAGE},
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        if organization.tier != Tier.ENTERPRISE:
            self.fields["retention_years"].widget = forms.HiddenInput()

    def clean_retention_years(self) -> int | None:
        years: int | None = self.cleaned_data.get("retention_years")
        if years is None:
            return None
        if self.organization.tier != Tier.ENTERPRISE:
            raise forms.ValidationError(
                f"The {self.organization.get_tier_display()} tier keeps events "
                f"{self.organization.retention_days} days and cannot be configured; "
                "upgrade to Enterprise to choose 1 to 10 years."
            )
        return years

    def retention_days(self) -> int | None:
        years = self.cleaned_data.get("retention_years")
        return None if years is None else years * 365


class ExportScheduleForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    frequency = forms.ChoiceField(choices=Frequency.choices)
    window_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_WINDOW_DAYS,
        label="Days of events in each file",
        help_text="Counted back from each run; empty: 1, 7 or 31 by frequency.",
    )


class ScheduleFilterForm(EventFilterForm):
    """The Audit Log's filters, without its dates: a schedule's window moves with each run."""

    WINDOWLESS = ("start", "end", "tz", "period", "cursor")
    DATED = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, organization_wide=True, **kwargs)
        for name in self.WINDOWLESS:
            del self.fields[name]
