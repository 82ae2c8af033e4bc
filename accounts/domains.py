"""Organization email domains: what a valid one is, proving one by DNS, and the writes.

An administrator lists a domain (pending), publishes the TXT record the page shows and verifies
it; the platform operator may instead set a domain verified in the Django admin, for domains
that cannot be checked. A verified domain belongs to one organization only: failed sign-ins for
unknown addresses at it then belong to that organization (accounts.selectors.
organization_for_address). Every change is recorded as settings.changed, never with the token.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
import idna
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import EventType
from audit.services import event_record

from .models import DomainProof, Organization, OrganizationDomain, User

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

# What the TXT record says, and the name it may sit at besides the domain itself.
TXT_PREFIX = "activity-monitor-verification="
TXT_LABEL = "_activity-monitor"

MAX_DOMAIN_LENGTH = 253

# Mail services anyone can sign up to: an organization proves nothing by owning an address there,
# and none may claim the failed sign-ins of everyone who uses one.
FREE_MAIL_DOMAINS = frozenset(
    {
        "163.com",
        "126.com",
        "aol.com",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hey.com",
        "hotmail.co.uk",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "t-online.de",
        "tutanota.com",
        "web.de",
        "yahoo.co.uk",
        "yahoo.com",
        "yandex.com",
        "yandex.ru",
        "ymail.com",
        "zoho.com",
    }
)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

MALFORMED = (
    "{value} is not a domain name: use letters, digits and hyphens, in labels of at most 63 "
    "characters separated by dots, such as example.com."
)


def domain_normalise(text: str) -> str:
    """The domain as stored: lower-case IDNA A-labels, no trailing dot; ValidationError if none.

    Unicode names are converted (bücher.example is stored as xn--bcher-kva.example), so a domain
    typed either way is the same row and matches the same addresses.
    """
    value = text.strip()
    value = value.removesuffix(".")
    if not value:
        raise ValidationError("Enter a domain, such as example.com.", code="required")
    shown = f"“{value[:80]}”"
    if "@" in value or "/" in value or ":" in value:
        raise ValidationError(
            f"Enter the domain alone, such as example.com: not {shown} "
            "(no address, @, scheme, port or path).",
            code="malformed",
        )
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValidationError("Enter a domain name, not an IP address.", code="malformed")
    too_long = ValidationError(
        f"A domain name is at most {MAX_DOMAIN_LENGTH} characters.", code="malformed"
    )
    if len(value) > MAX_DOMAIN_LENGTH:
        raise too_long
    try:
        ascii_form = idna.encode(value, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise ValidationError(MALFORMED.format(value=shown), code="malformed") from None
    if len(ascii_form) > MAX_DOMAIN_LENGTH:
        raise too_long
    labels = ascii_form.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise ValidationError(MALFORMED.format(value=shown), code="malformed")
    if len(labels) < 2:
        raise ValidationError(
            f"Enter the whole domain, such as {ascii_form}.com: a name with at least one dot.",
            code="malformed",
        )
    if labels[-1].isdigit():
        raise ValidationError(MALFORMED.format(value=shown), code="malformed")
    return ascii_form


def domain_validate(text: str) -> str:
    """The normalised domain, if an organization may list it; ValidationError saying why not."""
    domain = domain_normalise(text)
    if domain in FREE_MAIL_DOMAINS:
        raise ValidationError(
            f"{domain} is a public email service: anyone can have an address there, so no "
            "organization can own it. List the domain your organization's addresses use.",
            code="free_mail",
        )
    return domain


def address_domain(address: str) -> str | None:
    """The normalised domain of an email address; None if it has no valid one."""
    _, at, domain = address.rpartition("@")
    if not at:
        return None
    try:
        return domain_normalise(domain)
    except ValidationError:
        return None


# --- Proof by DNS ------------------------------------------------------------------------------


class DnsCheck(enum.Enum):
    FOUND = "found"
    WRONG_TOKEN = "wrong_token"  # noqa: S105 - a verification record, but with another token
    NOT_FOUND = "not_found"  # the names exist (or one does), no verification record
    NO_SUCH_DOMAIN = "no_such_domain"  # neither name exists in DNS
    UNREACHABLE = "unreachable"  # timed out, or no server answered: nothing is known


def txt_record_value(domain: OrganizationDomain) -> str:
    """The TXT record that proves the domain."""
    return f"{TXT_PREFIX}{domain.verification_token}"


def txt_record_names(domain: OrganizationDomain) -> tuple[str, str]:
    """Where the TXT record may be published: a name of its own, or the domain itself."""
    return (f"{TXT_LABEL}.{domain.domain}", domain.domain)


def _nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    """One DOMAIN_VERIFICATION_NAMESERVERS entry: host, host:port, [v6] or [v6]:port."""
    host, port = entry, 53
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif entry.count(":") == 1:
        host, _, number = entry.partition(":")
        port = int(number)
    ipaddress.ip_address(host)  # ValueError for a name: the resolver would only fail later
    return dns.nameserver.Do53Nameserver(host, port)


def _resolver() -> dns.resolver.Resolver:
    servers = settings.DOMAIN_VERIFICATION_NAMESERVERS
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [_nameserver(entry) for entry in servers]
    resolver.cache = None  # a record just published must be seen at once
    return resolver


def _txt_strings(resolver: dns.resolver.Resolver, name: str, lifetime: float) -> list[str] | None:
    """The TXT strings at a name ([] when it has none); None when the name does not exist."""
    try:
        answer = resolver.resolve(
            dns.name.from_text(name),  # absolute: no search domain is appended
            "TXT",
            lifetime=lifetime,
            search=False,
            raise_on_no_answer=False,
        )
    except dns.resolver.NXDOMAIN:
        return None
    if answer.rrset is None:
        return []
    # A long TXT record comes in strings of at most 255 bytes: one value, joined.
    return [b"".join(rdata.strings).decode("utf-8", "replace").strip() for rdata in answer.rrset]


def dns_txt_check(domain: OrganizationDomain) -> DnsCheck:
    """Look for the domain's verification record, spending at most the configured time."""
    expected = txt_record_value(domain)
    deadline = time.monotonic() + settings.DOMAIN_VERIFICATION_TIMEOUT_SECONDS
    try:
        resolver = _resolver()
    except (dns.exception.DNSException, ValueError) as exc:
        # No resolver configured on this host, or a DOMAIN_VERIFICATION_NAMESERVERS entry that is
        # not an IP address (with a port): the operator's to fix, the administrator's to retry.
        logger.warning("domain verification has no usable DNS server: %s", exc)
        return DnsCheck.UNREACHABLE
    found: list[list[str] | None] = []
    for name in txt_record_names(domain):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return DnsCheck.UNREACHABLE
        try:
            strings = _txt_strings(resolver, name, remaining)
        except dns.exception.DNSException:
            return DnsCheck.UNREACHABLE  # timed out, refused, SERVFAIL: try again later
        if strings is not None and expected in strings:
            return DnsCheck.FOUND
        found.append(strings)
    if all(strings is None for strings in found):
        return DnsCheck.NO_SUCH_DOMAIN
    if any(s.startswith(TXT_PREFIX) for strings in found for s in strings or []):
        return DnsCheck.WRONG_TOKEN
    return DnsCheck.NOT_FOUND


