"""Forms for triage, rule thresholds and webhook endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms

from accounts.models import User

from .models import AlertRule, AlertStatus, RuleKind, Severity
from .rules import RULES
from .webhooks import url_problem

if TYPE_CHECKING:
    from django.db.models import QuerySet


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *AlertStatus.choices], required=False)
    rule = forms.ChoiceField(choices=[("", "Any rule"), *RuleKind.choices], required=False)
    severity = forms.ChoiceField(choices=[("", "Any severity"), *Severity.choices], required=False)
    user = forms.CharField(required=False, max_length=254, label="User (email)")
    assignee = forms.ChoiceField(required=False, label="Assignee")
    sort = forms.ChoiceField(
        required=False,
        label="Sort by",
        choices=[
            ("severity", "Severity, then last seen"),
            ("last_seen", "Last seen"),
            ("first_seen", "First seen"),
        ],
    )
    after = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, assignable: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee = self.fields["assignee"]
        assert isinstance(assignee, forms.ChoiceField)
        assignee.choices = [
            ("", "Anyone or no one"),
            ("me", "Me"),
            ("none", "No one"),
            *((str(user.pk), user.email) for user in assignable),
        ]


class NoteForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class ResolveForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say in a note how the alert was resolved."},
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(),
        error_messages={
            "invalid_choice": "Choose an analyst or administrator of your organization."
        },
    )

    def __init__(self, *args: Any, assignable: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee = self.fields["assignee"]
        assert isinstance(assignee, forms.ModelChoiceField)
        assignee.queryset = assignable


class RuleForm(forms.Form):
    """Built from the rule's parameter specification: bounds come from alerts.rules.RULES."""

    enabled = forms.BooleanField(required=False)
    severity = forms.ChoiceField(choices=Severity.choices)
    notify_email = forms.BooleanField(required=False, label="Email")
    notify_webhook = forms.BooleanField(required=False, label="Webhooks")

    def __init__(self, *args: Any, rule: AlertRule, **kwargs: Any) -> None:
        self.rule = rule
        self.spec = RULES[rule.kind]
        super().__init__(*args, **kwargs)
        for param in self.spec.params:
            label = param.label + (f" ({param.unit})" if param.unit else "")
            if param.is_bool:
                self.fields[param.name] = forms.BooleanField(required=False, label=label)
            else:
                self.fields[param.name] = forms.IntegerField(
                    label=label,
                    min_value=param.minimum,
                    max_value=param.maximum,
                    error_messages={
                        "invalid": f"{param.label}: enter a whole number.",
                        "required": f"{param.label}: enter a number.",
                        "min_value": f"{param.label}: at least {param.minimum}.",
                        "max_value": f"{param.label}: at most {param.maximum}.",
                    },
                )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        names = [p.name for p in self.spec.params]
        if self.spec.consistency is not None and all(name in cleaned for name in names):
            problem = self.spec.consistency({name: cleaned[name] for name in names})
            if problem:
                raise forms.ValidationError(problem)
        return cleaned

    def parameters(self) -> dict[str, Any]:
        return {p.name: self.cleaned_data[p.name] for p in self.spec.params}


class WebhookForm(forms.Form):
    url = forms.URLField(
        max_length=500,
        label="URL (https)",
        assume_scheme="https",
        error_messages={
            "required": "Enter the URL alerts are sent to, e.g. https://hooks.example.com/activity.",
            "invalid": "Enter a full URL, e.g. https://hooks.example.com/activity.",
        },
    )
    description = forms.CharField(max_length=200, required=False)

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        problem = url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url
