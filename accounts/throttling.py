"""Throttling before the password hash: token buckets per client IP and per submitted address.

Every sign-in attempt, password reset request and API token check is charged to two token
buckets before anything costly runs: its client IP's (an IPv6 client by its /64, which one
customer holds) and, where an address was submitted, that address's (normalised, known or not).
A bucket holds `burst` attempts and gets one back every `refill_seconds`; an attempt that finds
either bucket empty is refused at once (HTTP 429 with Retry-After) and checks no password, so a
flood costs a Redis round trip per request, not a hash. Both buckets are charged together or not
at all, atomically, so parallel requests cannot overdraw one. A successful sign-in (and a valid
API token) gives its tokens back: only failures use a bucket up, so an office behind one NAT
address pays for its typos, not for its people signing in (Auth0 counts failed attempts too).

The limits are the platform's (settings.THROTTLE_*) unless the organization the attempt is for
set its own: the organization of the known account, or the one that verified the domain of an
unknown address. Networks on the platform's or that organization's allowlist are never throttled.
An account's own familiar device (accounts.familiarity: a device cookie or network it has signed
in from) is not refused by the account's bucket, so a stranger who drains it cannot keep the
owner out; the IP bucket still applies.

Where the buckets live (accounts.throttle_store): Redis when THROTTLE_REDIS_URL (REDIS_URL) is
set; the database when it is not, as in `make run`. While Redis cannot be reached,
THROTTLE_REDIS_DOWN says "database" (the same buckets in the database; an outage starts them
full) or "allow".

Throttled attempts are recorded without a row per request: the first throttled attempt of a
window (THROTTLE_EVENT_WINDOW_SECONDS, fixed windows of the epoch) for a bucket and organization
records one login.throttled, carrying the count of the window before it (its final count: that
window is closed). The store counts every throttled attempt, atomically with its window.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.http import HttpResponse

from audit.ip import IPNetwork, network_parse, parse_ip, resolve_client_ip
from audit.models import EventType, Outcome, Reason
from audit.services import event_record

from .familiarity import Source, source_of
from .lockout import attempted_name_label
from .models import THROTTLE_ALLOWLIST_WIDEST, Organization, User
from .throttle_store import Bucket, Kind, store_call, utc

if TYPE_CHECKING:
    from django.http import HttpRequest

R = TypeVar("R", bound=HttpResponse)

KEY_PREFIX = "am:throttle:"
IPV6_PREFIX = 64


class Purpose(enum.StrEnum):
    """What was attempted; stored as details.purpose of login.throttled. Each has its own
    buckets: a flood of reset requests does not stop its victim from signing in."""

    SIGN_IN = "sign_in"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose's name
    API_TOKEN = "api_token"  # noqa: S105 - a purpose's name


REASONS = {
    Kind.IP: Reason.IP_RATE_LIMIT,
    Kind.ACCOUNT: Reason.ACCOUNT_RATE_LIMIT,
    Kind.ORGANIZATION: Reason.ORGANIZATION_RATE_LIMIT,
}


@dataclass(frozen=True)
class Limits:
    ip_burst: int
    ip_refill_seconds: int
    account_burst: int
    account_refill_seconds: int

    @classmethod
    def of(cls, organization: Organization | None) -> Limits:
        """The organization's limits where it set them, the platform's elsewhere."""

        def pick(field: str, default: int) -> int:
            value = getattr(organization, field, None) if organization is not None else None
            return int(value) if value is not None else default

        return cls(
            ip_burst=pick("throttle_ip_burst", settings.THROTTLE_IP_BURST),
            ip_refill_seconds=pick(
                "throttle_ip_refill_seconds", settings.THROTTLE_IP_REFILL_SECONDS
            ),
            account_burst=pick("throttle_account_burst", settings.THROTTLE_ACCOUNT_BURST),
            account_refill_seconds=pick(
                "throttle_account_refill_seconds", settings.THROTTLE_ACCOUNT_REFILL_SECONDS
            ),
        )


@dataclass(frozen=True)
class Decision:
    """What the throttle said of one attempt."""

    allowed: bool
    # Refused: seconds until the emptiest bucket has a token again, and which one it was.
    retry_after: int = 0
    refused_by: Kind | None = None
    # Allowed: the buckets charged, for throttle_refund.
    charged: tuple[Bucket, ...] = ()


ALLOWED = Decision(allowed=True)


# --- Keys and allowlists -----------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str | None:
    """The client address as audit events record it (trusted proxies honoured)."""
    meta = request.META
    return resolve_client_ip(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES
    ).ip


def ip_key(ip: str | None) -> str:
    """An IPv4 address as itself, an IPv6 one by its /64; every unparsable one shares a key (a
    forged header that no address can be read from gets no bucket of its own)."""
    address = parse_ip(ip or "")
    if address is None:
        return "unparsable"
    if address.version == 6:
        return ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False).with_prefixlen
    return str(address)


def normalised_address(value: str) -> str:
    return str(value).strip().lower()


def _account_key(address: str) -> str:
    # Hashed: the key is bounded whatever was typed, and Redis holds no addresses.
    return hashlib.sha256(normalised_address(address).encode()).hexdigest()[:32]


def organization_allowlist(organization: Organization | None) -> list[IPNetwork]:
    """The organization's allowlist as networks (entries were checked when saved)."""
    networks: list[IPNetwork] = []
    for entry in (organization.throttle_allowlist if organization is not None else None) or []:
        try:
            networks.append(network_parse(str(entry), widest_v4=0, widest_v6=0))
        except ValueError:
            continue
    return networks


