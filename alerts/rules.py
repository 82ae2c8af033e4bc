"""The alert rules: each kind with its thresholds and their bounds, and each organization's rules.

RULES is the catalogue (the rule form takes its bounds from it); the services at the end give an
organization its rules and change one. What each rule looks for in an event: alerts.detectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.models import EventType
from audit.services import event_record

from .models import AlertRule, RuleKind, Severity

if TYPE_CHECKING:
    from django.http import HttpRequest

# Events that any rule looks at; every other event type is never queued for evaluation.
EVALUATED_EVENT_TYPES = frozenset(
    {
        EventType.LOGIN_FAILED,
        EventType.LOGIN_SUCCEEDED,
        EventType.SESSION_STARTED,
        EventType.MFA_VERIFIED,
        EventType.SESSION_LOCATION_CHANGED,
        EventType.INTEGRITY_FAILED,
        EventType.ACTIVITY_REPORTED,
    }
)


@dataclass(frozen=True)
class Param:
    name: str
    label: str
    default: int | bool
    minimum: int = 0
    maximum: int = 0
    unit: str = ""

    @property
    def is_bool(self) -> bool:
        return isinstance(self.default, bool)


@dataclass(frozen=True)
class RuleSpec:
    kind: RuleKind
    severity: Severity
    params: tuple[Param, ...]
    description: str
    # Checks that span parameters (each one's bounds are in its Param): the problem, or "".
    consistency: Callable[[dict[str, Any]], str] | None = None


# The most failures credential stuffing reads per query (alerts.detectors): a window's failures
# from one address or network, bounded in a flood. No threshold may need more.
STUFFING_MAX_ROWS = 5000


def _stuffing_consistency(values: dict[str, Any]) -> str:
    if values["distinct_accounts"] > values["attempts"]:
        return (
            "Distinct accounts cannot be more than failed sign-ins: each account is tried at "
            "least once, so the rule could never match."
        )
    return ""


RULES: dict[str, RuleSpec] = {
    spec.kind: spec
    for spec in [
        RuleSpec(
            RuleKind.FAILED_SIGN_INS,
            Severity.HIGH,
            (
                Param("threshold", "Failed sign-ins", 5, 2, 1000),
                Param("window_minutes", "Within", 15, 1, 24 * 60, "minutes"),
            ),
            "Many failed sign-ins for one account: someone may be guessing its password.",
        ),
        RuleSpec(
            RuleKind.PASSWORD_SPRAYING,
            Severity.HIGH,
            (
                Param("distinct_accounts", "Distinct accounts", 10, 2, 10_000),
                Param("window_minutes", "Within", 15, 1, 24 * 60, "minutes"),
            ),
            "Failed sign-ins for many accounts from one IP address: password spraying.",
        ),
        RuleSpec(
            RuleKind.NEW_DEVICE,
            Severity.LOW,
            (),
            "A successful sign-in from a device the user never signed in from before "
            "(never on a first sign-in).",
        ),
        RuleSpec(
            RuleKind.NEW_COUNTRY,
            Severity.MEDIUM,
            (Param("lookback_days", "Country not seen for", 90, 1, 3650, "days"),),
            "A successful sign-in from a country not seen for the user recently.",
        ),
        RuleSpec(
            RuleKind.IMPOSSIBLE_TRAVEL,
            Severity.HIGH,
            (Param("max_speed_kmh", "Faster than", 900, 100, 100_000, "km/h"),),
            "Two consecutive located sign-ins further apart than anyone can travel in between.",
        ),
        RuleSpec(
            RuleKind.CONCURRENT_SESSIONS,
            Severity.MEDIUM,
            (
                Param("limit", "More active sessions than", 3, 1, 100),
                Param("multiple_countries", "Also alert on sessions from two countries", True),
            ),
            "Too many active sessions at once, or active sessions from different countries.",
        ),
        RuleSpec(
            RuleKind.MFA_FATIGUE,
            Severity.HIGH,
            (
                Param("failures", "Failed second-factor checks", 5, 2, 100),
                Param("window_minutes", "Within", 10, 1, 24 * 60, "minutes"),
            ),
            "Repeated failed second-factor checks for one account, then a success: someone who "
            "has the password wore the second factor down, or guessed it "
            "(Elastic's MFA fatigue rules: 5 denials in 10 minutes).",
        ),
        RuleSpec(
            RuleKind.SESSION_ANOMALY,
            Severity.HIGH,
            (Param("network_changes", "Also alert on another network in the same country", False),),
            "A signed-in session used from a country other than the one it started in: a stolen "
            "session cookie replayed elsewhere (Okta Identity Threat Protection's session context "
            "change). Networks are /24 for IPv4 and /64 for IPv6, as the smart lockout's.",
        ),
        RuleSpec(
            RuleKind.ANONYMISING_NETWORK,
            Severity.MEDIUM,
            (
                Param("tor", "Tor exit nodes (manage.py load_tor_exits)", True),
                Param("hosting", "Hosting providers by AS (GEOIP_ASN_DB)", True),
            ),
            "A successful sign-in through Tor or from a hosting provider's network, which hide "
            "where the person is (Microsoft Entra ID Protection's anonymous IP address).",
        ),
        RuleSpec(
            RuleKind.CREDENTIAL_STUFFING,
            Severity.HIGH,
            (
                Param("attempts", "Failed sign-ins", 25, 2, STUFFING_MAX_ROWS),
                Param("distinct_accounts", "Over distinct accounts", 15, 2, STUFFING_MAX_ROWS),
                Param("max_per_account", "Tries per account, at most", 2, 1, 100),
                Param("window_minutes", "Within", 15, 1, 24 * 60, "minutes"),
            ),
            "Failed sign-ins for many accounts with few tries each, from one IP address or one "
            "network (IPv4 /24, IPv6 /48): a list of leaked credentials being tried (Elastic's "
            "Potential Okta Credential Stuffing (Single Source): at least 25 attempts over at "
            "least 15 accounts, at most 2 for any account).",
            consistency=_stuffing_consistency,
        ),
        RuleSpec(
            RuleKind.INTEGRITY_FAILURE,
            Severity.CRITICAL,
            (),
            "Verification of the sealed events (manage.py verify_integrity, or the button under "
            "Settings → Security → Log integrity) found an event changed, deleted, moved, "
            "inserted or missing, a seal rewritten or a seal file missing, or could not verify.",
        ),
        RuleSpec(
            RuleKind.REPORTED_BY_MEMBER,
            Severity.HIGH,
            (),
            'A member answered "No, secure my account" about a sign-in, second-factor or '
            'password change of theirs on their Profile (Google\'s "Was this you?"): their '
            "other sessions were ended and they must choose a new password; find out who it was.",
        ),
    ]
}


def default_parameters(kind: str) -> dict[str, int | bool]:
    return {p.name: p.default for p in RULES[kind].params}


def effective_parameters(rule: AlertRule) -> dict[str, Any]:
    """The rule's stored parameters within their bounds; a missing or unusable one is the default.

    The rule form validates every value; this keeps a hand-edited row from breaking evaluation.
    """
    stored = rule.parameters if isinstance(rule.parameters, dict) else {}
    merged: dict[str, Any] = {}
    for param in RULES[rule.kind].params:
        value = stored.get(param.name, param.default)
        if param.is_bool:
            merged[param.name] = value if isinstance(value, bool) else param.default
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = int(param.default)
        merged[param.name] = min(max(number, param.minimum), param.maximum)
    return merged


def alert_rules_ensure(*, organization_id: int) -> None:
    """Give the organization every rule it lacks, with the default thresholds (idempotent)."""
    have = set(
        AlertRule.objects.filter(organization_id=organization_id).values_list("kind", flat=True)
    )
    missing = [
        AlertRule(
            organization_id=organization_id,
            kind=kind,
            severity=spec.severity,
            parameters=default_parameters(kind),
        )
        for kind, spec in RULES.items()
        if kind not in have
    ]
    if missing:
        AlertRule.objects.bulk_create(missing, ignore_conflicts=True)


def _rule_state(rule: AlertRule) -> dict[str, Any]:
    return {
        "enabled": rule.enabled,
        "severity": rule.severity,
        "parameters": dict(rule.parameters),
        "notify_email": rule.notify_email,
        "notify_webhook": rule.notify_webhook,
    }


def alert_rule_update(
    *,
    rule: AlertRule,
    actor: User,
    enabled: bool,
    severity: str,
    parameters: dict[str, Any],
    notify_email: bool,
    notify_webhook: bool,
    request: HttpRequest | None = None,
) -> bool:
    """Store validated settings and record settings.changed with old and new values."""
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
        old = _rule_state(rule)
        rule.enabled, rule.severity, rule.parameters = enabled, severity, dict(parameters)
        rule.notify_email, rule.notify_webhook = notify_email, notify_webhook
        new = _rule_state(rule)
        if old == new:
            return False
        rule.updated_at = timezone.now()
        rule.save()
        changed = {key: {"old": old[key], "new": new[key]} for key in new if old[key] != new[key]}
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=actor,
            reason=f"alert rule {rule.kind}",
            details={
                "setting": f"alert_rule.{rule.kind}",
                "old": old,
                "new": new,
                "changed": changed,
            },
            request=request,
        )
    return True
