"""Which IP addresses an outbound request may reach: public unicast ones only."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address

# Special-purpose ranges (IANA IPv4/IPv6 special-purpose address registries, RFC 6890 and later)
# that are not globally reachable, listed here as well as asked of `is_global`: Python's answer
# differs between versions (3.11 calls 224.0.0.1, 64:ff9b:1::1 and fec0::1 global).
NOT_PUBLIC: tuple[IPv4Network | IPv6Network, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): the IPv4 inside is the network's choice
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)

# Prefixes that carry an IPv4 address in their last 32 bits or, for 6to4, bits 16-48: a packet
# to such an address ends at that IPv4 address, so that one must be public too.
NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
SIX_TO_FOUR = IPv6Network("2002::/16")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, NAT64, 6to4), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    return None


def is_public(address: Address) -> bool:
    """True if the address is global unicast, and so is any IPv4 address it embeds."""
    if any(address in network for network in NOT_PUBLIC):
        return False
    if isinstance(address, IPv6Address):
        if address.scope_id:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            # The packet ends at the IPv4 address: its verdict is the one that counts (Python
            # calls all of 64:ff9b::/96 reserved, which would refuse every DNS64 answer).
            return is_public(inner)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_link_local
        and not address.is_loopback
        and not address.is_unspecified
        and not address.is_private
    )
