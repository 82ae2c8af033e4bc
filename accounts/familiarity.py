"""Familiar and unfamiliar sources of a sign-in attempt, for the smart lockout.

An attempt at a known account is familiar when it carries a device cookie from which that
account has signed in before, or comes from a network from which it signed in within the last
FAMILIAR_NETWORK_DAYS; every other attempt is unfamiliar. accounts.lockout counts the failures of
the two apart and locks them apart, in the spirit of Microsoft Entra's smart lockout: a stranger
who guesses passwords locks out strangers, not the owner at their usual desk.

"Signed in" means a session was started (accounts.sessions.session_start): the password and,
for an account with a second factor, the code were right. A right password alone makes nothing
familiar, nor does a device cookie that never signed in (made up, or new).

The network is the IPv4 /24 or the IPv6 /64 around the address. A /64 is one IPv6 link (a home,
an office floor: RFC 4291 fixes interface ids at 64 bits and ISPs hand customers a /56 or /48 of
them); a /24 is the usual grain of office ranges and of the pools an ISP or a mobile carrier
re-addresses a customer within. Both are wide enough that the owner's next address is usually
in it, narrow enough that an attacker rarely is (one on the owner's own network is familiar:
counted and locked apart all the same, PCI DSS 8.3.4 holds for them too).
"""

from __future__ import annotations

import enum
import ipaddress
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from audit.context import request_context
from audit.ip import parse_ip

from .models import User, UserSession

if TYPE_CHECKING:
    from django.http import HttpRequest

IPV4_PREFIX = 24
IPV6_PREFIX = 64
# A network the account signed in from this recently is familiar (Entra looks back as far; so
# does the new-country alert rule). A device cookie stays familiar as long as it lives.
FAMILIAR_NETWORK_DAYS = 90

# Where a request keeps the sources decided for it, by account: the password step decides, and
# the pending two-step sign-in started in the same request carries that decision.
_DECIDED_ATTRIBUTE = "_attempt_sources"


class Source(enum.StrEnum):
    """Stored as details.source of login.failed."""

    FAMILIAR = "familiar"
    UNFAMILIAR = "unfamiliar"


def network_of(ip: str | None) -> str:
    """The network the address belongs to (e.g. "203.0.113.0/24", "2001:db8:1:2::/64"), or ""."""
    address = parse_ip(ip or "")
    if address is None:
        return ""
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False).with_prefixlen


def attempt_source(*, user: User, request: HttpRequest | None) -> Source:
    """Tell whether an attempt at the account comes from a familiar source; one indexed query.

    Decided once per request and account. An attempt without a request (a script calling
    authenticate()) has nothing to be familiar by.
    """
    if request is None:
        return Source.UNFAMILIAR
    decided: dict[int, Source] = getattr(request, _DECIDED_ATTRIBUTE, None) or {}
    if user.pk not in decided:
        decided[user.pk] = _source(user, request)
        setattr(request, _DECIDED_ATTRIBUTE, decided)
    return decided[user.pk]


def source_of(*, user: User, request: HttpRequest) -> Source:
    """Tell whether a request comes from a familiar source of the account, now, outside its
    lock (the throttle's question; the lockout's decision is attempt_source's, under the lock)."""
    return _source(user, request)


def _source(user: User, request: HttpRequest) -> Source:
    context = request_context(request)
    seen = Q()
    if context.device_id:
        seen |= Q(device_id=context.device_id)
    network = network_of(context.ip_address)
    if network:
        since = timezone.now() - timedelta(days=FAMILIAR_NETWORK_DAYS)
        seen |= Q(network=network, started_at__gte=since)
    if not seen:
        return Source.UNFAMILIAR
    # The account's sessions through usersession_user_open (user first): as many rows as it
    # has signed in, which no one else can add to.
    familiar = UserSession.objects.filter(user_id=user.pk).filter(seen).exists()
    return Source.FAMILIAR if familiar else Source.UNFAMILIAR