def allowlist_parse(text: str) -> list[str]:
    """An organization's allowlist from a form (one entry a line, or commas): normalised CIDRs.

    Raises ValueError with a sentence naming the first bad entry.
    """
    widest_v4, widest_v6 = THROTTLE_ALLOWLIST_WIDEST
    entries: list[str] = []
    for number, item in enumerate(text.replace(",", "\n").splitlines(), 1):
        if not item.strip():
            continue
        try:
            network = network_parse(item, widest_v4=widest_v4, widest_v6=widest_v6)
        except ValueError as refusal:
            raise ValueError(f"Line {number}: {refusal}") from None
        if network.with_prefixlen not in entries:
            entries.append(network.with_prefixlen)
    return entries


def is_allowlisted(ip: str | None, organization: Organization | None) -> bool:
    address = parse_ip(ip or "")
    if address is None:
        return False
    networks = [*settings.THROTTLE_ALLOWLIST, *organization_allowlist(organization)]
    return any(address.version == net.version and address in net for net in networks)


# --- The throttle ------------------------------------------------------------------------------


def _buckets(
    purpose: Purpose, ip: str | None, account: str | None, limits: Limits
) -> tuple[Bucket, ...]:
    buckets = [
        Bucket(
            Kind.IP,
            f"{KEY_PREFIX}{purpose}:ip:{ip_key(ip)}",
            limits.ip_burst,
            limits.ip_refill_seconds,
        )
    ]
    if account:
        buckets.append(
            Bucket(
                Kind.ACCOUNT,
                f"{KEY_PREFIX}{purpose}:account:{_account_key(account)}",
                limits.account_burst,
                limits.account_refill_seconds,
            )
        )
    return tuple(buckets)


def _unfamiliar_budgeted(purpose: Purpose, request: HttpRequest, user: User | None) -> bool:
    """Whether a sign-in attempt is charged to its organization's unfamiliar-check budget."""
    if purpose is not Purpose.SIGN_IN or settings.THROTTLE_UNFAMILIAR_BURST <= 0:
        return False
    return user is None or source_of(user=user, request=request) is Source.UNFAMILIAR


def throttle_attempt(
    *,
    request: HttpRequest,
    purpose: Purpose,
    account: str | None = None,
    organization: Organization | None = None,
    user: User | None = None,
) -> Decision:
    """Charge an attempt to its client IP's and account's buckets, before anything costly.

    Refused: records login.throttled once per bucket, organization and window (durable), and
    says when to try again. Never raises for an unreachable Redis (THROTTLE_REDIS_DOWN).
    """
    if not settings.THROTTLE_ENABLED:
        return ALLOWED
    ip = client_ip(request)
    if is_allowlisted(ip, organization):
        return ALLOWED
    buckets = _buckets(purpose, ip, account, Limits.of(organization))
    if _unfamiliar_budgeted(purpose, request, user):
        org_part = str(organization.pk) if organization is not None else "-"
        buckets += (
            Bucket(
                Kind.ORGANIZATION,
                f"{KEY_PREFIX}{purpose}:unfamiliar:{org_part}",
                settings.THROTTLE_UNFAMILIAR_BURST,
                settings.THROTTLE_UNFAMILIAR_REFILL_SECONDS,
            ),
        )
    taken = store_call("take", buckets)
    if taken is None:  # Redis down and THROTTLE_REDIS_DOWN=allow
        return ALLOWED
    refused, wait = taken
    # The account's own familiar device or network is not kept out by strangers who drained the
    # account's bucket: charge its IP alone.
    if (
        refused
        and buckets[refused - 1].kind is Kind.ACCOUNT
        and user is not None
        and source_of(user=user, request=request) is Source.FAMILIAR
    ):
        buckets = buckets[:1]
        taken = store_call("take", buckets)
        if taken is None:
            return ALLOWED
        refused, wait = taken
    if not refused:
        return Decision(allowed=True, charged=buckets)
    bucket = buckets[refused - 1]
    decision = Decision(allowed=False, retry_after=max(1, math.ceil(wait)), refused_by=bucket.kind)
    _throttled_record(
        request=request,
        purpose=purpose,
        bucket=bucket,
        decision=decision,
        account=account,
        organization=organization,
        user=user,
    )
    if bucket.kind is Kind.IP and not _on_an_organization_allowlist(ip):
        # The address's next attempts are refused by the fast path (accounts.throttle_fast)
        # until the bucket has a token again, counted in this window (its event is written).
        store_call("mark", bucket, _window_key(bucket, organization))
    return decision


