"""What each event type and reason code means to a person: a title and a sentence.

One table for every place that shows events to people (the pages, the security emails, the
alert summaries). The stored codes stay as they are and are shown beside these as secondary text.
A sentence is a str.format template over {subject} (whom the event is about: the target, else
the actor), {actor} and {target}; a missing name reads "someone" or "an account".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .countries import COUNTRY_NAMES
from .models import Category, EventType, Outcome, Reason


@dataclass(frozen=True)
class Wording:
    title: str
    sentence: str


EVENT_WORDING: dict[str, Wording] = {
    EventType.LOGIN_SUCCEEDED: Wording("Signed in", "{subject} signed in"),
    EventType.LOGIN_FAILED: Wording("Sign-in failed", "Failed sign-in for {subject}"),
    EventType.LOGIN_THROTTLED: Wording(
        "Sign-ins paused", "Sign-in attempts for {subject} refused: too many tries"
    ),
    EventType.LOGOUT: Wording("Signed out", "{subject} signed out"),
    EventType.MFA_DEVICE_ADDED: Wording(
        "Sign-in method added", "{actor} added a method for two-step verification"
    ),
    EventType.MFA_DEVICE_REMOVED: Wording(
        "Sign-in method removed", "{actor} removed a method of two-step verification"
    ),
    EventType.MFA_BACKUP_CODES_GENERATED: Wording(
        "Backup codes created", "{actor} created new backup codes"
    ),
    EventType.MFA_VERIFIED: Wording(
        "Two-step verification passed", "{subject} passed two-step verification"
    ),
    EventType.MFA_VERIFICATION_FAILED: Wording(
        "Two-step verification failed", "Wrong two-step verification code for {subject}"
    ),
    EventType.MFA_RESET_BY_ADMIN: Wording(
        "Two-step verification reset", "{actor} reset two-step verification for {target}"
    ),
    EventType.PASSWORD_RESET_REQUESTED: Wording(
        "Password reset requested", "Password reset requested for {subject}"
    ),
    EventType.PASSWORD_RESET_COMPLETED: Wording(
        "Password reset", "{subject} set a new password with a reset link"
    ),
    EventType.PASSWORD_RESET_FAILED: Wording(
        "Password reset failed", "Password reset failed for {subject}"
    ),
    EventType.PASSWORD_CHANGED: Wording("Password changed", "{subject} changed their password"),
    EventType.SESSION_STARTED: Wording("Session started", "New session for {subject}"),
    EventType.SESSION_ENDED: Wording("Session ended", "A session of {subject} ended"),
    EventType.SESSION_EXPIRED: Wording("Session expired", "A session of {subject} expired"),
    EventType.SESSION_LOCATION_CHANGED: Wording(
        "Session used from a new network", "A session of {subject} was used from a new network"
    ),
    EventType.LOCKOUT_TRIGGERED: Wording("Account locked", "The account {subject} was locked"),
    EventType.LOCKOUT_RELEASED: Wording("Account unlocked", "The account {subject} was unlocked"),
    EventType.ALERT_RAISED: Wording("Alert raised", "Security alert about {subject}"),
    EventType.ALERT_ACKNOWLEDGED: Wording("Alert acknowledged", "{actor} acknowledged an alert"),
    EventType.ALERT_RESOLVED: Wording("Alert resolved", "{actor} resolved an alert"),
    EventType.MEMBER_ROLE_CHANGED: Wording("Role changed", "{actor} changed the role of {target}"),
    EventType.MEMBER_REMOVED: Wording(
        "Member removed", "{actor} removed {target} from the organization"
    ),
    EventType.ACCESS_REVIEW_STARTED: Wording(
        "Access review started", "{actor} started an access review"
    ),
    EventType.ACCESS_REVIEW_DECIDED: Wording(
        "Access reviewed", "{actor} decided on the access of {target}"
    ),
    EventType.ACCESS_REVIEW_COMPLETED: Wording(
        "Access review completed", "{actor} completed an access review"
    ),
    EventType.REPORT_CREATED: Wording(
        "Compliance report requested", "{actor} requested a compliance report"
    ),
    EventType.REPORT_DOWNLOADED: Wording(
        "Compliance report downloaded", "{actor} downloaded a compliance report"
    ),
    EventType.SETTINGS_CHANGED: Wording("Settings changed", "{actor} changed a setting"),
    EventType.AUDIT_LOG_VIEWED: Wording("Audit Log viewed", "{actor} viewed the Audit Log"),
    EventType.EXPORT_CREATED: Wording("Export created", "{actor} created an export"),
    EventType.EXPORT_DOWNLOADED: Wording("Export downloaded", "{actor} downloaded an export"),
    EventType.RETENTION_PURGED: Wording(
        "Old events deleted", "Events older than the retention period were deleted"
    ),
    EventType.SEARCH_SAVED: Wording("Search saved", "{actor} saved a search"),
    EventType.SEARCH_DELETED: Wording("Saved search deleted", "{actor} deleted a saved search"),
    EventType.INTEGRITY_VERIFIED: Wording(
        "Log verified intact", "Every sealed event was checked against its signed seal"
    ),
    EventType.INTEGRITY_FAILED: Wording(
        "Log tampering found", "Checking the sealed events against their seals found problems"
    ),
    EventType.ACTIVITY_CONFIRMED: Wording(
        "Activity confirmed", "{actor} confirmed that an event on their account was them"
    ),
    EventType.ACTIVITY_REPORTED: Wording(
        "Activity reported as not them",
        "{actor} said an event on their account was not them and secured the account",
    ),
    EventType.REVIEW_COMPLETED: Wording(
        "Log review signed off", "{actor} reviewed a period of the log and signed it off"
    ),
    EventType.REVIEW_OVERDUE: Wording(
        "Log review overdue", "A scheduled review of the log passed its due time unsigned"
    ),
}

# A known reason says more than its event type, so its sentence replaces the event's.
REASON_WORDING: dict[str, Wording] = {
    Reason.INVALID_CREDENTIALS: Wording("Wrong password", "Wrong password for {subject}"),
    Reason.UNKNOWN_USER: Wording(
        "Unknown account", "Sign-in attempt for {subject}, which is no account here"
    ),
    Reason.INACTIVE_ACCOUNT: Wording(
        "Account deactivated", "Sign-in refused: the account {subject} is deactivated"
    ),
    Reason.ACCOUNT_LOCKED: Wording(
        "Account locked", "Sign-in refused: the account {subject} is locked"
    ),
    Reason.MFA_FAILED: Wording(
        "Wrong verification code", "Wrong two-step verification code for {subject}"
    ),
    Reason.INVALID_TOKEN: Wording(
        "Invalid or expired link", "A password reset link for {subject} was invalid or expired"
    ),
    Reason.PASSWORD_REJECTED: Wording(
        "Password not accepted", "A new password for {subject} did not meet the password rules"
    ),
    Reason.LOGOUT: Wording("Signed out", "{subject} signed out"),
    Reason.REVOKED_BY_USER: Wording(
        "Signed out by the person", "{subject} signed out one of their sessions"
    ),
    Reason.REVOKED_BY_ADMIN: Wording(
        "Signed out by an administrator", "An administrator signed out a session of {subject}"
    ),
    Reason.PASSWORD_CHANGED: Wording(
        "Password changed", "A session of {subject} ended because the password changed"
    ),
    Reason.EXPIRED: Wording("Time ran out", "A session of {subject} expired"),
    Reason.ADMIN_UNLOCK: Wording(
        "Unlocked by an administrator", "An administrator unlocked the account {subject}"
    ),
    Reason.PASSWORD_RESET: Wording(
        "Unlocked by a password reset", "The account {subject} was unlocked by a password reset"
    ),
    Reason.IP_RATE_LIMIT: Wording(
        "Too many attempts from one address", "Too many sign-in attempts from one address"
    ),
    Reason.ACCOUNT_RATE_LIMIT: Wording(
        "Too many attempts on one account", "Too many sign-in attempts for {subject}"
    ),
    Reason.ORGANIZATION_RATE_LIMIT: Wording(
        "Too many attempts across the organization",
        "Too many sign-in attempts across the organization",
    ),
    Reason.PASSKEY_REPLAYED: Wording(
        "Passkey answer replayed",
        "A passkey answer for {subject} was refused: it was used before or not asked for",
    ),
    Reason.PASSKEY_WRONG_ORIGIN: Wording(
        "Passkey answer from another site",
        "A passkey answer for {subject} was refused: it was made for another site",
    ),
    Reason.PASSKEY_OTHER_USER: Wording(
        "Another account's passkey",
        "A passkey of another account was offered at the sign-in of {subject}",
    ),
    Reason.PASSKEY_UNKNOWN: Wording(
        "Unknown passkey", "A sign-in with a passkey unknown here was refused"
    ),
    Reason.PASSKEY_INVALID: Wording(
        "Passkey answer not valid", "A passkey answer for {subject} could not be verified"
    ),
    Reason.PASSKEY_REQUIRED: Wording(
        "Passkey required",
        "A code was refused for {subject}: their organization requires a passkey",
    ),
    Reason.POLICY_DENIED: Wording(
        "Refused by an access policy",
        "Sign-in refused for {subject} by an access policy (network, hours or session limit)",
    ),
    Reason.POLICY: Wording(
        "Ended by an access policy",
        "A session of {subject} ended: an access policy no longer allows it",
    ),
}

# Where a reason means something else under one event type.
SENTENCE_OVERRIDES: dict[tuple[str, str], str] = {
    (EventType.LOCKOUT_RELEASED, Reason.EXPIRED): "The lock on the account {subject} ran out",
    (EventType.LOGIN_FAILED, Reason.EXPIRED): "Sign-in for {subject} refused: it took too long",
}

OUTCOME_TITLES: dict[str, str] = {Outcome.SUCCESS: "Succeeded", Outcome.FAILURE: "Failed"}

CATEGORY_TITLES: dict[str, str] = {
    Category.AUTHENTICATION: "Sign-in",
    Category.MFA: "Two-step verification",
    Category.PASSWORD: "Password",
    Category.SESSION: "Sessions",
    Category.LOCKOUT: "Lockout",
    Category.ALERTS: "Alerts",
    Category.ADMINISTRATION: "Administration",
}


def reason_codes() -> list[str]:
    """Every reason code Reason defines."""
    return [value for name, value in vars(Reason).items() if name.isupper()]


class Describable(Protocol):
    event_type: str
    outcome: str
    reason: str
    actor_label: str
    target_label: str
    ip_address: str | None
    city: str
    country: str

    @property
    def browser(self) -> str: ...

    @property
    def os(self) -> str: ...


def event_title(event_type: str) -> str:
    """The event type's title, or its code when the table does not know it."""
    wording = EVENT_WORDING.get(event_type)
    return wording.title if wording else event_type