def dns_check_message(domain: OrganizationDomain, check: DnsCheck) -> str:
    """What the administrator reads after a verification attempt."""
    own_name, apex = txt_record_names(domain)
    record = txt_record_value(domain)
    return {
        DnsCheck.FOUND: f"{domain.domain} is verified.",
        DnsCheck.WRONG_TOKEN: (
            f"{domain.domain} has a verification record, but not this one: publish "
            f"“{record}” (a record from an earlier attempt does not count)."
        ),
        DnsCheck.NOT_FOUND: (
            f"No TXT record “{record}” at {own_name} or {apex} yet. New records can take a "
            "while to appear; try again in a few minutes."
        ),
        DnsCheck.NO_SUCH_DOMAIN: (
            f"Neither {own_name} nor {apex} exists in DNS. Check the spelling of the domain, "
            "or publish the record and try again."
        ),
        DnsCheck.UNREACHABLE: (
            f"The DNS lookup for {domain.domain} did not complete (no answer in time). "
            "Nothing was changed; try again later."
        ),
    }[check]


# --- Writes ------------------------------------------------------------------------------------


class DomainRefused(Exception):
    """The domain cannot be listed or verified; the message says why, for the person."""


def _state(domain: OrganizationDomain | None) -> dict[str, Any] | None:
    if domain is None:
        return None
    if domain.verified_at is None:
        return {"status": "pending"}
    return {"status": "verified", "proof": domain.proof}


def _changed_record(
    *,
    organization: Organization,
    domain: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    actor: User | None,
    request: HttpRequest | None,
) -> None:
    event_record(
        event_type=EventType.SETTINGS_CHANGED,
        actor=actor,
        organization=organization,
        details={"setting": "email_domain", "domain": domain, "old": old, "new": new},
        request=request,
    )


def verified_elsewhere(*, organization: Organization, domain: str) -> bool:
    """Whether another organization has this (normalised) domain verified."""
    return (
        OrganizationDomain.objects.filter(domain=domain, verified_at__isnull=False)
        .exclude(organization=organization)
        .exists()
    )


def domain_refusal(*, organization: Organization, domain: str) -> str | None:
    """Why the organization may not list this normalised domain now; None if it may."""
    if verified_elsewhere(organization=organization, domain=domain):
        return (
            f"{domain} is verified by another organization. If your organization owns it, "
            "contact support."
        )
    listed = OrganizationDomain.objects.filter(organization=organization)
    if listed.filter(domain=domain).exists():
        return f"{domain} is already listed."
    limit = settings.ORGANIZATION_DOMAINS_MAX
    if listed.count() >= limit:
        return f"An organization lists at most {limit} domains; remove one first."
    return None