def _window_key(bucket: Bucket, organization: Organization | None) -> str:
    """Where a bucket's throttled attempts for an organization are counted, window by window."""
    return f"{bucket.key}:window:{organization.pk if organization is not None else '-'}"


def _on_an_organization_allowlist(ip: str | None) -> bool:
    """Whether any organization's allowlist holds the address: the fast path, which does not
    know which organization an attempt is for, must leave it to the full path."""
    address = parse_ip(ip or "")
    if address is None:
        return False
    allowlists = Organization.objects.exclude(throttle_allowlist=[]).values_list(
        "throttle_allowlist", flat=True
    )
    for entries in allowlists.iterator():
        for entry in entries or []:
            try:
                network = network_parse(str(entry), widest_v4=0, widest_v6=0)
            except ValueError:
                continue
            if address.version == network.version and address in network:
                return True
    return False


def throttle_refund(*, decision: Decision) -> None:
    """Give a successful attempt's tokens back (a right password, a valid API token)."""
    if decision.charged:
        store_call("give", decision.charged)


def _throttled_record(
    *,
    request: HttpRequest,
    purpose: Purpose,
    bucket: Bucket,
    decision: Decision,
    account: str | None,
    organization: Organization | None,
    user: User | None,
) -> None:
    """Count the throttled attempt in its window; the window's first records login.throttled."""
    window_seconds = settings.THROTTLE_EVENT_WINDOW_SECONDS
    window = store_call("count", _window_key(bucket, organization), window_seconds)
    if window is not None and window.count > 1:
        return  # this window's event is written
    details: dict[str, Any] = {
        "purpose": str(purpose),
        "throttle": str(bucket.kind),
        "retry_after_seconds": decision.retry_after,
        "limit": {"burst": bucket.burst, "refill_seconds": bucket.refill_seconds},
        "window_seconds": window_seconds,
    }
    if bucket.kind is Kind.IP:
        details["client_network"] = ip_key(client_ip(request))
    if account:
        details["attempted_username"] = attempted_name_label(normalised_address(account))
    if window is not None:
        details["window_started_at"] = utc(window.started_at).isoformat()
        # The window before this one (of this bucket and organization) is over: its count is
        # final. None when this bucket was not throttled in it.
        if window.previous_started_at is not None:
            details["previous_window"] = {
                "started_at": utc(window.previous_started_at).isoformat(),
                "count": window.previous_count,
            }
    else:
        details["window_unavailable"] = True  # Redis down: every throttled attempt recorded
    event_record(
        event_type=EventType.LOGIN_THROTTLED,
        outcome=Outcome.FAILURE,
        reason=REASONS[bucket.kind],
        actor=user,
        actor_label="" if user is not None else details.get("attempted_username", ""),
        organization=organization,
        details=details,
        request=request,
        durable=True,
    )


def throttled_response(response: R, decision: Decision) -> R:
    """The page or answer of a throttled attempt, as HTTP 429 with Retry-After (RFC 6585)."""
    response.status_code = 429
    response["Retry-After"] = str(decision.retry_after)
    return response


def sign_in_throttled_message(retry_after: int) -> str:
    """The sign-in page's sentence for a throttled attempt (the same for any address)."""
    return (
        "Too many sign-in attempts from your network or for this account. Nothing was checked: "
        f"wait {retry_after_text(retry_after)}, then try again, or reset your password."
    )


def reset_throttled_message(retry_after: int) -> str:
    """The reset page's sentence for a throttled request."""
    return (
        "Too many reset requests from your network or for this address. Wait "
        f"{retry_after_text(retry_after)}, then try again."
    )


def api_throttled_message(retry_after: int) -> str:
    """The events API's error for a throttled token check."""
    return (
        "Too many requests with invalid API tokens from your address. Retry after "
        f"{retry_after} seconds."
    )


def retry_after_text(seconds: int) -> str:
    """'a minute', '15 minutes', '2 hours': when to try again, for people."""
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return "a minute"
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"
