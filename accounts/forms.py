"""Forms for signing in and account pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.core.validators import ProhibitNullCharactersValidator
from django.http import HttpRequest

from audit.widgets import QuickSelect

from .backends import password_sign_in
from .domains import domain_validate
from .lockout import PURPOSE_PASSWORD_CHANGE, Verdict, password_attempt
from .mfa import TOTP_CODE, code_kind, normalise_code
from .models import (
    THROTTLE_ACCOUNT_BURST_BOUNDS,
    THROTTLE_ALLOWLIST_MAX,
    THROTTLE_IP_BURST_BOUNDS,
    THROTTLE_REFILL_SECONDS_BOUNDS,
    MfaPolicy,
    Role,
    User,
)
from .throttling import Decision, allowlist_parse, sign_in_throttled_message
from .timezones import zone_choices, zone_valid

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# One message for every refusal: it must not tell an unknown address from a wrong password, a
# locked account or a disabled one.
SIGN_IN_REFUSED = (
    "That email and password did not work, or the account is locked for a while. "
    "Check them and try again, or reset your password."
)


def throttled_message(decision: Decision) -> str:
    """The sign-in page's sentence for a throttled attempt (the same for any address)."""
    return sign_in_throttled_message(decision.retry_after)


# For a signed-in user whose password checks have locked the account.
ACCOUNT_LOCKED = (
    "Too many wrong passwords or codes: your account is locked for a while. "
    "Try again later, or reset your password."
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

    def __init__(
        self,
        request: HttpRequest,
        *args: Any,
        then: Callable[[User], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.then = then
        self.user: User | None = None
        # Refused by the throttle, unchecked: the view answers 429 with Retry-After.
        self.throttled: Decision | None = None
        # What `then` returned: it runs with the user once the password is right.
        self.outcome: Any = None
        # Odd input (NUL bytes, oversized values) is a failed sign-in like any other, recorded
        # by the backend, not a form error that would skip the record.
        for field in self.fields.values():
            field.validators = [
                v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)
            ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        email, password = cleaned.get("email"), cleaned.get("password")
        if email and password:
            attempt = password_sign_in(
                request=self.request, username=email, password=password, then=self.then
            )
            self.user, self.outcome = attempt.user, attempt.value
            if attempt.throttled is not None:
                self.throttled = attempt.throttled
                raise forms.ValidationError(throttled_message(attempt.throttled), code="throttled")
            if self.user is None:
                raise forms.ValidationError(SIGN_IN_REFUSED, code="refused")
        return cleaned


class CodeInput(forms.TextInput):
    """A code field that comes back empty after a refusal: a used or wrong code is no help."""

    def format_value(self, value: Any) -> None:
        return None


class SecondStepForm(forms.Form):
    """The code of the two-step sign-in: six digits from the app, or a backup code."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=CodeInput(
            attrs={
                "autofocus": True,
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "spellcheck": "false",
            }
        ),
    )

    def clean_code(self) -> str:
        code = normalise_code(self.cleaned_data["code"])
        if code_kind(code) is None:
            raise forms.ValidationError(
                "Enter the 6-digit code from your authenticator app, or one of your backup codes "
                "(8 letters and digits).",
                code="malformed",
            )
        return code


class PasskeyAnswerForm(forms.Form):
    """The browser's passkey answer (static/js/passkeys.js fills it in)."""

    credential = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64 * 1024,
        error_messages={
            "required": "No passkey answer arrived. Use the passkey button (it needs JavaScript).",
            "max_length": "That passkey answer is too large to be one.",
        },
    )


class PasskeyAddForm(PasskeyAnswerForm):
    name = forms.CharField(
        label="Name this passkey",
        max_length=64,
        required=False,
        strip=True,
        help_text=(
            "For example “Work laptop”. Shown on your security page and in your Activity Log."
        ),
    )

    field_order = ["name", "credential"]


class TotpEnrolForm(forms.Form):
    name = forms.CharField(
        label="Name this device",
        max_length=64,
        required=False,
        strip=True,
        help_text="For example “Work phone”. Shown on your security page and in your Activity Log.",
    )
    code = forms.CharField(
        label="Code from the app",
        max_length=16,
        strip=True,
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError("The name cannot hold control characters.")
        return name

    def clean_code(self) -> str:
        code = normalise_code(self.cleaned_data["code"])
        if not TOTP_CODE.match(code):
            raise forms.ValidationError(
                "Enter the 6-digit code your authenticator app shows.", code="malformed"
            )
        return code


def _require_password(
    *,
    user: User,
    password: str,
    request: HttpRequest | None,
    purpose: str,
    wrong: StrOrPromise = "That is not your password.",
) -> None:
    """Raise a form error unless `password` is the signed-in user's (checked, recorded and
    counted towards the lockout like a sign-in)."""
    result = password_attempt(user=user, password=password, request=request, purpose=purpose)
    if result.locked:
        raise forms.ValidationError(ACCOUNT_LOCKED, code="locked")
    if result.verdict is not Verdict.PASSED:
        raise forms.ValidationError(wrong, code="wrong_password")


class PasswordConfirmForm(forms.Form):
    """Asks for the password again before a change that weakens the account."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )

    def __init__(
        self, user: User, *args: Any, request: HttpRequest | None, purpose: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.request = request
        self.purpose = purpose

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        _require_password(
            user=self.user, password=password, request=self.request, purpose=self.purpose
        )
        return password


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form; the old password is checked like a sign-in's (recorded and counted)."""

    def __init__(self, user: User, *args: Any, request: HttpRequest | None, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password: str = self.cleaned_data["old_password"]
        _require_password(
            user=self.user,
            password=old_password,
            request=self.request,
            purpose=PURPOSE_PASSWORD_CHANGE,
            wrong=self.error_messages["password_incorrect"],
        )
        return old_password

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        password = cleaned.get("new_password2")
        # After "No, secure my account" the old password may be someone else's to use.
        if (
            password
            and "new_password2" not in self.errors
            and self.user.password_change_required_at is not None
            and self.user.check_password(password)
        ):
            self.add_error(
                "new_password2",
                forms.ValidationError(
                    "Choose a password other than your current one: someone else may know it.",
                    code="password_unchanged",
                ),
            )
        return cleaned


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)
    # Set by the confirmation page of a change that takes something away (access.is_step_down).
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)


class MfaPolicyForm(forms.Form):
    policy = forms.ChoiceField(
        label="Two-step verification", choices=MfaPolicy.choices, widget=forms.RadioSelect
    )
    roles = forms.MultipleChoiceField(
        label="Roles that must use it",
        choices=Role.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    passkey_roles = forms.MultipleChoiceField(
        label="Roles that must use a passkey",
        help_text=(
            "Phishing-resistant: members of these roles must have a passkey, and sign in with "
            "it. An authenticator app alone does not satisfy this."
        ),
        choices=Role.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        policy = cleaned.get("policy")
        if policy == MfaPolicy.ROLES and not cleaned.get("roles"):
            self.add_error("roles", "Choose at least one role, or pick another option.")
        covered = (
            {r.value for r in Role}
            if policy == MfaPolicy.ALL
            else set(cleaned.get("roles") or [])
            if policy == MfaPolicy.ROLES
            else set()
        )
        uncovered = [r for r in cleaned.get("passkey_roles") or [] if r not in covered]
        if uncovered:
            labels = ", ".join(str(Role(r).label) for r in uncovered)
            self.add_error(
                "passkey_roles",
                f"A passkey is a kind of two-step verification: require two-step verification "
                f"for {labels} too, or leave {labels} out here.",
            )
        return cleaned


class DomainAddForm(forms.Form):
    domain = forms.CharField(
        label="Domain",
        # Longer than any domain, so that the validator, not the length, says what is wrong.
        max_length=300,
        validators=[ProhibitNullCharactersValidator()],
        error_messages={"required": "Enter a domain, such as example.com."},
        widget=forms.TextInput(attrs={"placeholder": "example.com", "autocomplete": "off"}),
    )

    def clean_domain(self) -> str:
        return domain_validate(self.cleaned_data["domain"])


def _bounded(label: str, bounds: tuple[int, int], unit: str) -> forms.IntegerField:
    low, high = bounds
    message = (
        f"{label} must be a whole number from {low:,} to {high:,} {unit}, or empty for the default."
    )
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=low,
        max_value=high,
        error_messages={"min_value": message, "max_value": message, "invalid": message},
        widget=forms.NumberInput(attrs={"min": low, "max": high}),
    )


class ThrottleSettingsForm(forms.Form):
    """An organization's sign-in throttle: each limit bounded, empty for the platform default."""

    ip_burst = _bounded("Attempts per client IP", THROTTLE_IP_BURST_BOUNDS, "attempts")
    ip_refill_seconds = _bounded(
        "One more attempt per client IP every", THROTTLE_REFILL_SECONDS_BOUNDS, "seconds"
    )
    account_burst = _bounded("Attempts per account", THROTTLE_ACCOUNT_BURST_BOUNDS, "attempts")
    account_refill_seconds = _bounded(
        "One more attempt per account every", THROTTLE_REFILL_SECONDS_BOUNDS, "seconds"
    )
    allowlist = forms.CharField(
        label="Never throttle these networks",
        required=False,
        max_length=5000,
        strip=True,
        validators=[ProhibitNullCharactersValidator()],
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "203.0.113.0/24\n2001:db8:1::/48"}),
        help_text="One address or CIDR a line: your offices' public addresses.",
    )

    def clean_allowlist(self) -> list[str]:
        try:
            entries = allowlist_parse(self.cleaned_data["allowlist"])
        except ValueError as refusal:
            raise forms.ValidationError(str(refusal), code="invalid") from None
        if len(entries) > THROTTLE_ALLOWLIST_MAX:
            raise forms.ValidationError(
                f"At most {THROTTLE_ALLOWLIST_MAX} networks; this list has {len(entries)}.",
                code="too_many",
            )
        return entries


class TimeZoneForm(forms.Form):
    """A person's time zone: an IANA name (the list offers the regional ones)."""

    time_zone = forms.CharField(label="Time zone", max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = zone_choices()
        current = self.initial.get("time_zone", "")
        if current and all(current != name for _, group in choices for name, _ in group):
            choices = [("", [(current, current)]), *choices]  # a stored alias stays selectable
        self.fields["time_zone"].widget = QuickSelect(choices=choices)

    def clean_time_zone(self) -> str:
        value: str = self.cleaned_data["time_zone"].strip()
        if not zone_valid(value):
            raise forms.ValidationError(
                "That is not a time zone we know. Choose one from the list, e.g. Europe/Berlin."
            )
        return value


class SavedSearchForm(forms.Form):
    """Name the search on screen (its query string) to keep it; optionally share it."""

    name = forms.CharField(max_length=100, label="Name", strip=True)
    shared = forms.BooleanField(
        required=False, label="Share with my organization", help_text="Others can open it."
    )
    query = forms.CharField(max_length=2000, required=False, widget=forms.HiddenInput)