def _organization_locked(organization: Organization) -> None:
    """Hold the organization's row until the transaction ends: its domain list is decided one
    change at a time (the bound, a domain listed twice)."""
    Organization.objects.select_for_update().filter(pk=organization.pk).values_list("pk").first()


def organization_domain_add(
    *,
    organization: Organization,
    domain: str,
    actor: User,
    request: HttpRequest | None = None,
) -> OrganizationDomain:
    """List a domain as pending, with a fresh token; DomainRefused (or ValidationError) if not."""
    name = domain_validate(domain)
    with transaction.atomic():
        _organization_locked(organization)
        refusal = domain_refusal(organization=organization, domain=name)
        if refusal is not None:
            raise DomainRefused(refusal)
        row = OrganizationDomain.objects.create(
            organization=organization, domain=name, created_by=actor
        )
        _changed_record(
            organization=organization,
            domain=name,
            old=None,
            new=_state(row),
            actor=actor,
            request=request,
        )
    return row


def _verified_save(
    row: OrganizationDomain,
    *,
    proof: str,
    actor: User | None,
    request: HttpRequest | None,
) -> None:
    """Mark a locked pending row (or a new one) verified and record it; DomainRefused if another
    organization got there first (the orgdomain_verified_once constraint decides a race)."""
    old = _state(row) if row.pk is not None else None
    row.proof = proof
    row.verified_at = timezone.now()
    try:
        with transaction.atomic():
            if old is None:
                row.save(force_insert=True)
            else:
                row.save(update_fields=["proof", "verified_at"])
    except IntegrityError:
        raise DomainRefused(
            f"{row.domain} is verified by another organization. If your organization owns it, "
            "contact support."
        ) from None
    _changed_record(
        organization=row.organization,
        domain=row.domain,
        old=old,
        new=_state(row),
        actor=actor,
        request=request,
    )


@dataclass(frozen=True)
class Verification:
    verified: bool
    message: str
    check: DnsCheck | None = None  # None: no lookup was needed (already verified)


def organization_domain_verify(
    *,
    domain: OrganizationDomain,
    actor: User,
    request: HttpRequest | None = None,
) -> Verification:
    """Look the domain's TXT record up and, if it is there, mark the domain verified.

    Call it outside a transaction (the domains page's view is not atomic): the lookup may take
    the whole timeout. The row is then locked and checked again, so two verifications record one
    change.
    """
    if domain.is_verified:
        return Verification(True, f"{domain.domain} is already verified.")
    check = dns_txt_check(domain)
    message = dns_check_message(domain, check)
    if check is not DnsCheck.FOUND:
        return Verification(False, message, check)
    with transaction.atomic():
        row = (
            OrganizationDomain.objects.select_for_update()
            .select_related("organization")
            .filter(pk=domain.pk)
            .first()
        )
        if row is None:
            raise DomainRefused(f"{domain.domain} was removed meanwhile.")
        if not row.is_verified:
            _verified_save(row, proof=DomainProof.DNS_TXT, actor=actor, request=request)
    return Verification(True, message, check)


def organization_domain_operator_set(
    *,
    organization: Organization,
    domain: str,
    actor: User,
    request: HttpRequest | None = None,
) -> OrganizationDomain:
    """Set a domain verified for the organization, as the platform operator (no DNS check).

    Lists it first if the organization has not; DomainRefused if another organization has it
    verified, or the organization is at its bound.
    """
    name = domain_validate(domain)
    with transaction.atomic():
        _organization_locked(organization)
        row = (
            OrganizationDomain.objects.select_for_update()
            .select_related("organization")
            .filter(organization=organization, domain=name)
            .first()
        )
        if row is None:
            refusal = domain_refusal(organization=organization, domain=name)
            if refusal is not None:
                raise DomainRefused(refusal)
            row = OrganizationDomain(organization=organization, domain=name, created_by=actor)
        if not row.is_verified:
            _verified_save(row, proof=DomainProof.OPERATOR, actor=actor, request=request)
    return row


def organization_domain_remove(
    *,
    domain: OrganizationDomain,
    actor: User,
    request: HttpRequest | None = None,
) -> bool:
    """Remove a domain and record it; False if it was already gone."""
    with transaction.atomic():
        row = (
            OrganizationDomain.objects.select_for_update()
            .select_related("organization")
            .filter(pk=domain.pk)
            .first()
        )
        if row is None:
            return False
        old = _state(row)
        row.delete()
        _changed_record(
            organization=row.organization,
            domain=row.domain,
            old=old,
            new=None,
            actor=actor,
            request=request,
        )
    return True


def organization_for_address(address: str) -> Organization | None:
    """The organization that has verified the address's domain, or None: one indexed query.

    Exact domains only: a verified example.com says nothing of eu.example.com. Read on every
    failed sign-in for an unknown address, through the unique index of verified domains
    (orgdomain_verified_once).
    """
    domain = address_domain(address)
    if domain is None:
        return None
    return (
        Organization.objects.filter(
            email_domains__domain=domain, email_domains__verified_at__isnull=False
        )
        .only("pk")  # all an event needs; any other field loads when read
        .order_by()
        .first()
    )
