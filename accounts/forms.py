"""Forms for signing in and account pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.core.validators import ProhibitNullCharactersValidator
from django.http import HttpRequest

from .models import User

# One message for every refusal: it must not tell an unknown address from a wrong password, a
# locked account or a disabled one.
SIGN_IN_REFUSED = (
    "That email and password did not work, or the account is locked for a while. "
    "Check them and try again, or reset your password."
)


class SignInForm(forms.Form):
    email = forms.CharField(
        label="Email",
        strip=True,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None
        # Odd input (NUL bytes, oversized values) is a failed sign-in like any other, recorded
        # by the backend, not a form error that would skip the record.
        for field in self.fields.values():
            field.validators = [
                v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)
            ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        email, password = cleaned.get("email"), cleaned.get("password")
        if email and password:
            self.user = authenticate(self.request, username=email, password=password)
            if self.user is None:
                raise forms.ValidationError(SIGN_IN_REFUSED, code="refused")
        return cleaned
