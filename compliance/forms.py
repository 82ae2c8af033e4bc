"""Forms for the review schedule, a review's items and sign-off, and the guide."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms

from accounts.forms import PasswordConfirmForm
from accounts.models import Organization, User

from .models import Decision, Focus, Frequency
from .selectors import reviewer_roles, reviewers_of, schedules_of

# A review of more than a year at once is not a review anyone does.
MAX_PERIOD_DAYS = 366
GUIDE_MAX_CHARS = 20_000
PURPOSE_REVIEW_SIGN_OFF = "review_sign_off"


def _email(user: User) -> str:
    return user.email


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    focus = forms.ChoiceField(choices=Focus.choices, label="What it looks at")
    frequency = forms.ChoiceField(choices=Frequency.choices)
    assigned_role = forms.ChoiceField(
        required=False, label="Signed off by anyone of the role", choices=()
    )
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Or by this person",
        help_text="A named person takes precedence over the role.",
    )
    active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(
        self,
        *args: Any,
        organization: Organization,
        schedule_pk: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.schedule_pk = schedule_pk  # the schedule being edited keeps its own name
        role = self.fields["assigned_role"]
        assert isinstance(role, forms.ChoiceField)
        role.choices = [("", "—"), *reviewer_roles()]
        assignee = self.fields["assignee"]
        assert isinstance(assignee, forms.ModelChoiceField)
        assignee.queryset = reviewers_of(organization)
        assignee.label_from_instance = _email  # type: ignore[method-assign,assignment]

    def clean_name(self) -> str:
        name: str = " ".join(self.cleaned_data["name"].split())
        if any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError("The name cannot hold control characters.")
        others = schedules_of(self.organization).filter(name=name)
        if self.schedule_pk is not None:
            others = others.exclude(pk=self.schedule_pk)
        if others.exists():
            raise forms.ValidationError("A schedule of that name exists already.")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not cleaned.get("assigned_role") and not cleaned.get("assignee"):
            raise forms.ValidationError("Choose the role or the person who signs it off.")
        return cleaned


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


class ReviewOpenForm(forms.Form):
    """A period chosen by hand, in whole UTC days: [start, end)."""

    start = forms.DateField(label="From (UTC day)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        label="Up to, not including (UTC day)", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end <= start:
                raise forms.ValidationError(
                    "The period is empty: it must end at least a day after it starts."
                )
            if end - start > timedelta(days=MAX_PERIOD_DAYS):
                raise forms.ValidationError(
                    f"A review covers at most {MAX_PERIOD_DAYS} days: split it."
                )
        return cleaned

    def period(self) -> tuple[datetime, datetime]:
        return _midnight(self.cleaned_data["start"]), _midnight(self.cleaned_data["end"])


class ItemMarkForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(Decision.EXPECTED, "Expected"), (Decision.FOLLOWED_UP, "Followed up")],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(max_length=500, required=False, strip=True)


class SignOffForm(PasswordConfirmForm):
    """The reviewer's password again (checked and counted like a sign-in), and a closing note."""

    note = forms.CharField(
        max_length=2000,
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Note for the record (optional)",
    )

    def __init__(self, user: User, *args: Any, request: Any, **kwargs: Any) -> None:
        super().__init__(user, *args, request=request, purpose=PURPOSE_REVIEW_SIGN_OFF, **kwargs)
        # The note first, the password last, beside the button.
        self.order_fields(["note", "password"])
        self.fields["password"].widget.attrs.pop("autofocus", None)


class GuideForm(forms.Form):
    body = forms.CharField(
        max_length=GUIDE_MAX_CHARS,
        strip=True,
        required=True,
        widget=forms.Textarea(attrs={"rows": 16}),
        label="The guide",
        help_text="Plain text: what to look for in the logs, where, and whom to tell.",
    )