def reason_title(reason: str) -> str:
    """The reason's title; free-text reasons (a lockout policy, an alert kind) as they are."""
    wording = REASON_WORDING.get(reason)
    return wording.title if wording else reason


def outcome_title(outcome: str) -> str:
    return OUTCOME_TITLES.get(outcome, outcome)


def category_title(category: str) -> str:
    return CATEGORY_TITLES.get(category, category)


def country_name(code: str) -> str:
    """The country's name for a two-letter code; anything else as it is."""
    return COUNTRY_NAMES.get(code.upper(), code) if code else ""


def place_of(*, city: str = "", country: str = "") -> str:
    """ "Berlin, Germany", "Germany", "Berlin" or ""."""
    return ", ".join(part for part in (city, country_name(country)) if part)


def device_of(*, browser: str = "", os: str = "") -> str:
    """ "Chrome on macOS", "Chrome", "macOS" or ""."""
    if browser and os:
        return f"{browser} on {os}"
    return browser or os


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# What a sentence says where the event names nobody.
_NOBODY = {"subject": "an account", "actor": "someone", "target": "an account"}


def what_happened(
    *, event_type: str, reason: str = "", actor_label: str = "", target_label: str = ""
) -> str:
    """The event as a sentence without place or device: "Wrong password for alice@acme.test"."""
    present = {"subject": target_label or actor_label, "actor": actor_label, "target": target_label}
    names = {key: value or _NOBODY[key] for key, value in present.items()}
    template = SENTENCE_OVERRIDES.get((event_type, reason))
    extra = ""
    if template is None and reason in REASON_WORDING:
        template = REASON_WORDING[reason].sentence
    if template is None:
        # A free-text reason (a lockout policy, an alert kind) adds to the sentence.
        extra = f" ({reason})" if reason else ""
        wording = EVENT_WORDING.get(event_type)
        if wording is None:  # a code this table does not know yet: as it is
            return event_type + extra
        template = wording.sentence
    text = template.format(**names)
    # A name is written as it is (an address starts in lower case); other words with a capital.
    if not any(template.startswith(f"{{{key}}}") and present[key] for key in present):
        text = _capitalised(text)
    return text + extra


def sentence(
    *,
    event_type: str,
    reason: str = "",
    actor_label: str = "",
    target_label: str = "",
    ip_address: str | None = None,
    city: str = "",
    country: str = "",
    browser: str = "",
    os: str = "",
) -> str:
    """The whole sentence: "Wrong password for alice@acme.test from Berlin, Germany — Chrome on
    macOS"."""
    text = what_happened(
        event_type=event_type, reason=reason, actor_label=actor_label, target_label=target_label
    )
    where = place_of(city=city, country=country) or (ip_address or "")
    if where:
        text += f" from {where}"
    device = device_of(browser=browser, os=os)
    if device:
        text += f" — {device}"
    return text


def event_sentence(event: Describable) -> str:
    """sentence() of an event (or anything with an event's fields)."""
    return sentence(
        event_type=event.event_type,
        reason=event.reason,
        actor_label=event.actor_label,
        target_label=event.target_label,
        ip_address=event.ip_address,
        city=event.city,
        country=event.country,
        browser=event.browser,
        os=event.os,
    )


def event_what(event: Describable) -> str:
    """what_happened() of an event."""
    return what_happened(
        event_type=event.event_type,
        reason=event.reason,
        actor_label=event.actor_label,
        target_label=event.target_label,
    )
